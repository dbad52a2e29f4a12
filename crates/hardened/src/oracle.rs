//! The oracle: the hardened mode computed only with code independent of
//! `src/hardened.rs`.  `snow` runs the Noise handshake, `hmac`/`sha2`
//! derive the project's keys from snow's split, `chacha20` makes the
//! keystream; the X25519 and ChaCha20 answers are RFC 7748's and RFC
//! 8439's own.  Used by the `hardened-vectors` tool and by the tests.

use anyhow::{ensure, Context, Result};
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// RFC 7748 section 5.2, first X25519 vector: scalar, u-coordinate, result.
pub const RFC7748: [&str; 3] = [
    "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
    "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
    "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
];

/// RFC 8439 section 2.4.2: key, nonce, counter, plaintext, and the first 64
/// bytes of its ciphertext.
pub const RFC8439_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const RFC8439_NONCE: &str = "000000000000004a00000000";
pub const RFC8439_COUNTER: u32 = 1;
pub const RFC8439_PLAIN: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
pub const RFC8439_CIPHER64: &str = "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8";

pub const PROTOCOL: &str = "Noise_NN_25519_ChaChaPoly_SHA256";
pub const STREAM_LABEL: &[u8] = b"mptcp-scramble v1 stream";
pub const JOIN_LABEL: &[u8] = b"mptcp-scramble v1 join";

/// One handshake's inputs and everything snow and the key schedule give.
#[derive(Debug, Clone)]
pub struct Case {
    pub prologue: Vec<u8>,
    pub client_e: [u8; 32],
    pub server_e: [u8; 32],
    pub msg1: Vec<u8>,
    pub msg2: Vec<u8>,
    pub handshake_hash: Vec<u8>,
    pub confirm: Vec<u8>,
    pub stream_c2s: [u8; 32],
    pub stream_s2c: [u8; 32],
    pub join_client: u64,
    pub join_server: u64,
}

fn hmac(key: &[u8], a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(a);
    m.update(b);
    m.finalize().into_bytes().into()
}

/// Run the handshake with snow, both ends in this process.
pub fn handshake(prologue: &[u8], client_e: &[u8; 32], server_e: &[u8; 32]) -> Result<Case> {
    let run = || -> Result<(snow::HandshakeState, snow::HandshakeState, Vec<u8>, Vec<u8>)> {
        let mut i = snow::Builder::new(PROTOCOL.parse()?)
            .prologue(prologue)?
            .fixed_ephemeral_key_for_testing_only(client_e)
            .build_initiator()?;
        let mut r = snow::Builder::new(PROTOCOL.parse()?)
            .prologue(prologue)?
            .fixed_ephemeral_key_for_testing_only(server_e)
            .build_responder()?;
        let mut m1 = [0u8; 64];
        let n1 = i.write_message(&[], &mut m1)?;
        r.read_message(&m1[..n1], &mut [])?;
        let mut m2 = [0u8; 96];
        let n2 = r.write_message(&[], &mut m2)?;
        i.read_message(&m2[..n2], &mut [])?;
        ensure!(i.is_handshake_finished() && r.is_handshake_finished());
        Ok((i, r, m1[..n1].to_vec(), m2[..n2].to_vec()))
    };
    // Twice, deterministically: once for the raw split, once for the
    // transport messages.
    let (mut i, mut r, msg1, msg2) = run()?;
    let h = i.get_handshake_hash().to_vec();
    ensure!(
        h == r.get_handshake_hash(),
        "snow's two ends disagree on the handshake hash"
    );
    let (k1, k2) = i.dangerously_get_raw_split();
    ensure!(
        (k1, k2) == r.dangerously_get_raw_split(),
        "snow's two ends disagree on the split"
    );
    let (i, r, _, _) = run()?;
    let mut it = i.into_transport_mode()?;
    let mut rt = r.into_transport_mode()?;
    let mut confirm = [0u8; 16];
    let n = it.write_message(&[], &mut confirm)?;
    ensure!(n == 16);
    rt.read_message(&confirm, &mut [])
        .context("snow's responder rejects the confirmation")?;
    let join =
        |k: &[u8]| u64::from_be_bytes(hmac(k, JOIN_LABEL, &h)[..8].try_into().expect("8 bytes"));
    Ok(Case {
        prologue: prologue.to_vec(),
        client_e: *client_e,
        server_e: *server_e,
        msg1,
        msg2,
        confirm: confirm.to_vec(),
        stream_c2s: hmac(&k1, STREAM_LABEL, &h),
        stream_s2c: hmac(&k2, STREAM_LABEL, &h),
        join_client: join(&k1),
        join_server: join(&k2),
        handshake_hash: h,
    })
}

/// The keystream of `key` at stream `offset`, `len` bytes, from `chacha20`
/// directly (only offsets inside the first 256 GiB, nonce 0).
pub fn keystream(key: &[u8; 32], offset: u64, len: usize) -> Vec<u8> {
    let mut c = chacha20::ChaCha20::new(key.into(), &[0u8; 12].into());
    c.seek(offset);
    let mut out = vec![0u8; len];
    c.apply_keystream(&mut out);
    out
}

fn bytes32(seed: u8) -> [u8; 32] {
    core::array::from_fn(|i| {
        seed.wrapping_mul(37)
            .wrapping_add((i as u8).wrapping_mul(11))
    })
}

/// The fixed cases: a prologue as the kernel builds it (keys
/// 0x0102030405060708 and 0x1112131415161718, offers `1e 04 f1 02`).
pub fn cases() -> Result<Vec<Case>> {
    let mut prologue = Vec::new();
    prologue.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    prologue.extend_from_slice(&0x1112_1314_1516_1718u64.to_be_bytes());
    prologue.extend_from_slice(&[0x1e, 0x04, 0xf1, 0x02, 0x1e, 0x04, 0xf1, 0x02]);
    let mut out = vec![handshake(&prologue, &bytes32(1), &bytes32(2))?];
    for seed in 3..6u8 {
        let mut p = prologue.clone();
        p[0] = seed;
        out.push(handshake(&p, &bytes32(seed), &bytes32(seed + 100))?);
    }
    Ok(out)
}

/// Offset of the keystream known answer: inside block 2, running into 3.
pub const KS_OFFSET: u64 = 150;
