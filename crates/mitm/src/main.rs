//! `mptcp-mitm`: a man in the middle on one path of hardened
//! mptcp-scramble connections, for the tests (tests/mitm.sh).
//!
//! nftables rules queue the path's IPv4 TCP packets, both ways, to an
//! NFQUEUE; this program follows each connection whose first subflow it
//! sees (keys and offers from the MP_CAPABLE handshake, RFC 8684 section
//! 3.1), maps each payload to its data stream offset with the DSS mapping
//! (section 3.3), lets [`Relay`] rewrite it in place and fixes the TCP
//! checksum.  Packets it cannot relay yet are dropped: TCP sends them
//! again.  Every 100 ms it writes, per connection N, `N.c2s` and `N.s2c`
//! (the application bytes it decrypted), then `N.json` (the state, with
//! their lengths) to `--out`, each replaced whole.

use std::{
    collections::HashMap,
    fs,
    net::Ipv4Addr,
    path::PathBuf,
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use anyhow::{Context, Result};
use clap::Parser;
use etherparse::{IpNumber, Ipv4HeaderSlice, TcpHeaderSlice};
use mptcp_eavesdrop::mptcp::{self, MptcpOption};
use mptcp_mitm::{Dir, NotYet, Relay};
use serde::Serialize;

#[derive(Parser)]
#[command(
    about = "A man in the middle on one path of hardened mptcp-scramble connections (NFQUEUE)"
)]
struct Cli {
    /// The NFQUEUE the path's packets are queued to.
    #[arg(long, default_value_t = 0)]
    queue: u16,
    /// Directory for each connection's state and decrypted bytes.
    #[arg(long)]
    out: PathBuf,
    /// Decrypted bytes kept per direction and connection.
    #[arg(long, default_value_t = 16 << 20)]
    keep: usize,
}

type Addr = (Ipv4Addr, u16);

/// The offer option of the hardened mode, as the kernel sends it.
const HARDENED_OFFER: [u8; 4] = [0x1e, 0x04, 0xf1, 0x02];

/// One connection whose first subflow crosses this path.
struct Conn {
    id: usize,
    client_isn: u32,
    server_isn: Option<u32>,
    client_key: Option<u64>,
    server_key: Option<u64>,
    client_offer: Option<[u8; 4]>,
    server_answer: Option<[u8; 4]>,
    relay: Option<Relay>,
    /// Not a hardened connection: passed through untouched.
    plain: bool,
    /// Recent DSS mappings per direction: (relative subflow seq, stream
    /// offset, length).
    maps: [Vec<(u32, u64, u32)>; 2],
    held: u64,
    rewritten: u64,
    dirty: bool,
}

#[derive(Serialize)]
struct Report {
    client: String,
    server: String,
    hardened: bool,
    keyed: bool,
    failed_or_waiting_packets: u64,
    rewritten_packets: u64,
    plain_c2s: usize,
    plain_s2c: usize,
    /// The MP_JOIN keys (client's, server's) each end derived, hex.
    join_keys_client_side: Option<(String, String)>,
    join_keys_server_side: Option<(String, String)>,
}

struct State {
    conns: HashMap<(Addr, Addr), Conn>,
    next_id: usize,
    /// Decrypted bytes kept per direction and connection.
    keep: usize,
}

fn mptcp_offer(options: &[u8]) -> Option<[u8; 4]> {
    let mut o = options;
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(*o.get(1)?);
        if len < 2 || len > o.len() {
            break;
        }
        if kind == 30 && len == 4 && o[2] >> 4 == 0xf {
            return Some([o[0], o[1], o[2], o[3]]);
        }
        o = &o[len..];
    }
    None
}

/// The TCP checksum (RFC 793, with the IPv4 pseudo-header) of `tcp`, the
/// segment with its checksum field zeroed.
fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in src.octets().chunks(2).chain(dst.octets().chunks(2)) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    sum += 6 + tcp.len() as u32;
    for c in tcp.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

enum Verdict {
    Pass,
    Rewritten,
    Drop,
}

