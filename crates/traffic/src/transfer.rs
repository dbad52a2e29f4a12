//! The data phase of one connection: sending, receiving, request/response.

use crate::pattern::{Pattern, PatternGen, SplitMix};
use crate::sys::{self, Watchdog};
use crate::verify::{hex, Mismatch, SendHash, Verifier};
use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// The client sends, the server receives.
    Up,
    /// The server sends, the client receives.
    Down,
    /// Both send and receive at the same time.
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SendMode {
    /// Blocking write_all in --write-size chunks.
    Blocking,
    /// O_NONBLOCK + poll(2); short writes resumed from the unsent offset.
    Nonblocking,
    /// Many small writes of random sizes 1..=100 bytes.
    Small,
    /// Single send calls of at least 1 MiB.
    Large,
    /// Send from a PROT_READ MAP_PRIVATE mapping of a temporary file.
    MmapRo,
    /// Send from a MAP_SHARED read-write file mapping; verify the file is unchanged afterwards.
    MmapShared,
    /// sendfile(2) from a temporary file.
    Sendfile,
    /// splice(2) from a pipe into the socket.
    Splice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecvMode {
    /// Plain recv loop.
    Read,
    /// recv(MSG_PEEK) then recv of the same bytes; both must agree.
    Peek,
    /// Alternate plain reads with recv(MSG_TRUNC) skips of --read-size bytes.
    Trunc,
    /// recv(MSG_WAITALL) of --read-size bytes.
    Waitall,
    /// recv(MSG_PEEK | MSG_WAITALL) of --read-size bytes, which blocks until
    /// all of them are there (every third chunk after a plain MSG_PEEK),
    /// then the same bytes taken again, alternately by a MSG_WAITALL read,
    /// which must return what was peeked, and a MSG_TRUNC discard.  The
    /// receive buffer is set to four reads (at least 1 MiB).
    PeekWaitall,
}

pub fn enum_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// What one request/response transaction exchanges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// The client sends SIZE bytes of the pattern, the server echoes them.
    Echo(usize),
    /// Request k of the http-requests pattern, answered by response k of
    /// http-responses.
    Http,
}

impl Exchange {
    /// Bytes per request and response, when they are all the same size.
    fn echo_size(self) -> Option<usize> {
        match self {
            Exchange::Echo(size) => Some(size),
            Exchange::Http => None,
        }
    }
}

/// Where each transaction's request and response sit in their streams.
struct Plan {
    exchange: Exchange,
    requests: PatternGen,
    responses: PatternGen,
}

impl Plan {
    fn new(cfg: &Cfg, exchange: Exchange) -> Plan {
        Plan {
            exchange,
            requests: PatternGen::new(cfg.sent_by_client(true), cfg.seed),
            responses: PatternGen::new(cfg.sent_by_client(false), cfg.seed),
        }
    }

    /// Stream offset and length of transaction `t`'s request or response.
    fn message(&mut self, t: u64, request: bool) -> Result<(u64, usize)> {
        match self.exchange {
            Exchange::Echo(size) => Ok((t * size as u64, size)),
            Exchange::Http => {
                let k = usize::try_from(t).map_err(|_| anyhow!("transaction {t}: too many"))?;
                let gen = if request {
                    &mut self.requests
                } else {
                    &mut self.responses
                };
                gen.message(k)
                    .ok_or_else(|| anyhow!("the HTTP exchange needs the http patterns"))
            }
        }
    }
}

/// The length of a stream without an end (--until-error): it runs until
/// the connection fails.
pub const UNBOUNDED: u64 = u64::MAX;

/// "N of M bytes" of a stream, or "N bytes" of an unbounded one.
fn bytes_of(done: u64, total: u64) -> String {
    if total == UNBOUNDED {
        format!("{done} bytes")
    } else {
        format!("{done} of {total} bytes")
    }
}

