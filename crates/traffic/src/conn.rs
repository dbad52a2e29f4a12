//! One connection, from an established socket to its report line.

use crate::size::human_bytes;
use crate::sys::{self, MptcpInfo, SubflowInfo};
use crate::transfer::{self, enum_name, Cfg, Direction, Exchange, RecvStats, SendStats, Tally};
use crate::verify::{SendHash, Verifier};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use socket2::Socket;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// Output settings.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub quiet: bool,
}

impl Out {
    /// A human-readable line on stderr (suppressed by --quiet).
    pub fn info(&self, msg: &str) {
        if !self.quiet {
            eprintln!("mptcp-traffic: {msg}");
        }
    }
    /// An error line on stderr (always printed).
    pub fn error(&self, msg: &str) {
        eprintln!("mptcp-traffic: error: {msg}");
    }
    /// One JSON line on stdout.
    pub fn json(&self, v: &Value) {
        println!("{v}");
    }
}

/// What a finished connection contributes to the summary.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub ok: bool,
    pub bytes: u64,
    pub transactions: u64,
    pub error: Option<String>,
}

/// Connection state as seen by the kernel at the end of the data phase.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub mptcp: Option<MptcpInfo>,
    pub subflows: Option<Vec<SubflowInfo>>,
    pub tcp_options: Option<u8>,
}

pub fn take_sample(fd: RawFd) -> Sample {
    let mptcp = sys::mptcp_info(fd);
    let subflows = if mptcp.is_some() {
        sys::subflows(fd)
    } else {
        None
    };
    Sample {
        mptcp,
        subflows,
        tcp_options: sys::tcp_options(fd),
    }
}

/// Of two samples of the same connection, the one taken while it was more alive.
fn richer(a: Sample, b: Sample) -> Sample {
    let score = |s: &Sample| {
        let total = s
            .mptcp
            .as_ref()
            .map(|m| m.subflows_total.unwrap_or(m.subflows.saturating_add(1)));
        (
            s.mptcp.is_some(),
            total.unwrap_or(0),
            s.subflows.as_ref().map(|v| v.len()).unwrap_or(0),
        )
    };
    if score(&b) > score(&a) {
        b
    } else {
        a
    }
}

/// TCP Fast Open on the client: how many bytes went out with sendto(MSG_FASTOPEN).
#[derive(Clone, Copy, Debug)]
pub struct FastOpen {
    pub sendto_bytes: usize,
}

/// Everything a connection needs besides its socket.
pub struct ConnSpec<'a> {
    pub role: Role,
    pub index: usize,
    pub cfg: &'a Cfg,
    pub tcp: bool,
    pub out: Out,
    pub fastopen: Option<FastOpen>,
    /// When the connection started (client: before connect; server: at accept).
    pub start: Instant,
}

fn shutdown(sock: &Socket, how: Shutdown) -> Result<()> {
    sock.shutdown(how)
        .with_context(|| format!("shutdown({how:?})"))
}

fn join_errors(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    }
}

fn err_string(e: anyhow::Error) -> String {
    format!("{e:#}")
}

