//! Stream integrity: SHA-256 of the stream plus, on the receiving side, a
//! byte-by-byte comparison with the regenerated pattern.

use crate::pattern::{Pattern, PatternGen};
use sha2::{Digest, Sha256};

/// How many bytes of context a mismatch report shows.
pub const MISMATCH_WINDOW: usize = 16;

/// The first place where received bytes differ from the expected stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Stream offset of the first differing byte.
    pub offset: u64,
    /// Expected bytes from `offset` on (up to MISMATCH_WINDOW).
    pub expected: Vec<u8>,
    /// Received bytes from `offset` on (same length as `expected`).
    pub got: Vec<u8>,
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Printable rendering of bytes: ASCII graphic characters as is, others as '.'.
pub fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&x| {
            if x.is_ascii_graphic() || x == b' ' {
                x as char
            } else {
                '.'
            }
        })
        .collect()
}

impl Mismatch {
    /// Compare `got` against `expected` (both starting at stream offset `base`).
    pub fn find(base: u64, expected: &[u8], got: &[u8]) -> Option<Mismatch> {
        let n = expected.len().min(got.len());
        if expected[..n] == got[..n] {
            return None;
        }
        let i = expected[..n]
            .iter()
            .zip(&got[..n])
            .position(|(a, b)| a != b)?;
        let end = (i + MISMATCH_WINDOW).min(n);
        Some(Mismatch {
            offset: base + i as u64,
            expected: expected[i..end].to_vec(),
            got: got[i..end].to_vec(),
        })
    }

    /// One-line description.
    pub fn message(&self) -> String {
        format!(
            "data mismatch at stream offset {}: expected {} \"{}\", got {} \"{}\"",
            self.offset,
            hex(&self.expected),
            printable(&self.expected),
            hex(&self.got),
            printable(&self.got)
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "offset": self.offset,
            "expected": hex(&self.expected),
            "got": hex(&self.got),
        })
    }
}

/// Receiving side: hash what arrives and compare it with the pattern.
pub struct Verifier {
    gen: PatternGen,
    expected: Vec<u8>,
    hasher: Sha256,
    /// Stream offset of the next byte.
    pub offset: u64,
    pub mismatch: Option<Mismatch>,
    /// Number of received bytes that differ from the expected ones.
    pub mismatched_bytes: u64,
    /// Bytes accounted for without being seen (MSG_TRUNC).
    pub skipped_bytes: u64,
    /// false (--no-verify): only count bytes, neither hash nor compare.
    enabled: bool,
}

impl Verifier {
    pub fn new(pattern: Pattern, seed: u64) -> Self {
        Verifier {
            gen: PatternGen::new(pattern, seed),
            expected: Vec::new(),
            hasher: Sha256::new(),
            offset: 0,
            mismatch: None,
            mismatched_bytes: 0,
            skipped_bytes: 0,
            enabled: true,
        }
    }

    /// Without checking: count bytes only (benchmarks, --no-verify).
    pub fn unchecked(pattern: Pattern, seed: u64) -> Self {
        Verifier {
            enabled: false,
            ..Verifier::new(pattern, seed)
        }
    }

    /// Account for received bytes.
    pub fn check(&mut self, got: &[u8]) {
        if !self.enabled {
            self.offset += got.len() as u64;
            return;
        }
        if self.expected.len() < got.len() {
            self.expected.resize(got.len(), 0);
        }
        let exp = &mut self.expected[..got.len()];
        self.gen.fill(self.offset, exp);
        if exp[..] != got[..] {
            let diff = exp.iter().zip(got).filter(|(a, b)| a != b).count() as u64;
            self.mismatched_bytes += diff;
            if self.mismatch.is_none() {
                self.mismatch = Mismatch::find(self.offset, exp, got);
            }
        }
        self.hasher.update(got);
        self.offset += got.len() as u64;
    }

    /// Account for `n` bytes that were discarded unseen (MSG_TRUNC): the
    /// pattern says what they must have been, and that goes into the hash.
    pub fn skip(&mut self, n: usize) {
        if !self.enabled {
            self.offset += n as u64;
            self.skipped_bytes += n as u64;
            return;
        }
        if self.expected.len() < n {
            self.expected.resize(n, 0);
        }
        let exp = &mut self.expected[..n];
        self.gen.fill(self.offset, exp);
        self.hasher.update(&exp[..]);
        self.offset += n as u64;
        self.skipped_bytes += n as u64;
    }

    pub fn ok(&self) -> bool {
        self.mismatch.is_none()
    }

    /// The hex SHA-256 of the stream so far (None without checking).
    pub fn sha256_hex(&self) -> Option<String> {
        self.enabled.then(|| hex(&self.hasher.clone().finalize()))
    }
}

/// Sending side: the hash of what was handed to the kernel.
pub struct SendHash {
    hasher: Sha256,
    pub bytes: u64,
    enabled: bool,
}

impl Default for SendHash {
    fn default() -> Self {
        Self::new()
    }
}

