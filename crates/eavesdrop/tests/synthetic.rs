//! Hand-built captures for the cases a short real capture may not show:
//! IPv6, 4-byte DSNs, one mapping over several segments, the same mapping
//! repeated on every segment (TSO), retransmissions, a DATA_FIN, data on
//! the MP_CAPABLE ACK, and a capture that starts after the handshakes.

use std::net::Ipv6Addr;

use etherparse::PacketBuilder;
use mptcp_eavesdrop::attack::{self, How};
use mptcp_eavesdrop::model::ByteModel;
use mptcp_eavesdrop::streams::{self, Grouping};
use mptcp_eavesdrop::{capture, mptcp};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use scramble_core::State;

const CLIENT_KEY: u64 = 0x0123_4567_89ab_cdef;
const SERVER_KEY: u64 = 0xfedc_ba98_7654_3210;

struct Seg<'a> {
    from_client: bool,
    seq: u32,
    syn: bool,
    ack: bool,
    opts: Vec<u8>,
    payload: &'a [u8],
}

fn seg(from_client: bool, seq: u32, opts: Vec<u8>, payload: &[u8]) -> Seg<'_> {
    Seg {
        from_client,
        seq,
        syn: false,
        ack: true,
        opts,
        payload,
    }
}

/// The client's MP_CAPABLE SYN at subflow sequence `isn` (RFC 8684
/// section 3.1).
fn syn(isn: u32) -> Seg<'static> {
    Seg {
        from_client: true,
        seq: isn,
        syn: true,
        ack: false,
        opts: mp_capable(&[], None),
        payload: &[],
    }
}

/// A subflow's MP_CAPABLE three-way handshake (RFC 8684 section 3.1): the
/// SYN at `isn`, the server's SYN-ACK with its key at `server_isn`, and the
/// third ACK with both keys, carrying `data` (the first bytes of the
/// stream, its data-level length in the option) when it is not empty.
fn handshake(isn: u32, server_isn: u32, client_key: u64, data: &[u8]) -> Vec<Seg<'_>> {
    let data_len = (!data.is_empty()).then(|| u16::try_from(data.len()).expect("one segment"));
    vec![
        syn(isn),
        Seg {
            from_client: false,
            seq: server_isn,
            syn: true,
            ack: true,
            opts: mp_capable(&[SERVER_KEY], None),
            payload: &[],
        },
        seg(
            true,
            isn + 1,
            mp_capable(&[client_key, SERVER_KEY], data_len),
            data,
        ),
    ]
}

/// A pcap of `segs` on the path between `client` and `server` (IPv6).
fn pcap(client: (Ipv6Addr, u16), server: (Ipv6Addr, u16), segs: &[Seg]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = PcapWriter::with_header(&mut out, PcapHeader::default()).expect("writer");
        for (i, s) in segs.iter().enumerate() {
            let (src, dst) = if s.from_client {
                (client, server)
            } else {
                (server, client)
            };
            let mut opts = s.opts.clone();
            while opts.len() % 4 != 0 {
                opts.insert(0, 1);
            }
            let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv6(src.0.octets(), dst.0.octets(), 64)
                .tcp(src.1, dst.1, s.seq, 65535);
            if s.syn {
                b = b.syn();
            }
            if s.ack {
                b = b.ack(1);
            }
            let b = b.options_raw(&opts).expect("options fit");
            let mut frame = Vec::new();
            b.write(&mut frame, s.payload).expect("frame");
            let ts = std::time::Duration::from_millis(i as u64);
            w.write_packet(&PcapPacket::new(ts, frame.len() as u32, &frame))
                .expect("packet");
        }
    }
    out
}

fn dss(ack: Option<u64>, map: Option<(u64, bool, u32, u16)>, fin: bool) -> Vec<u8> {
    let mut o = vec![30, 0, 0x20, 0];
    if let Some(a) = ack {
        o[3] |= 0x03;
        o.extend_from_slice(&a.to_be_bytes());
    }
    if let Some((dsn, dsn64, ssn, len)) = map {
        o[3] |= 0x04;
        if dsn64 {
            o[3] |= 0x08;
            o.extend_from_slice(&dsn.to_be_bytes());
        } else {
            o.extend_from_slice(&(dsn as u32).to_be_bytes());
        }
        o.extend_from_slice(&ssn.to_be_bytes());
        o.extend_from_slice(&len.to_be_bytes());
    }
    if fin {
        o[3] |= 0x10;
    }
    o[1] = o.len() as u8;
    o
}