/// Run the data phase on an established socket, print the report, return the outcome.
pub fn run(sock: Socket, spec: &ConnSpec) -> Outcome {
    let cfg = spec.cfg;
    let fd = sock.as_raw_fd();
    let local = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.to_string());
    let peer = sock
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.to_string());
    let (sends, recvs) = if cfg.rr.is_some() {
        (true, true)
    } else {
        let up = matches!(cfg.direction, Direction::Up | Direction::Both);
        let down = matches!(cfg.direction, Direction::Down | Direction::Both);
        match spec.role {
            Role::Client => (up, down),
            Role::Server => (down, up),
        }
    };
    let prefix = spec.fastopen.map(|f| f.sendto_bytes).unwrap_or(0);
    // Fallback to TCP is decided in the handshake: ask now, while the connection is surely open.
    let mptcp_at_start = sys::mptcp_info(fd).is_some();

    let mut tally = Tally::new(cfg, spec.role == Role::Client);
    let mut sample = Sample::default();
    let mut error: Option<String> = None;

    if let Err(e) = sock
        .set_read_timeout(Some(cfg.timeout))
        .and_then(|_| sock.set_write_timeout(Some(cfg.timeout)))
    {
        error = Some(format!("setting socket timeouts: {e}"));
    }

    if error.is_some() {
        // Nothing more to do.
    } else if let Some(exchange) = cfg.rr {
        if let Err(e) = sock.set_nodelay(true) {
            spec.out
                .info(&format!("conn {}: TCP_NODELAY not set: {e}", spec.index));
        }
        let res = match spec.role {
            Role::Client => transfer::rr_client(fd, cfg, exchange, prefix, &mut tally)
                .map(|_| sample = take_sample(fd))
                .and_then(|_| shutdown(&sock, Shutdown::Write))
                .and_then(|_| transfer::expect_eof(fd, cfg.timeout, "the last response")),
            Role::Server => {
                let r = transfer::rr_server(fd, cfg, exchange, &mut tally);
                sample = take_sample(fd);
                r
            }
        };
        if let Err(e) = res {
            error = Some(err_string(e));
        }
    } else {
        let total = cfg.bytes;
        let send_part = |sst: &mut SendStats| -> (Result<()>, Sample) {
            let r = transfer::send_stream(fd, cfg, prefix as u64, total, sst);
            let smp = take_sample(fd);
            let r = match r {
                Ok(()) => shutdown(&sock, Shutdown::Write),
                Err(e) => {
                    // Unblock a receiving thread on the same socket.
                    let _ = sock.shutdown(Shutdown::Both);
                    Err(e)
                }
            };
            let r = if recvs {
                r
            } else {
                r.and_then(|_| transfer::expect_eof(fd, cfg.timeout, "nothing"))
            };
            (r, smp)
        };
        let recv_part = |v: &mut Verifier, rst: &mut RecvStats| -> (Result<()>, Sample) {
            let r = transfer::recv_stream(fd, cfg, total, v, rst);
            let smp = take_sample(fd);
            let what = format!("the expected {total} bytes");
            let r = match r {
                Ok(()) => transfer::expect_eof(fd, cfg.timeout, &what),
                Err(e) => {
                    let _ = sock.shutdown(Shutdown::Both);
                    Err(e)
                }
            };
            (r, smp)
        };
        if sends && recvs {
            let ((sr, ss), (rres, rs)) = std::thread::scope(|s| {
                let h = s.spawn(|| send_part(&mut tally.sent));
                let r = recv_part(&mut tally.verifier, &mut tally.received);
                let sr = h.join().unwrap_or_else(|_| {
                    (
                        Err(anyhow::anyhow!("sending thread panicked")),
                        Sample::default(),
                    )
                });
                (sr, r)
            });
            // Once both sides have shut down, MPTCP_INFO may no longer answer.
            sample = richer(rs, ss);
            error = join_errors(sr.err().map(err_string), rres.err().map(err_string));
        } else if sends {
            let (r, s) = send_part(&mut tally.sent);
            sample = s;
            error = r.err().map(err_string);
        } else {
            let (r, s) = recv_part(&mut tally.verifier, &mut tally.received);
            sample = s;
            error = r.err().map(err_string);
        }
    }
    let seconds = spec.start.elapsed().as_secs_f64();
    drop(sock);

    // A data mismatch is the most useful error: put it first.
    let Tally {
        sent: sst,
        received: rst,
        verifier,
        rr,
    } = tally;
    let mismatch = verifier.mismatch.clone();
    if let Some(m) = &mismatch {
        error = join_errors(Some(m.message()), error);
    }
    let ok = error.is_none();
    let bytes_received = verifier.offset;
    let mismatched_bytes = verifier.mismatched_bytes;
    let skipped = verifier.skipped_bytes;
    let recv_hash = if recvs { verifier.finish_hex() } else { None };
    let send_hash = sst.hasher.and_then(SendHash::finish_hex);
    let (sha_up, sha_down) = match spec.role {
        Role::Client => (send_hash, recv_hash),
        Role::Server => (recv_hash, send_hash),
    };
    let sha = if cfg.rr.is_some() || cfg.direction != Direction::Down {
        sha_up.clone()
    } else {
        sha_down.clone()
    };
    let bytes = sst.bytes + bytes_received;
    let mbps = if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds / 1e6
    } else {
        0.0
    };

    let mptcp_on = mptcp_at_start || sample.mptcp.is_some();
    let subflows_total = sample
        .mptcp
        .as_ref()
        .map(|m| m.subflows_total.unwrap_or(m.subflows.saturating_add(1)));
    let syn_data = if mptcp_on {
        sample
            .subflows
            .as_ref()
            .and_then(|s| s.first())
            .map(|s| s.options & sys::TCPI_OPT_SYN_DATA != 0)
    } else {
        sample.tcp_options.map(|o| o & sys::TCPI_OPT_SYN_DATA != 0)
    };

    let j = json!({
        "type": "connection",
        "role": spec.role.name(),
        "conn": spec.index,
        "protocol": if spec.tcp { "tcp" } else { "mptcp" },
        "mptcp": mptcp_on,
        "subflows": subflows_total,
        "local": local,
        "peer": peer,
        "mode": match cfg.rr { Some(Exchange::Echo(_)) => "rr", Some(Exchange::Http) => "http", None => "stream" },
        "direction": enum_name(&cfg.direction),
        "pattern": cfg.sent_by_client(spec.role == Role::Client).name(),
        "seed": cfg.seed,
        "send_mode": enum_name(&cfg.send_mode),
        "recv_mode": enum_name(&cfg.recv_mode),
        "bytes": bytes,
        "bytes_sent": sst.bytes,
        "bytes_received": bytes_received,
        "seconds": round(seconds, 6),
        "throughput_mbps": round(mbps, 3),
        "sha256": sha,
        "sha256_up": sha_up,
        "sha256_down": sha_down,
        "ok": ok,
        "verified": cfg.verify,
        "error": error,
        "mismatch": mismatch.as_ref().map(|m| m.json()),
        "mismatched_bytes": mismatched_bytes,
        "send_calls": sst.send_calls,
        "short_writes": sst.short_writes,
        "eagain": sst.eagain,
        "recv_calls": rst.recv_calls,
        "recv_eagain": rst.eagain,
        "short_reads": rst.short_reads,
        "peeks": rst.peeks,
        "peek_mismatches": rst.peek_mismatches,
        "trunc_calls": rst.trunc_calls,
        "trunc_bytes": skipped,
        "fastopen": spec.fastopen.map(|f| json!({"sendto_bytes": f.sendto_bytes, "syn_data_acked": syn_data})),
        "rr": if cfg.rr.is_some() { rr.json(seconds) } else { Value::Null },
        "mptcp_info": sample.mptcp.as_ref().map(|m| m.json()),
        "subflow_info": sample.subflows.as_ref().map(|v| v.iter().map(|s| s.json()).collect::<Vec<_>>()),
    });
    spec.out.json(&j);

    let proto = match (spec.tcp, subflows_total) {
        (true, _) => "tcp".to_string(),
        (false, Some(n)) => format!("mptcp, {n} subflow{}", if n == 1 { "" } else { "s" }),
        (false, None) if mptcp_on => "mptcp".to_string(),
        (false, None) => "mptcp fell back to tcp".to_string(),
    };
    let what = if cfg.rr.is_some() {
        match rr.size {
            Some(size) => format!("{} transactions of {size} B", rr.transactions),
            None => format!(
                "{} HTTP-like transactions, sent {}, received {}",
                rr.transactions,
                human_bytes(sst.bytes),
                human_bytes(bytes_received)
            ),
        }
    } else {
        format!(
            "sent {}, received {}",
            human_bytes(sst.bytes),
            human_bytes(bytes_received)
        )
    };
    let status = match &error {
        None => "OK".to_string(),
        Some(e) => format!("FAILED: {e}"),
    };
    spec.out.info(&format!(
        "{} conn {} ({} -> {}, {proto}): {what} in {:.3} s, {:.1} Mbit/s, sha256 {}: {status}",
        spec.role.name(),
        spec.index,
        local.as_deref().unwrap_or("?"),
        peer.as_deref().unwrap_or("?"),
        seconds,
        mbps,
        sha.as_deref().map(|s| &s[..16.min(s.len())]).unwrap_or("-"),
    ));
    if let Some(e) = &error {
        spec.out
            .error(&format!("{} conn {}: {e}", spec.role.name(), spec.index));
    }
    Outcome {
        ok,
        bytes,
        transactions: rr.transactions,
        error,
    }
}

pub fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}
