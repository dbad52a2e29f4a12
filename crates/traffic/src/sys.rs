//! Thin wrappers around the system calls the tool needs, with timeouts
//! measured from the last progress ("no progress for --timeout seconds").

use anyhow::{bail, Context, Result};
use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

pub const IPPROTO_MPTCP: i32 = 262;
pub const SOL_MPTCP: i32 = 284;
pub const MPTCP_INFO: i32 = 1;
pub const MPTCP_TCPINFO: i32 = 2;
pub const MPTCP_SUBFLOW_ADDRS: i32 = 3;
pub const TCPI_OPT_SYN_DATA: u8 = 32;

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// CPU time this process has used so far, user and system, all threads,
/// in seconds (getrusage(2), `RUSAGE_SELF`).  Kernel work done in
/// softirq context is charged to whichever process it interrupted, which
/// for two ends in one machine is often the other end.
pub fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// True for EAGAIN/EWOULDBLOCK.
pub fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// send(2), retried on EINTR.
pub fn send(fd: RawFd, buf: &[u8], flags: i32) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a valid readable slice for its length.
        let r = unsafe {
            libc::send(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                flags | libc::MSG_NOSIGNAL,
            )
        };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// recv(2), retried on EINTR.
pub fn recv(fd: RawFd, buf: &mut [u8], flags: i32) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a valid writable slice for its length.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Wait until `fd` has one of `events` or `timeout` passes. Returns false on timeout.
pub fn poll_fd(fd: RawFd, events: i16, timeout: Duration) -> io::Result<bool> {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, ms.max(1)) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(r > 0);
    }
}

/// Progress watchdog: an operation fails when it made no progress for `timeout`.
/// Shared (`&Watchdog`) by the sending and the receiving side of one
/// request/response exchange, so that progress either way counts.
pub struct Watchdog {
    last: Cell<Instant>,
    timeout: Duration,
}

impl Watchdog {
    pub fn new(timeout: Duration) -> Self {
        Watchdog {
            last: Cell::new(Instant::now()),
            timeout,
        }
    }
    pub fn progress(&self) {
        self.last.set(Instant::now());
    }
    /// Called on EAGAIN (or a timed-out blocking call): wait for readiness
    /// or fail once there was no progress for the whole timeout.
    pub fn wait(&self, fd: RawFd, events: i16, what: &str) -> Result<()> {
        let elapsed = self.last.get().elapsed();
        if elapsed >= self.timeout {
            bail!(
                "timeout: no progress {what} for {:.1} s",
                self.timeout.as_secs_f64()
            );
        }
        poll_fd(fd, events, self.timeout - elapsed)
            .with_context(|| format!("poll while {what}"))?;
        Ok(())
    }
}

/// getsockopt into a byte buffer; returns the length the kernel filled in.
pub fn getsockopt_bytes(fd: RawFd, level: i32, name: i32, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf is writable for len bytes.
    let r = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(len as usize)
    }
}

pub fn setsockopt_int(fd: RawFd, level: i32, name: i32, val: i32) -> io::Result<()> {
    // SAFETY: passing a pointer to a local int and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&val as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn rd_u32(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn rd_u64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_ne_bytes(a))
}

/// What MPTCP_INFO says about a connection (None: not MPTCP, or fell back to TCP).
#[derive(Clone, Debug, Default)]
pub struct MptcpInfo {
    /// Additional subflows (mptcpi_subflows: not counting the initial one).
    pub subflows: u8,
    pub add_addr_signal: u8,
    pub add_addr_accepted: u8,
    pub flags: u32,
    pub token: u32,
    pub retransmits: Option<u32>,
    pub bytes_retrans: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    pub subflows_total: Option<u8>,
}

/// Query MPTCP_INFO. Returns Ok(None) when the socket is plain TCP or fell back.
pub fn mptcp_info(fd: RawFd) -> Option<MptcpInfo> {
    let mut b = [0u8; 128];
    let n = getsockopt_bytes(fd, SOL_MPTCP, MPTCP_INFO, &mut b).ok()?;
    if n < 16 {
        return None;
    }
    let b = &b[..n];
    // Layout of struct mptcp_info (include/uapi/linux/mptcp.h).
    Some(MptcpInfo {
        subflows: b[0],
        add_addr_signal: b[1],
        add_addr_accepted: b[2],
        flags: rd_u32(b, 8)?,
        token: rd_u32(b, 12)?,
        retransmits: rd_u32(b, 44),
        bytes_retrans: rd_u64(b, 48),
        bytes_sent: rd_u64(b, 56),
        bytes_received: rd_u64(b, 64),
        subflows_total: b.get(80).copied().filter(|_| n > 80),
    })
}

