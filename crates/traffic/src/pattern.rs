//! Deterministic data patterns with random access: the byte at any stream
//! offset can be computed directly, so a receiver can regenerate what the
//! sender must have sent (also for bytes it skipped with `MSG_TRUNC`).

use clap::ValueEnum;

/// The data a connection carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Pattern {
    /// "0123456789" repeated (the paper's test data); byte at offset o is b'0' + o % 10.
    Digits,
    /// A PRNG stream seeded by --seed (counter-based SplitMix64, little-endian words).
    Random,
    /// All zero bytes.
    Zeros,
    /// English-like text: the sentences of a fixed paragraph, reshuffled by the seed for every repetition.
    Text,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Digits => "digits",
            Pattern::Random => "random",
            Pattern::Zeros => "zeros",
            Pattern::Text => "text",
        }
    }
}

/// Sentences of the `text` pattern. Every repetition ("cycle") of the text
/// is a permutation of these, each followed by one space, and the cycle ends
/// with a newline, so every cycle has the same length.
const CORPUS: &[&str] = &[
    "Multipath TCP lets one connection use several network paths at the same time.",
    "Each path carries a subflow that looks like an ordinary TCP connection to the routers along the way.",
    "The sender splits the byte stream into pieces and decides which subflow carries each piece.",
    "The receiver puts the pieces back together in the order given by the data sequence numbers.",
    "An eavesdropper who watches a single link therefore sees only part of the conversation.",
    "That part can still be long enough to read a password, a name or the subject of a letter.",
    "Scrambling every byte with the bytes that came before it makes a partial view much harder to use.",
    "Nobody should claim that this is encryption, because both keys cross the first path in the clear.",
    "The kernel module works on its own copies of the data and never on the memory of the application.",
    "A test sends a known pattern, reads it back on the other side, and compares every single byte.",
    "If the two hashes agree, the stream arrived complete, in order and without a single changed bit.",
    "When they differ, the first wrong offset usually points straight at the code that caused it.",
    "Short writes, peeking reads and retransmissions are the places where careless designs break.",
    "The quick brown fox jumps over the lazy dog while the network keeps delivering packets.",
    "On a quiet evening the server in the other namespace waits patiently for its next client.",
    "Two virtual cables join the namespaces, and each cable has its own small subnet of addresses.",
    "Throughput is measured in megabits per second, and latency in microseconds per transaction.",
    "A benchmark is only useful when it can be repeated and gives nearly the same answer each time.",
    "Plain text like this paragraph is easy to recognise when it shows up in a packet capture.",
    "That is exactly why the tests use it: a reader of the wire should not find these words there.",
];

/// Generator of one pattern stream.
pub struct PatternGen {
    pattern: Pattern,
    seed: u64,
    /// Digits tile: "0123456789" repeated, DIGIT_TILE + 10 bytes.
    digits: Vec<u8>,
    /// Cached text cycle and its index.
    text_cycle: Vec<u8>,
    text_cycle_idx: Option<u64>,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const DIGIT_TILE: usize = 4090; // a multiple of 10

/// The SplitMix64 finaliser.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small sequential PRNG (SplitMix64) for write sizes and shuffles.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix64(self.0)
    }
    /// Uniform-ish value in lo..=hi (modulo bias is irrelevant here).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Length of one text cycle in bytes.
pub fn text_cycle_len() -> usize {
    CORPUS.iter().map(|s| s.len() + 1).sum::<usize>() + 1
}

impl PatternGen {
    pub fn new(pattern: Pattern, seed: u64) -> Self {
        let digits = if pattern == Pattern::Digits {
            (0..DIGIT_TILE + 10)
                .map(|i| b'0' + (i % 10) as u8)
                .collect()
        } else {
            Vec::new()
        };
        PatternGen {
            pattern,
            seed,
            digits,
            text_cycle: Vec::new(),
            text_cycle_idx: None,
        }
    }

    /// Fill `buf` with the stream bytes at offsets `offset .. offset + buf.len()`.
    pub fn fill(&mut self, offset: u64, buf: &mut [u8]) {
        match self.pattern {
            Pattern::Zeros => buf.fill(0),
            Pattern::Digits => self.fill_digits(offset, buf),
            Pattern::Random => self.fill_random(offset, buf),
            Pattern::Text => self.fill_text(offset, buf),
        }
    }

    /// Convenience: the bytes at `offset .. offset + len`.
    pub fn bytes(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.fill(offset, &mut v);
        v
    }

    fn fill_digits(&self, offset: u64, buf: &mut [u8]) {
        let phase = (offset % 10) as usize;
        for chunk in buf.chunks_mut(DIGIT_TILE) {
            // DIGIT_TILE is a multiple of 10, so the phase is the same for every chunk.
            chunk.copy_from_slice(&self.digits[phase..phase + chunk.len()]);
        }
    }

    fn random_word(&self, k: u64) -> [u8; 8] {
        mix64(
            self.seed
                .wrapping_add(k.wrapping_add(1).wrapping_mul(GAMMA)),
        )
        .to_le_bytes()
    }