fn mp_capable(keys: &[u64], data_len: Option<u16>) -> Vec<u8> {
    let mut o = vec![30, 0, 0x01, 0x81];
    for k in keys {
        o.extend_from_slice(&k.to_be_bytes());
    }
    if let Some(l) = data_len {
        o.extend_from_slice(&l.to_be_bytes());
    }
    o[1] = o.len() as u8;
    o
}

fn text(n: usize) -> Vec<u8> {
    b"Now is the winter of our discontent made glorious summer by this sun of York; \
      and all the clouds that lour'd upon our house in the deep bosom of the ocean buried. "
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

fn scramble(plain: &[u8]) -> Vec<u8> {
    let mut c = plain.to_vec();
    State::from_seed(&mptcp::seed(CLIENT_KEY, SERVER_KEY)).scramble(&mut c);
    c
}

const C1: (Ipv6Addr, u16) = (Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1), 40000);
const C2: (Ipv6Addr, u16) = (Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1), 40001);
const S: (Ipv6Addr, u16) = (Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2), 80);

#[test]
fn initial_subflow_with_every_kind_of_mapping() {
    let plain = text(5000);
    let c = scramble(&plain);
    let first = mptcp::idsn(CLIENT_KEY).wrapping_add(1);
    let server_first = mptcp::idsn(SERVER_KEY).wrapping_add(1);
    let isn = 1000u32;
    let mut segs = handshake(isn, 7000, CLIENT_KEY, &[]);
    segs.extend([
        // One mapping of 1500 bytes, carried on the first of three segments.
        seg(
            true,
            isn + 1,
            dss(Some(server_first), Some((first, true, 1, 1500)), false),
            &c[0..500],
        ),
        seg(
            true,
            isn + 501,
            dss(Some(server_first), None, false),
            &c[500..1000],
        ),
        seg(
            true,
            isn + 1001,
            dss(Some(server_first), None, false),
            &c[1000..1500],
        ),
        // A retransmission of the middle segment.
        seg(
            true,
            isn + 501,
            dss(Some(server_first), None, false),
            &c[500..1000],
        ),
        seg(false, 7001, dss(Some(first + 1500), None, false), &[]),
        // 4-byte DSNs, the mapping repeated on both segments (TSO).
        seg(
            true,
            isn + 1501,
            dss(None, Some((first + 3000, false, 1501, 600)), false),
            &c[3000..3300],
        ),
        seg(
            true,
            isn + 1801,
            dss(None, Some((first + 3000, false, 1501, 600)), false),
            &c[3300..3600],
        ),
        // DATA_FIN alone: length 1, subflow sequence 0.
        seg(
            true,
            isn + 2101,
            dss(None, Some((first + 5000, true, 0, 1)), true),
            &[],
        ),
        seg(false, 7001, dss(Some(first + 5001), None, false), &[]),
    ]);
    let cap = capture::parse(&pcap(C1, S, &segs)).expect("parse");
    let analysis = streams::analyze(&cap);
    assert_eq!(analysis.connections.len(), 1);
    let conn = &analysis.connections[0];
    assert_eq!(conn.grouping, Grouping::Keys);
    assert_eq!(conn.keys, [Some(CLIENT_KEY), Some(SERVER_KEY)]);
    let stream = &conn.streams[0];
    assert_eq!(stream.stream_len(), 5000);
    assert_eq!(stream.data_fin, Some(first + 5000));
    assert_eq!(stream.inserted.duplicate, 500);
    assert_eq!(stream.unmapped, 0);
    let runs = stream.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!((runs[0].0, runs[0].1), (0, &c[0..1500]));
    assert_eq!((runs[1].0, runs[1].1), (3000, &c[3000..3600]));

    let seed = conn.seed(0).expect("keys");
    let rec = attack::recover(
        5000,
        &runs,
        attack::Head::Seed(&seed),
        &ByteModel::english(),
    );
    assert_eq!(&rec.plain[..1500], &plain[..1500]);
    assert!(rec.how[..1500].iter().all(|&h| h == How::Key));
    let right = (2936..3600).filter(|&t| rec.plain[t] == plain[t]).count();
    assert!(right > 600, "{right} of 664 recovered by the chain attack");
}

