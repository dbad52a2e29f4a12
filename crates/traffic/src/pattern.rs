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
    /// HTTP/1.1 requests one after the other (GETs with a session cookie, now and then a login POST), varied by the seed.
    HttpRequests,
    /// HTTP/1.1 responses one after the other (headers, then an HTML body of the text's sentences), varied by the seed.
    HttpResponses,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Digits => "digits",
            Pattern::Random => "random",
            Pattern::Zeros => "zeros",
            Pattern::Text => "text",
            Pattern::HttpRequests => "http-requests",
            Pattern::HttpResponses => "http-responses",
        }
    }

    /// Whether the stream is a sequence of messages (see [`PatternGen::message`]).
    pub fn is_http(self) -> bool {
        matches!(self, Pattern::HttpRequests | Pattern::HttpResponses)
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
    /// HTTP patterns: end offset of every message generated so far, and
    /// the cached message with its index.
    msg_ends: Vec<u64>,
    msg: Vec<u8>,
    msg_idx: Option<usize>,
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

/// Pages the HTTP patterns ask for and serve.
const PAGES: &[&str] = &[
    "news/multipath-tcp-in-the-kernel",
    "docs/getting-started",
    "blog/2026/11/measuring-latency",
    "wiki/Network_namespace",
    "articles/how-routers-see-subflows",
    "account/settings",
    "search",
    "help/contact",
];

fn sentence(rng: &mut SplitMix) -> &'static str {
    CORPUS[rng.range(0, CORPUS.len() as u64 - 1) as usize]
}

fn hex_token(rng: &mut SplitMix, words: usize) -> String {
    (0..words)
        .map(|_| format!("{:016x}", rng.next_u64()))
        .collect()
}

