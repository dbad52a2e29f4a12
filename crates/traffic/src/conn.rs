//! One connection, from an established socket to its report line.

use crate::size::human_bytes;
use crate::sys::{self, MptcpInfo, SubflowInfo};
use crate::transfer::{self, enum_name, Cfg, Direction, Exchange, RecvStats, SendStats, Tally};
use crate::verify::{Mismatch, SendHash, Verifier};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use socket2::{SockAddr, Socket};
use std::fmt;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

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
    /// One JSON line on stdout, in one write: a reader polling the output
    /// of a running process (--hold-until) never sees half a line.
    pub fn json(&self, v: &Value) {
        let line = format!("{v}\n");
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
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

impl Outcome {
    /// A connection that failed with `error` before it transferred anything.
    pub fn failed(error: String) -> Outcome {
        Outcome {
            ok: false,
            bytes: 0,
            transactions: 0,
            error: Some(error),
        }
    }

    /// The connection failed after its report, with `error`.
    fn fail(&mut self, error: String) {
        self.ok = false;
        self.error = Some(match self.error.take() {
            Some(e) => format!("{e}; {error}"),
            None => error,
        });
    }
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

impl ConnSpec<'_> {
    /// Whether this end sends, and whether it receives.
    fn directions(&self) -> (bool, bool) {
        if self.cfg.rr.is_some() {
            return (true, true);
        }
        let up = matches!(self.cfg.direction, Direction::Up | Direction::Both);
        let down = matches!(self.cfg.direction, Direction::Down | Direction::Both);
        match self.role {
            Role::Client => (up, down),
            Role::Server => (down, up),
        }
    }

    /// How many bytes TCP Fast Open already sent.
    fn prefix(&self) -> usize {
        self.fastopen.map(|f| f.sendto_bytes).unwrap_or(0)
    }
}

/// The IP address and port of a socket address, if it has them.
pub fn ip_addr(a: std::io::Result<SockAddr>) -> Option<SocketAddr> {
    a.ok().and_then(|a| a.as_socket())
}

/// Run the data phase on an established socket, print the report, return the outcome.
pub fn run(sock: Socket, spec: &ConnSpec) -> Outcome {
    let local = ip_addr(sock.local_addr()).map(|a| a.to_string());
    let peer = ip_addr(sock.peer_addr()).map(|a| a.to_string());
    // Fallback to TCP is decided in the handshake: ask now, while the connection is surely open.
    let mptcp_at_start = sys::mptcp_info(sock.as_raw_fd()).is_some();
    let mut tally = Tally::new(spec.cfg, spec.role == Role::Client);
    let mut sample = Sample::default();
    let result = data_phase(&sock, spec, &mut tally, &mut sample);
    let seconds = spec.start.elapsed().as_secs_f64();
    // The report follows the close, unless --hold-until keeps the socket
    // open past it.
    let held = match &spec.cfg.hold_until {
        Some(path) => Some((sock, path)),
        None => {
            drop(sock);
            None
        }
    };
    let report = Report {
        spec,
        local,
        peer,
        mptcp_at_start,
        seconds,
        tally,
        sample,
    };
    let mut outcome = report.print(result);
    if let Some((sock, path)) = held {
        if let Err(e) = hold(path, spec.cfg.timeout) {
            spec.out
                .error(&format!("{} conn {}: {e}", spec.role.name(), spec.index));
            outcome.fail(e);
        }
        drop(sock);
    }
    outcome
}

/// --hold-until: wait until `path` exists, for `timeout` at most.
fn hold(path: &Path, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() >= timeout {
            return Err(format!(
                "timeout: {} did not appear within {:.1} s of the report (--hold-until)",
                path.display(),
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The data phase: Ok, or what ended it. `sample` gets the kernel's view
/// of the connection near its end.
fn data_phase(
    sock: &Socket,
    spec: &ConnSpec,
    tally: &mut Tally,
    sample: &mut Sample,
) -> Result<()> {
    let timeout = Some(spec.cfg.timeout);
    sock.set_read_timeout(timeout)
        .and_then(|()| sock.set_write_timeout(timeout))
        .context("setting socket timeouts")?;
    match spec.cfg.rr {
        Some(exchange) => request_response(sock, spec, exchange, tally, sample),
        None => streams(sock, spec, tally, sample),
    }
}

/// --wait-subflows: poll MPTCP_INFO until `n` additional subflows are up.
fn wait_subflows(sock: &Socket, n: u8, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let up = sys::mptcp_info(sock.as_raw_fd()).map(|i| i.subflows);
        match up {
            Some(up) if up >= n => return Ok(()),
            None => bail!("--wait-subflows: the connection is not MPTCP"),
            Some(up) if start.elapsed() >= timeout => bail!(
                "timeout: {up} of {n} additional subflows up after {:.1} s (--wait-subflows)",
                timeout.as_secs_f64()
            ),
            Some(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn shutdown(sock: &Socket, how: Shutdown) -> Result<()> {
    sock.shutdown(how)
        .with_context(|| format!("shutdown({how:?})"))
}

/// Request/response (--rr, --http).
fn request_response(
    sock: &Socket,
    spec: &ConnSpec,
    exchange: Exchange,
    tally: &mut Tally,
    sample: &mut Sample,
) -> Result<()> {
    let (cfg, fd) = (spec.cfg, sock.as_raw_fd());
    if let Err(e) = sock.set_nodelay(true) {
        spec.out
            .info(&format!("conn {}: TCP_NODELAY not set: {e}", spec.index));
    }
    match spec.role {
        Role::Client => {
            transfer::rr_client(fd, cfg, exchange, spec.prefix(), tally)?;
            *sample = take_sample(fd);
            shutdown(sock, Shutdown::Write)?;
            transfer::expect_eof(fd, cfg.timeout, "the last response")
        }
        Role::Server => {
            let r = transfer::rr_server(fd, cfg, exchange, tally);
            *sample = take_sample(fd);
            r
        }
    }
}

/// Streams: this end sends, receives, or both at once (on two threads).
fn streams(sock: &Socket, spec: &ConnSpec, tally: &mut Tally, sample: &mut Sample) -> Result<()> {
    let (cfg, fd) = (spec.cfg, sock.as_raw_fd());
    let (sends, recvs) = spec.directions();
    let total = cfg.bytes;
    let prefix = spec.prefix() as u64;
    let send = |st: &mut SendStats| {
        half(
            sock,
            || match cfg.wait_subflows {
                // A client's connection is fully established, and its path
                // manager joins, only once the peer has acknowledged data:
                // one write first, then wait.
                Some(n) => {
                    let first = (prefix + cfg.write_size as u64).min(total);
                    transfer::send_stream(fd, cfg, prefix, first, st)?;
                    wait_subflows(sock, n, cfg.timeout)?;
                    transfer::send_stream(fd, cfg, first, total, st)
                }
                None => transfer::send_stream(fd, cfg, prefix, total, st),
            },
            || {
                shutdown(sock, Shutdown::Write)?;
                if recvs {
                    Ok(())
                } else {
                    transfer::expect_eof(fd, cfg.timeout, "nothing")
                }
            },
        )
    };
    let recv = |v: &mut Verifier, st: &mut RecvStats| {
        let what = format!("the expected {total} bytes");
        half(
            sock,
            || transfer::recv_stream(fd, cfg, total, v, st),
            || transfer::expect_eof(fd, cfg.timeout, &what),
        )
    };
    let Tally {
        sent,
        received,
        verifier,
        ..
    } = tally;
    let (result, last) = if sends && recvs {
        let ((send_result, send_sample), (recv_result, recv_sample)) = std::thread::scope(|s| {
            let h = s.spawn(|| send(sent));
            let r = recv(verifier, received);
            let panicked = || (Err(anyhow!("sending thread panicked")), Sample::default());
            (h.join().unwrap_or_else(|_| panicked()), r)
        });
        // Once both sides have shut down, MPTCP_INFO may no longer answer.
        let sample = richer(recv_sample, send_sample);
        (both(send_result, recv_result), sample)
    } else if sends {
        send(sent)
    } else {
        recv(verifier, received)
    };
    *sample = last;
    result
}

/// One direction of a stream transfer: `transfer`, a sample of the
/// connection while it is surely still open, then `finish`. A failed
/// transfer shuts the socket down instead, so that the other direction,
/// on another thread, does not wait for nothing.
fn half(
    sock: &Socket,
    transfer: impl FnOnce() -> Result<()>,
    finish: impl FnOnce() -> Result<()>,
) -> (Result<()>, Sample) {
    let r = transfer();
    let sample = take_sample(sock.as_raw_fd());
    let r = match r {
        Ok(()) => finish(),
        Err(e) => {
            let _ = sock.shutdown(Shutdown::Both);
            Err(e)
        }
    };
    (r, sample)
}

/// Both directions of a two-way stream transfer failed.
#[derive(Debug)]
struct BothFailed {
    send: anyhow::Error,
    recv: anyhow::Error,
}

impl fmt::Display for BothFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}; {:#}", self.send, self.recv)
    }
}

impl std::error::Error for BothFailed {}

/// The result of a two-way transfer, from those of its two directions.
fn both(send: Result<()>, recv: Result<()>) -> Result<()> {
    match (send, recv) {
        (Err(send), Err(recv)) => Err(BothFailed { send, recv }.into()),
        (send, recv) => send.and(recv),
    }
}

/// The one-line error of a connection, if it failed: a data mismatch first
/// (the most useful), then what ended the data phase.
fn error_text(mismatch: Option<&Mismatch>, result: Result<()>) -> Option<String> {
    let mismatch = mismatch.map(Mismatch::message);
    let ended = result.err().map(|e| format!("{e:#}"));
    match (mismatch, ended) {
        (Some(m), Some(e)) => Some(format!("{m}; {e}")),
        (m, e) => m.or(e),
    }
}

pub fn mbps(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 * 8.0 / seconds / 1e6
    } else {
        0.0
    }
}

/// A finished connection, to report.
struct Report<'a> {
    spec: &'a ConnSpec<'a>,
    local: Option<String>,
    peer: Option<String>,
    mptcp_at_start: bool,
    seconds: f64,
    tally: Tally,
    sample: Sample,
}

/// What both report lines say about a connection.
struct Figures {
    error: Option<String>,
    bytes_received: u64,
    bytes: u64,
    mbps: f64,
    sha_up: Option<String>,
    sha_down: Option<String>,
    /// The main stream's: client to server for up, both and rr; server to
    /// client for down.
    sha: Option<String>,
    mptcp_on: bool,
    /// Including the first.
    subflows_total: Option<u8>,
}

impl Report<'_> {
    /// Print the JSON line and the human-readable ones, return the outcome.
    fn print(self, result: Result<()>) -> Outcome {
        let f = self.figures(result);
        let out = self.spec.out;
        out.json(&self.json(&f));
        out.info(&self.human(&f));
        if let Some(e) = &f.error {
            out.error(&format!(
                "{} conn {}: {e}",
                self.spec.role.name(),
                self.spec.index
            ));
        }
        Outcome {
            ok: f.error.is_none(),
            bytes: f.bytes,
            transactions: self.tally.rr.transactions,
            error: f.error,
        }
    }

    fn figures(&self, result: Result<()>) -> Figures {
        let (cfg, t) = (self.spec.cfg, &self.tally);
        let (_, recvs) = self.spec.directions();
        let recv_hash = if recvs { t.verifier.sha256_hex() } else { None };
        let send_hash = t.sent.hasher.as_ref().and_then(SendHash::sha256_hex);
        let (sha_up, sha_down) = match self.spec.role {
            Role::Client => (send_hash, recv_hash),
            Role::Server => (recv_hash, send_hash),
        };
        let sha = if cfg.rr.is_some() || cfg.direction != Direction::Down {
            sha_up.clone()
        } else {
            sha_down.clone()
        };
        let bytes_received = t.verifier.offset;
        let bytes = t.sent.bytes + bytes_received;
        let mptcp = self.sample.mptcp.as_ref();
        Figures {
            error: error_text(t.verifier.mismatch.as_ref(), result),
            bytes_received,
            bytes,
            mbps: mbps(bytes, self.seconds),
            sha_up,
            sha_down,
            sha,
            mptcp_on: self.mptcp_at_start || mptcp.is_some(),
            subflows_total: mptcp.map(|m| m.subflows_total.unwrap_or(m.subflows.saturating_add(1))),
        }
    }

    fn json(&self, f: &Figures) -> Value {
        let (spec, cfg, t, sample) = (self.spec, self.spec.cfg, &self.tally, &self.sample);
        let (sst, rst) = (&t.sent, &t.received);
        let syn_data = if f.mptcp_on {
            sample
                .subflows
                .as_ref()
                .and_then(|s| s.first())
                .map(|s| s.options & sys::TCPI_OPT_SYN_DATA != 0)
        } else {
            sample.tcp_options.map(|o| o & sys::TCPI_OPT_SYN_DATA != 0)
        };
        json!({
            "type": "connection",
            "role": spec.role.name(),
            "conn": spec.index,
            "protocol": if spec.tcp { "tcp" } else { "mptcp" },
            "mptcp": f.mptcp_on,
            "subflows": f.subflows_total,
            "local": self.local,
            "peer": self.peer,
            "mode": match cfg.rr { Some(Exchange::Echo(_)) => "rr", Some(Exchange::Http) => "http", None => "stream" },
            "direction": enum_name(&cfg.direction),
            "pattern": cfg.sent_by_client(spec.role == Role::Client).name(),
            "seed": cfg.seed,
            "send_mode": enum_name(&cfg.send_mode),
            "recv_mode": enum_name(&cfg.recv_mode),
            "bytes": f.bytes,
            "bytes_sent": sst.bytes,
            "bytes_received": f.bytes_received,
            "seconds": round(self.seconds, 6),
            "throughput_mbps": round(f.mbps, 3),
            "sha256": f.sha,
            "sha256_up": f.sha_up,
            "sha256_down": f.sha_down,
            "ok": f.error.is_none(),
            "verified": cfg.verify,
            "error": f.error,
            "mismatch": t.verifier.mismatch.as_ref().map(|m| m.json()),
            "mismatched_bytes": t.verifier.mismatched_bytes,
            "send_calls": sst.send_calls,
            "short_writes": sst.short_writes,
            "eagain": sst.eagain,
            "recv_calls": rst.recv_calls,
            "recv_eagain": rst.eagain,
            "short_reads": rst.short_reads,
            "peeks": rst.peeks,
            "peek_mismatches": rst.peek_mismatches,
            "trunc_calls": rst.trunc_calls,
            "trunc_bytes": t.verifier.skipped_bytes,
            "fastopen": spec.fastopen.map(|f| json!({"sendto_bytes": f.sendto_bytes, "syn_data_acked": syn_data})),
            "rr": if cfg.rr.is_some() { t.rr.json(self.seconds) } else { Value::Null },
            "mptcp_info": sample.mptcp.as_ref().map(|m| m.json()),
            "subflow_info": sample.subflows.as_ref().map(|v| v.iter().map(|s| s.json()).collect::<Vec<_>>()),
        })
    }

    fn human(&self, f: &Figures) -> String {
        let (spec, rr) = (self.spec, &self.tally.rr);
        let (sent, received) = (
            human_bytes(self.tally.sent.bytes),
            human_bytes(f.bytes_received),
        );
        let proto = match (spec.tcp, f.subflows_total) {
            (true, _) => "tcp".to_string(),
            (false, Some(n)) => format!("mptcp, {n} subflow{}", if n == 1 { "" } else { "s" }),
            (false, None) if f.mptcp_on => "mptcp".to_string(),
            (false, None) => "mptcp fell back to tcp".to_string(),
        };
        let what = match (spec.cfg.rr, rr.size) {
            (None, _) => format!("sent {sent}, received {received}"),
            (Some(_), Some(size)) => format!("{} transactions of {size} B", rr.transactions),
            (Some(_), None) => format!(
                "{} HTTP-like transactions, sent {sent}, received {received}",
                rr.transactions
            ),
        };
        let status = match &f.error {
            None => "OK".to_string(),
            Some(e) => format!("FAILED: {e}"),
        };
        format!(
            "{} conn {} ({} -> {}, {proto}): {what} in {:.3} s, {:.1} Mbit/s, sha256 {}: {status}",
            spec.role.name(),
            spec.index,
            self.local.as_deref().unwrap_or("?"),
            self.peer.as_deref().unwrap_or("?"),
            self.seconds,
            f.mbps,
            f.sha
                .as_deref()
                .map(|s| &s[..16.min(s.len())])
                .unwrap_or("-"),
        )
    }
}

/// A client connection that failed before it was established: print its
/// (shorter) report, return the outcome.
pub fn connect_failed(index: usize, out: Out, start: Instant, e: &anyhow::Error) -> Outcome {
    let msg = format!("{e:#}");
    out.error(&format!("client conn {index}: {msg}"));
    out.json(&json!({
        "type": "connection", "role": "client", "conn": index, "ok": false,
        "error": msg, "bytes": 0, "seconds": round(start.elapsed().as_secs_f64(), 6),
        "throughput_mbps": 0.0, "sha256": null,
    }));
    Outcome::failed(msg)
}

pub fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}