/// Transfer settings shared by both roles.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub pattern: Pattern,
    pub seed: u64,
    /// Stream length per direction, or UNBOUNDED.
    pub bytes: u64,
    pub direction: Direction,
    pub send_mode: SendMode,
    pub recv_mode: RecvMode,
    pub write_size: usize,
    pub read_size: usize,
    /// Request/response mode (--rr or --http) instead of streams.
    pub rr: Option<Exchange>,
    pub duration: Duration,
    pub transactions: Option<u64>,
    pub timeout: Duration,
    /// --hold-until: after the report, keep the socket open until this file exists.
    pub hold_until: Option<PathBuf>,
    /// --wait-subflows: additional subflows to wait for before the data phase.
    pub wait_subflows: Option<u8>,
    pub tmpdir: PathBuf,
    /// false (--no-verify): no hashing, no comparison, no buffer checks.
    pub verify: bool,
}

impl Cfg {
    /// The pattern the client (`true`) or the server sends.
    pub fn sent_by_client(&self, client: bool) -> Pattern {
        match (self.rr, client) {
            (Some(Exchange::Http), true) => Pattern::HttpRequests,
            (Some(Exchange::Http), false) => Pattern::HttpResponses,
            _ => self.pattern,
        }
    }

    /// The check of what an end receives, which the peer sends with `pattern`.
    pub fn verifier(&self, pattern: Pattern) -> Verifier {
        if self.verify {
            Verifier::new(pattern, self.seed)
        } else {
            Verifier::unchecked(pattern, self.seed)
        }
    }
}

#[derive(Default)]
pub struct SendStats {
    pub bytes: u64,
    pub send_calls: u64,
    pub short_writes: u64,
    pub eagain: u64,
    /// The hash of every byte handed to the kernel; None until this end
    /// starts sending.
    pub hasher: Option<SendHash>,
}

impl SendStats {
    /// This end starts sending: from now on, what it sends is hashed.
    fn start_hashing(&mut self, cfg: &Cfg) {
        self.hasher = Some(if cfg.verify {
            SendHash::new()
        } else {
            SendHash::unchecked()
        });
    }

    fn hash(&mut self, sent: &[u8]) {
        if let Some(h) = &mut self.hasher {
            h.update(sent);
        }
    }
}

#[derive(Debug, Default)]
pub struct RecvStats {
    pub recv_calls: u64,
    pub eagain: u64,
    pub short_reads: u64,
    pub peeks: u64,
    pub peek_mismatches: u64,
    pub trunc_calls: u64,
}

/// What one end of a connection counts, hashes and checks in its data phase.
pub struct Tally {
    pub sent: SendStats,
    pub received: RecvStats,
    /// Checks what arrives against the pattern the peer sends.
    pub verifier: Verifier,
    pub rr: RrStats,
}

impl Tally {
    /// The tally of the client's (`true`) or the server's end.
    pub fn new(cfg: &Cfg, client: bool) -> Tally {
        Tally {
            sent: SendStats::default(),
            received: RecvStats::default(),
            // What this end receives is what the peer sends.
            verifier: cfg.verifier(cfg.sent_by_client(!client)),
            rr: RrStats::default(),
        }
    }
}