/// Request `k`: a browser's GET with a session cookie, every eighth a
/// login form POST with a password.
fn http_request(out: &mut Vec<u8>, rng: &mut SplitMix, k: usize, session: u64) {
    use std::io::Write;
    let page = PAGES[rng.range(0, PAGES.len() as u64 - 1) as usize];
    let login = k % 8 == 7;
    let body = format!(
        "username=user{}&password={}&remember=on",
        rng.range(100, 999),
        hex_token(rng, 1)
    );
    let (method, target) = if login {
        ("POST", "/account/login".to_owned())
    } else if page == "search" {
        (
            "GET",
            format!(
                "/search?q=subflow+{}&page={}",
                rng.range(1, 99),
                rng.range(1, 9)
            ),
        )
    } else {
        ("GET", format!("/{page}"))
    };
    let _ = write!(
        out,
        "{method} {target} HTTP/1.1\r\n\
         Host: www.example.org\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
         Accept-Language: en-GB,en;q=0.5\r\n\
         Accept-Encoding: identity\r\n\
         Referer: https://www.example.org/{}\r\n\
         Cookie: session={session:016x}{session:016x}; theme=dark\r\n\
         Connection: keep-alive\r\n",
        PAGES[rng.range(0, PAGES.len() as u64 - 1) as usize],
    );
    if login {
        let _ = write!(
            out,
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
    } else {
        out.extend_from_slice(b"\r\n");
    }
}

/// Response `k`: status and headers, then an HTML page of 1 to 24
/// paragraphs of the text's sentences.
fn http_response(out: &mut Vec<u8>, rng: &mut SplitMix, k: usize) {
    use std::io::Write;
    let mut body = Vec::new();
    let title = sentence(rng);
    let title = title.split(' ').take(5).collect::<Vec<_>>().join(" ");
    let _ = write!(
        body,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n\
         <body>\n<nav><a href=\"/\">Home</a> | <a href=\"/docs/getting-started\">Docs</a> | \
         <a href=\"/account/settings\">Account</a></nav>\n<h1>{title}</h1>\n"
    );
    for _ in 0..rng.range(1, 24) {
        body.extend_from_slice(b"<p>");
        for i in 0..rng.range(2, 6) {
            if i > 0 {
                body.push(b' ');
            }
            body.extend_from_slice(sentence(rng).as_bytes());
        }
        body.extend_from_slice(b"</p>\n");
    }
    body.extend_from_slice(b"<footer>Served by the other namespace.</footer>\n</body>\n</html>\n");
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\n\
         Date: Sun, 22 Nov 2026 {:02}:{:02}:{:02} GMT\r\n\
         Server: nginx/1.26.2\r\n\
         Content-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\n\
         Cache-Control: private, max-age=300\r\n\
         ETag: \"{}\"\r\n\
         Connection: keep-alive\r\n\r\n",
        (k / 3600) % 24,
        (k / 60) % 60,
        k % 60,
        body.len(),
        hex_token(rng, 1)
    );
    out.extend_from_slice(&body);
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
            msg_ends: Vec::new(),
            msg: Vec::new(),
            msg_idx: None,
        }
    }

    /// Fill `buf` with the stream bytes at offsets `offset .. offset + buf.len()`.
    pub fn fill(&mut self, offset: u64, buf: &mut [u8]) {
        match self.pattern {
            Pattern::Zeros => buf.fill(0),
            Pattern::Digits => self.fill_digits(offset, buf),
            Pattern::Random => self.fill_random(offset, buf),
            Pattern::Text => self.fill_text(offset, buf),
            Pattern::HttpRequests | Pattern::HttpResponses => self.fill_http(offset, buf),
        }
    }

    /// HTTP patterns: stream offset and length of message `k` (request or
    /// response number `k`). Other patterns have no messages: `None`.
    pub fn message(&mut self, k: usize) -> Option<(u64, usize)> {
        if !self.pattern.is_http() {
            return None;
        }
        while self.msg_ends.len() <= k {
            self.build_message(self.msg_ends.len());
        }
        let start = k.checked_sub(1).map_or(0, |j| self.msg_ends[j]);
        let len = usize::try_from(self.msg_ends[k] - start).ok()?;
        Some((start, len))
    }

    /// Builds message `k` into the cache; `k` is at most one past the
    /// messages whose ends are known, so the ends grow in order.
    fn build_message(&mut self, k: usize) {
        if self.msg_idx == Some(k) {
            return;
        }
        let mut rng =
            SplitMix::new(mix64(self.seed ^ 0x6874_7470) ^ (k as u64).wrapping_mul(GAMMA));
        let session = mix64(self.seed ^ 0x636f_6f6b_6965);
        self.msg.clear();
        match self.pattern {
            Pattern::HttpRequests => http_request(&mut self.msg, &mut rng, k, session),
            _ => http_response(&mut self.msg, &mut rng, k),
        }
        if k == self.msg_ends.len() {
            let start = self.msg_ends.last().copied().unwrap_or(0);
            self.msg_ends.push(start + self.msg.len() as u64);
        }
        self.msg_idx = Some(k);
    }

    fn fill_http(&mut self, offset: u64, buf: &mut [u8]) {
        let mut pos = 0usize;
        let mut off = offset;
        while pos < buf.len() {
            while self.msg_ends.last().is_none_or(|&e| e <= off) {
                self.build_message(self.msg_ends.len());
            }
            let k = self.msg_ends.partition_point(|&e| e <= off);
            self.build_message(k);
            let start = k.checked_sub(1).map_or(0, |j| self.msg_ends[j]);
            let from = (off - start) as usize;
            let n = (self.msg.len() - from).min(buf.len() - pos);
            buf[pos..pos + n].copy_from_slice(&self.msg[from..from + n]);
            pos += n;
            off += n as u64;
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
            Pattern::HttpRequests,
            Pattern::HttpResponses,
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
    fn http_messages_are_well_formed_and_tile_the_stream() {
        for p in [Pattern::HttpRequests, Pattern::HttpResponses] {
            let mut g = PatternGen::new(p, 11);
            let mut next = 0u64;
            for k in 0..40 {
                let (start, len) = g.message(k).expect("http");
                assert_eq!(start, next, "{p:?} {k}");
                next = start + len as u64;
                let m = String::from_utf8(g.bytes(start, len)).expect("ascii");
                let (head, body) = m.split_once("\r\n\r\n").expect("end of headers");
                if p == Pattern::HttpResponses {
                    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
                    assert!(body.starts_with("<!DOCTYPE html>") && body.ends_with("</html>\n"));
                }
                match head.split("Content-Length: ").nth(1) {
                    Some(v) => {
                        let n: usize = v
                            .split("\r\n")
                            .next()
                            .and_then(|v| v.parse().ok())
                            .expect("length");
                        assert_eq!(n, body.len(), "{p:?} {k}");
                    }
                    None => assert!(body.is_empty() && head.starts_with("GET /"), "{head}"),
                }
            }
            // Seeds vary the messages, the same seed repeats them.
            assert_ne!(PatternGen::new(p, 12).bytes(0, 2000), g.bytes(0, 2000));
            assert_eq!(PatternGen::new(p, 11).bytes(0, 2000), g.bytes(0, 2000));
        }
        let mut req = PatternGen::new(Pattern::HttpRequests, 0);
        let (start, len) = req.message(7).expect("http");
        let login = String::from_utf8(req.bytes(start, len)).expect("ascii");
        assert!(login.starts_with("POST /account/login") && login.contains("&password="));
        assert_eq!(PatternGen::new(Pattern::Text, 0).message(0), None);
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
