#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Regenerate scramble-vectors.json from the algorithm, with Python only.

The scrambler is written here a second time, from docs/design.md
("The scrambler, byte-exact"), using nothing but Python's hmac and hashlib,
so that the vectors stay an oracle independent of the project's Rust code.
The output is byte-identical to the committed file:

    python3 tests/vectors/make-vectors.py | cmp - tests/vectors/scramble-vectors.json
"""

import hashlib
import hmac
import json
import sys

LABEL = "mptcp-scramble v1"
RING_LEN = 64

# The "random-1000" plaintext: 1000 random bytes drawn once when the vectors
# were first made.  They follow no rule that could be rerun, so they are
# carried here as they are (bytes.fromhex skips the whitespace).
RANDOM_1000 = bytes.fromhex(
    """
    f0862c4759ca9b15561201f52e295c592b2a985d6459589ae61d3e68eb137814
    5326173bad355e00e85985c0dce7a46e063732de9d2c21439eb6d69e5ee35f62
    6fee95a9e3756e4384053899b0fc3ee077b58678657b761ddba97f96bd5ccfc4
    b113641e7657fd4ffdd9182ef34eec31430193645f7acfbb4e500779eeade78a
    2269c39e92b48e2084c7afaa89837938d37d19d3c25810614d3fbe9540a606e5
    0afe993c2ba09fefe3bae2fbca76e39890bd1d7aba7e9be8b6ccad4eacddfebf
    4d0fa7427e13f0c10b4eb388a30fb2330d9c87370b093363ce3a372aa5e681cb
    8baf2a4ce64b452cf9b28514c183c5d21df48e929fed79f8daf345e050358972
    873bd530c8aaf6426cdae01aa59dfac63b0392ef2dcefc3ecc4b39f352463498
    c062da5f0e910723833dc3e46ef783d15ea996a04762ee128dcfc75a39ade18d
    51414b0c9b148ae36eaf77084476eded98516cbe1f135f2c1f879da4cf7425d1
    d2e3047c5ed13ca281851af4b46c491adc521ccdaa644ac1ffa70d5b8b0142cf
    4a7f3d8c7a319d5a644ac47f96e1d57b59702ffee53a55f8f5ad4f4cc93534d4
    4a72885500ba3a261e04a18875cb578332cfe041b4a3c08a49cb63db10da7334
    25b700752419640cc050d9e6dab3cb2c7bf9e189565b3d33d710bb6a47414af5
    fd3c620169e82550706982952f7a080ea0e8ed9b04a3eaddcd8d66402be655ee
    0a67c4c68a1b420d72b42c8a9a1e16c055af957669e7b5ca4cf79d832ed72202
    8d0c524f7a3473532468a3eff9af7301032d095e50636f393ee500be2a5c8167
    07f2f63e0af1ea78f8ef3b8f02151642e976a14d3abf8f1293d37d9e269f7310
    1d2bc34b7fb4817cdc5ec8a838a3277745f36e444573cec98fad04acd7764d17
    3fb1c09c7db33d849adc7c7e850d344d04ae4c97689f75dfb5563d3801cc54bc
    21a7ad2615180f4ba1360b63ebdb93200630c1976ad04fa69d40d6f066a766ac
    cce4cbae6d2ac994c5bd064f1ee709328eb678549d1c2604cc1e3ffc4e39c895
    682ca03695c8e2ab87087c5ac4aed70d67d7cc4b1905765e4c94bd52b4e587b4
    3c4f02e1a190643f67bd588afd02611ce2dd541eed62bd2142c379a6a52c221f
    25d598b5450e84485dfda457465b74c6927b471e4daf7c914adb91f4141575bc
    b2dde4a435320725bba7ba94fe34a6635cf1ce51b66bbe7ad4e3544efdbcb569
    6bd5e2570e3708fcda2ca3091ff2e0e88871e1cf522e68f8433f9d5cf477f887
    82e88421f93a97186287b10ea644e1c3f9619a5fd7a24fbafb65ebaac3dd1e40
    b68f5a5b67cf851f9ef25466955be537eb2deeb6479296adf435f211971f9bd2
    0ef2f136e0c1d18ccc2e38b2216bb677c5ae5ad37e44f093ef59b9a00c864902
    537be722602d8321
    """
)

# (name, sender key, receiver key, plaintext), in the file's order.
CASES = [
    ("digits", 0x0123456789ABCDEF, 0xFEDCBA9876543210, b"0123456789" * 30),
    ("empty", 0x0000000000000001, 0x0000000000000002, b""),
    ("zeros-200", 0x0000000000000000, 0x0000000000000000, bytes(200)),
    ("one-byte", 0xFFFFFFFFFFFFFFFF, 0x8000000000000001, b"A"),
    (
        "http",
        0x1122334455667788,
        0x99AABBCCDDEEFF00,
        b"GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: test\r\n\r\n",
    ),
    ("random-1000", 0xDEADBEEFCAFEBABE, 0x0BADF00D12345678, RANDOM_1000),
]


def seed(sender_key, receiver_key):
    """H = HMAC-SHA256(BE64(Ks) || BE64(Kr), LABEL)."""
    key = sender_key.to_bytes(8, "big") + receiver_key.to_bytes(8, "big")
    return hmac.new(key, LABEL.encode("ascii"), hashlib.sha256).digest()


def scramble(h, plaintext):
    """The sender's side: a 64-byte ring seeded with H and 32 zero bytes."""
    ring = list(h) + [0] * (RING_LEN - len(h))
    idx = RING_LEN - 1
    x = 0
    for r in ring:
        x ^= r
    out = bytearray()
    for b in plaintext:
        out.append(b ^ x)
        idx = (idx + 1) % RING_LEN
        x ^= ring[idx] ^ b
        ring[idx] = b
    return bytes(out)


def main():
    cases = []
    for name, ks, kr, plaintext in CASES:
        h = seed(ks, kr)
        cases.append(
            {
                "name": name,
                "sender_key": f"{ks:016x}",
                "receiver_key": f"{kr:016x}",
                "seed_hmac": h.hex(),
                "plaintext": plaintext.hex(),
                "scrambled": scramble(h, plaintext).hex(),
            }
        )
    # indent=1 and no trailing newline: the layout of the committed file.
    sys.stdout.write(json.dumps({"label": LABEL, "cases": cases}, indent=1))


if __name__ == "__main__":
    main()
