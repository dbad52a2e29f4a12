//! mptcp-traffic: a traffic generator and checker for MPTCP (and TCP)
//! connections, for kselftest-style tests and benchmarks.
//!
//! The data stream is exactly the pattern bytes (no framing): the receiver
//! knows `--bytes` and the pattern, regenerates the expected stream and
//! compares every byte. One JSON line per connection and a summary JSON line
//! go to stdout; human-readable lines go to stderr.

mod conn;
mod pattern;
mod size;
mod sys;
mod transfer;
mod verify;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use conn::{ConnSpec, FastOpen, Out, Outcome, Role};
use pattern::{Pattern, PatternGen};
use serde_json::json;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use transfer::{Cfg, Direction, Exchange, RecvMode, SendMode};

#[derive(Parser, Debug)]
#[command(
    name = "mptcp-traffic",
    version,
    about = "Traffic generator and checker for MPTCP connections (tests and benchmarks)",
    after_help = "Output: one JSON line per connection and one summary JSON line on stdout; \
                  human-readable lines on stderr. Exit status 0 only if every connection passed."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Listen, serve --count connections, exit.
    Server(ServerArgs),
    /// Connect (--parallel connections) and transfer.
    Client(ClientArgs),
    /// Write pattern bytes to stdout (or with --sha256, their SHA-256): what a transfer carries.
    Pattern(PatternArgs),
}

#[derive(Args, Debug)]
struct PatternArgs {
    /// Number of bytes (suffixes K, M, G, T).
    #[arg(long, default_value = "1M", value_parser = size::parse_size, value_name = "N")]
    bytes: u64,
    /// Stream offset of the first byte.
    #[arg(long, default_value = "0", value_parser = size::parse_size, value_name = "N")]
    offset: u64,
    #[arg(long, value_enum, default_value_t = Pattern::Digits)]
    pattern: Pattern,
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// HTTP patterns: the first N messages (what --http sends in N transactions) instead of --bytes.
    #[arg(long, value_name = "N", conflicts_with_all = ["bytes", "offset"])]
    messages: Option<usize>,
    /// Print the SHA-256 (hex) of the bytes instead of the bytes.
    #[arg(long)]
    sha256: bool,
}

