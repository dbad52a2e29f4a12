//! Scrambling a real capture after the fact.
//!
//! A kernel without the module sends plaintext.  Given the plaintext a
//! stream carried (the traffic tool's input), this writes a copy of the
//! capture whose payload bytes are what the module would have sent at
//! those data sequence numbers; nothing else changes (TCP checksums are
//! left stale).  That gives the attack real segment boundaries, paths,
//! retransmissions and keys to work on.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use scramble_core::State;

use crate::capture::{Capture, Error, Format};
use crate::streams::Analysis;

/// What [`scramble`] changed.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub bytes: u64,
    /// Captured bytes that differed from the truth before rewriting (0 on
    /// a plain capture whose DSNs are understood correctly).
    pub differing: u64,
    /// Captured bytes past the end of the truth, left as they were.
    pub beyond_truth: u64,
    pub frames_written: usize,
}

/// Scrambles stream `side` of connection `connection` in `cap` with the
/// seed from the captured keys, taking `truth` as its plaintext, and
/// writes the capture to `out` (only frames to or from `only_host` when
/// given).
pub fn scramble(
    cap: &mut Capture,
    analysis: &Analysis,
    connection: usize,
    side: usize,
    truth: &[u8],
    out: &Path,
    only_host: Option<IpAddr>,
) -> Result<Rewritten, Error> {
    let conn = analysis
        .connections
        .iter()
        .find(|c| c.number == connection)
        .ok_or_else(|| Error::new(format!("no MPTCP connection {connection} in the capture")))?;
    let seed = conn.seed(side).ok_or_else(|| {
        Error::new(format!(
            "connection {connection}: the MP_CAPABLE keys are not in the capture, so there is no seed to scramble with"
        ))
    })?;
    let stream = &conn.streams[side];
    let base = stream
        .first_dsn_exact
        .ok_or_else(|| Error::new("the stream's first data sequence number is unknown"))?;
    let mut scrambled = truth.to_vec();
    State::from_seed(&seed).scramble(&mut scrambled);

    let mut done = Rewritten::default();
    for &(dsn, seg, from, len) in &stream.pieces {
        let Some(seg) = cap.segments.get(seg) else {
            continue;
        };
        let Some(frame) = cap.frames.get_mut(seg.frame) else {
            continue;
        };
        let at = seg.payload_offset + from;
        let Some(wire) = frame.data.get_mut(at..at + len) else {
            continue;
        };
        let offset = dsn.wrapping_sub(base);
        for (k, byte) in wire.iter_mut().enumerate() {
            let t = usize::try_from(offset + k as u64).unwrap_or(usize::MAX);
            match (truth.get(t), scrambled.get(t)) {
                (Some(&p), Some(&c)) => {
                    done.differing += u64::from(*byte != p);
                    *byte = c;
                    done.bytes += 1;
                }
                _ => done.beyond_truth += 1,
            }
        }
    }

    let keep: Option<HashSet<usize>> = only_host.map(|host| {
        cap.segments
            .iter()
            .filter(|s| s.src.ip() == host || s.dst.ip() == host)
            .map(|s| s.frame)
            .collect()
    });
    let header = match &cap.format {
        Format::Pcap(h) => *h,
        Format::PcapNg => PcapHeader {
            datalink: cap
                .frames
                .first()
                .map(|f| f.link)
                .unwrap_or(pcap_file::DataLink::ETHERNET),
            snaplen: 262_144,
            ..PcapHeader::default()
        },
    };
    let file = File::create(out)
        .map_err(|e| Error::new(format!("{}: cannot create: {e}", out.display())))?;
    let mut writer = PcapWriter::with_header(BufWriter::new(file), header)
        .map_err(|e| Error::new(format!("{}: {e}", out.display())))?;
    for (i, frame) in cap.frames.iter().enumerate() {
        if keep.as_ref().is_some_and(|k| !k.contains(&i)) {
            continue;
        }
        if frame.link != header.datalink {
            return Err(Error::new(
                "frames of several link types cannot go into one pcap file",
            ));
        }
        let packet = PcapPacket::new(
            frame.timestamp,
            frame.orig_len.max(frame.data.len() as u32),
            &frame.data,
        );
        writer
            .write_packet(&packet)
            .map_err(|e| Error::new(format!("{}: {e}", out.display())))?;
        done.frames_written += 1;
    }
    Ok(done)
}
