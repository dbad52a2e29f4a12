//! The command line on real captures: a two-path MPTCP exchange between
//! network namespaces (made by make-captures.sh: 20000 bytes of English
//! from client to server, a 2129-byte HTTP-like answer back; path 1 at
//! 64 kbit/s, path 2 at 1 Mbit/s), and damaged files.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mptcp-eavesdrop"))
        .args(args)
        .output()
        .expect("run mptcp-eavesdrop")
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = run(&all);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The stream of `direction` in connection 1.
fn direction<'a>(report: &'a Value, direction: &str) -> &'a Value {
    report["connections"][0]["directions"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["direction"] == direction))
        .unwrap_or_else(|| panic!("no {direction} stream in {report}"))
}

#[test]
fn path1_capture_maps_every_byte_to_its_data_sequence_number() {
    let r = json(&[
        "analyze",
        s(&data("two-path-p1.pcap")),
        "--truth",
        s(&data("request.txt")),
    ]);
    assert_eq!(r["keys_seen"], true);
    assert_eq!(r["primary"]["direction"], "client-to-server");
    let d = direction(&r, "client-to-server");
    // Start from the key (IDSN + 1), end from the DATA_FIN: the exact
    // length of what the client sent.
    assert_eq!(d["stream_bytes"], 20000);
    assert_eq!(d["start_exact"], true);
    assert_eq!(d["end_exact"], true);
    // The host kernel does not scramble: every captured byte, placed by
    // its DSN, equals the plaintext at that offset.
    let truth = &d["truth"];
    assert_eq!(truth["captured_plain_fraction"], 1.0);
    assert_eq!(d["looks_plain"], true);
    assert_eq!(d["unmapped_bytes"], 0);
    // Path 1 is the slow one: it carried about a third, in several runs.
    let coverage = f(&r, "coverage_fraction");
    assert!((0.2..0.6).contains(&coverage), "coverage {coverage}");
    assert!(d["runs"].as_u64() > Some(1));
    assert!(f(&r, "window_fraction") <= coverage);
    assert!(r["longest_run"].as_u64() < Some(20000));
}

#[test]
fn path2_capture_groups_the_join_by_token_and_estimates_the_start() {
    let r = json(&[
        "analyze",
        s(&data("two-path-p2.pcap")),
        "--direction",
        "c2s",
    ]);
    let conn = &r["connections"][0];
    assert_eq!(conn["grouping"], "token");
    assert_eq!(conn["keys_seen"], false);
    assert_eq!(conn["subflows"][0]["kind"], "join");
    let d = direction(&r, "client-to-server");
    assert_eq!(d["start_exact"], false);
    assert!(f(&r, "coverage_fraction") > 0.5);
}

#[test]
fn all_paths_capture_in_linux_cooked_v2_sees_both_subflows() {
    let r = json(&["analyze", s(&data("two-path-any-sll2.pcap"))]);
    let conn = &r["connections"][0];
    assert_eq!(conn["subflows"].as_array().map(Vec::len), Some(2));
    assert_eq!(conn["grouping"], "keys");
    assert_eq!(f(&r, "coverage_fraction"), 1.0);
    assert_eq!(f(&r, "window_fraction"), 1.0);
    let back = direction(&r, "server-to-client");
    assert_eq!(back["stream_bytes"], 2129);
}

/// Rewrites an Ethernet capture as `link` (Linux cooked v1) or pcapng.
fn convert(src: &Path, dst: &Path, pcapng: bool) {
    let mut reader = PcapReader::new(File::open(src).expect("open")).expect("pcap");
    let out = File::create(dst).expect("create");
    let mut frames = Vec::new();
    while let Some(p) = reader.next_packet() {
        let p = p.expect("packet");
        frames.push((p.timestamp, p.orig_len, p.data.into_owned()));
    }
    if pcapng {
        let mut w = PcapNgWriter::new(out).expect("pcapng writer");
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0,
            options: vec![],
        })
        .expect("idb");
        for (ts, len, d) in frames {
            w.write_pcapng_block(EnhancedPacketBlock {
                interface_id: 0,
                timestamp: ts,
                original_len: len,
                data: Cow::Owned(d),
                options: vec![],
            })
            .expect("epb");
        }
    } else {
        let header = pcap_file::pcap::PcapHeader {
            datalink: DataLink::LINUX_SLL,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(out, header).expect("pcap writer");
        for (ts, len, d) in frames {
            // sll_header: packet type, ARPHRD_ETHER, address length,
            // address (8), protocol; then the IP packet.
            let mut sll = vec![0, 4, 0, 1, 0, 6];
            sll.extend_from_slice(&d[6..12]);
            sll.extend_from_slice(&[0, 0]);
            sll.extend_from_slice(&d[12..14]);
            sll.extend_from_slice(&d[14..]);
            w.write_packet(&PcapPacket::new(ts, len + 2, &sll))
                .expect("write");
        }
    }
}