impl SendHash {
    pub fn new() -> Self {
        SendHash {
            hasher: Sha256::new(),
            bytes: 0,
            enabled: true,
        }
    }
    /// Without hashing (benchmarks, --no-verify).
    pub fn unchecked() -> Self {
        SendHash {
            enabled: false,
            ..SendHash::new()
        }
    }
    pub fn update(&mut self, b: &[u8]) {
        if self.enabled {
            self.hasher.update(b);
        }
        self.bytes += b.len() as u64;
    }
    /// The hex SHA-256 of what was sent so far (None without hashing).
    pub fn sha256_hex(&self) -> Option<String> {
        self.enabled.then(|| hex(&self.hasher.clone().finalize()))
    }
}

/// SHA-256 of the first `n` bytes of a pattern stream (what a correct
/// transfer of `--bytes n` hashes to).
#[cfg(test)]
pub fn pattern_sha256(pattern: Pattern, seed: u64, n: u64) -> String {
    let mut g = PatternGen::new(pattern, seed);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut off = 0u64;
    while off < n {
        let k = ((n - off) as usize).min(buf.len());
        g.fill(off, &mut buf[..k]);
        h.update(&buf[..k]);
        off += k as u64;
    }
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_reports_first_difference_with_window() {
        let exp = b"0123456789012345678901234567890123456789";
        let mut got = exp.to_vec();
        got[13] = b'X';
        got[20] = b'Y';
        let m = Mismatch::find(1000, exp, &got).expect("mismatch");
        assert_eq!(m.offset, 1013);
        assert_eq!(m.expected, b"3456789012345678".to_vec());
        assert_eq!(m.got, b"X456789Y12345678".to_vec());
        assert_eq!(
            m.message(),
            "data mismatch at stream offset 1013: expected 33343536373839303132333435363738 \"3456789012345678\", got 58343536373839593132333435363738 \"X456789Y12345678\""
        );
        let j = m.json();
        assert_eq!(j["offset"], 1013);
        assert_eq!(j["got"], "58343536373839593132333435363738");
    }

    #[test]
    fn find_window_is_cut_at_the_end() {
        let exp = b"abcdef";
        let got = b"abcdeX";
        let m = Mismatch::find(0, exp, got).expect("mismatch");
        assert_eq!(m.offset, 5);
        assert_eq!(m.expected, b"f".to_vec());
        assert_eq!(m.got, b"X".to_vec());
        assert!(Mismatch::find(0, exp, exp).is_none());
    }

    #[test]
    fn printable_masks_control_bytes() {
        assert_eq!(printable(&[b'a', 0, b' ', 0xff, b'\n']), "a. ..");
    }

    #[test]
    fn verifier_accepts_the_pattern_in_any_chunking() {
        let n = 5000u64;
        let want = pattern_sha256(Pattern::Text, 1, n);
        let data = PatternGen::new(Pattern::Text, 1).bytes(0, n as usize);
        let mut v = Verifier::new(Pattern::Text, 1);
        let mut off = 0;
        for size in [1usize, 2, 100, 999, 3898] {
            v.check(&data[off..off + size]);
            off += size;
        }
        assert_eq!(off as u64, n);
        assert!(v.ok());
        assert_eq!(v.offset, n);
        assert_eq!(v.sha256_hex(), Some(want));
    }

    #[test]
    fn verifier_skip_feeds_the_pattern_to_the_hash() {
        let n = 3000u64;
        let want = pattern_sha256(Pattern::Random, 5, n);
        let data = PatternGen::new(Pattern::Random, 5).bytes(0, n as usize);
        let mut v = Verifier::new(Pattern::Random, 5);
        v.check(&data[..1000]);
        v.skip(1000);
        v.check(&data[2000..]);
        assert!(v.ok());
        assert_eq!(v.skipped_bytes, 1000);
        assert_eq!(v.sha256_hex(), Some(want));
    }

    #[test]
    fn verifier_reports_first_mismatch_only_and_counts_all() {
        let mut data = PatternGen::new(Pattern::Digits, 0).bytes(0, 100);
        data[42] ^= 0x20;
        data[77] = 0;
        let mut v = Verifier::new(Pattern::Digits, 0);
        v.check(&data[..50]);
        v.check(&data[50..]);
        assert!(!v.ok());
        assert_eq!(v.mismatched_bytes, 2);
        let m = v.mismatch.clone().expect("mismatch");
        assert_eq!(m.offset, 42);
        assert_eq!(m.expected[0], b'2');
        assert_eq!(m.got[0], b'2' ^ 0x20);
        assert_eq!(m.expected.len(), 8); // cut at the end of the 50-byte chunk
    }

    #[test]
    fn unchecked_counts_only() {
        let mut v = Verifier::unchecked(Pattern::Digits, 0);
        v.check(b"garbage");
        v.skip(3);
        assert!(v.ok());
        assert_eq!(v.offset, 10);
        assert_eq!(v.sha256_hex(), None);
        let mut h = SendHash::unchecked();
        h.update(b"abc");
        assert_eq!(h.bytes, 3);
        assert_eq!(h.sha256_hex(), None);
    }

    #[test]
    fn known_sha256() {
        // sha256 of "0123456789"
        assert_eq!(
            pattern_sha256(Pattern::Digits, 0, 10),
            "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882"
        );
        let mut h = SendHash::new();
        h.update(b"01234");
        h.update(b"56789");
        assert_eq!(h.bytes, 10);
        assert_eq!(h.sha256_hex(), Some(pattern_sha256(Pattern::Digits, 0, 10)));
    }
}