impl State {
    fn handle(&mut self, pkt: &mut [u8]) -> Verdict {
        let Ok(ip) = Ipv4HeaderSlice::from_slice(pkt) else {
            return Verdict::Pass;
        };
        if ip.protocol() != IpNumber::TCP {
            return Verdict::Pass;
        }
        let ihl = ip.slice().len();
        let total = usize::from(ip.total_len()).min(pkt.len());
        let (src_ip, dst_ip) = (ip.source_addr(), ip.destination_addr());
        let Ok(tcp) = TcpHeaderSlice::from_slice(&pkt[ihl..total]) else {
            return Verdict::Pass;
        };
        let thl = tcp.slice().len();
        let src = (src_ip, tcp.source_port());
        let dst = (dst_ip, tcp.destination_port());
        let seq = tcp.sequence_number();
        let opts = mptcp::parse_options(tcp.options());
        let offer = mptcp_offer(tcp.options());
        let (syn, ack) = (tcp.syn(), tcp.ack());

        // RFC 8684 v1: the SYN's MP_CAPABLE has no key; the SYN-ACK carries
        // the server's, the third ACK (and the first data) both.
        let capable = opts.iter().find_map(|o| match o {
            MptcpOption::Capable {
                sender_key,
                receiver_key,
                ..
            } => Some((*sender_key, *receiver_key)),
            _ => None,
        });
        if syn && !ack {
            if capable.is_some() {
                let id = self.next_id;
                self.next_id += 1;
                self.conns.entry((src, dst)).or_insert(Conn {
                    id,
                    client_isn: seq,
                    server_isn: None,
                    client_key: None,
                    server_key: None,
                    client_offer: offer,
                    server_answer: None,
                    relay: None,
                    plain: false,
                    maps: [Vec::new(), Vec::new()],
                    held: 0,
                    rewritten: 0,
                    dirty: true,
                });
            }
            return Verdict::Pass;
        }
        let keep = self.keep;
        let (conn, dir) = if let Some(c) = self.conns.get_mut(&(src, dst)) {
            (c, Dir::C2s)
        } else if let Some(c) = self.conns.get_mut(&(dst, src)) {
            (c, Dir::S2c)
        } else {
            return Verdict::Pass;
        };
        if syn && dir == Dir::S2c {
            conn.server_isn = Some(seq);
            conn.server_key = capable.and_then(|(s, _)| s);
            conn.server_answer = offer;
            conn.dirty = true;
            return Verdict::Pass;
        }
        if let (Dir::C2s, None, Some((Some(c), Some(_)))) = (dir, conn.client_key, capable) {
            conn.client_key = Some(c);
            conn.dirty = true;
        }
        if conn.relay.is_none() && !conn.plain {
            match (
                conn.client_key,
                conn.server_key,
                conn.client_offer,
                conn.server_answer,
            ) {
                (Some(ck), Some(sk), Some(co), Some(sa))
                    if co == HARDENED_OFFER && sa == HARDENED_OFFER =>
                {
                    conn.relay = Some(Relay::new(hardened::prologue(ck, sk, &co, &sa), keep));
                    conn.dirty = true;
                }
                (Some(_), Some(_), ..) => conn.plain = true,
                _ => {}
            }
        }
        let payload = ihl + thl..total;
        if payload.is_empty() || conn.plain {
            return Verdict::Pass;
        }
        let (Some(relay), Some(server_isn)) = (conn.relay.as_mut(), conn.server_isn) else {
            return Verdict::Pass;
        };
        let (isn, sender_key, d) = match dir {
            Dir::C2s => (conn.client_isn, conn.client_key, 0),
            Dir::S2c => (server_isn, conn.server_key, 1),
        };
        let Some(sender_key) = sender_key else {
            return Verdict::Pass;
        };
        let first = mptcp::idsn(sender_key).wrapping_add(1);
        let maps = &mut conn.maps[d];
        for o in &opts {
            let m = match o {
                MptcpOption::Dss {
                    mapping: Some(m), ..
                } => {
                    let off = if m.dsn.is_64 {
                        m.dsn.value.wrapping_sub(first)
                    } else {
                        u64::from((m.dsn.value as u32).wrapping_sub(first as u32))
                    };
                    (m.subflow_seq, off, m.payload_len())
                }
                MptcpOption::Capable {
                    data_len: Some(l), ..
                } => (1, 0, u32::from(*l)),
                _ => continue,
            };
            if !maps.contains(&m) {
                maps.push(m);
                if maps.len() > 256 {
                    maps.remove(0);
                }
            }
        }
        let rel = seq.wrapping_sub(isn);
        let len = payload.len() as u32;
        let Some(&(mrel, moff, _)) = maps.iter().rev().find(|&&(mrel, _, mlen)| {
            rel.wrapping_sub(mrel) < mlen && rel.wrapping_sub(mrel) + len <= mlen
        }) else {
            conn.held += 1;
            return Verdict::Drop;
        };
        let offset = moff + u64::from(rel.wrapping_sub(mrel));
        match relay.rewrite(dir, offset, &mut pkt[payload]) {
            Ok(()) => {}
            Err(NotYet::Handshake | NotYet::Failed) => {
                conn.held += 1;
                conn.dirty = true;
                return Verdict::Drop;
            }
        }
        conn.rewritten += 1;
        conn.dirty = true;
        let seg = &mut pkt[ihl..total];
        seg[16] = 0;
        seg[17] = 0;
        let sum = tcp_checksum(src_ip, dst_ip, seg);
        seg[16..18].copy_from_slice(&sum.to_be_bytes());
        Verdict::Rewritten
    }