    fn fill_random(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = 0usize;
        let mut off = offset;
        // Unaligned head.
        let head = (off % 8) as usize;
        if head != 0 {
            let w = self.random_word(off / 8);
            let n = (8 - head).min(buf.len());
            buf[..n].copy_from_slice(&w[head..head + n]);
            pos += n;
            off += n as u64;
        }
        let mut k = off / 8;
        let mut chunks = buf[pos..].chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.random_word(k));
            k += 1;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let w = self.random_word(k);
            let n = rest.len();
            rest.copy_from_slice(&w[..n]);
        }
    }

    fn build_text_cycle(&mut self, k: u64) {
        if self.text_cycle_idx == Some(k) {
            return;
        }
        let mut order: Vec<usize> = (0..CORPUS.len()).collect();
        let mut rng = SplitMix::new(mix64(self.seed ^ 0x7465_7874) ^ k.wrapping_mul(GAMMA));
        for i in (1..order.len()).rev() {
            let j = rng.range(0, i as u64) as usize;
            order.swap(i, j);
        }
        self.text_cycle.clear();
        for &i in &order {
            self.text_cycle.extend_from_slice(CORPUS[i].as_bytes());
            self.text_cycle.push(b' ');
        }
        self.text_cycle.push(b'\n');
        self.text_cycle_idx = Some(k);
    }

    fn fill_text(&mut self, offset: u64, buf: &mut [u8]) {
        let len = text_cycle_len() as u64;
        let mut pos = 0usize;
        let mut off = offset;
        while pos < buf.len() {
            self.build_text_cycle(off / len);
            let start = (off % len) as usize;
            let n = (self.text_cycle.len() - start).min(buf.len() - pos);
            buf[pos..pos + n].copy_from_slice(&self.text_cycle[start..start + n]);
            pos += n;
            off += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_match_the_paper() {
        let mut g = PatternGen::new(Pattern::Digits, 0);
        assert_eq!(g.bytes(0, 25), b"0123456789012345678901234".to_vec());
        assert_eq!(g.bytes(7, 6), b"789012".to_vec());
        assert_eq!(g.bytes(1_000_000_003, 3), b"345".to_vec());
        // Long fills cross the internal tile boundary.
        let big = g.bytes(3, 20_000);
        for (i, b) in big.iter().enumerate() {
            assert_eq!(*b, b'0' + ((i + 3) % 10) as u8);
        }
    }

    #[test]
    fn zeros() {
        let mut g = PatternGen::new(Pattern::Zeros, 5);
        assert!(g.bytes(123, 1000).iter().all(|&b| b == 0));
    }

    /// For every pattern: any split of a range gives the same bytes.
    fn check_random_access(p: Pattern, seed: u64) {
        let mut g = PatternGen::new(p, seed);
        let whole = g.bytes(0, 10_000);
        for &(start, len) in &[
            (0usize, 1usize),
            (1, 7),
            (3, 8),
            (5, 17),
            (8, 8),
            (999, 3000),
            (4095, 5000),
            (9999, 1),
        ] {
            assert_eq!(
                g.bytes(start as u64, len),
                whole[start..start + len].to_vec(),
                "{p:?} {start} {len}"
            );
        }
        // Piecewise fill equals the whole.
        let mut pieces = Vec::new();
        let mut off = 0u64;
        let mut rng = SplitMix::new(1);
        while pieces.len() < whole.len() {
            let n = (rng.range(1, 300) as usize).min(whole.len() - pieces.len());
            pieces.extend(g.bytes(off, n));
            off += n as u64;
        }
        assert_eq!(pieces, whole);
    }

    #[test]
    fn random_access_all_patterns() {
        for p in [
            Pattern::Digits,
            Pattern::Random,
            Pattern::Zeros,
            Pattern::Text,
        ] {
            check_random_access(p, 0);
            check_random_access(p, 42);
        }
    }

    #[test]
    fn random_is_seeded_and_deterministic() {
        let a = PatternGen::new(Pattern::Random, 1).bytes(0, 64);
        let b = PatternGen::new(Pattern::Random, 1).bytes(0, 64);
        let c = PatternGen::new(Pattern::Random, 2).bytes(0, 64);
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Known value, so the stream never changes silently between versions.
        let w = mix64(GAMMA).to_le_bytes();
        assert_eq!(PatternGen::new(Pattern::Random, 0).bytes(0, 8), w.to_vec());
        // Roughly uniform: every byte value appears in 64 KiB.
        let big = PatternGen::new(Pattern::Random, 9).bytes(0, 65536);
        let mut seen = [false; 256];
        for b in big {
            seen[b as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn text_is_english_like_and_seeded() {
        let len = text_cycle_len();
        let mut g = PatternGen::new(Pattern::Text, 3);
        let two = g.bytes(0, 2 * len);
        assert!(two
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\n'));
        assert_eq!(two[len - 1], b'\n');
        assert_eq!(two[2 * len - 1], b'\n');
        // Every cycle holds every sentence.
        let s = String::from_utf8(two).expect("ascii");
        for sentence in CORPUS {
            assert_eq!(s.matches(sentence).count(), 2, "{sentence}");
        }
        // Cycles are shuffled differently, and seeds differ.
        assert_ne!(s[..len], s[len..]);
        let other = PatternGen::new(Pattern::Text, 4).bytes(0, len);
        assert_ne!(other, s.as_bytes()[..len].to_vec());
        assert_eq!(
            PatternGen::new(Pattern::Text, 3).bytes(0, len),
            s.as_bytes()[..len].to_vec()
        );
    }

    #[test]
    fn splitmix_range_bounds() {
        let mut r = SplitMix::new(7);
        for _ in 0..10_000 {
            let v = r.range(1, 100);
            assert!((1..=100).contains(&v));
        }
    }
}
