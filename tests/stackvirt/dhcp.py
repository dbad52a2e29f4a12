#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""What the host's DHCP client messages in a capture give away.

  dhcp.py audit FILE REAL_MAC

FILE is a pcap of Ethernet frames (tcpdump -w).  Checks every DHCP client
message (UDP 68 -> 67) against the anonymity profile of RFC 7844 as
stackvirt's daemon implements it (crates/stackvirt/src/dhcp.rs):

  DHCPDISCOVER          options 53, 55, 61 only; ciaddr 0
  DHCPREQUEST selecting options 50, 53, 54, 55, 61 only; ciaddr 0
  DHCPREQUEST renewing  options 53, 55, 61 only; ciaddr set
  DHCPRELEASE           options 53, 54, 61 only; ciaddr set
  every message         client identifier 01 + chaddr; chaddr = the
                        frame's Ethernet source, never REAL_MAC; secs 0;
                        broadcast flag clear; no sname or file

Prints one "TYPE COUNT" line per message type, then each violation;
exits 1 if there was any.
"""
import struct
import sys

TYPES = {1: "DISCOVER", 3: "REQUEST", 7: "RELEASE", 4: "DECLINE", 8: "INFORM"}


def frames(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: link type {linktype}, not Ethernet")
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def client_messages(path):
    """(ethernet source, BOOTP payload) of each DHCP client message."""
    for f in frames(path):
        if len(f) < 14 + 20 + 8 or f[12:14] != b"\x08\x00":
            continue
        ip = f[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:
            continue
        udp = ip[ihl:]
        sport, dport = struct.unpack("!HH", udp[:4])
        if (sport, dport) == (68, 67):
            yield f[6:12], udp[8:]


def options(bootp):
    """The options of a BOOTP payload, in wire order: [(code, value)]."""
    if bootp[236:240] != b"\x63\x82\x53\x63":
        return None
    out, i = [], 240
    while i < len(bootp):
        code = bootp[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        n = bootp[i + 1]
        out.append((code, bootp[i + 2:i + 2 + n]))
        i += 2 + n
    return out


def mac(b):
    return ":".join(f"{x:02x}" for x in b)


def audit(path, real_mac):
    counts, problems = {}, []
    for src, b in client_messages(path):
        opts = options(b)
        chaddr = b[28:34]
        who = mac(chaddr)
        if opts is None:
            problems.append(f"{who}: no DHCP magic cookie")
            continue
        d = dict(opts)
        kind = d.get(53, b"\0")[0]
        ciaddr = b[12:16]
        name = TYPES.get(kind, f"type{kind}")
        if kind == 3:
            name = "REQUEST-renewing" if any(ciaddr) else "REQUEST-selecting"
        counts[name] = counts.get(name, 0) + 1
        want = {"DISCOVER": [53, 55, 61], "REQUEST-selecting": [50, 53, 54, 55, 61],
                "REQUEST-renewing": [53, 55, 61], "RELEASE": [53, 54, 61]}.get(name)
        codes = sorted(c for c, _ in opts)
        if want is None:
            problems.append(f"{who}: a {name}, which the profile never sends")
        elif codes != want:
            problems.append(f"{who}: {name} with options {codes}, want {want}")
        if name in ("DISCOVER", "REQUEST-selecting") and any(ciaddr):
            problems.append(f"{who}: {name} names an address in ciaddr")
        if d.get(61) != b"\x01" + chaddr:
            problems.append(f"{who}: {name} client identifier {d.get(61, b'').hex()}, want 01 + chaddr")
        if chaddr != src:
            problems.append(f"{who}: {name} sent from Ethernet source {mac(src)}")
        if who == real_mac.lower() or mac(src) == real_mac.lower():
            problems.append(f"{who}: {name} carries the uplink's own MAC")
        secs, flags = struct.unpack("!HH", b[8:12])
        if secs or flags:
            problems.append(f"{who}: {name} with secs {secs}, flags {flags:#x}")
        if any(b[44:236]):
            problems.append(f"{who}: {name} with a server name or file")
    for name in sorted(counts):
        print(name, counts[name])
    for p in problems:
        print("problem:", p)
    return 1 if problems or not counts else 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "audit":
        sys.exit(__doc__)
    sys.exit(audit(sys.argv[2], sys.argv[3]))