fn run_pattern(a: PatternArgs) -> Result<()> {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut gen = PatternGen::new(a.pattern, a.seed);
    let bytes = match a.messages {
        None => a.bytes,
        Some(0) => 0,
        Some(n) => match gen.message(n - 1) {
            Some((start, len)) => start + len as u64,
            None => bail!(
                "--messages applies to the http-requests and http-responses patterns, not {}",
                a.pattern.name()
            ),
        },
    };
    let mut h = Sha256::new();
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    while done < bytes {
        let n = ((bytes - done) as usize).min(buf.len());
        gen.fill(a.offset + done, &mut buf[..n]);
        if a.sha256 {
            h.update(&buf[..n]);
        } else {
            w.write_all(&buf[..n]).context("writing to stdout")?;
        }
        done += n as u64;
    }
    if a.sha256 {
        writeln!(w, "{}", verify::hex(&h.finalize())).context("writing to stdout")?;
    }
    w.flush().context("writing to stdout")
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Address to listen on, e.g. 0.0.0.0:4000, [::]:4000, [dead::1]:4000 (port 0: any free port).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: String,
    /// Number of connections to serve (concurrently) before exiting; 0 = serve forever.
    #[arg(long, default_value_t = 1, value_name = "N")]
    count: u64,
    /// Create this file once listening; it holds the bound address ("ADDR:PORT\n").
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// Server address, e.g. 10.0.1.1:4000 or [dead::1]:4000.
    #[arg(long, value_name = "ADDR:PORT")]
    connect: String,
    /// Number of concurrent connections, each doing the same transfer.
    #[arg(long, default_value_t = 1, value_name = "N")]
    parallel: u32,
    /// Local address to bind to before connecting (IP or IP:PORT).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// SO_MARK on the client socket (MPTCP copies it to every subflow), for
    /// the routing rules and tc filters of a test.
    #[arg(long, value_name = "N")]
    mark: Option<u32>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Plain TCP instead of MPTCP (IPPROTO_MPTCP = 262).
    #[arg(long)]
    tcp: bool,
    /// Stream length per direction and connection (suffixes K, M, G, T: powers of 1024).
    #[arg(long, default_value = "1M", value_parser = size::parse_size, value_name = "N")]
    bytes: u64,
    /// A stream without an end, instead of --bytes: send and receive until the
    /// connection fails (an end of stream is a failure too). The connection never
    /// passes; its report says what ended it and whether every byte received was right.
    #[arg(long, conflicts_with_all = ["bytes", "rr", "http"])]
    until_error: bool,
    /// Data pattern.
    #[arg(long, value_enum, default_value_t = Pattern::Digits)]
    pattern: Pattern,
    /// Seed of the random and text patterns (and of the small-write sizes).
    #[arg(long, default_value_t = 0, value_name = "N")]
    seed: u64,
    /// Who sends: up = client to server, down = server to client, both.
    #[arg(long, value_enum, default_value_t = Direction::Up)]
    direction: Direction,
    /// How the sender hands data to the kernel.
    #[arg(long, value_enum, default_value_t = SendMode::Blocking)]
    send_mode: SendMode,
    /// How the receiver reads.
    #[arg(long, value_enum, default_value_t = RecvMode::Read)]
    recv_mode: RecvMode,
    /// Bytes per send call (blocking, nonblocking, mmap-*; large uses at least 1M).
    #[arg(long, default_value = "64K", value_parser = size::parse_size, value_name = "N")]
    write_size: u64,
    /// Bytes per recv call (and per MSG_TRUNC skip, per MSG_WAITALL read).
    #[arg(long, default_value = "64K", value_parser = size::parse_size, value_name = "N")]
    read_size: u64,
    /// Request/response mode: the client sends SIZE bytes and waits for SIZE bytes back; the server echoes.
    #[arg(long, value_parser = size::parse_size, value_name = "SIZE")]
    rr: Option<u64>,
    /// HTTP-like request/response mode: the client sends the requests of the http-requests pattern one at a time,
    /// the server answers each with the response of the http-responses pattern (--pattern does not apply).
    #[arg(long, conflicts_with = "rr")]
    http: bool,
    /// Request/response (--rr, --http): run for this many seconds (default 10 unless --transactions).
    #[arg(long, value_parser = size::parse_secs, value_name = "SECS")]
    duration: Option<Duration>,
    /// Request/response (--rr, --http): run this many transactions.
    #[arg(long, value_name = "N")]
    transactions: Option<u64>,
    /// TCP Fast Open: the client sends its first chunk with sendto(MSG_FASTOPEN); the server sets TCP_FASTOPEN on its listener.
    #[arg(long)]
    fastopen: bool,
    /// The sending end of a stream: after the first write (MPTCP joins
    /// only once the peer has acknowledged data), wait until the connection
    /// has N additional subflows (MPTCP_INFO's mptcpi_subflows), for
    /// --timeout at most, then send the rest: a test that looks at one
    /// path's share of the stream sends it once that path is up.
    #[arg(long, value_name = "N")]
    wait_subflows: Option<u8>,
    /// Give up on connect/accept/IO after this many seconds without progress.
    #[arg(long, default_value = "60", value_parser = size::parse_secs, value_name = "SECS")]
    timeout: Duration,
    /// After the transfer, print the report, then keep the socket open until PATH
    /// exists (for --timeout at most): the connection is destroyed only then. A peer
    /// that waits for this end to close waits as long.
    #[arg(long, value_name = "PATH")]
    hold_until: Option<PathBuf>,
    /// Directory for the temporary files of the mmap-* and sendfile send modes.
    #[arg(long, value_name = "DIR")]
    tmpdir: Option<PathBuf>,
    /// Benchmarks: no SHA-256, no comparison with the pattern, no buffer checks (lengths are still checked).
    #[arg(long)]
    no_verify: bool,
    /// Only JSON output (errors still go to stderr).
    #[arg(long, short)]
    quiet: bool,
}

