//! Reading a capture: pcap or pcapng as tcpdump and dumpcap write them,
//! down to the TCP segments it holds.
//!
//! Every error is an [`Error`] that says what is wrong with which file;
//! nothing in here panics on any input.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use etherparse::{LaxNetSlice, LaxSlicedPacket, TransportSlice};
use pcap_file::pcap::{PcapHeader, PcapReader};
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, PcapError};

use crate::mptcp::{self, MptcpOption};

/// Why a capture could not be read.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// One captured frame, as the file holds it.
#[derive(Clone, Debug)]
pub struct Frame {
    /// 1-based, as Wireshark numbers them.
    pub number: usize,
    pub timestamp: Duration,
    pub link: DataLink,
    /// Length on the wire; `data` may be shorter (snap length).
    pub orig_len: u32,
    pub data: Vec<u8>,
}

/// A TCP segment found in a frame.
#[derive(Clone, Debug)]
pub struct Segment {
    /// Index of its frame in [`Capture::frames`].
    pub frame: usize,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub mptcp: Vec<MptcpOption>,
    /// Where the TCP payload starts in the frame's data.
    pub payload_offset: usize,
    /// How many payload bytes the frame holds (fewer than were sent if the
    /// capture's snap length cut it).
    pub payload_len: usize,
}

/// The file format, which the rewriter needs to write the same kind back.
#[derive(Clone, Debug)]
pub enum Format {
    Pcap(PcapHeader),
    PcapNg,
}

/// A whole capture, read into memory.
#[derive(Debug)]
pub struct Capture {
    pub format: Format,
    pub frames: Vec<Frame>,
    pub segments: Vec<Segment>,
    /// Frames that hold no TCP segment we could read (ARP, UDP, ICMP,
    /// unsupported link types, fragments).
    pub other_frames: usize,
}

impl Capture {
    pub fn payload(&self, seg: &Segment) -> &[u8] {
        self.frames
            .get(seg.frame)
            .and_then(|f| {
                f.data
                    .get(seg.payload_offset..seg.payload_offset + seg.payload_len)
            })
            .unwrap_or(&[])
    }
}

const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads the capture at `path`.
pub fn read(path: &Path) -> Result<Capture, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::new(format!("{}: cannot read: {e}", path.display())))?;
    parse(&bytes).map_err(|e| Error::new(format!("{}: {e}", path.display())))
}

/// Parses a capture held in memory.
pub fn parse(bytes: &[u8]) -> Result<Capture, Error> {
    let magic: [u8; 4] = match bytes.get(..4) {
        Some(m) => [m[0], m[1], m[2], m[3]],
        None if bytes.is_empty() => return Err(Error::new("empty file, not a capture")),
        None => return Err(Error::new("file too short to be a capture")),
    };
    let (format, frames) = if PCAP_MAGICS.contains(&magic) {
        read_pcap(bytes)?
    } else if magic == PCAPNG_MAGIC {
        (Format::PcapNg, read_pcapng(bytes)?)
    } else {
        return Err(Error::new(format!(
            "not a pcap or pcapng file (starts with {:02x} {:02x} {:02x} {:02x})",
            magic[0], magic[1], magic[2], magic[3]
        )));
    };

    let mut segments = Vec::new();
    let mut other_frames = 0;
    for (index, frame) in frames.iter().enumerate() {
        match segment_of(index, frame) {
            Some(seg) => segments.push(seg),
            None => other_frames += 1,
        }
    }
    Ok(Capture {
        format,
        frames,
        segments,
        other_frames,
    })
}

fn read_pcap(bytes: &[u8]) -> Result<(Format, Vec<Frame>), Error> {
    let mut reader =
        PcapReader::new(bytes).map_err(|e| Error::new(format!("bad pcap file header: {e}")))?;
    let header = reader.header();
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.map_err(|e| damaged("pcap", frames.len(), e))?;
        frames.push(Frame {
            number: frames.len() + 1,
            timestamp: packet.timestamp,
            link: header.datalink,
            orig_len: packet.orig_len,
            data: packet.data.into_owned(),
        });
    }
    Ok((Format::Pcap(header), frames))
}

