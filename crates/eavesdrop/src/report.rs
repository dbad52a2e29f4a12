//! The `analyze` report: coverage and recovery per stream, as text or
//! one JSON object.

use std::fmt::Write as _;

use serde::Serialize;

use crate::attack::{self, Head, How, Recovery, TruthScore};
use crate::keylog;
use crate::model::ByteModel;
use crate::mptcp;
use crate::streams::{Analysis, Connection, Grouping, Stream, SubflowInfo};

/// Streams longer than this are reported but not attacked (the attack
/// keeps a byte of state per stream byte).
const ATTACK_LIMIT: u64 = 1 << 28;

/// Which streams to analyse, and what to compare them with.
pub struct Options<'a> {
    pub connection: Option<usize>,
    /// Side whose sent data to analyse: 0 client-to-server, 1 the reverse.
    pub side: Option<usize>,
    pub model: &'a ByteModel,
    pub truth: Option<(&'a str, &'a [u8])>,
    /// An unrelated truth of the same kind (another run, another seed):
    /// the same attack scored against it is what blind guessing gives.
    pub baseline: Option<(&'a str, &'a [u8])>,
    /// Which transform the connections use (the offer on the wire says).
    pub mode: Mode,
    /// TEST ONLY: hardened-mode keys from the module's `keylog` sysctl.
    pub keylog: &'a [keylog::Entry],
}

/// The transform of the analysed connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The paper's ring: the keys attack and the chain attack.
    #[default]
    Paper,
    /// The hardened mode: each stream starts with the kernel's 48-byte
    /// preamble, then a ChaCha20 keystream whose key never crosses a
    /// path.  The MPTCP keys give no seed; the chain attack is still
    /// run, and the key log, if given, decrypts.
    Hardened,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub capture: String,
    pub frames: usize,
    pub tcp_segments: usize,
    pub plain_tcp_flows: usize,
    pub model: String,
    pub mode: Mode,
    /// The stream the top-level figures (and `--truth`) are about: the
    /// analysed one with the most captured bytes.
    pub primary: Option<StreamRef>,
    pub keys_seen: bool,
    pub coverage_fraction: Option<f64>,
    pub longest_run: Option<u64>,
    pub window_fraction: Option<f64>,
    pub recovered_fraction: Option<f64>,
    pub recovered_key_fraction: Option<f64>,
    pub recovered_chain_fraction: Option<f64>,
    /// The longest stretch recovered exactly, in bytes.
    pub longest_correct_run: Option<u64>,
    /// The same against `--baseline-truth`.
    pub baseline_recovered_fraction: Option<f64>,
    pub baseline_longest_correct_run: Option<u64>,
    /// A key log entry decrypted the primary stream.
    pub keylog_used: bool,
    pub connections: Vec<ConnectionReport>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StreamRef {
    pub connection: usize,
    pub direction: String,
}

#[derive(Debug, Serialize)]
pub struct ConnectionReport {
    pub number: usize,
    pub grouping: Grouping,
    pub keys_seen: bool,
    pub client_key: Option<String>,
    pub server_key: Option<String>,
    pub subflows: Vec<SubflowInfo>,
    pub directions: Vec<DirectionReport>,
}

#[derive(Debug, Serialize)]
pub struct DirectionReport {
    pub direction: String,
    pub sender: Option<String>,
    pub stream_bytes: u64,
    /// Stream start from the sender's key (else the lowest DSN seen).
    pub start_exact: bool,
    /// Stream end from the DATA_FIN (else the highest DSN or ACK seen).
    pub end_exact: bool,
    pub segments: usize,
    pub captured_bytes: u64,
    pub coverage_fraction: f64,
    pub runs: usize,
    pub longest_run: u64,
    pub windows_whole: u64,
    pub window_fraction: f64,
    pub duplicate_bytes: u64,
    pub mismatched_duplicate_bytes: u64,
    pub unmapped_bytes: u64,
    pub key_decoded_bytes: u64,
    pub chain_guessed_bytes: u64,
    /// Hardened mode: decrypted with a key log entry.
    pub keylog_used: bool,
    pub truth: Option<TruthReport>,
    /// The same recovery scored against `--baseline-truth`.
    pub baseline: Option<TruthReport>,
    /// The start of the attack's output on the longest run.
    pub sample: Option<String>,
    /// The captured bytes fit the byte model better as they are than
    /// descrambled: most likely the connection was not scrambled.
    pub looks_plain: bool,
}