    fn flush(&mut self, out: &std::path::Path) -> Result<()> {
        for ((c, s), conn) in self.conns.iter_mut().filter(|(_, c)| c.dirty) {
            conn.dirty = false;
            let relay = conn.relay.as_ref();
            let hex = |(a, b): (u64, u64)| (format!("{a:016x}"), format!("{b:016x}"));
            let report = Report {
                client: format!("{}:{}", c.0, c.1),
                server: format!("{}:{}", s.0, s.1),
                hardened: relay.is_some(),
                keyed: relay.is_some_and(Relay::keyed),
                failed_or_waiting_packets: conn.held,
                rewritten_packets: conn.rewritten,
                plain_c2s: relay.map_or(0, |r| r.plain_c2s.bytes().len()),
                plain_s2c: relay.map_or(0, |r| r.plain_s2c.bytes().len()),
                join_keys_client_side: relay.and_then(Relay::join_keys).map(|(c, _)| hex(c)),
                join_keys_server_side: relay.and_then(Relay::join_keys).map(|(_, s)| hex(s)),
            };
            let base = out.join(conn.id.to_string());
            // The bytes first, the report last: a reader that sees a report
            // finds at least the bytes it counts.
            if let Some(r) = relay {
                write_whole(&base.with_extension("c2s"), r.plain_c2s.bytes())?;
                write_whole(&base.with_extension("s2c"), r.plain_s2c.bytes())?;
            }
            write_whole(&base.with_extension("json"), &serde_json::to_vec(&report)?)?;
        }
        Ok(())
    }
}

/// Replaces `path` with `bytes` at once (a temporary file renamed over
/// it), so that a reader, or a kill between two writes, never leaves a
/// truncated file.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    fs::create_dir_all(&cli.out).with_context(|| format!("creating {}", cli.out.display()))?;
    let state = Arc::new(Mutex::new(State {
        conns: HashMap::new(),
        next_id: 0,
        keep: cli.keep,
    }));
    {
        let (state, out) = (Arc::clone(&state), cli.out.clone());
        thread::spawn(move || loop {
            thread::sleep(Duration::from_millis(100));
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = s.flush(&out) {
                eprintln!("mptcp-mitm: writing {}: {e:#}", out.display());
            }
        });
    }
    let mut queue = nfq::Queue::open().context("opening NFQUEUE (needs CAP_NET_ADMIN)")?;
    queue
        .bind(cli.queue)
        .with_context(|| format!("binding queue {}", cli.queue))?;
    eprintln!("mptcp-mitm: on queue {}", cli.queue);
    loop {
        let mut msg = queue.recv().context("receiving from the queue")?;
        let mut pkt = msg.get_payload().to_vec();
        let verdict = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .handle(&mut pkt);
        match verdict {
            Verdict::Pass => msg.set_verdict(nfq::Verdict::Accept),
            Verdict::Rewritten => {
                msg.set_payload(pkt);
                msg.set_verdict(nfq::Verdict::Accept);
            }
            Verdict::Drop => msg.set_verdict(nfq::Verdict::Drop),
        }
        queue.verdict(msg).context("giving the verdict")?;
    }
}