impl Common {
    fn cfg(&self) -> Result<Cfg> {
        let to_usize = |v: u64, name: &str| -> Result<usize> {
            let n = usize::try_from(v).map_err(|_| anyhow!("{name} too large"))?;
            if n == 0 {
                bail!("{name} must be at least 1");
            }
            if n > (1 << 30) {
                bail!("{name} must be at most 1G");
            }
            Ok(n)
        };
        let rr = match (self.rr, self.http) {
            (Some(s), _) => Some(Exchange::Echo(to_usize(s, "--rr")?)),
            (None, true) => Some(Exchange::Http),
            (None, false) => None,
        };
        if rr.is_none() && (self.duration.is_some() || self.transactions.is_some()) {
            bail!("--duration and --transactions need --rr or --http");
        }
        Ok(Cfg {
            pattern: self.pattern,
            seed: self.seed,
            bytes: if self.until_error {
                transfer::UNBOUNDED
            } else {
                self.bytes
            },
            direction: self.direction,
            send_mode: self.send_mode,
            recv_mode: self.recv_mode,
            write_size: to_usize(self.write_size, "--write-size")?,
            read_size: to_usize(self.read_size, "--read-size")?,
            rr,
            duration: self.duration.unwrap_or(Duration::from_secs(10)),
            transactions: self.transactions,
            timeout: if self.timeout.is_zero() {
                Duration::from_millis(1)
            } else {
                self.timeout
            },
            hold_until: self.hold_until.clone(),
            wait_subflows: self.wait_subflows,
            tmpdir: self.tmpdir.clone().unwrap_or_else(std::env::temp_dir),
            verify: !self.no_verify,
        })
    }
}

/// A receiver that peeks with MSG_WAITALL needs room for a whole read in
/// its receive buffer, or the peek waits for data the window keeps out:
/// a fixed SO_RCVBUF of four reads (at least 1 MiB), as autotuning grows
/// the buffer only as the application consumes.
fn size_recv_buffer(sock: &Socket, cfg: &Cfg) -> Result<()> {
    if cfg.recv_mode == RecvMode::PeekWaitall {
        sock.set_recv_buffer_size((4 * cfg.read_size).max(1 << 20))
            .context("setsockopt(SO_RCVBUF)")?;
    }
    Ok(())
}

fn resolve(s: &str) -> Result<SocketAddr> {
    s.to_socket_addrs()
        .with_context(|| format!("bad address '{s}' (expected ADDR:PORT, IPv6 as [ADDR]:PORT)"))?
        .next()
        .ok_or_else(|| anyhow!("address '{s}' resolves to nothing"))
}

fn new_socket(addr: &SocketAddr, tcp: bool) -> Result<Socket> {
    let proto = if tcp {
        Protocol::TCP
    } else {
        Protocol::from(sys::IPPROTO_MPTCP)
    };
    Socket::new(Domain::for_address(*addr), Type::STREAM, Some(proto)).map_err(|e| {
        if !tcp && matches!(e.raw_os_error(), Some(libc::EPROTONOSUPPORT) | Some(libc::ENOPROTOOPT) | Some(libc::EINVAL)) {
            anyhow!("cannot create an MPTCP socket ({e}): this kernel has no MPTCP or net.mptcp.enabled=0 (use --tcp for plain TCP)")
        } else {
            anyhow!("socket: {e}")
        }
    })
}

fn write_ready_file(path: &PathBuf, addr: &SocketAddr) -> Result<()> {
    // Write then rename, so a poller never sees a half-written file.
    let mut tmp = path.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{addr}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
    Ok(())
}

/// The end of a run, for its summary line.
struct Summary {
    role: Role,
    out: Out,
    outcomes: Vec<Outcome>,
    /// How many connections there should have been (0: any number).
    expected: u64,
    /// Seconds from the first connection to the end.
    wall: f64,
    rr: bool,
    /// Failures of the run that belong to no connection.
    extra_errors: Vec<String>,
}

