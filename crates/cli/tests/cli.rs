//! The `mptcp-scramble` binary against the test vectors of
//! `tests/vectors/scramble-vectors.json` and `scramble_core::seed_with`,
//! and its handling of bad keys and a closed stdout.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::thread;

use scramble_core::{seed_with, State};
use sha2::{Digest, Sha256};

const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/scramble-vectors.json"
);

struct Vector {
    name: String,
    sender_key: String,
    receiver_key: String,
    seed: String,
    plaintext: Vec<u8>,
    scrambled: Vec<u8>,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("vector file is JSON");
    let cases = json["cases"].as_array().expect("vector file has cases");
    assert!(!cases.is_empty(), "vector file has no cases");
    cases
        .iter()
        .map(|case| {
            let field = |key: &str| case[key].as_str().expect("string field").to_owned();
            Vector {
                name: field("name"),
                sender_key: field("sender_key"),
                receiver_key: field("receiver_key"),
                seed: field("seed_hmac"),
                plaintext: hex::decode(field("plaintext")).expect("hex plaintext"),
                scrambled: hex::decode(field("scrambled")).expect("hex scrambled"),
            }
        })
        .collect()
}

fn vector(name: &str) -> Vector {
    vectors()
        .into_iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector named {name}"))
}

/// Runs the binary with `args`, `input` on stdin.
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mptcp-scramble"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mptcp-scramble starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    // A separate thread, so that a large input cannot deadlock against a
    // full stdout pipe.  The child may exit without reading stdin.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("mptcp-scramble runs");
    writer.join().expect("stdin writer");
    output
}

fn key_args<'a>(command: &'a str, sender: &'a str, receiver: &'a str) -> [&'a str; 5] {
    [command, "--sender-key", sender, "--receiver-key", receiver]
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "{what}: stderr not empty");
}

#[test]
fn seed_of_every_vector() {
    for v in vectors() {
        let output = run(&key_args("seed", &v.sender_key, &v.receiver_key), b"");
        assert_success(&output, &v.name);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!("{}\n", v.seed),
            "vector {}",
            v.name
        );
    }
}

#[test]
fn seed_matches_seed_with_over_sha2() {
    let keys = [
        (0u64, 0u64),
        (1, u64::MAX),
        (0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff),
        (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210),
        (0xdead_beef_cafe_babe, 0x0bad_f00d_1234_5678),
    ];
    for (sender, receiver) in keys {
        let (s, r) = (format!("{sender:016x}"), format!("{receiver:016x}"));
        let output = run(&key_args("seed", &s, &r), b"");
        assert_success(&output, "seed");
        let want = seed_with(|data| Sha256::digest(data).into(), sender, receiver);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim_end(),
            hex::encode(want),
            "keys {s} {r}"
        );
    }
}

#[test]
fn keys_take_optional_0x_prefix_and_any_case() {
    let v = vector("digits");
    let want = format!("{}\n", v.seed);
    for (sender, receiver) in [
        ("0x0123456789abcdef", "0xfedcba9876543210"),
        ("0X0123456789ABCDEF", "FEDCBA9876543210"),
        ("0123456789AbCdEf", "0xFeDcBa9876543210"),
    ] {
        let output = run(&key_args("seed", sender, receiver), b"");
        assert_success(&output, sender);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            want,
            "{sender} {receiver}"
        );
    }
}

#[test]
fn scramble_digits_vector() {
    let v = vector("digits");
    let output = run(
        &key_args("scramble", &v.sender_key, &v.receiver_key),
        &v.plaintext,
    );
    assert_success(&output, "scramble");
    assert_eq!(hex::encode(&output.stdout), hex::encode(&v.scrambled));
}

#[test]
fn scramble_and_descramble_every_vector() {
    for v in vectors() {
        let output = run(
            &key_args("scramble", &v.sender_key, &v.receiver_key),
            &v.plaintext,
        );
        assert_success(&output, &v.name);
        assert_eq!(output.stdout, v.scrambled, "scramble, vector {}", v.name);

        let output = run(
            &key_args("descramble", &v.sender_key, &v.receiver_key),
            &v.scrambled,
        );
        assert_success(&output, &v.name);
        assert_eq!(output.stdout, v.plaintext, "descramble, vector {}", v.name);
    }
}