#[test]
fn data_on_the_mp_capable_ack_starts_at_idsn_plus_one() {
    let plain = text(300);
    let isn = 77u32;
    let segs = handshake(isn, 9, CLIENT_KEY, &plain);
    let cap = capture::parse(&pcap(C1, S, &segs)).expect("parse");
    let analysis = streams::analyze(&cap);
    let stream = &analysis.connections[0].streams[0];
    assert_eq!(
        stream.data.first(),
        Some(mptcp::idsn(CLIENT_KEY).wrapping_add(1))
    );
    assert_eq!(stream.runs(), vec![(0, &plain[..])]);
}

#[test]
fn subflows_without_handshake_are_grouped_by_data_sequence() {
    let plain = text(4000);
    let dsn0 = 0x5555_0000_0000_0000u64;
    let isn = 0xffff_ff00u32; // the subflow sequence wraps
                              // The capture starts in the middle of a TSO mapping of 1000 bytes.
    let map = |start: usize, len: u16| Some((dsn0 + start as u64, true, 1 + start as u32, len));
    let rel = |o: usize| isn.wrapping_add(1 + o as u32);
    let segs = vec![
        seg(
            true,
            rel(500),
            dss(None, map(0, 1000), false),
            &plain[500..1000],
        ),
        seg(
            true,
            rel(1000),
            dss(None, map(1000, 1000), false),
            &plain[1000..1500],
        ),
        seg(
            true,
            rel(1500),
            dss(None, map(1000, 1000), false),
            &plain[1500..2000],
        ),
        seg(false, 300, dss(Some(dsn0 + 2000), None, false), &[]),
    ];
    let later = vec![
        seg(
            true,
            9_000,
            dss(None, Some((dsn0 + 3000, true, 51, 1000)), false),
            &plain[3000..4000],
        ),
        seg(false, 600, dss(Some(dsn0 + 4000), None, false), &[]),
    ];
    // The second path's subflow, also without its handshake, follows in
    // the same file (its records after the 24-byte file header).
    let mut bytes = pcap(C1, S, &segs);
    bytes.extend_from_slice(&pcap(C2, S, &later)[24..]);

    let cap = capture::parse(&bytes).expect("parse");
    let analysis = streams::analyze(&cap);
    assert_eq!(analysis.connections.len(), 1, "{:?}", analysis.connections);
    let conn = &analysis.connections[0];
    assert_eq!(conn.grouping, Grouping::DsnContinuity);
    assert_eq!(conn.subflows.len(), 2);
    let stream = &conn.streams[0];
    assert_eq!(stream.unmapped, 0);
    let runs: Vec<(u64, Vec<u8>)> = stream
        .runs()
        .into_iter()
        .map(|(o, b)| (o, b.to_vec()))
        .collect();
    assert_eq!(
        runs,
        vec![
            (0, plain[500..2000].to_vec()),
            (2500, plain[3000..4000].to_vec())
        ]
    );
}

#[test]
fn a_reused_four_tuple_is_a_new_connection() {
    let plain = text(200);
    let subflow = |isn: u32, client_key: u64| {
        let first = mptcp::idsn(client_key).wrapping_add(1);
        let mut segs = handshake(isn, 5, client_key, &[]);
        segs.push(seg(
            true,
            isn + 1,
            dss(None, Some((first, true, 1, 200)), false),
            &plain,
        ));
        segs
    };
    let mut segs = subflow(100, CLIENT_KEY);
    // The SYN retransmitted: still the same subflow.
    segs.insert(1, syn(100));
    segs.extend(subflow(90_000, CLIENT_KEY ^ 1));
    let cap = capture::parse(&pcap(C1, S, &segs)).expect("parse");
    let analysis = streams::analyze(&cap);
    assert_eq!(analysis.connections.len(), 2);
    for (conn, key) in analysis
        .connections
        .iter()
        .zip([CLIENT_KEY, CLIENT_KEY ^ 1])
    {
        assert_eq!(conn.keys[0], Some(key));
        assert_eq!(conn.streams[0].runs(), vec![(0, &plain[..])]);
    }
}