pub fn set_nonblocking(fd: RawFd) -> Result<()> {
    // SAFETY: fcntl on a valid fd.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
        bail!("fcntl(O_NONBLOCK): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sending on a connected socket: waits out EAGAIN until the watchdog
/// gives up, and counts what it does.
struct Tx<'a> {
    fd: RawFd,
    wd: &'a Watchdog,
    st: &'a mut SendStats,
}

impl<'a> Tx<'a> {
    fn new(fd: RawFd, wd: &'a Watchdog, st: &'a mut SendStats) -> Self {
        Tx { fd, wd, st }
    }

    /// Send the whole buffer, resuming short writes from the unsent offset and
    /// waiting with poll(2) on EAGAIN.
    fn send_all(&mut self, buf: &[u8]) -> Result<()> {
        let mut off = 0;
        while off < buf.len() {
            self.st.send_calls += 1;
            match sys::send(self.fd, &buf[off..], 0) {
                Ok(n) => {
                    if n < buf.len() - off {
                        self.st.short_writes += 1;
                    }
                    off += n;
                    self.wd.progress();
                }
                Err(e) if sys::would_block(&e) => {
                    self.st.eagain += 1;
                    self.wd.wait(self.fd, libc::POLLOUT, "sending")?;
                }
                Err(e) => bail!("send: {e}"),
            }
        }
        Ok(())
    }

    /// A zero-copy system call (`name`: sendfile, splice) that moves up to
    /// `left` bytes (`held`: where they wait) to the socket: retried on
    /// EINTR and, after a wait, on EAGAIN. Returns how many bytes it moved.
    fn zero_copy(
        &mut self,
        name: &str,
        left: usize,
        held: &str,
        mut call: impl FnMut() -> isize,
    ) -> Result<usize> {
        loop {
            self.st.send_calls += 1;
            let r = call();
            if r < 0 {
                let e = std::io::Error::last_os_error();
                if sys::would_block(&e) {
                    self.st.eagain += 1;
                    self.wd.wait(self.fd, libc::POLLOUT, "sending")?;
                    continue;
                }
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                bail!("{name}: {e}");
            }
            if r == 0 {
                bail!("{name}: returned 0 with {left} bytes {held}");
            }
            if (r as usize) < left {
                self.st.short_writes += 1;
            }
            self.wd.progress();
            return Ok(r as usize);
        }
    }
}

/// Receiving on a connected socket: waits out EAGAIN until the watchdog
/// gives up, fails on EOF, and counts what it does.
struct Rx<'a> {
    fd: RawFd,
    wd: &'a Watchdog,
    st: &'a mut RecvStats,
}

impl<'a> Rx<'a> {
    fn new(fd: RawFd, wd: &'a Watchdog, st: &'a mut RecvStats) -> Self {
        Rx { fd, wd, st }
    }

    /// One recv(2) with `flags` into `buf`, when `done` of the `total`
    /// expected stream bytes are in (for the error messages).
    fn recv(&mut self, buf: &mut [u8], flags: i32, done: u64, total: u64) -> Result<usize> {
        loop {
            self.st.recv_calls += 1;
            match sys::recv(self.fd, buf, flags) {
                Ok(0) if !buf.is_empty() => {
                    bail!(
                        "connection closed by the peer after {}",
                        bytes_of(done, total)
                    );
                }
                Ok(n) => {
                    self.wd.progress();
                    return Ok(n);
                }
                Err(e) if sys::would_block(&e) => {
                    self.st.eagain += 1;
                    self.wd.wait(self.fd, libc::POLLIN, "receiving")?;
                }
                Err(e) => bail!("recv after {}: {e}", bytes_of(done, total)),
            }
        }
    }
}

/// Size of the temporary files of the file-based send modes: larger
/// transfers use a fresh file per window, so disk use stays bounded.
const FILE_WINDOW: u64 = 64 << 20;
const GEN_PIECE: usize = 1 << 20;

