//! TEST ONLY: the hardened mode's keys as the module's `keylog` sysctl
//! prints them to the kernel log (docs/design.md, "Interfaces"), and the
//! decryption of a hardened stream with them: the positive control of
//! `make security`, which shows that the measurement would see the
//! plaintext if the keys leaked.  Like SSLKEYLOGFILE, never for
//! production.

use anyhow::{bail, Context, Result};
use hardened::{Keystream, RustCrypto, CLIENT_PREAMBLE_LEN, KEY_LEN, SERVER_PREAMBLE_LEN};

use crate::attack::{How, Recovery};
use crate::mptcp;

/// One line of the key log: one hardened connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The MPTCP keys of the client (side 0) and of the server.
    pub mptcp_keys: [u64; 2],
    /// The keystream keys of the client's stream and of the server's.
    pub stream_keys: [[u8; KEY_LEN]; 2],
}

/// Bytes of the kernel's preamble at the head of side `side`'s stream,
/// before its first application byte (docs/design.md, "The handshake").
pub fn preamble_len(side: usize) -> u64 {
    if side == 0 {
        CLIENT_PREAMBLE_LEN as u64
    } else {
        SERVER_PREAMBLE_LEN as u64
    }
}

fn hex32(s: &str) -> Option<[u8; KEY_LEN]> {
    if s.len() != 2 * KEY_LEN {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The entries in `text`: every line holding `keylog CLIENT SERVER C2S
/// S2C` (a kernel log, `dmesg` output or just those lines), each once.
pub fn parse(text: &str) -> Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace().skip_while(|w| *w != "keylog");
        if words.next().is_none() {
            continue;
        }
        let f: Vec<&str> = words.take(4).collect();
        let parsed = (f.len() == 4)
            .then(|| {
                Some(Entry {
                    mptcp_keys: [
                        u64::from_str_radix(f[0], 16).ok()?,
                        u64::from_str_radix(f[1], 16).ok()?,
                    ],
                    stream_keys: [hex32(f[2])?, hex32(f[3])?],
                })
            })
            .flatten();
        let e = parsed.with_context(|| {
            format!("key log line {}: not `keylog CLIENT SERVER C2S S2C`", n + 1)
        })?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    if out.is_empty() {
        bail!("no `keylog` line");
    }
    Ok(out)
}

/// The entry of a connection known by its MPTCP keys or by the tokens
/// its MP_JOINs named; with `swapped` true when the connection's side 0
/// is the entry's server.
pub fn find(
    entries: &[Entry],
    keys: [Option<u64>; 2],
    tokens: [Option<u32>; 2],
) -> Option<(&Entry, bool)> {
    entries.iter().find_map(|e| {
        for swapped in [false, true] {
            let [a, b] = if swapped {
                [e.mptcp_keys[1], e.mptcp_keys[0]]
            } else {
                e.mptcp_keys
            };
            let by_key = keys[0] == Some(a) || keys[1] == Some(b);
            let by_token = tokens[0] == Some(mptcp::token(a)) || tokens[1] == Some(mptcp::token(b));
            if by_key || by_token {
                return Some((e, swapped));
            }
        }
        None
    })
}

/// Decrypts the captured `runs` of a stream of `len` application bytes
/// (offsets past the preamble) with keystream key `key`.
pub fn decrypt(len: usize, runs: &[(u64, &[u8])], key: &[u8; KEY_LEN]) -> Recovery {
    let mut rec = Recovery {
        plain: vec![0; len],
        how: vec![How::Unknown; len],
    };
    let ks = Keystream::new(&RustCrypto, key);
    for &(off, bytes) in runs {
        let Ok(a) = usize::try_from(off) else {
            continue;
        };
        if a >= len {
            continue;
        }
        let n = bytes.len().min(len - a);
        let out = &mut rec.plain[a..a + n];
        out.copy_from_slice(&bytes[..n]);
        ks.apply(off, out);
        rec.how[a..a + n].fill(How::Key);
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_log_lines_once_each() {
        let line = format!(
            "[   12.5] mptcp_scramble: keylog 0102030405060708 1112131415161718 {} {}\n",
            "aa".repeat(32),
            "bb".repeat(32)
        );
        let text = format!("noise\n{line}{line}");
        let e = parse(&text).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].mptcp_keys, [0x0102030405060708, 0x1112131415161718]);
        assert_eq!(e[0].stream_keys, [[0xaa; 32], [0xbb; 32]]);
        assert!(parse("keylog 01 02\n").is_err());
        assert!(parse("nothing\n").is_err());
    }

    #[test]
    fn finds_by_key_or_token_either_way_round() {
        let e = vec![Entry {
            mptcp_keys: [1, 2],
            stream_keys: [[0; 32]; 2],
        }];
        assert_eq!(
            find(&e, [Some(1), Some(2)], [None; 2]).map(|f| f.1),
            Some(false)
        );
        assert_eq!(
            find(&e, [None; 2], [None, Some(mptcp::token(2))]).map(|f| f.1),
            Some(false)
        );
        assert_eq!(
            find(&e, [None; 2], [None, Some(mptcp::token(1))]).map(|f| f.1),
            Some(true)
        );
        assert!(find(&e, [Some(3), None], [None; 2]).is_none());
    }

    #[test]
    fn decrypts_what_the_keystream_encrypted() {
        let key = [7u8; 32];
        let plain: Vec<u8> = (0..300u32).map(|i| (i * 13) as u8).collect();
        let mut wire = plain.clone();
        Keystream::new(&RustCrypto, &key).apply(0, &mut wire);
        let runs = [(10u64, &wire[10..100]), (150, &wire[150..300])];
        let rec = decrypt(300, &runs, &key);
        assert_eq!(&rec.plain[10..100], &plain[10..100]);
        assert_eq!(&rec.plain[150..300], &plain[150..300]);
        assert_eq!(rec.how[5], How::Unknown);
        assert_eq!(rec.how[120], How::Unknown);
    }
}