impl Summary {
    /// Print the summary lines; true if the run passed.
    fn print(self) -> bool {
        let Summary {
            role,
            out,
            outcomes,
            expected,
            wall,
            rr,
            extra_errors,
        } = self;
        let okc = outcomes.iter().filter(|o| o.ok).count();
        let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
        let tr: u64 = outcomes.iter().map(|o| o.transactions).sum();
        let ok = okc == outcomes.len()
            && (expected == 0 || outcomes.len() as u64 == expected)
            && extra_errors.is_empty();
        let mut errors: Vec<String> = outcomes.iter().filter_map(|o| o.error.clone()).collect();
        errors.extend(extra_errors);
        let mbps = conn::mbps(bytes, wall);
        let tps = if wall > 0.0 { tr as f64 / wall } else { 0.0 };
        out.json(&json!({
            "type": "summary",
            "role": role.name(),
            "connections": outcomes.len(),
            "ok_connections": okc,
            "ok": ok,
            "bytes": bytes,
            "seconds": conn::round(wall, 6),
            "throughput_mbps": conn::round(mbps, 3),
            "cpu_seconds": conn::round(sys::cpu_seconds(), 6),
            "transactions": if rr { Some(tr) } else { None },
            "tps": if rr { Some(conn::round(tps, 1)) } else { None },
            "errors": errors,
        }));
        out.info(&format!(
            "{} summary: {okc}/{} connections OK, {}, {:.3} s, {:.1} Mbit/s{}",
            role.name(),
            outcomes.len(),
            size::human_bytes(bytes),
            wall,
            mbps,
            if rr {
                format!(", {tr} transactions, {tps:.1} tps")
            } else {
                String::new()
            }
        ));
        ok
    }
}

fn run_server(a: ServerArgs) -> Result<bool> {
    let out = Out {
        quiet: a.common.quiet,
    };
    let cfg = Arc::new(a.common.cfg()?);
    let tcp = a.common.tcp;
    let addr = resolve(&a.listen)?;
    let sock = new_socket(&addr, tcp)?;
    size_recv_buffer(&sock, &cfg)?;
    sock.set_reuse_address(true).context("SO_REUSEADDR")?;
    sock.bind(&addr.into())
        .with_context(|| format!("bind {addr}"))?;
    if a.common.fastopen {
        sys::setsockopt_int(sock.as_raw_fd(), libc::SOL_TCP, libc::TCP_FASTOPEN, 64)
            .context("setsockopt(TCP_FASTOPEN)")?;
    }
    sock.listen(128)
        .with_context(|| format!("listen on {addr}"))?;
    let bound = conn::ip_addr(sock.local_addr()).ok_or_else(|| anyhow!("getsockname failed"))?;
    out.info(&format!(
        "server listening on {bound} ({}), serving {} connection(s)",
        if tcp { "tcp" } else { "mptcp" },
        if a.count == 0 {
            "unlimited".to_string()
        } else {
            a.count.to_string()
        }
    ));
    if let Some(p) = &a.ready_file {
        write_ready_file(p, &bound)?;
    }
    let mut start: Option<Instant> = None;
    let mut handles = Vec::new();
    let mut extra_errors = Vec::new();
    let mut i = 0u64;
    while a.count == 0 || i < a.count {
        let ready = if a.count == 0 {
            sys::poll_fd(sock.as_raw_fd(), libc::POLLIN, Duration::from_secs(3600))
        } else {
            sys::poll_fd(sock.as_raw_fd(), libc::POLLIN, cfg.timeout)
        }
        .context("poll on the listening socket")?;
        if !ready {
            if a.count == 0 {
                continue;
            }
            let e = format!(
                "timeout: no client connected within {:.1} s ({i} of {} connections served)",
                cfg.timeout.as_secs_f64(),
                a.count
            );
            out.error(&e);
            extra_errors.push(e);
            break;
        }
        let (cs, _) = match sock.accept() {
            Ok(x) => x,
            Err(e) => {
                let e = format!("accept: {e}");
                out.error(&e);
                extra_errors.push(e);
                break;
            }
        };
        start.get_or_insert_with(Instant::now);
        let cfg = Arc::clone(&cfg);
        let index = i as usize;
        let h = std::thread::Builder::new()
            .name(format!("conn{index}"))
            .spawn(move || {
                let spec = ConnSpec {
                    role: Role::Server,
                    index,
                    cfg: &cfg,
                    tcp,
                    out,
                    fastopen: None,
                    start: Instant::now(),
                };
                conn::run(cs, &spec)
            })
            .context("spawning a connection thread")?;
        handles.push(h);
        i += 1;
    }
    let outcomes = join_all(handles);
    let wall = start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
    let summary = Summary {
        role: Role::Server,
        out,
        outcomes,
        expected: a.count,
        wall,
        rr: cfg.rr.is_some(),
        extra_errors,
    };
    Ok(summary.print())
}

fn join_all(handles: Vec<std::thread::JoinHandle<Outcome>>) -> Vec<Outcome> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Outcome::failed("connection thread panicked".into()))
        })
        .collect()
}