/// A hardened stream (docs/design.md, "Hardened mode, byte-exact"): the
/// client's 48-byte preamble, then `plain` under the keystream of `key`.
fn hardened_stream(plain: &[u8], key: &[u8; 32]) -> Vec<u8> {
    use hardened::{Keystream, RustCrypto, CLIENT_PREAMBLE_LEN};
    let mut c: Vec<u8> = (0..CLIENT_PREAMBLE_LEN as u8)
        .map(|i| i.wrapping_mul(91))
        .collect();
    let mut body = plain.to_vec();
    Keystream::new(&RustCrypto, key).apply(0, &mut body);
    c.extend_from_slice(&body);
    c
}

#[test]
fn hardened_stream_is_read_only_with_the_key_log() {
    use mptcp_eavesdrop::keylog::Entry;
    use mptcp_eavesdrop::report::{self, Mode};

    let key = [0x5a; 32];
    let plain = text(3000);
    let other = text(3100)[100..].to_vec();
    let c = hardened_stream(&plain, &key);
    let first = mptcp::idsn(CLIENT_KEY).wrapping_add(1);
    let isn = 500u32;
    // Path 1: the handshake, then the stream's first 1548 bytes.
    let mut p1 = handshake(isn, 7000, CLIENT_KEY, &[]);
    for at in (0..1548).step_by(516) {
        p1.push(seg(
            true,
            isn + 1 + at as u32,
            dss(
                None,
                Some((first + at as u64, true, 1 + at as u32, 516)),
                false,
            ),
            &c[at..at + 516],
        ));
    }
    // Path 2: only a join, then the rest.
    let jisn = 90u32;
    let mut join = vec![30, 12, 0x10, 1];
    join.extend_from_slice(&mptcp::token(SERVER_KEY).to_be_bytes());
    join.extend_from_slice(&[1, 2, 3, 4]);
    let mut p2 = vec![Seg {
        from_client: true,
        seq: jisn,
        syn: true,
        ack: false,
        opts: join,
        payload: &[],
    }];
    let rest = c.len() - 1548;
    p2.push(seg(
        true,
        jisn + 1,
        dss(None, Some((first + 1548, true, 1, rest as u16)), false),
        &c[1548..],
    ));
    let entries = [Entry {
        mptcp_keys: [CLIENT_KEY, SERVER_KEY],
        stream_keys: [key, [0; 32]],
    }];
    let model = ByteModel::english();
    for (segs, path, carried) in [(&p1, C1, 1500u64), (&p2, C2, 1500)] {
        let cap = capture::parse(&pcap(path, S, segs)).expect("parse");
        let analysis = streams::analyze(&cap);
        let run = |keylog: &[Entry]| {
            let opts = report::Options {
                connection: None,
                side: Some(0),
                model: &model,
                truth: Some(("truth", &plain)),
                baseline: Some(("baseline", &other)),
                mode: Mode::Hardened,
                keylog,
            };
            report::build("t", 0, 0, &analysis, &opts)
        };
        let blind = run(&[]);
        let d = &blind.connections[0].directions[0];
        assert_eq!(d.key_decoded_bytes, 0);
        assert!(blind.longest_correct_run.expect("scored") < 16);
        assert!(blind.baseline_recovered_fraction.is_some());
        let keyed = run(&entries);
        assert!(keyed.keylog_used);
        let t = keyed.connections[0].directions[0]
            .truth
            .as_ref()
            .expect("truth");
        assert_eq!(t.counts.key_decoded, carried);
        assert_eq!(t.counts.key_exact, carried);
        assert_eq!(t.truth_offset, 0);
    }
}
