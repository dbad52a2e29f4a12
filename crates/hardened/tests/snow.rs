//! `src/hardened.rs` against independent implementations: `snow` for the
//! handshake, `hmac` for the key schedule, `chacha20` for the keystream,
//! RFC 7748 and RFC 8439 for the primitives; and the checked-in known
//! answers against what the generator writes.

#[path = "../src/oracle.rs"]
#[allow(dead_code)]
mod oracle;

use hardened::*;
use proptest::prelude::*;

const C: RustCrypto = RustCrypto;

fn public(e: &[u8; 32]) -> [u8; 32] {
    C.x25519(e, &BASE_POINT)
        .expect("a clamped scalar times the base point is not zero")
}

fn same_keys(a: &Keys, b: &Keys) -> bool {
    (
        a.handshake_hash,
        a.confirm,
        a.stream_c2s,
        a.stream_s2c,
        a.join_client,
        a.join_server,
    ) == (
        b.handshake_hash,
        b.confirm,
        b.stream_c2s,
        b.stream_s2c,
        b.join_client,
        b.join_server,
    )
}

/// Both ends of the project's handshake; asserts they agree.
fn ours(
    prologue: &[u8; PROLOGUE_LEN],
    ce: &[u8; 32],
    se: &[u8; 32],
) -> ([u8; MSG1_LEN], [u8; MSG2_LEN], Keys) {
    let (init, msg1) = Initiator::start(&C, prologue, ce, &public(ce));
    let (msg2, server) = respond(&C, prologue, se, &public(se), &msg1).expect("server side");
    let client = init.finish(&C, &msg2).expect("client side");
    assert!(
        same_keys(&client, &server),
        "the two ends derived different keys"
    );
    assert!(server.confirm_matches(&C, &client.confirm));
    (msg1, msg2, client)
}

fn check_against_snow(prologue: [u8; PROLOGUE_LEN], ce: [u8; 32], se: [u8; 32]) {
    let o = oracle::handshake(&prologue, &ce, &se).expect("snow");
    let (msg1, msg2, k) = ours(&prologue, &ce, &se);
    assert_eq!(hex::encode(msg1), hex::encode(&o.msg1), "message 1");
    assert_eq!(hex::encode(msg2), hex::encode(&o.msg2), "message 2");
    assert_eq!(
        hex::encode(k.handshake_hash),
        hex::encode(&o.handshake_hash),
        "handshake hash"
    );
    assert_eq!(
        hex::encode(k.confirm),
        hex::encode(&o.confirm),
        "confirmation"
    );
    assert_eq!(k.stream_c2s, o.stream_c2s, "client-to-server stream key");
    assert_eq!(k.stream_s2c, o.stream_s2c, "server-to-client stream key");
    assert_eq!(
        (k.join_client, k.join_server),
        (o.join_client, o.join_server),
        "join keys"
    );
}