#[test]
fn linux_cooked_v1_and_pcapng_read_like_ethernet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sll = dir.path().join("p1-sll.pcap");
    let ng = dir.path().join("p1.pcapng");
    convert(&data("two-path-p1.pcap"), &sll, false);
    convert(&data("two-path-p1.pcap"), &ng, true);
    let want = json(&["analyze", s(&data("two-path-p1.pcap"))]);
    for file in [&sll, &ng] {
        let got = json(&["analyze", s(file)]);
        for key in [
            "coverage_fraction",
            "longest_run",
            "window_fraction",
            "keys_seen",
        ] {
            assert_eq!(got[key], want[key], "{key} of {}", file.display());
        }
    }
}

#[test]
fn scrambled_path2_alone_gives_away_most_of_its_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scrambled = dir.path().join("p2-scrambled.pcap");
    let out = run(&[
        "scramble",
        s(&data("two-path-any-sll2.pcap")),
        s(&scrambled),
        "--truth",
        s(&data("request.txt")),
        "--only-host",
        "10.99.2.1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("(0 differed from --truth before"));

    let r = json(&[
        "analyze",
        s(&scrambled),
        "--truth",
        s(&data("request.txt")),
        "--direction",
        "c2s",
    ]);
    assert_eq!(r["keys_seen"], false);
    let d = direction(&r, "client-to-server");
    let truth = &d["truth"];
    assert!(f(truth, "captured_plain_fraction") < 0.1, "{truth}");
    assert_eq!(d["looks_plain"], false);
    assert_eq!(f(&r, "recovered_key_fraction"), 0.0);
    let chain = f(&r, "recovered_chain_fraction");
    let coverage = f(&r, "coverage_fraction");
    assert!(
        chain > 0.9 * coverage,
        "recovered {chain} of a {coverage} coverage"
    );
    assert!(f(truth, "chain_accuracy") > 0.95, "{truth}");

    // With nothing to tell text from noise, the same run yields nothing.
    let r = json(&[
        "analyze",
        s(&scrambled),
        "--truth",
        s(&data("request.txt")),
        "--direction",
        "c2s",
        "--model",
        "uniform",
    ]);
    assert!(f(&r, "recovered_fraction") < 0.05, "{r}");
}

#[test]
fn scrambled_path1_decodes_the_head_with_the_handshake_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scrambled = dir.path().join("p1-scrambled.pcap");
    let out = run(&[
        "scramble",
        s(&data("two-path-p1.pcap")),
        s(&scrambled),
        "--truth",
        s(&data("request.txt")),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = json(&[
        "analyze",
        s(&scrambled),
        "--truth",
        s(&data("request.txt")),
        "--model",
        s(&data("response.txt")),
    ]);
    assert_eq!(r["keys_seen"], true);
    let d = direction(&r, "client-to-server");
    assert!(d["key_decoded_bytes"].as_u64() > Some(0));
    let truth = &d["truth"];
    assert_eq!(
        truth["key_exact"], truth["key_decoded"],
        "key decoding is exact"
    );
    assert!(
        f(&r, "recovered_fraction") > 0.9 * f(&r, "coverage_fraction"),
        "{r}"
    );
}

#[test]
fn hexdump_shows_the_first_data_segments() {
    let out = run(&[
        "hexdump",
        s(&data("two-path-p1.pcap")),
        "--first-data",
        "--count",
        "2",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("Frame ")).collect();
    assert_eq!(headers.len(), 2, "{text}");
    assert!(text.lines().any(|l| l.starts_with("0000  ")));
    // The first data of the plain capture is the start of the request.
    let request = std::fs::read(data("request.txt")).expect("request");
    let first_ascii: String = request[..8].iter().map(|&b| char::from(b)).collect();
    assert!(text.contains(first_ascii.trim()), "{text}");
}

fn assert_clear_failure(args: &[&str], wanted: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "{args:?}: {:?}",
        out.status
    );
    assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn damaged_files_fail_cleanly() {
    assert_clear_failure(
        &["analyze", s(&data("truncated.pcap"))],
        "ends in the middle of a packet",
    );
    assert_clear_failure(
        &["analyze", s(&data("garbage.pcap"))],
        "not a pcap or pcapng file",
    );
    assert_clear_failure(
        &["hexdump", s(&data("garbage.pcap")), "--first-data"],
        "not a pcap",
    );
    assert_clear_failure(&["analyze", s(&data("no-such-file.pcap"))], "cannot read");
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").expect("write");
    assert_clear_failure(&["analyze", s(&empty)], "empty file");
    assert_clear_failure(
        &[
            "analyze",
            s(&data("two-path-p1.pcap")),
            "--model",
            "no-such-model",
        ],
        "--model",
    );
    assert_clear_failure(&["analyze"], "CAPTURE");
}
