//! From TCP segments to MPTCP data streams: subflows, their grouping into
//! connections, and each direction's bytes placed by data sequence number.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use crate::capture::{Capture, Segment};
use crate::intervals::{Inserted, IntervalMap};
use crate::mptcp::{self, Mapping, MptcpOption, WireDsn};

/// How far apart (in data sequence numbers) two subflows' data may be and
/// still be taken for one connection when nothing else links them.  IDSNs
/// are random 64-bit numbers, so a chance match is unlikely.
const DSN_CONTINUITY: u64 = 1 << 32;

/// How the subflows of a connection were found to belong together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grouping {
    /// The MP_CAPABLE handshake was captured: keys, tokens and IDSNs known.
    Keys,
    /// Only MP_JOIN handshakes: subflows grouped by the token they name.
    Token,
    /// No handshake captured: grouped by data sequence continuity (each
    /// subflow's two directions kept together), a best guess.
    DsnContinuity,
}

/// How a subflow was seen to start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SubflowKind {
    Initial,
    Join,
    Unknown,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SubflowInfo {
    /// The endpoint on side 0 of the connection (the client when known).
    pub side0: SocketAddr,
    pub side1: SocketAddr,
    pub kind: SubflowKind,
}

/// One direction of one connection: the bytes that side sent, as far as
/// this capture shows them.
#[derive(Clone, Debug, Default)]
pub struct Stream {
    /// DSN of the first data byte (IDSN + 1) when the sender's key is known.
    pub first_dsn_exact: Option<u64>,
    /// Data bytes keyed by DSN.
    pub data: IntervalMap,
    /// DSN of the DATA_FIN, if it was seen.
    pub data_fin: Option<u64>,
    /// Lowest and highest data-level ACK of this stream the peer sent on
    /// the captured path.
    pub acks: Option<(u64, u64)>,
    pub segments: usize,
    pub inserted: Inserted,
    /// Payload bytes no mapping covered.
    pub unmapped: u64,
    /// Where each mapped piece of payload sits: (DSN, segment index,
    /// offset in the segment's payload, length).
    pub pieces: Vec<(u64, usize, usize, usize)>,
}

impl Stream {
    /// DSN of stream offset 0: exact from the key, else the lowest DSN
    /// seen in data or ACKs.
    pub fn base(&self) -> Option<u64> {
        self.first_dsn_exact.or_else(|| {
            let data = self.data.first();
            let ack = self.acks.map(|(lo, _)| lo);
            match (data, ack) {
                (Some(d), Some(a)) => Some(d.min(a)),
                (d, a) => d.or(a),
            }
        })
    }

    /// One past the last data byte: the DATA_FIN, else the highest byte or
    /// ACK seen (an ACK may count the DATA_FIN, one too many).
    pub fn end(&self) -> Option<u64> {
        self.data_fin.or_else(|| {
            let data = self.data.end();
            let ack = self.acks.map(|(_, hi)| hi);
            match (data, ack) {
                (Some(d), Some(a)) => Some(d.max(a)),
                (d, a) => d.or(a),
            }
        })
    }

    /// Stream length in bytes, as far as known.
    pub fn stream_len(&self) -> u64 {
        match (self.base(), self.end()) {
            (Some(b), Some(e)) => e.saturating_sub(b),
            _ => 0,
        }
    }