#[derive(Debug, Serialize)]
pub struct TruthReport {
    pub file: String,
    pub truth_bytes: u64,
    pub length_matches: bool,
    /// Where stream offset 0 falls in the truth (not 0 when the stream's
    /// start was not seen).
    pub truth_offset: u64,
    pub alignment: Aligned,
    pub recovered_fraction: f64,
    pub recovered_key_fraction: f64,
    pub recovered_chain_fraction: f64,
    /// Of the chain attack's guesses, the fraction that are right.
    pub chain_accuracy: Option<f64>,
    /// Captured bytes equal to the truth unchanged: 1.0 means the
    /// connection was not scrambled at all.
    pub captured_plain_fraction: Option<f64>,
    /// The longest stretch of consecutive bytes recovered exactly.
    pub longest_correct_run: u64,
    pub counts: TruthScore,
}

/// How stream offset 0 was placed in the truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aligned {
    /// At the truth's start: the keys gave the stream's first DSN.
    Start,
    /// Where the captured bytes' neighbour relation holds in the truth.
    Search,
    /// By the stream's estimated end (the search found nothing).
    End,
}

fn direction_name(grouping: Grouping, side: usize) -> String {
    match (grouping, side) {
        (Grouping::DsnContinuity, 0) => "a-to-b",
        (Grouping::DsnContinuity, _) => "b-to-a",
        (_, 0) => "client-to-server",
        _ => "server-to-client",
    }
    .into()
}