fn read_pcapng(bytes: &[u8]) -> Result<Vec<Frame>, Error> {
    let mut reader = PcapNgReader::new(bytes)
        .map_err(|e| Error::new(format!("bad pcapng section header: {e}")))?;
    let mut frames = Vec::new();
    let mut interfaces: Vec<DataLink> = Vec::new();
    while let Some(block) = reader.next_block() {
        let block = block.map_err(|e| damaged("pcapng", frames.len(), e))?;
        let (link, timestamp, orig_len, data) = match block {
            Block::EnhancedPacket(epb) => {
                let link = interfaces
                    .get(epb.interface_id as usize)
                    .copied()
                    .ok_or_else(|| {
                        Error::new(format!(
                            "packet {} names interface {} which the file never described",
                            frames.len() + 1,
                            epb.interface_id
                        ))
                    })?;
                (link, epb.timestamp, epb.original_len, epb.data.into_owned())
            }
            Block::SimplePacket(spb) => {
                let link = interfaces
                    .first()
                    .copied()
                    .ok_or_else(|| Error::new("simple packet block before any interface"))?;
                (
                    link,
                    Duration::ZERO,
                    spb.original_len,
                    spb.data.into_owned(),
                )
            }
            Block::InterfaceDescription(idb) => {
                interfaces.push(idb.linktype);
                continue;
            }
            // A new section starts its own list of interfaces.
            Block::SectionHeader(_) => {
                interfaces.clear();
                continue;
            }
            _ => continue,
        };
        frames.push(Frame {
            number: frames.len() + 1,
            timestamp,
            link,
            orig_len,
            data,
        });
    }
    Ok(frames)
}

/// The error for a file that stops making sense after `complete` packets.
fn damaged(kind: &str, complete: usize, e: PcapError) -> Error {
    let what = match &e {
        PcapError::IncompleteBuffer => "the file ends in the middle of a packet".to_string(),
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends in the middle of a packet".to_string()
        }
        PcapError::IoError(io) => format!("read error: {io}"),
        other => format!("corrupt record: {other}"),
    };
    Error::new(format!(
        "truncated or corrupt {kind} file: {what} (after {complete} complete packets)"
    ))
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The IP packet a frame carries, for the link types that matter here.
fn sliced(frame: &Frame) -> Option<LaxSlicedPacket<'_>> {
    let data = frame.data.as_slice();
    fn ip(proto: u16, rest: &[u8]) -> Option<&[u8]> {
        matches!(proto, ETHERTYPE_IPV4 | ETHERTYPE_IPV6).then_some(rest)
    }
    let be16 = |at: usize| -> Option<u16> {
        let b = data.get(at..at + 2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    };
    let ip_slice = match frame.link {
        DataLink::ETHERNET => return LaxSlicedPacket::from_ethernet(data).ok(),
        // struct sll_header: the protocol is the last field of 16 bytes.
        DataLink::LINUX_SLL => ip(be16(14)?, data.get(16..)?)?,
        // struct sll2_header: the protocol is the first field of 20 bytes.
        DataLink::LINUX_SLL2 => ip(be16(0)?, data.get(20..)?)?,
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => data,
        // BSD loopback: a 4-byte address family in host order, then IP.
        DataLink::NULL | DataLink::LOOP => data.get(4..)?,
        _ => return None,
    };
    LaxSlicedPacket::from_ip(ip_slice).ok()
}

fn segment_of(index: usize, frame: &Frame) -> Option<Segment> {
    let packet = sliced(frame)?;
    let (src, dst): (IpAddr, IpAddr) = match packet.net.as_ref()? {
        LaxNetSlice::Ipv4(v4) => {
            let h = v4.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        LaxNetSlice::Ipv6(v6) => {
            let h = v6.header();
            (h.source_addr().into(), h.destination_addr().into())
        }
        _ => return None,
    };
    let Some(TransportSlice::Tcp(tcp)) = packet.transport.as_ref() else {
        return None;
    };
    let payload = tcp.payload();
    let payload_offset = (payload.as_ptr() as usize).checked_sub(frame.data.as_ptr() as usize)?;
    Some(Segment {
        frame: index,
        src: SocketAddr::new(src, tcp.source_port()),
        dst: SocketAddr::new(dst, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        mptcp: mptcp::parse_options(tcp.options()),
        payload_offset,
        payload_len: payload.len(),
    })
}