fn parse_bind(s: &str) -> Result<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 0));
    }
    let t = s.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 0));
    }
    resolve(s)
}

/// Set up one client connection: socket, bind, connect (or TFO sendto).
fn client_connect(
    addr: SocketAddr,
    bind: Option<SocketAddr>,
    mark: Option<u32>,
    common: &Common,
    cfg: &Cfg,
) -> Result<(Socket, Option<FastOpen>)> {
    let sock = new_socket(&addr, common.tcp)?;
    size_recv_buffer(&sock, cfg)?;
    if let Some(m) = mark {
        sock.set_mark(m).context("setsockopt(SO_MARK)")?;
    }
    if let Some(b) = bind {
        sock.bind(&b.into()).with_context(|| format!("bind {b}"))?;
    }
    let sa = SockAddr::from(addr);
    if common.fastopen {
        let mut gen = PatternGen::new(cfg.sent_by_client(true), cfg.seed);
        let first = match cfg.rr {
            Some(Exchange::Echo(s)) => s,
            Some(Exchange::Http) => gen.message(0).map_or(0, |m| m.1),
            None => (cfg.write_size as u64).min(cfg.bytes) as usize,
        };
        let data = gen.bytes(0, first);
        sock.set_write_timeout(Some(cfg.timeout))
            .context("SO_SNDTIMEO")?;
        let n = sock
            .send_to_with_flags(&data, &sa, libc::MSG_FASTOPEN | libc::MSG_NOSIGNAL)
            .with_context(|| format!("connect to {addr} with sendto(MSG_FASTOPEN)"))?;
        Ok((sock, Some(FastOpen { sendto_bytes: n })))
    } else {
        sock.connect_timeout(&sa, cfg.timeout)
            .with_context(|| format!("connect to {addr}"))?;
        Ok((sock, None))
    }
}

fn run_client(a: ClientArgs) -> Result<bool> {
    let out = Out {
        quiet: a.common.quiet,
    };
    let cfg = Arc::new(a.common.cfg()?);
    if a.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    if a.common.fastopen && cfg.rr.is_none() && (cfg.direction == Direction::Down || cfg.bytes == 0)
    {
        bail!("--fastopen needs the client to send first (--direction up or both, --bytes > 0, or --rr)");
    }
    let addr = resolve(&a.connect)?;
    let bind = match &a.bind {
        Some(b) => Some(parse_bind(b)?),
        None => None,
    };
    let mark = a.mark;
    let common = Arc::new(a.common.clone());
    let start = Instant::now();
    let mut handles = Vec::new();
    for index in 0..a.parallel as usize {
        let cfg = Arc::clone(&cfg);
        let common = Arc::clone(&common);
        let h = std::thread::Builder::new()
            .name(format!("conn{index}"))
            .spawn(move || {
                let t0 = Instant::now();
                match client_connect(addr, bind, mark, &common, &cfg) {
                    Ok((sock, fastopen)) => {
                        let spec = ConnSpec {
                            role: Role::Client,
                            index,
                            cfg: &cfg,
                            tcp: common.tcp,
                            out,
                            fastopen,
                            start: t0,
                        };
                        conn::run(sock, &spec)
                    }
                    Err(e) => conn::connect_failed(index, out, t0, &e),
                }
            })
            .context("spawning a connection thread")?;
        handles.push(h);
    }
    let outcomes = join_all(handles);
    let wall = start.elapsed().as_secs_f64();
    let summary = Summary {
        role: Role::Client,
        out,
        outcomes,
        expected: a.parallel as u64,
        wall,
        rr: cfg.rr.is_some(),
        extra_errors: Vec::new(),
    };
    Ok(summary.print())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // A bad command line exits 1 like any other failure (clap's
            // own default is 2); --help and --version exit 0.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("mptcp-traffic: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ok: the run went through, and every connection was reported (the
/// status says whether they all passed). Err: what stopped the run.
fn run(cli: Cli) -> Result<ExitCode> {
    let passed = match cli.cmd {
        Cmd::Server(a) => run_server(a)?,
        Cmd::Client(a) => run_client(a)?,
        Cmd::Pattern(a) => {
            run_pattern(a)?;
            true
        }
    };
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
