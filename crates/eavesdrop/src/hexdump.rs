//! Wireshark-style hex dumps of the first data segments, to show what an
//! observer sees on the wire.

use std::fmt::Write as _;

use crate::capture::Capture;

/// The first `count` TCP segments that carry payload, each as a header
/// line and a dump of the whole frame (or only its payload).
pub fn first_data(cap: &Capture, count: usize, payload_only: bool) -> String {
    let mut out = String::new();
    for seg in cap
        .segments
        .iter()
        .filter(|s| s.payload_len > 0)
        .take(count)
    {
        let Some(frame) = cap.frames.get(seg.frame) else {
            continue;
        };
        let _ = writeln!(
            out,
            "Frame {}: {} -> {}, TCP seq {}, {} bytes of payload at frame offset 0x{:04x}",
            frame.number, seg.src, seg.dst, seg.seq, seg.payload_len, seg.payload_offset
        );
        let bytes = if payload_only {
            cap.payload(seg)
        } else {
            &frame.data
        };
        out.push_str(&dump(bytes));
        out.push('\n');
    }
    out
}

/// `0000  45 00 ... 00  40 06 ...   E..<....`: offset, 16 bytes in two
/// groups of 8, then the printable ASCII, as Wireshark's bytes pane.
pub fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "{:04x}  ", row * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push_str("  ");
        for &b in chunk {
            out.push(if (0x20..0x7f).contains(&b) {
                char::from(b)
            } else {
                '.'
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_matches_wireshark_layout() {
        let d = dump(b"GET / HTTP/1.1\r\nHost: x\r\n");
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[0],
            "0000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a   GET / HTTP/1.1.."
        );
        assert_eq!(
            lines[1],
            "0010  48 6f 73 74 3a 20 78 0d  0a                        Host: x.."
        );
    }
}