#[test]
fn fixed_cases_match_snow() {
    for c in oracle::cases().expect("snow") {
        let p: [u8; PROLOGUE_LEN] = c.prologue.clone().try_into().expect("24-byte prologue");
        check_against_snow(p, c.client_e, c.server_e);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_handshakes_match_snow(p in any::<[u8; PROLOGUE_LEN]>(), ce in any::<[u8; 32]>(), se in any::<[u8; 32]>()) {
        check_against_snow(p, ce, se);
    }

    /// However the stream is cut, each byte gets the keystream byte of its
    /// offset.
    #[test]
    fn keystream_is_indexed_by_offset(key in any::<[u8; 32]>(), start in 0u64..100_000, cuts in proptest::collection::vec(0usize..300, 1..8)) {
        let total: usize = cuts.iter().sum();
        let want = oracle::keystream(&key, start, total);
        let mut got = vec![0u8; total];
        let mut off = 0usize;
        for n in cuts {
            Keystream::new(&C, &key).apply(start + off as u64, &mut got[off..off + n]);
            off += n;
        }
        prop_assert_eq!(got, want);
    }
}

/// At 128 GiB (2^31 blocks) the nonce moves on to 1 and the counter
/// starts again.
#[test]
fn keystream_segments_at_128_gib() {
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    let key = [7u8; 32];
    let edge = (1u64 << 31) * 64;
    let mut got = vec![0u8; 200];
    Keystream::new(&C, &key).apply(edge - 100, &mut got);
    let mut want = vec![0u8; 200];
    let mut c0 = chacha20::ChaCha20::new(&key.into(), &[0u8; 12].into());
    c0.seek(edge - 100);
    c0.apply_keystream(&mut want[..100]);
    let mut nonce1 = [0u8; 12];
    nonce1[4] = 1;
    let mut c1 = chacha20::ChaCha20::new(&key.into(), &nonce1.into());
    c1.apply_keystream(&mut want[100..]);
    assert_eq!(got, want);
}

#[test]
fn tampered_message2_is_refused() {
    let p = [3u8; PROLOGUE_LEN];
    let (ce, se) = ([1u8; 32], [2u8; 32]);
    let (_, msg1) = Initiator::start(&C, &p, &ce, &public(&ce));
    let (msg2, _) = respond(&C, &p, &se, &public(&se), &msg1).expect("server side");
    for i in [0, 31, 32, 47] {
        let (init, _) = Initiator::start(&C, &p, &ce, &public(&ce));
        let mut bad = msg2;
        bad[i] ^= 1;
        assert!(init.finish(&C, &bad).is_err(), "flipped byte {i} accepted");
    }
}

/// A man in the middle who swaps in his own ephemeral keys makes each end
/// derive keys with him: message 2 verifies (he made it), but the two
/// ends' keys differ, so their MP_JOIN keys differ and a join over
/// another path fails.
#[test]
fn man_in_the_middle_gives_each_end_other_keys() {
    let p = [9u8; PROLOGUE_LEN];
    let (ce, se, me) = ([1u8; 32], [2u8; 32], [5u8; 32]);
    let (init, _msg1) = Initiator::start(&C, &p, &ce, &public(&ce));
    let (m_init, m_msg1) = Initiator::start(&C, &p, &me, &public(&me));
    let (msg2, server) =
        respond(&C, &p, &se, &public(&se), &m_msg1).expect("server with the attacker");
    let _ = m_init.finish(&C, &msg2).expect("attacker with the server");
    let (m_msg2, _) = respond(&C, &p, &me, &public(&me), &_msg1).expect("attacker with the client");
    let client = init.finish(&C, &m_msg2).expect("client with the attacker");
    assert!(client.join_client != server.join_client && client.join_server != server.join_server);
    assert!(!server.confirm_matches(&C, &client.confirm));
}

#[test]
fn other_prologue_is_refused() {
    let (ce, se) = ([1u8; 32], [2u8; 32]);
    let (init, msg1) = Initiator::start(&C, &[1u8; PROLOGUE_LEN], &ce, &public(&ce));
    let (msg2, _) =
        respond(&C, &[2u8; PROLOGUE_LEN], &se, &public(&se), &msg1).expect("server side");
    assert_eq!(init.finish(&C, &msg2).err(), Some(Error::BadMessage2));
}

#[test]
fn low_order_point_is_refused() {
    let se = [2u8; 32];
    let r = respond(&C, &[0u8; PROLOGUE_LEN], &se, &public(&se), &[0u8; 32]);
    assert_eq!(r.err(), Some(Error::LowOrderPoint));
}

#[test]
fn primitives_match_the_rfcs() {
    let h = |s: &str| hex::decode(s).expect("hex");
    let x: [u8; 32] = h(oracle::RFC7748[0]).try_into().expect("32");
    let u: [u8; 32] = h(oracle::RFC7748[1]).try_into().expect("32");
    assert_eq!(
        C.x25519(&x, &u).map(hex::encode),
        Some(oracle::RFC7748[2].to_string())
    );
    let key: [u8; 32] = h(oracle::RFC8439_KEY).try_into().expect("32");
    let nonce: [u8; 12] = h(oracle::RFC8439_NONCE).try_into().expect("12");
    let mut buf = oracle::RFC8439_PLAIN[..64].to_vec();
    C.chacha20_xor(&key, &nonce, oracle::RFC8439_COUNTER, &mut buf);
    assert_eq!(hex::encode(buf), oracle::RFC8439_CIPHER64);
}

fn generated(what: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hardened-vectors"))
        .arg(what)
        .output()
        .expect("run hardened-vectors");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn repo_file(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The module's known answers are what the generator writes, and the
/// file's own code passes them with RustCrypto's primitives.
#[test]
fn module_known_answers_are_current() {
    assert!(
        repo_file("src/hardened_kat.rs") == generated("kat"),
        "src/hardened_kat.rs is stale: cargo run -p hardened --bin hardened-vectors -- kat > src/hardened_kat.rs"
    );
    assert!(
        repo_file("tests/vectors/hardened-vectors.json") == generated("json"),
        "tests/vectors/hardened-vectors.json is stale: cargo run -p hardened --bin hardened-vectors -- json > tests/vectors/hardened-vectors.json"
    );
}

/// `src/hardened_kat.rs` names the shared file as `crate::hardened`, as
/// the module does.
mod hardened {
    pub use ::hardened::*;
}

#[path = "../../../src/hardened_kat.rs"]
#[rustfmt::skip]
mod hardened_kat;

#[test]
fn module_self_test_passes_in_userspace() {
    assert_eq!(self_test(&C, &hardened_kat::KAT), Ok(()));
}