/// A memory mapping, unmapped on drop.
struct Mmap {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mmap {
    fn new(file: &File, len: usize, prot: i32, flags: i32) -> Result<Mmap> {
        // SAFETY: mapping a file we own, length > 0, checked for MAP_FAILED.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            bail!("mmap of {len} bytes: {}", std::io::Error::last_os_error());
        }
        Ok(Mmap { ptr, len })
    }
    fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is readable for len bytes while self lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
    fn msync(&self) -> Result<()> {
        // SAFETY: valid mapping.
        if unsafe { libc::msync(self.ptr, self.len, libc::MS_SYNC) } < 0 {
            bail!("msync: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Compare memory at stream offset `off` with the pattern.
fn check_region(gen: &mut PatternGen, off: u64, data: &[u8]) -> Option<Mismatch> {
    let mut exp = vec![0u8; GEN_PIECE.min(data.len())];
    for (i, piece) in data.chunks(GEN_PIECE).enumerate() {
        let o = off + (i * GEN_PIECE) as u64;
        gen.fill(o, &mut exp[..piece.len()]);
        if let Some(m) = Mismatch::find(o, &exp[..piece.len()], piece) {
            return Some(m);
        }
    }
    None
}

/// Compare a file (holding stream bytes from `off` on) with the pattern.
fn check_file(gen: &mut PatternGen, off: u64, file: &File, len: usize) -> Result<Option<Mismatch>> {
    let mut got = vec![0u8; GEN_PIECE.min(len)];
    let mut exp = vec![0u8; GEN_PIECE.min(len)];
    let mut pos = 0usize;
    while pos < len {
        let n = GEN_PIECE.min(len - pos);
        file.read_exact_at(&mut got[..n], pos as u64)
            .context("reading the temporary file back")?;
        gen.fill(off + pos as u64, &mut exp[..n]);
        if let Some(m) = Mismatch::find(off + pos as u64, &exp[..n], &got[..n]) {
            return Ok(Some(m));
        }
        pos += n;
    }
    Ok(None)
}

/// Send stream bytes `start..total` with the configured send mode. Bytes
/// `0..start` already went out with TCP Fast Open: they are only hashed.
pub fn send_stream(fd: RawFd, cfg: &Cfg, start: u64, total: u64, st: &mut SendStats) -> Result<()> {
    st.bytes = start;
    if cfg.send_mode == SendMode::Nonblocking {
        set_nonblocking(fd)?;
    }
    st.start_hashing(cfg);
    if start > 0 {
        st.hash(&PatternGen::new(cfg.pattern, cfg.seed).bytes(0, start as usize));
    }
    let wd = Watchdog::new(cfg.timeout);
    let mut sender = Sender {
        cfg,
        gen: PatternGen::new(cfg.pattern, cfg.seed),
        tx: Tx::new(fd, &wd, st),
    };
    match cfg.send_mode {
        SendMode::Blocking | SendMode::Nonblocking | SendMode::Small | SendMode::Large => {
            sender.buffers(start, total)
        }
        SendMode::MmapRo | SendMode::MmapShared | SendMode::Sendfile => sender.files(start, total),
        SendMode::Splice => sender.splice(start, total),
    }
}

/// The sending end of a stream: the pattern, handed to the kernel as
/// --send-mode says.
struct Sender<'a> {
    cfg: &'a Cfg,
    gen: PatternGen,
    tx: Tx<'a>,
}

impl Sender<'_> {
    /// Stream bytes `start..total` from memory buffers.
    fn buffers(&mut self, start: u64, total: u64) -> Result<()> {
        let cfg = self.cfg;
        let chunk = match cfg.send_mode {
            SendMode::Large => cfg.write_size.max(1 << 20),
            SendMode::Small => 100,
            _ => cfg.write_size,
        };
        let mut pristine = vec![0u8; chunk];
        let mut buf = vec![0u8; chunk];
        let mut rng = SplitMix::new(cfg.seed ^ 0x0073_6d61_6c6c);
        let mut off = start;
        while off < total {
            let want = if cfg.send_mode == SendMode::Small {
                rng.range(1, 100) as usize
            } else {
                chunk
            };
            let n = (want as u64).min(total - off) as usize;
            self.gen.fill(off, &mut pristine[..n]);
            self.tx.st.hash(&pristine[..n]);
            if cfg.verify {
                buf[..n].copy_from_slice(&pristine[..n]);
                self.tx.send_all(&buf[..n])?;
                // Invariant: the kernel must never write into application memory.
                if let Some(m) = Mismatch::find(off, &pristine[..n], &buf[..n]) {
                    bail!("the send buffer changed during send() ({})", m.message());
                }
            } else {
                self.tx.send_all(&pristine[..n])?;
            }
            off += n as u64;
            self.tx.st.bytes = off;
        }
        Ok(())
    }

    /// Stream bytes `start..total` from temporary files: mapped, or with sendfile(2).
    fn files(&mut self, start: u64, total: u64) -> Result<()> {
        let cfg = self.cfg;
        let mut buf = vec![0u8; GEN_PIECE];
        let mut off = start;
        while off < total {
            let w = (total - off).min(FILE_WINDOW) as usize;
            // A fresh file per window: pages still referenced by in-flight
            // sendfile() skbs are never rewritten.
            let mut file = tempfile::tempfile_in(&cfg.tmpdir).with_context(|| {
                format!("creating a temporary file in {}", cfg.tmpdir.display())
            })?;
            let mut pos = 0usize;
            while pos < w {
                let n = GEN_PIECE.min(w - pos);
                self.gen.fill(off + pos as u64, &mut buf[..n]);
                self.tx.st.hash(&buf[..n]);
                file.write_all(&buf[..n])
                    .context("writing the temporary file")?;
                pos += n;
            }
            match cfg.send_mode {
                SendMode::MmapRo => {
                    let map = Mmap::new(&file, w, libc::PROT_READ, libc::MAP_PRIVATE)?;
                    self.mapping(&map, off)?;
                    if cfg.verify {
                        if let Some(m) = check_region(&mut self.gen, off, map.as_slice()) {
                            bail!(
                                "the read-only mapping changed during send() ({})",
                                m.message()
                            );
                        }
                    }
                }
                SendMode::MmapShared => {
                    {
                        let map = Mmap::new(
                            &file,
                            w,
                            libc::PROT_READ | libc::PROT_WRITE,
                            libc::MAP_SHARED,
                        )?;
                        self.mapping(&map, off)?;
                        map.msync()?;
                    }
                    file.sync_data().context("fsync of the MAP_SHARED file")?;
                    self.check_file(
                        &file,
                        off,
                        w,
                        "the MAP_SHARED file changed on disk during send()",
                    )?;
                }
                _ => {
                    let (fd, file_fd) = (self.tx.fd, file.as_raw_fd());
                    let mut foff: libc::off_t = 0;
                    let end = w as libc::off_t;
                    while foff < end {
                        let left = (end - foff) as usize;
                        self.tx.zero_copy("sendfile", left, "left", || {
                            // SAFETY: valid fds and a pointer to a local offset.
                            unsafe { libc::sendfile(fd, file_fd, &mut foff, left) }
                        })?;
                        self.tx.st.bytes = off + foff as u64;
                    }
                    self.check_file(
                        &file,
                        off,
                        w,
                        "the sendfile() source file changed during send",
                    )?;
                }
            }
            off += w as u64;
            self.tx.st.bytes = off;
        }
        Ok(())
    }

    /// Send a mapping of stream bytes from `off` on, in --write-size pieces.
    fn mapping(&mut self, map: &Mmap, off: u64) -> Result<()> {
        let size = self.cfg.write_size;
        for (i, piece) in map.as_slice().chunks(size).enumerate() {
            self.tx.send_all(piece)?;
            self.tx.st.bytes = off + (i * size + piece.len()) as u64;
        }
        Ok(())
    }

    /// With checking on, the file sent from (stream bytes `off..off + len`)
    /// must still hold the pattern: else fail with `what` changed.
    fn check_file(&mut self, file: &File, off: u64, len: usize, what: &str) -> Result<()> {
        if self.cfg.verify {
            if let Some(m) = check_file(&mut self.gen, off, file, len)? {
                bail!("{what} ({})", m.message());
            }
        }
        Ok(())
    }

    /// Stream bytes `start..total` through a pipe with splice(2).
    fn splice(&mut self, start: u64, total: u64) -> Result<()> {
        let mut fds = [0i32; 2];
        // SAFETY: fds is a valid array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            bail!("pipe2: {}", std::io::Error::last_os_error());
        }
        // SAFETY: pipe2 just returned these fds; we own them.
        let (pr, pw) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A larger pipe means fewer calls; fall back to the default size.
        // SAFETY: fcntl on our own pipe fds.
        unsafe {
            libc::fcntl(pw.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
        }
        let cap = unsafe { libc::fcntl(pw.as_raw_fd(), libc::F_GETPIPE_SZ) };
        let cap = if cap > 0 { cap as usize } else { 65536 };
        let mut buf = vec![0u8; cap];
        let fd = self.tx.fd;
        let mut off = start;
        while off < total {
            let n = (cap as u64).min(total - off) as usize;
            self.gen.fill(off, &mut buf[..n]);
            self.tx.st.hash(&buf[..n]);
            // The pipe is empty and n <= its capacity: this write does not block.
            let mut w = 0;
            while w < n {
                // SAFETY: writing from a valid slice.
                let r = unsafe { libc::write(pw.as_raw_fd(), buf[w..n].as_ptr().cast(), n - w) };
                if r < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    bail!("write to pipe: {e}");
                }
                w += r as usize;
            }
            let more = if off + (n as u64) < total {
                libc::SPLICE_F_MORE
            } else {
                0
            };
            let mut left = n;
            while left > 0 {
                let moved = self.tx.zero_copy("splice", left, "in the pipe", || {
                    // SAFETY: valid fds, null offsets (pipe and socket).
                    unsafe {
                        libc::splice(
                            pr.as_raw_fd(),
                            std::ptr::null_mut(),
                            fd,
                            std::ptr::null_mut(),
                            left,
                            libc::SPLICE_F_MOVE | more,
                        )
                    }
                })?;
                left -= moved;
                self.tx.st.bytes = off + (n - left) as u64;
            }
            off += n as u64;
        }
        Ok(())
    }
}

/// The peek receive modes read stream bytes twice; both reads must agree.
#[derive(Clone, Copy)]
enum Reread {
    /// MSG_PEEK, then a read of the same bytes.
    PeekRead,
    /// A plain MSG_PEEK, then MSG_PEEK | MSG_WAITALL.
    PeekWaitallPeek,
    /// MSG_PEEK | MSG_WAITALL, then a read of the same bytes.
    WaitallPeekRead,
}

impl Reread {
    /// Compare the bytes of the `first` and the `then` read from stream
    /// offset `off`: a difference is counted and described.
    fn check(self, off: u64, first: &[u8], then: &[u8], st: &mut RecvStats) -> Option<String> {
        let m = Mismatch::find(off, first, then)?;
        st.peek_mismatches += 1;
        let (what, first, then) = match self {
            Reread::PeekRead => (
                "MSG_PEEK returned other bytes than the read that followed it",
                "peeked",
                "got",
            ),
            Reread::PeekWaitallPeek => (
                "MSG_PEEK | MSG_WAITALL returned other bytes than the plain MSG_PEEK before it",
                "first",
                "then",
            ),
            Reread::WaitallPeekRead => (
                "MSG_PEEK | MSG_WAITALL returned other bytes than the read that followed it",
                "peeked",
                "got",
            ),
        };
        Some(format!(
            "{what}: at stream offset {} {first} {} {then} {}",
            m.offset,
            hex(&m.expected),
            hex(&m.got)
        ))
    }
}

/// Receive exactly `total` bytes with the configured receive mode, checking them.
pub fn recv_stream(
    fd: RawFd,
    cfg: &Cfg,
    total: u64,
    v: &mut Verifier,
    st: &mut RecvStats,
) -> Result<()> {
    let wd = Watchdog::new(cfg.timeout);
    let mut rx = Rx::new(fd, &wd, st);
    let mut buf = vec![0u8; cfg.read_size];
    let mut buf2 = if matches!(cfg.recv_mode, RecvMode::Peek | RecvMode::PeekWaitall) {
        vec![0u8; cfg.read_size]
    } else {
        Vec::new()
    };
    let mut chunk_no = 0u64;
    // The first reread that disagreed (`or`, not `or_else`: every
    // disagreement is counted).
    let mut reread_error: Option<String> = None;
    while v.offset < total {
        let want = (cfg.read_size as u64).min(total - v.offset) as usize;
        match cfg.recv_mode {
            RecvMode::Read => {
                let n = rx.recv(&mut buf[..want], 0, v.offset, total)?;
                v.check(&buf[..n]);
            }
            RecvMode::Waitall => {
                let n = rx.recv(&mut buf[..want], libc::MSG_WAITALL, v.offset, total)?;
                if n < want {
                    rx.st.short_reads += 1;
                }
                v.check(&buf[..n]);
            }
            RecvMode::Peek => {
                let n = rx.recv(&mut buf[..want], libc::MSG_PEEK, v.offset, total)?;
                rx.st.peeks += 1;
                let m = rx.recv(&mut buf2[..n], 0, v.offset, total)?;
                reread_error =
                    reread_error.or(Reread::PeekRead.check(v.offset, &buf[..m], &buf2[..m], rx.st));
                v.check(&buf2[..m]);
            }
            RecvMode::PeekWaitall => {
                let plain_peek = if chunk_no % 3 == 2 {
                    rx.st.peeks += 1;
                    rx.recv(&mut buf2[..want], libc::MSG_PEEK, v.offset, total)?
                } else {
                    0
                };
                let flags = libc::MSG_PEEK | libc::MSG_WAITALL;
                let n = rx.recv(&mut buf[..want], flags, v.offset, total)?;
                rx.st.peeks += 1;
                if n < want {
                    rx.st.short_reads += 1;
                }
                let k = plain_peek.min(n);
                reread_error = reread_error.or(Reread::PeekWaitallPeek.check(
                    v.offset,
                    &buf2[..k],
                    &buf[..k],
                    rx.st,
                ));
                if chunk_no.is_multiple_of(2) {
                    let m = rx.recv(&mut buf2[..n], libc::MSG_WAITALL, v.offset, total)?;
                    reread_error = reread_error.or(Reread::WaitallPeekRead.check(
                        v.offset,
                        &buf[..m],
                        &buf2[..m],
                        rx.st,
                    ));
                    v.check(&buf2[..m]);
                } else {
                    let m = rx.recv(&mut buf2[..n], libc::MSG_TRUNC, v.offset, total)?;
                    rx.st.trunc_calls += 1;
                    if m != n {
                        bail!("recv(MSG_TRUNC) of {n} peeked bytes returned {m}");
                    }
                    v.check(&buf[..m]);
                }
                chunk_no += 1;
            }
            RecvMode::Trunc => {
                if chunk_no % 2 == 1 {
                    let n = rx.recv(&mut buf[..want], libc::MSG_TRUNC, v.offset, total)?;
                    rx.st.trunc_calls += 1;
                    if n > want {
                        bail!("recv(MSG_TRUNC) of {want} bytes returned {n}");
                    }
                    v.skip(n);
                } else {
                    let n = rx.recv(&mut buf[..want], 0, v.offset, total)?;
                    v.check(&buf[..n]);
                }
                chunk_no += 1;
            }
        }
    }
    if let Some(e) = reread_error {
        bail!(e);
    }
    Ok(())
}

/// After the expected bytes, the peer must close: recv returns 0.
pub fn expect_eof(fd: RawFd, timeout: Duration, what: &str) -> Result<()> {
    let wd = Watchdog::new(timeout);
    let mut b = [0u8; 256];
    loop {
        match sys::recv(fd, &mut b, 0) {
            Ok(0) => return Ok(()),
            Ok(n) => bail!("the peer sent {n} bytes more than {what}"),
            Err(e) if sys::would_block(&e) => {
                wd.wait(fd, libc::POLLIN, "waiting for the peer to close")?
            }
            Err(e) => bail!("recv while waiting for the peer to close: {e}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct RrStats {
    /// Bytes per request and response (echo mode; HTTP messages vary).
    pub size: Option<usize>,
    pub transactions: u64,
    pub latencies_us: Vec<f64>,
}

impl RrStats {
    pub fn json(&self, seconds: f64) -> serde_json::Value {
        let mut l = self.latencies_us.clone();
        l.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| -> Option<f64> {
            if l.is_empty() {
                None
            } else {
                let i = ((l.len() as f64 - 1.0) * p).round() as usize;
                Some((l[i.min(l.len() - 1)] * 10.0).round() / 10.0)
            }
        };
        let mean = if l.is_empty() {
            None
        } else {
            Some((l.iter().sum::<f64>() / l.len() as f64 * 10.0).round() / 10.0)
        };
        serde_json::json!({
            "size": self.size,
            "transactions": self.transactions,
            "tps": if seconds > 0.0 { (self.transactions as f64 / seconds * 10.0).round() / 10.0 } else { 0.0 },
            "latency_us": if l.is_empty() { serde_json::Value::Null } else { serde_json::json!({
                "mean": mean, "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0),
            })},
        })
    }
}

/// Request/response, client side: send each request, wait for its whole
/// response. The first `prefix` bytes of the first request already went out
/// with TCP Fast Open.
pub fn rr_client(
    fd: RawFd,
    cfg: &Cfg,
    exchange: Exchange,
    prefix: usize,
    t: &mut Tally,
) -> Result<()> {
    let Tally {
        sent,
        received,
        verifier: down,
        rr,
    } = t;
    sent.start_hashing(cfg);
    let wd = Watchdog::new(cfg.timeout);
    let mut tx = Tx::new(fd, &wd, sent);
    let mut rx = Rx::new(fd, &wd, received);
    let mut plan = Plan::new(cfg, exchange);
    let mut gen = PatternGen::new(cfg.sent_by_client(true), cfg.seed);
    let mut req = Vec::new();
    let mut resp = Vec::new();
    let start = Instant::now();
    rr.size = exchange.echo_size();
    loop {
        let t = rr.transactions;
        if let Some(max) = cfg.transactions {
            if t >= max {
                break;
            }
        } else if start.elapsed() >= cfg.duration {
            break;
        }
        let (off, len) = plan.message(t, true)?;
        let (resp_off, resp_len) = plan.message(t, false)?;
        req.resize(len, 0);
        resp.resize(resp_len, 0);
        gen.fill(off, &mut req);
        tx.st.hash(&req);
        let t0 = Instant::now();
        let skip = if t == 0 { prefix.min(len) } else { 0 };
        tx.send_all(&req[skip..])?;
        tx.st.bytes += len as u64;
        let resp_end = resp_off + resp_len as u64;
        let mut got = 0;
        while got < resp_len {
            let n = rx.recv(&mut resp[got..], 0, down.offset, resp_end)?;
            down.check(&resp[got..got + n]);
            got += n;
        }
        rr.latencies_us.push(t0.elapsed().as_secs_f64() * 1e6);
        rr.transactions += 1;
        if !down.ok() {
            break;
        }
    }
    Ok(())
}

/// Request/response, server side: read each request, then echo it (--rr)
/// or send the response that belongs to it (--http), until the client
/// closes.
pub fn rr_server(fd: RawFd, cfg: &Cfg, exchange: Exchange, t: &mut Tally) -> Result<()> {
    let Tally {
        sent,
        received: rst,
        verifier: up,
        rr,
    } = t;
    sent.start_hashing(cfg);
    let wd = Watchdog::new(cfg.timeout);
    let mut tx = Tx::new(fd, &wd, sent);
    let mut plan = Plan::new(cfg, exchange);
    let mut gen = PatternGen::new(cfg.sent_by_client(false), cfg.seed);
    let mut req = Vec::new();
    let mut resp = Vec::new();
    rr.size = exchange.echo_size();
    loop {
        let (_, size) = plan.message(rr.transactions, true)?;
        req.resize(size, 0);
        let mut got = 0;
        while got < size {
            rst.recv_calls += 1;
            match sys::recv(fd, &mut req[got..], 0) {
                Ok(0) if got == 0 => return Ok(()),
                Ok(0) => bail!(
                    "connection closed by the peer in the middle of transaction {} ({got} of {size} bytes)",
                    rr.transactions
                ),
                Ok(n) => {
                    wd.progress();
                    up.check(&req[got..got + n]);
                    got += n;
                }
                Err(e) if sys::would_block(&e) => {
                    rst.eagain += 1;
                    wd.wait(fd, libc::POLLIN, "receiving")?;
                }
                Err(e) => bail!("recv: {e}"),
            }
        }
        let answer = match exchange {
            Exchange::Echo(_) => &req,
            Exchange::Http => {
                let (off, len) = plan.message(rr.transactions, false)?;
                resp.resize(len, 0);
                gen.fill(off, &mut resp);
                &resp
            }
        };
        tx.st.hash(answer);
        tx.send_all(answer)?;
        tx.st.bytes += answer.len() as u64;
        rr.transactions += 1;
    }
}