impl MptcpInfo {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "subflows": self.subflows,
            "subflows_total": self.subflows_total,
            "add_addr_signal": self.add_addr_signal,
            "add_addr_accepted": self.add_addr_accepted,
            "flags": self.flags,
            "token": self.token,
            "retransmits": self.retransmits,
            "bytes_retrans": self.bytes_retrans,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        })
    }
}

/// Per-subflow counters from MPTCP_TCPINFO + MPTCP_SUBFLOW_ADDRS.
#[derive(Clone, Debug)]
pub struct SubflowInfo {
    pub local: Option<String>,
    pub remote: Option<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_retrans: u64,
    pub options: u8,
}

impl SubflowInfo {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "local": self.local,
            "remote": self.remote,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "bytes_retrans": self.bytes_retrans,
        })
    }
}

const SUBFLOW_HDR: usize = 16; // struct mptcp_subflow_data
const MAX_SUBFLOWS: usize = 16;

/// getsockopt on a "struct mptcp_subflow_data + array" option.
fn subflow_array(fd: RawFd, name: i32, elem: usize) -> Option<Vec<Vec<u8>>> {
    let mut b = vec![0u8; SUBFLOW_HDR + MAX_SUBFLOWS * elem];
    b[0..4].copy_from_slice(&(SUBFLOW_HDR as u32).to_ne_bytes());
    b[12..16].copy_from_slice(&(elem as u32).to_ne_bytes());
    let n = getsockopt_bytes(fd, SOL_MPTCP, name, &mut b).ok()?;
    let num = rd_u32(&b, 4)? as usize;
    let size_user = rd_u32(&b, 12)? as usize;
    let hdr = rd_u32(&b, 0)? as usize;
    if size_user == 0 {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..num.min(MAX_SUBFLOWS) {
        let start = hdr + i * size_user;
        let end = start + size_user;
        if end > n {
            break;
        }
        out.push(b[start..end].to_vec());
    }
    Some(out)
}

fn sockaddr_to_string(b: &[u8]) -> Option<String> {
    // struct sockaddr_storage-sized union of sockaddr_in / sockaddr_in6.
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]) as i32;
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match family {
        libc::AF_INET => {
            let ip = std::net::Ipv4Addr::new(*b.get(4)?, *b.get(5)?, *b.get(6)?, *b.get(7)?);
            Some(format!("{ip}:{port}"))
        }
        libc::AF_INET6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b.get(8..24)?);
            Some(format!("[{}]:{port}", std::net::Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// Per-subflow information (None when unavailable: plain TCP, fallback, old kernel).
pub fn subflows(fd: RawFd) -> Option<Vec<SubflowInfo>> {
    let ti_size = std::mem::size_of::<libc::tcp_info>();
    let infos = subflow_array(fd, MPTCP_TCPINFO, ti_size)?;
    // struct mptcp_subflow_addrs: two unions (local, remote), each as large as sockaddr_storage.
    let ss = std::mem::size_of::<libc::sockaddr_storage>();
    let addrs = subflow_array(fd, MPTCP_SUBFLOW_ADDRS, 2 * ss).unwrap_or_default();
    let mut out = Vec::new();
    for (i, ti) in infos.iter().enumerate() {
        let mut t: libc::tcp_info = unsafe { std::mem::zeroed() };
        let n = ti.len().min(ti_size);
        // SAFETY: tcp_info is plain old data; we copy at most its size.
        unsafe {
            std::ptr::copy_nonoverlapping(
                ti.as_ptr(),
                (&mut t as *mut libc::tcp_info).cast::<u8>(),
                n,
            );
        }
        let (local, remote) = match addrs.get(i) {
            Some(a) => (sockaddr_to_string(&a[..ss]), sockaddr_to_string(&a[ss..])),
            None => (None, None),
        };
        out.push(SubflowInfo {
            local,
            remote,
            bytes_sent: t.tcpi_bytes_sent,
            bytes_received: t.tcpi_bytes_received,
            bytes_retrans: t.tcpi_bytes_retrans,
            options: t.tcpi_options,
        });
    }
    Some(out)
}

/// tcpi_options of a TCP socket (for TFO: TCPI_OPT_SYN_DATA).
pub fn tcp_options(fd: RawFd) -> Option<u8> {
    let mut t: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: t is writable for len bytes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_TCP,
            libc::TCP_INFO,
            (&mut t as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if r < 0 || (len as usize) < 8 {
        return None;
    }
    Some(t.tcpi_options)
}