    /// The captured runs as (stream offset, bytes).
    pub fn runs(&self) -> Vec<(u64, &[u8])> {
        let base = self.base().unwrap_or(0);
        self.data
            .runs()
            .filter_map(|(dsn, bytes)| {
                let skip = base.saturating_sub(dsn);
                let bytes = bytes.get(usize::try_from(skip).ok()?..)?;
                (!bytes.is_empty()).then(|| (dsn.max(base) - base, bytes))
            })
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct Connection {
    pub number: usize,
    pub grouping: Grouping,
    /// MPTCP keys of side 0 (the MP_CAPABLE client) and side 1.
    pub keys: [Option<u64>; 2],
    pub tokens: [Option<u32>; 2],
    pub subflows: Vec<SubflowInfo>,
    /// `streams[s]` is the data side `s` sent.
    pub streams: [Stream; 2],
}

impl Connection {
    /// The scrambler seed of the stream side `s` sends, when both keys are
    /// known.
    pub fn seed(&self, side: usize) -> Option<[u8; scramble_core::SEED_LEN]> {
        Some(mptcp::seed(self.keys[side]?, self.keys[1 - side]?))
    }
}

/// Everything found in a capture.
#[derive(Debug, Default)]
pub struct Analysis {
    pub connections: Vec<Connection>,
    /// TCP flows without any MPTCP option.
    pub plain_tcp_flows: usize,
    pub notes: Vec<String>,
}

/// A TCP subflow as seen in the capture.  Direction `d` is data sent by
/// `ends[d]`; `ends[0]` is the SYN's sender when the handshake was seen.
#[derive(Debug)]
struct Subflow {
    ends: [SocketAddr; 2],
    initiator_known: bool,
    isn: [Option<u32>; 2],
    keys: [Option<u64>; 2],
    /// From MP_JOIN: the token of `ends[1]`'s key.
    join_token: Option<u32>,
    capable: bool,
    mptcp: bool,
    segments: [Vec<usize>; 2],
}

impl Subflow {
    fn direction(&self, seg: &Segment) -> usize {
        usize::from(seg.src != self.ends[0])
    }

    fn kind(&self) -> SubflowKind {
        if self.capable {
            SubflowKind::Initial
        } else if self.join_token.is_some() {
            SubflowKind::Join
        } else {
            SubflowKind::Unknown
        }
    }
}

/// A subflow direction's mapped payload and data-level signals, with DSNs
/// as the wire carried them.
#[derive(Debug, Default)]
struct FlowData {
    /// (DSN, segment index, offset in its payload, length).
    chunks: Vec<(WireDsn, usize, usize, usize)>,
    data_fins: Vec<WireDsn>,
    /// Data ACKs this direction sent: they acknowledge the other
    /// direction's stream.
    acks_sent: Vec<WireDsn>,
    segments: usize,
    unmapped: u64,
}

/// Follows every subflow in `cap` and builds its connections' streams.
pub fn analyze(cap: &Capture) -> Analysis {
    let mut subflows = collect_subflows(cap);
    let mut analysis = Analysis::default();
    subflows.retain(|sf| {
        if !sf.mptcp {
            analysis.plain_tcp_flows += 1;
        }
        sf.mptcp
    });

    let flows: Vec<[FlowData; 2]> = subflows
        .iter()
        .map(|sf| [0, 1].map(|d| flow_data(cap, sf, d)))
        .collect();

    // (connection, side of ends[0]) for each subflow.
    let mut placement: Vec<Option<(usize, usize)>> = vec![None; subflows.len()];
    let mut conns: Vec<Connection> = Vec::new();
    let new_conn = |conns: &mut Vec<Connection>, grouping| {
        conns.push(Connection {
            number: conns.len() + 1,
            grouping,
            keys: [None; 2],
            tokens: [None; 2],
            subflows: Vec::new(),
            streams: Default::default(),
        });
        conns.len() - 1
    };

    for (i, sf) in subflows.iter().enumerate().filter(|(_, sf)| sf.capable) {
        let c = new_conn(&mut conns, Grouping::Keys);
        conns[c].keys = sf.keys;
        conns[c].tokens = sf.keys.map(|k| k.map(mptcp::token));
        placement[i] = Some((c, 0));
    }
    for (i, sf) in subflows.iter().enumerate() {
        let (Some(token), None) = (sf.join_token, placement[i]) else {
            continue;
        };
        let found = conns.iter().enumerate().find_map(|(c, conn)| {
            conn.tokens
                .iter()
                .position(|&t| t == Some(token))
                .map(|owner| (c, owner))
        });
        let (c, owner) = found.unwrap_or_else(|| {
            let c = new_conn(&mut conns, Grouping::Token);
            conns[c].tokens[1] = Some(token);
            (c, 1)
        });
        // The SYN goes to the token's owner: ends[1].
        placement[i] = Some((c, 1 - owner));
    }

    let mut ranges: Vec<[Option<(u64, u64)>; 2]> = vec![[None; 2]; conns.len()];
    for (i, place) in placement.iter().enumerate() {
        if let Some((c, side0)) = *place {
            widen_ranges(&mut ranges[c], side0, &flows[i]);
        }
    }
    for (i, sf) in subflows.iter().enumerate() {
        if placement[i].is_some() {
            continue;
        }
        let own = dsn_range_pair(&flows[i]);
        let found = ranges.iter().enumerate().find_map(|(c, r)| {
            (0..2).find_map(|side0| {
                let matches = (0..2).any(|d| {
                    let side = side0 ^ d;
                    matches!((own[d], r[side]), (Some(a), Some(b)) if near(a, b))
                });
                matches.then_some((c, side0))
            })
        });
        let (c, side0) = found.unwrap_or_else(|| {
            ranges.push([None; 2]);
            (new_conn(&mut conns, Grouping::DsnContinuity), 0)
        });
        if found.is_some() && conns[c].grouping != Grouping::DsnContinuity {
            analysis.notes.push(format!(
                "subflow {} <-> {} (handshake not captured) joined to connection {} by data sequence continuity",
                sf.ends[0], sf.ends[1], c + 1
            ));
        }
        placement[i] = Some((c, side0));
        widen_ranges(&mut ranges[c], side0, &flows[i]);
    }

    for (i, sf) in subflows.iter().enumerate() {
        let Some((c, side0)) = placement[i] else {
            continue;
        };
        let conn = &mut conns[c];
        for d in 0..2 {
            if let Some(k) = sf.keys[d] {
                conn.keys[side0 ^ d].get_or_insert(k);
            }
        }
        conn.subflows.push(SubflowInfo {
            side0: sf.ends[side0],
            side1: sf.ends[1 - side0],
            kind: sf.kind(),
        });
    }
    for conn in conns.iter_mut() {
        for s in 0..2 {
            conn.streams[s].first_dsn_exact = conn.keys[s].map(|k| mptcp::idsn(k).wrapping_add(1));
        }
    }
    fill_streams(cap, &flows, &placement, &mut conns);

    for conn in &conns {
        if conn.grouping == Grouping::DsnContinuity {
            analysis.notes.push(format!(
                "connection {}: no MPTCP handshake captured; its subflows are grouped by data sequence continuity (a best guess), its stream start is the lowest data sequence number seen, and its sides are unnamed (a = the first sender seen)",
                conn.number
            ));
        }
    }
    analysis.connections = conns;
    analysis
}

fn collect_subflows(cap: &Capture) -> Vec<Subflow> {
    let mut by_tuple: HashMap<(SocketAddr, SocketAddr), usize> = HashMap::new();
    let mut subflows: Vec<Subflow> = Vec::new();
    for (index, seg) in cap.segments.iter().enumerate() {
        let tuple = if seg.src <= seg.dst {
            (seg.src, seg.dst)
        } else {
            (seg.dst, seg.src)
        };
        let known = by_tuple
            .get(&tuple)
            .copied()
            .filter(|&i| !opens_another(&subflows[i], seg));
        let i = known.unwrap_or_else(|| {
            // The SYN/ACK's receiver started the subflow; failing that,
            // the first sender stands in.
            let ends = if seg.syn && seg.ack {
                [seg.dst, seg.src]
            } else {
                [seg.src, seg.dst]
            };
            subflows.push(Subflow {
                ends,
                initiator_known: seg.syn,
                isn: [None; 2],
                keys: [None; 2],
                join_token: None,
                capable: false,
                mptcp: false,
                segments: [Vec::new(), Vec::new()],
            });
            by_tuple.insert(tuple, subflows.len() - 1);
            subflows.len() - 1
        });
        let sf = &mut subflows[i];
        let d = sf.direction(seg);
        if seg.syn {
            sf.isn[d] = Some(seg.seq);
        }
        sf.mptcp |= !seg.mptcp.is_empty();
        for opt in &seg.mptcp {
            match *opt {
                MptcpOption::Capable {
                    sender_key,
                    receiver_key,
                    ..
                } => {
                    sf.capable = true;
                    if let Some(k) = sender_key {
                        sf.keys[d] = Some(k);
                    }
                    if let Some(k) = receiver_key {
                        sf.keys[1 - d] = Some(k);
                    }
                }
                MptcpOption::JoinSyn { token } if seg.syn && !seg.ack => {
                    sf.join_token = Some(token);
                }
                _ => {}
            }
        }
        sf.segments[d].push(index);
    }
    subflows
}

/// Whether `seg` is a SYN that opens a new connection on the 4-tuple of
/// `sf` (ports reused), rather than a retransmission of its SYN.
fn opens_another(sf: &Subflow, seg: &Segment) -> bool {
    if !seg.syn || seg.ack {
        return false;
    }
    match sf.isn[0] {
        Some(isn) => sf.ends[0] != seg.src || isn != seg.seq,
        // Seen from the middle: a SYN now is a new connection.
        None => !sf.initiator_known,
    }
}

/// The subflow-level ISN of direction `d`: from its SYN, else the lowest
/// `seq - subflow_seq` over segments that carry a mapping (exact whenever
/// some segment starts its mapping, as the first segment of each does).
fn estimate_isn(cap: &Capture, sf: &Subflow, d: usize) -> Option<u32> {
    if let Some(isn) = sf.isn[d] {
        return Some(isn);
    }
    let mut first: Option<u32> = None;
    let mut lowest: i64 = 0;
    for &i in &sf.segments[d] {
        let seg = &cap.segments[i];
        for opt in &seg.mptcp {
            if let MptcpOption::Dss {
                mapping: Some(m), ..
            } = opt
            {
                if m.payload_len() == 0 || seg.payload_len == 0 {
                    continue;
                }
                let candidate = seg.seq.wrapping_sub(m.subflow_seq);
                let base = *first.get_or_insert(candidate);
                lowest = lowest.min(i64::from(candidate.wrapping_sub(base) as i32));
            }
        }
    }
    first.map(|base| base.wrapping_add(lowest as i32 as u32))
}

fn flow_data(cap: &Capture, sf: &Subflow, d: usize) -> FlowData {
    let mut out = FlowData::default();
    // Mappings by relative subflow sequence number; the first one seen for
    // a number wins (retransmissions repeat it).
    let mut maps: BTreeMap<u32, Mapping> = BTreeMap::new();
    for &i in &sf.segments[d] {
        let seg = &cap.segments[i];
        out.segments += 1;
        for opt in &seg.mptcp {
            match *opt {
                MptcpOption::Dss { data_ack, mapping } => {
                    out.acks_sent.extend(data_ack);
                    if let Some(m) = mapping {
                        if m.data_fin {
                            let fin = WireDsn {
                                value: m.dsn.value.wrapping_add(u64::from(m.len).saturating_sub(1)),
                                ..m.dsn
                            };
                            out.data_fins.push(fin);
                        }
                        if m.payload_len() > 0 {
                            maps.entry(m.subflow_seq).or_insert(m);
                        }
                    }
                }
                MptcpOption::Capable {
                    data_len: Some(len),
                    ..
                } if !seg.syn => {
                    if let Some(key) = sf.keys[d] {
                        let dsn = WireDsn {
                            value: mptcp::idsn(key).wrapping_add(1),
                            is_64: true,
                        };
                        maps.entry(1).or_insert(Mapping {
                            dsn,
                            subflow_seq: 1,
                            len,
                            data_fin: false,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    let isn = estimate_isn(cap, sf, d);
    for &i in &sf.segments[d] {
        let seg = &cap.segments[i];
        if seg.payload_len == 0 {
            continue;
        }
        let Some(isn) = isn else {
            out.unmapped += seg.payload_len as u64;
            continue;
        };
        let rel = seg.seq.wrapping_sub(isn);
        let mut done = 0usize;
        while done < seg.payload_len {
            let at = rel.wrapping_add(done as u32);
            let covering = maps
                .range(..=at)
                .next_back()
                .filter(|(&start, m)| at.wrapping_sub(start) < m.payload_len());
            match covering {
                Some((&start, m)) => {
                    let into = at.wrapping_sub(start);
                    let n = ((m.payload_len() - into) as usize).min(seg.payload_len - done);
                    let dsn = WireDsn {
                        value: m.dsn.value.wrapping_add(u64::from(into)),
                        ..m.dsn
                    };
                    out.chunks.push((dsn, i, done, n));
                    done += n;
                }
                None => {
                    // Up to the next mapping, or the rest of the payload.
                    let next = maps
                        .range(at..)
                        .next()
                        .map(|(&s, _)| s.wrapping_sub(at) as usize)
                        .unwrap_or(usize::MAX);
                    let n = next.clamp(1, seg.payload_len - done);
                    out.unmapped += n as u64;
                    done += n;
                }
            }
        }
    }
    out
}

/// Known 64-bit DSN extent of the stream in direction `d` of a subflow:
/// its data, and the ACKs the other direction sent for it.
fn dsn_range_pair(flows: &[FlowData; 2]) -> [Option<(u64, u64)>; 2] {
    [0, 1].map(|d| {
        let values = flows[d]
            .chunks
            .iter()
            .map(|c| c.0)
            .chain(flows[d].data_fins.iter().copied())
            .chain(flows[1 - d].acks_sent.iter().copied())
            .filter(|w| w.is_64)
            .map(|w| w.value);
        values.fold(None, |r, v| match r {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
    })
}

fn widen_ranges(ranges: &mut [Option<(u64, u64)>; 2], side0: usize, flows: &[FlowData; 2]) {
    for (d, r) in dsn_range_pair(flows).into_iter().enumerate() {
        let Some((lo, hi)) = r else { continue };
        let slot = &mut ranges[side0 ^ d];
        *slot = Some(match *slot {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
    }
}

fn near(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1.saturating_add(DSN_CONTINUITY) && b.0 <= a.1.saturating_add(DSN_CONTINUITY)
}

/// Widens a DSN the wire carried in 32 bits to the 64-bit value nearest
/// `reference`.
fn widen(w: WireDsn, reference: u64) -> u64 {
    if w.is_64 {
        return w.value;
    }
    let candidate = (reference & !0xffff_ffff) | (w.value & 0xffff_ffff);
    let diff = candidate.wrapping_sub(reference) as i64;
    if diff > i64::from(i32::MAX) {
        candidate.wrapping_sub(1 << 32)
    } else if diff < i64::from(i32::MIN) {
        candidate.wrapping_add(1 << 32)
    } else {
        candidate
    }
}

fn fill_streams(
    cap: &Capture,
    flows: &[[FlowData; 2]],
    placement: &[Option<(usize, usize)>],
    conns: &mut [Connection],
) {
    for (i, place) in placement.iter().enumerate() {
        let Some((c, side0)) = *place else { continue };
        for (d, flow) in flows[i].iter().enumerate() {
            let side = side0 ^ d;
            let reverse = &flows[i][1 - d];
            let stream = &mut conns[c].streams[side];
            // Reference for 32-bit DSNs: the exact start, else any 64-bit
            // value this stream has shown.
            let mut reference = stream
                .first_dsn_exact
                .or_else(|| stream.data.first())
                .or_else(|| {
                    flow.chunks
                        .iter()
                        .map(|c| c.0)
                        .chain(reverse.acks_sent.iter().copied())
                        .find(|w| w.is_64)
                        .map(|w| w.value)
                })
                .unwrap_or(0);
            stream.segments += flow.segments;
            stream.unmapped += flow.unmapped;
            for &(dsn, seg, from, len) in &flow.chunks {
                let dsn = widen(dsn, reference);
                reference = dsn;
                let payload = cap.payload(&cap.segments[seg]);
                if let Some(bytes) = payload.get(from..from + len) {
                    stream.inserted += stream.data.insert(dsn, bytes);
                    stream.pieces.push((dsn, seg, from, len));
                }
            }
            for &fin in &flow.data_fins {
                let fin = widen(fin, reference);
                stream.data_fin = Some(stream.data_fin.map_or(fin, |f| f.min(fin)));
            }
            for &ack in &reverse.acks_sent {
                let ack = widen(ack, reference);
                stream.acks = Some(match stream.acks {
                    None => (ack, ack),
                    Some((lo, hi)) => (lo.min(ack), hi.max(ack)),
                });
            }
        }
    }
}
