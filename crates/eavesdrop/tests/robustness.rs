//! No input makes the analysis panic: every prefix of a real capture and
//! thousands of randomly damaged copies go through parsing, stream
//! building, the attack and both reports.

use std::path::Path;

use mptcp_eavesdrop::model::ByteModel;
use mptcp_eavesdrop::{capture, hexdump, report, streams};

fn analyse(bytes: &[u8]) {
    let Ok(cap) = capture::parse(bytes) else {
        return;
    };
    let analysis = streams::analyze(&cap);
    let model = ByteModel::english();
    let truth = vec![b'e'; 3000];
    let opts = report::Options {
        connection: None,
        side: None,
        model: &model,
        truth: Some(("truth", &truth)),
        baseline: Some(("baseline", &truth)),
        mode: report::Mode::Paper,
        keylog: &[],
    };
    let r = report::build(
        "fuzz",
        cap.frames.len(),
        cap.segments.len(),
        &analysis,
        &opts,
    );
    let _ = report::human(&r);
    let _ = hexdump::first_data(&cap, 3, false);
}

fn sample(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(path).expect("test capture")
}

#[test]
fn every_prefix_of_a_capture_is_handled() {
    let bytes = sample("two-path-p1.pcap");
    for len in (0..bytes.len()).step_by(23) {
        analyse(&bytes[..len]);
    }
}

#[test]
fn damaged_captures_are_handled() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for name in [
        "two-path-p1.pcap",
        "two-path-p2.pcap",
        "two-path-any-sll2.pcap",
    ] {
        let original = sample(name);
        for _ in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            analyse(&bytes);
        }
    }
}

#[test]
fn absurd_record_lengths_are_refused() {
    let original = sample("two-path-p1.pcap");
    // The first record header follows the 24-byte file header: ts_sec,
    // ts_usec, incl_len, orig_len (little-endian here).
    for (at, value) in [
        (32usize, u32::MAX),
        (32, 0x7fff_ffff),
        (36, u32::MAX),
        (16, u32::MAX),
    ] {
        let mut bytes = original.clone();
        bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        analyse(&bytes);
    }
}