fn fraction(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

pub fn build(
    capture: &str,
    frames: usize,
    tcp_segments: usize,
    analysis: &Analysis,
    opts: &Options,
) -> Report {
    let mut connections = Vec::new();
    let mut primary: Option<(u64, StreamRef)> = None;
    let mut notes = analysis.notes.clone();
    for conn in &analysis.connections {
        if opts.connection.is_some_and(|n| n != conn.number) {
            continue;
        }
        let keys_seen = conn.keys.iter().all(Option::is_some);
        let (conn, stream_keys) = with_keylog(conn, opts);
        let conn = &conn;
        let mut directions = Vec::new();
        for side in 0..2 {
            let stream = &conn.streams[side];
            if opts.side.is_some_and(|s| s != side) {
                continue;
            }
            if stream.data.is_empty() {
                if stream.unmapped > 0 {
                    notes.push(format!(
                        "connection {} {}: {} payload bytes but no DSS mapping (fallen back to plain TCP?)",
                        conn.number,
                        direction_name(conn.grouping, side),
                        stream.unmapped
                    ));
                }
                continue;
            }
            let name = direction_name(conn.grouping, side);
            let captured: u64 = stream.runs().iter().map(|r| r.1.len() as u64).sum();
            if !matches!(&primary, Some(p) if p.0 >= captured) {
                primary = Some((
                    captured,
                    StreamRef {
                        connection: conn.number,
                        direction: name.clone(),
                    },
                ));
            }
            directions.push(direction(
                conn,
                side,
                name,
                &mut notes,
                opts,
                stream_keys.map(|k| k[side]),
            ));
        }
        connections.push(ConnectionReport {
            number: conn.number,
            grouping: conn.grouping,
            keys_seen,
            client_key: conn.keys[0].map(|k| format!("{k:016x}")),
            server_key: conn.keys[1].map(|k| format!("{k:016x}")),
            subflows: conn.subflows.clone(),
            directions,
        });
    }

    let primary = primary.map(|p| p.1);
    if primary.is_none() && opts.truth.is_some() {
        notes.push("no stream with data to compare --truth with".into());
    }
    let mut report = Report {
        capture: capture.into(),
        frames,
        tcp_segments,
        plain_tcp_flows: analysis.plain_tcp_flows,
        model: opts.model.name.clone(),
        mode: opts.mode,
        primary: primary.clone(),
        keys_seen: false,
        coverage_fraction: None,
        longest_run: None,
        window_fraction: None,
        recovered_fraction: None,
        recovered_key_fraction: None,
        recovered_chain_fraction: None,
        longest_correct_run: None,
        baseline_recovered_fraction: None,
        baseline_longest_correct_run: None,
        keylog_used: false,
        connections,
        notes,
    };
    if let Some(p) = primary {
        let conn = report
            .connections
            .iter_mut()
            .find(|c| c.number == p.connection);
        if let Some(conn) = conn {
            report.keys_seen = conn.keys_seen;
            // The truth belongs to the primary stream only.
            for d in conn.directions.iter_mut() {
                if d.direction != p.direction {
                    d.truth = None;
                    d.baseline = None;
                }
            }
            if let Some(d) = conn.directions.iter().find(|d| d.direction == p.direction) {
                report.coverage_fraction = Some(d.coverage_fraction);
                report.longest_run = Some(d.longest_run);
                report.window_fraction = Some(d.window_fraction);
                report.keylog_used = d.keylog_used;
                if let Some(t) = &d.truth {
                    report.recovered_fraction = Some(t.recovered_fraction);
                    report.recovered_key_fraction = Some(t.recovered_key_fraction);
                    report.recovered_chain_fraction = Some(t.recovered_chain_fraction);
                    report.longest_correct_run = Some(t.longest_correct_run);
                }
                if let Some(b) = &d.baseline {
                    report.baseline_recovered_fraction = Some(b.recovered_fraction);
                    report.baseline_longest_correct_run = Some(b.longest_correct_run);
                }
            }
        }
    }
    report
}

/// Hardened mode with a key log: the connection as the key log's entry
/// for it completes it (both MPTCP keys, so each stream's first DSN, even
/// on a path that saw only a join), and each side's keystream key.
fn with_keylog(conn: &Connection, opts: &Options) -> (Connection, Option<[[u8; 32]; 2]>) {
    let mut conn = conn.clone();
    if opts.mode != Mode::Hardened {
        return (conn, None);
    }
    let Some((e, swapped)) = keylog::find(opts.keylog, conn.keys, conn.tokens) else {
        return (conn, None);
    };
    let (mut keys, mut stream_keys) = (e.mptcp_keys, e.stream_keys);
    if swapped {
        keys.swap(0, 1);
        stream_keys.swap(0, 1);
    }
    for ((k, stream), key) in conn.keys.iter_mut().zip(&mut conn.streams).zip(keys) {
        *k = Some(key);
        stream.first_dsn_exact = Some(mptcp::idsn(key).wrapping_add(1));
    }
    (conn, Some(stream_keys))
}

fn direction(
    conn: &Connection,
    side: usize,
    name: String,
    notes: &mut Vec<String>,
    opts: &Options,
    stream_key: Option<[u8; 32]>,
) -> DirectionReport {
    let stream: &Stream = &conn.streams[side];
    let len = stream.stream_len();
    let runs = stream.runs();
    let captured: u64 = runs.iter().map(|r| r.1.len() as u64).sum();
    let longest = runs.iter().map(|r| r.1.len() as u64).max().unwrap_or(0);
    let windows_whole: u64 = runs
        .iter()
        .map(|r| (r.1.len() as u64).saturating_sub(63))
        .sum();
    let window_count = len.saturating_sub(63);

    let mut report = DirectionReport {
        direction: name.clone(),
        sender: conn
            .subflows
            .first()
            .map(|s| if side == 0 { s.side0 } else { s.side1 }.ip().to_string()),
        stream_bytes: len,
        start_exact: stream.first_dsn_exact.is_some(),
        end_exact: stream.data_fin.is_some(),
        segments: stream.segments,
        captured_bytes: captured,
        coverage_fraction: fraction(captured, len),
        runs: runs.len(),
        longest_run: longest,
        windows_whole,
        window_fraction: fraction(windows_whole, window_count),
        duplicate_bytes: stream.inserted.duplicate,
        mismatched_duplicate_bytes: stream.inserted.mismatched,
        unmapped_bytes: stream.unmapped,
        key_decoded_bytes: 0,
        chain_guessed_bytes: 0,
        keylog_used: false,
        truth: None,
        baseline: None,
        sample: None,
        looks_plain: false,
    };
    if len > ATTACK_LIMIT {
        notes.push(format!(
            "connection {} {name}: {len} bytes is too long to attack here",
            conn.number
        ));
        return report;
    }
    // Hardened mode: the application's bytes start after the kernel's
    // preamble, which a known stream start lets the attacks skip.
    let hardened = opts.mode == Mode::Hardened;
    let pre = if hardened && report.start_exact {
        keylog::preamble_len(side)
    } else {
        0
    };
    let runs: Vec<(u64, &[u8])> = runs
        .iter()
        .filter_map(|&(off, bytes)| {
            let skip = usize::try_from(pre.saturating_sub(off)).ok()?;
            let bytes = bytes.get(skip..)?;
            (!bytes.is_empty()).then_some((off.saturating_sub(pre), bytes))
        })
        .collect();
    let len = len - pre.min(len);
    let rec = match (hardened, stream_key) {
        (true, Some(key)) if report.start_exact => {
            report.keylog_used = true;
            keylog::decrypt(len as usize, &runs, &key)
        }
        // The MPTCP keys give no seed, nor anything of the stream's head.
        (true, _) => attack::recover(len as usize, &runs, Head::Unknown, opts.model),
        (false, _) => {
            let seed = conn.seed(side);
            let head = match (&seed, report.start_exact) {
                (Some(s), true) => Head::Seed(s),
                (_, true) => Head::Start,
                (_, false) => Head::Unknown,
            };
            attack::recover(len as usize, &runs, head, opts.model)
        }
    };
    report.key_decoded_bytes = rec.count(How::Key);
    report.chain_guessed_bytes = rec.count(How::Chain);
    report.sample = sample(&rec, &runs);
    report.looks_plain = looks_plain(&rec, &runs, opts.model);
    let at = (conn.number, name.as_str(), report.start_exact, len);
    if let Some((file, truth)) = opts.truth {
        report.truth = score_truth(file, truth, &rec, &runs, at, notes);
    }
    if let Some((file, truth)) = opts.baseline {
        report.baseline = score_truth(file, truth, &rec, &runs, at, &mut Vec::new());
    }
    report
}

/// Scores the recovery against `truth`.  Without the keys the stream's
/// start is the first byte seen, maybe later than the truth's start: the
/// offset is found from the scrambled bytes, else the ends are aligned.
fn score_truth(
    file: &str,
    truth: &[u8],
    rec: &Recovery,
    runs: &[(u64, &[u8])],
    (number, name, start_exact, len): (usize, &str, bool, u64),
    notes: &mut Vec<String>,
) -> Option<TruthReport> {
    let found = (!start_exact).then(|| attack::align(truth, runs)).flatten();
    let (shifts, alignment) = if start_exact {
        (vec![0], Aligned::Start)
    } else if let Some(a) = found {
        if a.ties > 0 {
            notes.push(format!(
                "connection {number} {name}: {} other offsets in the truth fit the capture as well (a repeating truth); scored at the first",
                a.ties
            ));
        }
        (vec![a.shift], Aligned::Search)
    } else {
        let tail = (truth.len() as u64).saturating_sub(len) as usize;
        (
            vec![0, tail.saturating_sub(1), tail, tail + 1],
            Aligned::End,
        )
    };
    let (shift, s) = shifts
        .into_iter()
        .map(|shift| (shift, rec.score(truth, runs, shift)))
        .max_by_key(|(_, s)| (s.key_exact + s.chain_exact, s.captured_equal))?;
    let total = s.truth_bytes;
    Some(TruthReport {
        file: file.into(),
        truth_bytes: total,
        length_matches: total == len,
        truth_offset: shift as u64,
        alignment,
        recovered_fraction: fraction(s.key_exact + s.chain_exact, total),
        recovered_key_fraction: fraction(s.key_exact, total),
        recovered_chain_fraction: fraction(s.chain_exact, total),
        chain_accuracy: (s.chain_guessed > 0).then(|| fraction(s.chain_exact, s.chain_guessed)),
        captured_plain_fraction: (s.captured > 0).then(|| fraction(s.captured_equal, s.captured)),
        longest_correct_run: s.longest_exact_run,
        counts: s,
    })
}

/// Whether the captured bytes score clearly better under `model` than
/// what the attack made of them.
fn looks_plain(rec: &Recovery, runs: &[(u64, &[u8])], model: &ByteModel) -> bool {
    let (mut wire, mut decoded, mut n) = (0.0, 0.0, 0u64);
    for &(off, bytes) in runs {
        let Ok(from) = usize::try_from(off) else {
            continue;
        };
        for (t, &c) in (from..).zip(bytes) {
            if rec.how.get(t).is_some_and(|&h| h != How::Unknown) {
                wire += model.log_p[usize::from(c)];
                decoded += model.log_p[usize::from(rec.plain[t])];
                n += 1;
            }
        }
    }
    // Half a nat per byte: far beyond what chance gives on runs this long.
    n >= 64 && wire > decoded + 0.5 * n as f64
}

/// Up to 120 bytes of the recovery from the longest run, printable.
fn sample(rec: &Recovery, runs: &[(u64, &[u8])]) -> Option<String> {
    let (off, bytes) = runs.iter().max_by_key(|r| r.1.len())?;
    let from = usize::try_from(*off).ok()?;
    let to = (from + bytes.len().min(120)).min(rec.plain.len());
    let mut out = String::new();
    for t in from..to {
        let c = match rec.how[t] {
            How::Unknown => '?',
            _ => printable(rec.plain[t]),
        };
        out.push(c);
    }
    Some(out)
}

fn printable(b: u8) -> char {
    match b {
        0x20..=0x7e => char::from(b),
        _ => '.',
    }
}

fn pct(f: f64) -> String {
    format!("{:.1}%", f * 100.0)
}

/// The report as a person reads it.
pub fn human(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{}: {} frames, {} TCP segments, {} MPTCP connection(s), {} plain TCP flow(s); byte model: {}",
        r.capture,
        r.frames,
        r.tcp_segments,
        r.connections.len(),
        r.plain_tcp_flows,
        r.model
    );
    for c in &r.connections {
        let _ = writeln!(o, "\nconnection {} (grouped by {:?})", c.number, c.grouping);
        match (&c.client_key, &c.server_key) {
            (Some(a), Some(b)) => {
                let _ = writeln!(o, "  keys seen in the handshake: client {a}, server {b}");
            }
            _ if c.grouping == Grouping::Keys => {
                let _ = writeln!(
                    o,
                    "  MP_CAPABLE seen, but not both keys (the handshake's third ACK is missing, or it fell back to TCP)"
                );
            }
            _ => {
                let _ = writeln!(
                    o,
                    "  keys not seen (the initial subflow's handshake is not in this capture)"
                );
            }
        }
        for s in &c.subflows {
            let _ = writeln!(o, "  subflow {} <-> {} ({:?})", s.side0, s.side1, s.kind);
        }
        for d in &c.directions {
            let _ = writeln!(
                o,
                "  {} from {}: stream {} bytes{}{}",
                d.direction,
                d.sender.as_deref().unwrap_or("?"),
                d.stream_bytes,
                if d.start_exact {
                    ""
                } else {
                    " (start estimated)"
                },
                if d.end_exact { "" } else { " (end estimated)" },
            );
            let _ = writeln!(
                o,
                "    this path carried {} bytes = {} of the stream in {} run(s); longest run {} bytes; 64-byte windows seen whole: {}",
                d.captured_bytes,
                pct(d.coverage_fraction),
                d.runs,
                d.longest_run,
                pct(d.window_fraction)
            );
            if d.duplicate_bytes > 0 || d.unmapped_bytes > 0 {
                let _ = writeln!(
                    o,
                    "    retransmitted bytes {} ({} differing), bytes without a DSS mapping {}",
                    d.duplicate_bytes, d.mismatched_duplicate_bytes, d.unmapped_bytes
                );
            }
            let _ = writeln!(
                o,
                "    decoded with the keys: {} bytes; guessed by the chain attack: {} bytes",
                d.key_decoded_bytes, d.chain_guessed_bytes
            );
            if let Some(s) = &d.sample {
                let _ = writeln!(o, "    attack output, longest run: {s}");
            }
            if d.looks_plain {
                let _ = writeln!(o, "    the captured bytes look like plaintext already: this connection was probably not scrambled");
            }
            if let Some(t) = &d.truth {
                let _ = writeln!(
                    o,
                    "    against {} ({} bytes{}{}): recovered exactly {} of the stream ({} with the keys, {} by the chain attack{})",
                    t.file,
                    t.truth_bytes,
                    if t.length_matches { "" } else { ", length differs from the stream's" },
                    match t.alignment {
                        Aligned::Start => String::new(),
                        Aligned::Search => format!(", stream found at its byte {}", t.truth_offset),
                        Aligned::End => format!(", aligned by the stream's end at its byte {}", t.truth_offset),
                    },
                    pct(t.recovered_fraction),
                    pct(t.recovered_key_fraction),
                    pct(t.recovered_chain_fraction),
                    t.chain_accuracy
                        .map(|a| format!("; {} of its guesses right", pct(a)))
                        .unwrap_or_default()
                );
                let _ = writeln!(
                    o,
                    "    longest stretch recovered exactly: {} bytes",
                    t.longest_correct_run
                );
                if t.captured_plain_fraction.is_some_and(|f| f > 0.99) && !d.looks_plain {
                    let _ = writeln!(
                        o,
                        "    the captured bytes equal the truth: this connection was not scrambled"
                    );
                }
            }
        }
    }
    if let (Some(f), Some(run)) = (
        r.baseline_recovered_fraction,
        r.baseline_longest_correct_run,
    ) {
        let _ = writeln!(
            o,
            "\nbaseline: the same attack against the unrelated --baseline-truth recovers {} (longest stretch {run} bytes)",
            pct(f)
        );
    }
    if r.keylog_used {
        let _ = writeln!(o, "decrypted with the key log (TEST ONLY)");
    }
    if r.connections.is_empty() {
        let _ = writeln!(o, "\nno MPTCP connection found");
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}