#[test]
fn round_trip_of_a_stream_longer_than_the_buffer() {
    let (sender, receiver) = ("1122334455667788", "99aabbccddeeff00");
    let plaintext: Vec<u8> = (0..(3 << 20) + 12_345u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let scrambled = run(&key_args("scramble", sender, receiver), &plaintext);
    assert_success(&scrambled, "scramble");
    let mut want = plaintext.clone();
    let seed = seed_with(
        |data| Sha256::digest(data).into(),
        0x1122_3344_5566_7788,
        0x99aa_bbcc_ddee_ff00,
    );
    State::from_seed(&seed).scramble_ref(&mut want);
    assert!(
        scrambled.stdout == want,
        "scrambled stream differs from the reference"
    );

    let descrambled = run(&key_args("descramble", sender, receiver), &scrambled.stdout);
    assert_success(&descrambled, "descramble");
    assert!(
        descrambled.stdout == plaintext,
        "round trip changed the stream"
    );
}

#[test]
fn bad_keys_exit_2_with_one_line() {
    let good = "0123456789abcdef";
    let bad_keys = [
        ("too short", "0123456789abcde"),
        ("too long", "0123456789abcdef0"),
        ("non-hex", "0123456789abcdeg"),
        ("empty", ""),
        ("prefix only", "0x"),
        ("prefix and too short", "0x0123456789abcde"),
        ("sign", "+123456789abcdef"),
        ("negative", "-123456789abcdef"),
        ("spaces", " 0123456789abcdef"),
        ("newline", "0123456789abcdef\n"),
        ("non-ASCII", "0123456789abcdé"),
    ];
    for command in ["seed", "scramble", "descramble"] {
        for (what, key) in bad_keys {
            for (sender, receiver) in [(key, good), (good, key)] {
                let output = run(&key_args(command, sender, receiver), b"data");
                let stderr = String::from_utf8_lossy(&output.stderr);
                let case = format!("{command}, {what} key {key:?}");
                assert_eq!(output.status.code(), Some(2), "{case}: stderr {stderr}");
                assert!(output.stdout.is_empty(), "{case}: wrote to stdout");
                assert_eq!(stderr.lines().count(), 1, "{case}: stderr {stderr:?}");
                assert!(stderr.ends_with('\n'), "{case}: stderr {stderr:?}");
                assert!(stderr.contains("-key"), "{case}: names no key: {stderr:?}");
                assert!(!stderr.contains("panicked"), "{case}: {stderr}");
            }
        }
    }
}

#[test]
fn non_utf8_key_exits_2_with_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let output = Command::new(env!("CARGO_BIN_EXE_mptcp-scramble"))
        .args(["seed", "--receiver-key", "0123456789abcdef", "--sender-key"])
        .arg(std::ffi::OsStr::from_bytes(b"0123456789abcde\xff"))
        .output()
        .expect("mptcp-scramble runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr {stderr}");
    assert_eq!(stderr.lines().count(), 1, "stderr {stderr:?}");
}

#[test]
fn missing_key_is_a_usage_error() {
    let output = run(&["scramble", "--sender-key", "0123456789abcdef"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[test]
fn closed_stdout_exits_quietly_non_zero() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mptcp-scramble"))
        .args(key_args("scramble", "0123456789abcdef", "fedcba9876543210"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mptcp-scramble starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // Feeds stdin until the child is gone.
    let writer = thread::spawn(move || {
        let block = vec![0x55u8; 1 << 16];
        for _ in 0..4096 {
            if stdin.write_all(&block).is_err() {
                break;
            }
        }
    });
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut first = vec![0u8; 1000];
    stdout.read_exact(&mut first).expect("some output arrives");
    drop(stdout);

    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("stderr is readable");
    let status = child.wait().expect("mptcp-scramble exits");
    writer.join().expect("stdin writer");
    assert_eq!(status.code(), Some(141), "exit status {status:?}");
    assert_eq!(stderr, "", "stderr");
}
