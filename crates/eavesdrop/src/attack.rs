//! What a one-path observer recovers: the head of a stream from the keys
//! of the handshake, and the rest of each contiguous run by the chain
//! attack (docs/design.md, "Security").
//!
//! A scrambled byte is `c[i] = p[i] ^ p[i-64] ^ .. ^ p[i-1]`, so
//! `c[i] ^ c[i+1] = p[i+1] ^ p[i-64]`.  A captured run `c[a..b]` thus
//! ties each plaintext byte in `a-64..b` to the one 65 before it: the 65
//! residue chains are each fixed by one unknown byte (the chain's first
//! position, `a-64..=a`), and `c[a]` itself says the XOR of those 65
//! unknowns.  The attack picks the 65 unknowns that make the chains look
//! most like the traffic's byte model, subject to that XOR, exactly by
//! dynamic programming over the running XOR.

use scramble_core::{State, RING_LEN, SEED_LEN};

use crate::model::ByteModel;

/// Residue chains in one run: one more than the ring.
const CHAINS: usize = RING_LEN + 1;

/// Candidates kept per chain in the dynamic programme; a lower-ranked
/// value almost never wins, and 256 would cost ten times as much.
const CANDIDATES: usize = 24;

/// Candidates per chain when byte pairs are scored too.
const PAIR_CANDIDATES: usize = 8;

/// How a stream byte came to be known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    Unknown,
    /// Decoded with the seed from the handshake's keys: certain.
    Key,
    /// Guessed by the chain attack.
    Chain,
}

/// The attack's output for one stream.
#[derive(Clone, Debug)]
pub struct Recovery {
    pub plain: Vec<u8>,
    pub how: Vec<How>,
}

/// How the recovery compares with the true plaintext.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TruthScore {
    pub truth_bytes: u64,
    pub key_decoded: u64,
    pub key_exact: u64,
    pub chain_guessed: u64,
    pub chain_exact: u64,
    /// Captured bytes equal to the truth as they are: all of them when the
    /// connection was not scrambled.
    pub captured_equal: u64,
    pub captured: u64,
    /// The longest stretch of consecutive stream bytes recovered (by
    /// either attack) and equal to the truth.
    pub longest_exact_run: u64,
}

impl Recovery {
    pub fn count(&self, how: How) -> u64 {
        self.how.iter().filter(|&&h| h == how).count() as u64
    }

    /// Compares with `truth`, stream offset `t` standing for `truth[t +
    /// shift]` (the shift is not 0 when the stream's start had to be
    /// estimated).
    pub fn score(&self, truth: &[u8], runs: &[(u64, &[u8])], shift: usize) -> TruthScore {
        let mut s = TruthScore {
            truth_bytes: truth.len() as u64,
            ..Default::default()
        };
        let aligned = truth.get(shift..).unwrap_or(&[]);
        let mut run = 0u64;
        for ((&p, &how), &t) in self.plain.iter().zip(&self.how).zip(aligned) {
            if how != How::Unknown && p == t {
                run += 1;
                s.longest_exact_run = s.longest_exact_run.max(run);
            } else {
                run = 0;
            }
            match how {
                How::Key => {
                    s.key_decoded += 1;
                    s.key_exact += u64::from(p == t);
                }
                How::Chain => {
                    s.chain_guessed += 1;
                    s.chain_exact += u64::from(p == t);
                }
                How::Unknown => {}
            }
        }
        for &(off, bytes) in runs {
            let from = usize::try_from(off)
                .unwrap_or(usize::MAX)
                .min(aligned.len());
            s.captured += bytes.len() as u64;
            s.captured_equal += bytes
                .iter()
                .zip(&aligned[from..])
                .filter(|(a, b)| a == b)
                .count() as u64;
        }
        s
    }
}

/// Byte pairs the alignment search tests each shift with.
const ALIGN_PROBES: usize = 256;

/// A shift is given up after this many failed probes (a few bytes of a
/// capture can be wrong: a retransmission that differs, say).
const ALIGN_TOLERANCE: usize = 8;

/// Where stream offset 0 falls in a truth file, found by [`align`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alignment {
    pub shift: usize,
    /// Probes that applied at this shift, and how many held.
    pub probes: usize,
    pub matched: usize,
    /// Other shifts that did as well (a periodic truth has many).
    pub ties: usize,
}

/// Finds where stream offset 0 falls in `truth` when the capture did not
/// show the stream's start, from the scrambled bytes alone: two captured
/// neighbours satisfy `c[t] ^ c[t+1] = p[t+1] ^ p[t-64]` whatever the
/// seed, so every shift that fits the captured runs into `truth` is tested
/// with byte pairs spread over all runs, and the one where (nearly) all
/// hold wins.  `None` when no shift does: not this truth, or too little
/// captured to tell.
pub fn align(truth: &[u8], runs: &[(u64, &[u8])]) -> Option<Alignment> {
    let mut pairs: Vec<(usize, u8)> = Vec::new();
    let mut end = 0usize;
    for &(off, bytes) in runs {
        let off = usize::try_from(off).ok()?;
        end = end.max(off.checked_add(bytes.len())?);
        pairs.extend(
            bytes
                .windows(2)
                .enumerate()
                .map(|(i, w)| (off + i, w[0] ^ w[1])),
        );
    }
    if pairs.len() < 2 * ALIGN_TOLERANCE || end > truth.len() {
        return None;
    }
    // Probes spread evenly over the pairs, tested in an order that jumps
    // about (ALIGN_PROBES is a power of two, 97 is odd): a wrong shift
    // fails within a few probes even where the truth repeats locally.
    let n = pairs.len().min(ALIGN_PROBES);
    let spread: Vec<(usize, u8)> = (0..n).map(|k| pairs[k * pairs.len() / n]).collect();
    let probes: Vec<(usize, u8)> = if n == ALIGN_PROBES {
        (0..n).map(|k| spread[(k * 97) % n]).collect()
    } else {
        spread
    };
    let mut best: Option<Alignment> = None;
    for shift in 0..=truth.len() - end {
        let (mut tried, mut matched) = (0usize, 0usize);
        for &(t, x) in &probes {
            let a = shift + t;
            if a < RING_LEN {
                continue;
            }
            tried += 1;
            if truth[a + 1] ^ truth[a - RING_LEN] == x {
                matched += 1;
            } else if tried - matched > ALIGN_TOLERANCE {
                break;
            }
        }
        if tried - matched > ALIGN_TOLERANCE || tried < 2 * ALIGN_TOLERANCE {
            continue;
        }
        match &mut best {
            Some(b) if b.matched == matched => b.ties += 1,
            Some(b) if b.matched > matched => {}
            _ => {
                best = Some(Alignment {
                    shift,
                    probes: tried,
                    matched,
                    ties: 0,
                })
            }
        }
    }
    best
}

/// What is known of the stream's head, that is of the 64 bytes before
/// stream offset 0.
#[derive(Clone, Copy, Debug)]
pub enum Head<'a> {
    /// Offset 0 is the stream's first byte and the keys gave the seed:
    /// the ring's initial content is known.
    Seed(&'a [u8; SEED_LEN]),
    /// Offset 0 is the stream's first byte (its DSN came from a key), the
    /// seed is unknown: the ring's 32 zero bytes are still known.
    Start,
    /// Offset 0 is only the first byte seen: nothing is known before it.
    Unknown,
}

/// Recovers what it can of a stream of `len` bytes of which `runs`
/// (stream offset, scrambled bytes; sorted, disjoint) were captured.
pub fn recover(len: usize, runs: &[(u64, &[u8])], head: Head, model: &ByteModel) -> Recovery {
    let mut rec = Recovery {
        plain: vec![0; len],
        how: vec![How::Unknown; len],
    };
    // The ring's initial content stands for the 64 bytes before the
    // stream: the seed, then 32 zeros, which are known even without it.
    let mut before = [None; RING_LEN];
    for (i, slot) in before.iter_mut().enumerate() {
        *slot = match head {
            Head::Seed(s) => Some(s.get(i).copied().unwrap_or(0)),
            Head::Start => (i >= SEED_LEN).then_some(0),
            Head::Unknown => None,
        };
    }
    let seed = match head {
        Head::Seed(s) => Some(s),
        Head::Start | Head::Unknown => None,
    };
    for &(offset, bytes) in runs {
        let Ok(a) = usize::try_from(offset) else {
            continue;
        };
        if a >= len || bytes.is_empty() {
            continue;
        }
        let bytes = &bytes[..bytes.len().min(len - a)];
        match seed {
            Some(s) if a == 0 => {
                let mut state = State::from_seed(s);
                let mut plain = bytes.to_vec();
                state.descramble(&mut plain);
                rec.plain[..plain.len()].copy_from_slice(&plain);
                rec.how[..plain.len()].fill(How::Key);
            }
            _ => solve_run(&mut rec, &before, a, bytes, model),
        }
    }
    rec
}

fn solve_run(
    rec: &mut Recovery,
    before: &[Option<u8>; RING_LEN],
    a: usize,
    c: &[u8],
    model: &ByteModel,
) {
    let lo = a as i64 - RING_LEN as i64;
    let span = c.len() + RING_LEN;
    // p[lo + i] = k[i] ^ v[i % 65], v the chain's unknown first byte.
    let mut k = vec![0u8; span];
    for i in CHAINS..span {
        k[i] = k[i - CHAINS] ^ c[i - CHAINS] ^ c[i - RING_LEN];
    }
    let known = |t: i64| -> Option<u8> {
        if t < 0 {
            before[(t + RING_LEN as i64) as usize]
        } else {
            let t = t as usize;
            (rec.how.get(t) == Some(&How::Key)).then(|| rec.plain[t])
        }
    };

    let mut fixed: [Option<u8>; CHAINS] = [None; CHAINS];
    let mut scored = [0usize; CHAINS];
    let mut hist = vec![[0u32; 256]; CHAINS];
    for (i, &ki) in k.iter().enumerate() {
        let j = i % CHAINS;
        let t = lo + i as i64;
        if let Some(q) = known(t) {
            fixed[j].get_or_insert(q ^ ki);
        } else if t >= 0 {
            scored[j] += 1;
            hist[j][usize::from(ki)] += 1;
        }
    }

    // `c[a]` is the XOR of the chains' first bytes: with all chains but
    // one fixed, it fixes the last.
    let unfixed: Vec<usize> = (0..CHAINS).filter(|&j| fixed[j].is_none()).collect();
    if let [last] = unfixed[..] {
        let others = fixed.iter().flatten().fold(0, |x, v| x ^ v);
        fixed[last] = Some(c[0] ^ others);
    }

    let mut candidates: Vec<Vec<(u8, f64)>> = Vec::with_capacity(CHAINS);
    for j in 0..CHAINS {
        if let Some(v) = fixed[j] {
            candidates.push(vec![(v, 0.0)]);
            continue;
        }
        let present: Vec<(usize, f64)> = hist[j]
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(x, &n)| (x, f64::from(n)))
            .collect();
        let mut all: Vec<(u8, f64)> = (0..=255u8)
            .map(|v| {
                let s = present
                    .iter()
                    .map(|&(x, n)| n * model.log_p[x ^ usize::from(v)])
                    .sum();
                (v, s)
            })
            .collect();
        if scored[j] > 0 {
            all.sort_by(|x, y| y.1.total_cmp(&x.1));
            all.truncate(CANDIDATES);
        }
        candidates.push(all);
    }

    let mut values = best_with_xor(&candidates, c[0]);
    // Byte frequencies alone cannot tell apart values that map every byte
    // of a chain into the same class (digits of a repeated pattern, say);
    // pairs of neighbours can.
    if let Some(gain) = model.pair_gain.as_deref() {
        let first_scored = usize::try_from(-lo).unwrap_or(0);
        if let Some(v) = best_with_pairs(&candidates, &k, first_scored, gain, c[0]) {
            values = v;
        }
    }
    let all_fixed = fixed.iter().all(Option::is_some);
    for (i, &ki) in k.iter().enumerate() {
        let j = i % CHAINS;
        let t = lo + i as i64;
        if t < 0 || (fixed[j].is_none() && scored[j] < 2) {
            continue;
        }
        let t = t as usize;
        if rec.how.get(t) != Some(&How::Unknown) {
            continue;
        }
        rec.plain[t] = ki ^ values[j];
        rec.how[t] = if all_fixed { How::Key } else { How::Chain };
    }
}

/// The choice of one candidate per chain with the highest total score
/// whose values XOR to `target`; without any such choice (conflicting
/// fixed values), the best choice regardless of `target`.
fn best_with_xor(candidates: &[Vec<(u8, f64)>], target: u8) -> Vec<u8> {
    let mut dp = [f64::NEG_INFINITY; 256];
    dp[0] = 0.0;
    let mut back = vec![[0u8; 256]; candidates.len()];
    for (j, cands) in candidates.iter().enumerate() {
        let mut next = [f64::NEG_INFINITY; 256];
        for (x, &score) in dp.iter().enumerate() {
            if score == f64::NEG_INFINITY {
                continue;
            }
            for &(v, s) in cands {
                let y = x ^ usize::from(v);
                if score + s > next[y] {
                    next[y] = score + s;
                    back[j][y] = v;
                }
            }
        }
        dp = next;
    }
    if dp[usize::from(target)] == f64::NEG_INFINITY {
        return candidates
            .iter()
            .map(|c| c.first().map_or(0, |&(v, _)| v))
            .collect();
    }
    let mut values = vec![0u8; candidates.len()];
    let mut x = target;
    for j in (0..candidates.len()).rev() {
        values[j] = back[j][usize::from(x)];
        x ^= values[j];
    }
    values
}

/// Like [`best_with_xor`], but also scoring each pair of neighbouring
/// plaintext bytes with `gain` (see [`ByteModel::pair_gain`]).  Byte `i`
/// of the span is `k[i] ^ v[i % 65]`, so neighbours tie chain `j` to chain
/// `j + 1` (and the last to the first): a ring, solved exactly over the
/// best few candidates per chain for each candidate of the first chain.
/// Pairs before `first_scored` (bytes before the stream) are not scored.
/// Chains without any scored byte make the XOR free.  `None` if no choice
/// fits.
fn best_with_pairs(
    candidates: &[Vec<(u8, f64)>],
    k: &[u8],
    first_scored: usize,
    gain: &[f64],
    target: u8,
) -> Option<Vec<u8>> {
    let n = candidates.len();
    let free = candidates
        .iter()
        .any(|c| c.len() == 256 && c.iter().all(|&(_, s)| s == 0.0));
    let cands: Vec<&[(u8, f64)]> = candidates
        .iter()
        .map(|c| &c[..c.len().min(PAIR_CANDIDATES)])
        .collect();
    // pair[j][a * PAIR_CANDIDATES + b]: chain j at candidate a next to
    // chain j + 1 at candidate b.
    let mut pair = vec![[0f64; PAIR_CANDIDATES * PAIR_CANDIDATES]; n];
    for i in first_scored..k.len().saturating_sub(1) {
        let (j, next) = (i % n, (i + 1) % n);
        for (a, &(va, _)) in cands[j].iter().enumerate() {
            let row = usize::from(k[i] ^ va) * 256;
            for (b, &(vb, _)) in cands[next].iter().enumerate() {
                pair[j][a * PAIR_CANDIDATES + b] += gain[row + usize::from(k[i + 1] ^ vb)];
            }
        }
    }

    const STATES: usize = PAIR_CANDIDATES * 256;
    let mut best: Option<(f64, Vec<u8>)> = None;
    for (c0, &(v0, s0)) in cands[0].iter().enumerate() {
        let mut dp = vec![f64::NEG_INFINITY; STATES];
        dp[c0 * 256 + usize::from(v0)] = s0;
        let mut back = vec![vec![0u8; STATES]; n];
        for j in 1..n {
            let mut next = vec![f64::NEG_INFINITY; STATES];
            for (a, _) in cands[j - 1].iter().enumerate() {
                for x in 0..256 {
                    let here = dp[a * 256 + x];
                    if here == f64::NEG_INFINITY {
                        continue;
                    }
                    for (b, &(vb, sb)) in cands[j].iter().enumerate() {
                        let y = b * 256 + (x ^ usize::from(vb));
                        let score = here + sb + pair[j - 1][a * PAIR_CANDIDATES + b];
                        if score > next[y] {
                            next[y] = score;
                            back[j][y] = a as u8;
                        }
                    }
                }
            }
            dp = next;
        }
        for (a, _) in cands[n - 1].iter().enumerate() {
            for x in 0..256 {
                if !free && x != usize::from(target) {
                    continue;
                }
                let score = dp[a * 256 + x] + pair[n - 1][a * PAIR_CANDIDATES + c0];
                if score == f64::NEG_INFINITY || best.as_ref().is_some_and(|b| b.0 >= score) {
                    continue;
                }
                let mut values = vec![0u8; n];
                let (mut a, mut x) = (a, x);
                for j in (1..n).rev() {
                    values[j] = cands[j][a].0;
                    let prev = usize::from(back[j][a * 256 + x]);
                    x ^= usize::from(values[j]);
                    a = prev;
                }
                values[0] = v0;
                best = Some((score, values));
            }
        }
    }
    best.map(|b| b.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "It was the best of times, it was the worst of times, it was the age of \
        wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of \
        incredulity, it was the season of Light, it was the season of Darkness, it was the \
        spring of hope, it was the winter of despair, we had everything before us, we had \
        nothing before us, we were all going direct to Heaven, we were all going direct the \
        other way - in short, the period was so far like the present period, that some of its \
        noisiest authorities insisted on its being received, for good or for evil, in the \
        superlative degree of comparison only.\n";

    fn text(n: usize) -> Vec<u8> {
        TEXT.bytes().cycle().take(n).collect()
    }

    fn scrambled(plain: &[u8], seed: &[u8; SEED_LEN]) -> Vec<u8> {
        let mut c = plain.to_vec();
        State::from_seed(seed).scramble(&mut c);
        c
    }

    #[test]
    fn head_run_decodes_exactly_with_the_seed() {
        let seed = [7u8; SEED_LEN];
        let plain = text(3000);
        let c = scrambled(&plain, &seed);
        let rec = recover(
            3000,
            &[(0, &c[..1000])],
            Head::Seed(&seed),
            &ByteModel::english(),
        );
        assert_eq!(&rec.plain[..1000], &plain[..1000]);
        assert_eq!(rec.count(How::Key), 1000);
    }

    #[test]
    fn run_within_reach_of_decoded_bytes_decodes_exactly() {
        let seed = [9u8; SEED_LEN];
        let plain = text(3000);
        let c = scrambled(&plain, &seed);
        let runs = [(0, &c[..500]), (520, &c[520..900])];
        let rec = recover(3000, &runs, Head::Seed(&seed), &ByteModel::uniform());
        // 520..900 has all of 456..520 known but 500..520.
        assert!(rec.how[520..900].iter().all(|&h| h == How::Chain));
        // With 64 known bytes before it, a run is exact whatever the model.
        let runs = [(0, &c[..600]), (600, &c[600..650])];
        let rec = recover(3000, &runs, Head::Seed(&seed), &ByteModel::uniform());
        assert_eq!(&rec.plain[..650], &plain[..650]);
    }

    #[test]
    fn chain_attack_reads_english_from_a_middle_run() {
        let seed = [0x5au8; SEED_LEN];
        let plain = text(10_000);
        let c = scrambled(&plain, &seed);
        let (a, b) = (3000, 6000);
        let rec = recover(
            10_000,
            &[(a as u64, &c[a..b])],
            Head::Start,
            &ByteModel::english(),
        );
        let right = (a..b).filter(|&t| rec.plain[t] == plain[t]).count();
        assert!(right > (b - a) * 9 / 10, "{right} of {}", b - a);
        assert!(rec.how[a - 64..a].iter().all(|&h| h == How::Chain));
    }

    #[test]
    fn uniform_model_cannot_read_random_bytes() {
        let mut x = 0x1234_5678u32;
        let plain: Vec<u8> = (0..5000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let c = scrambled(&plain, &[1; SEED_LEN]);
        let rec = recover(
            5000,
            &[(1000, &c[1000..4000])],
            Head::Start,
            &ByteModel::uniform(),
        );
        let right = (1000..4000).filter(|&t| rec.plain[t] == plain[t]).count();
        assert!(right < 300, "{right}");
    }

    #[test]
    fn byte_pairs_read_short_runs_better() {
        let seed = [0x33u8; SEED_LEN];
        let plain = text(6000);
        let c = scrambled(&plain, &seed);
        let runs: Vec<(u64, &[u8])> = (0..6000)
            .step_by(300)
            .map(|a| (a as u64, &c[a..a + 150]))
            .collect();
        let with_pairs = ByteModel::learn("sample", &text(8000));
        assert!(with_pairs.pair_gain.is_some());
        let without = ByteModel {
            pair_gain: None,
            ..with_pairs.clone()
        };
        let right = |m: &ByteModel| {
            let rec = recover(6000, &runs, Head::Start, m);
            runs.iter()
                .flat_map(|&(a, b)| a as usize..a as usize + b.len())
                .filter(|&t| rec.plain[t] == plain[t])
                .count()
        };
        let (pairs, bytes) = (right(&with_pairs), right(&without));
        assert!(
            pairs > bytes + bytes / 10,
            "with pairs {pairs}, bytes alone {bytes}"
        );
    }

    #[test]
    fn byte_pairs_read_a_repeated_pattern_that_frequencies_cannot() {
        let digits = |n: usize| {
            b"0123456789"
                .iter()
                .copied()
                .cycle()
                .take(n)
                .collect::<Vec<u8>>()
        };
        let plain = digits(6000);
        let c = scrambled(&plain, &[0x44; SEED_LEN]);
        let runs = [(1000u64, &c[1000..4000])];
        let with_pairs = ByteModel::learn("digits", &digits(5000));
        let without = ByteModel {
            pair_gain: None,
            ..with_pairs.clone()
        };
        let right = |m: &ByteModel| {
            let rec = recover(6000, &runs, Head::Start, m);
            (1000..4000).filter(|&t| rec.plain[t] == plain[t]).count()
        };
        assert_eq!(right(&with_pairs), 3000);
        assert!(right(&without) < 2000, "{}", right(&without));
    }

    #[test]
    fn alignment_is_found_from_scrambled_bytes_alone() {
        // Text, with a letter changed here and there so that it does not
        // repeat.
        let mut plain = text(20_000);
        let mut x = 7u32;
        for t in (0..plain.len()).step_by(41) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            plain[t] = b'a' + (x >> 16) as u8 % 26;
        }
        // The truth file starts 5000 bytes before what the capture shows.
        let c = scrambled(&plain, &[0x21; SEED_LEN]);
        let seen = &c[5000..];
        let runs = [
            (100u64, &seen[100..900]),
            (3000, &seen[3000..3100]),
            (9000, &seen[9000..12_000]),
        ];
        let a = align(&plain, &runs).expect("aligned");
        assert_eq!(a.shift, 5000);
        assert_eq!((a.matched, a.ties), (a.probes, 0));
        // The unchanged text repeats: many offsets fit, the first is taken.
        let periodic = text(20_000);
        let c = scrambled(&periodic, &[0x21; SEED_LEN]);
        let runs_p = [(0u64, &c[5000..8000])];
        let a = align(&periodic, &runs_p).expect("aligned");
        assert!(a.ties > 0 && a.shift <= 5000 && (5000 - a.shift).is_multiple_of(TEXT.len()));
        // Another truth does not align.
        let other: Vec<u8> = plain.iter().rev().copied().collect();
        assert_eq!(align(&other, &runs), None);
        // A run too short to tell, or longer than the truth: no answer.
        assert_eq!(align(&plain, &[(0, &seen[..5])]), None);
        assert_eq!(align(&plain[..10_000], &runs), None);
    }

    #[test]
    fn unknown_head_assumes_nothing_before_the_first_byte_seen() {
        // The capture starts mid-stream: with Head::Start the attack would
        // take the 32 bytes before offset 0 for the ring's zeros.
        let plain = text(8000);
        let c = scrambled(&plain, &[0x6c; SEED_LEN]);
        let seen = &c[3000..];
        let right = |head: Head| {
            let rec = recover(5000, &[(0, &seen[..2000])], head, &ByteModel::english());
            (0..2000)
                .filter(|&t| rec.plain[t] == plain[3000 + t])
                .count()
        };
        let (unknown, start) = (right(Head::Unknown), right(Head::Start));
        assert!(unknown > 1800, "{unknown} of 2000");
        assert!(
            unknown > start,
            "unknown head {unknown}, wrong start {start}"
        );
    }

    #[test]
    fn xor_constraint_is_honoured() {
        let cands = vec![vec![(1u8, 0.0), (2, -1.0)], vec![(4, 0.0), (8, -5.0)]];
        assert_eq!(best_with_xor(&cands, 1 ^ 4), vec![1, 4]);
        assert_eq!(best_with_xor(&cands, 2 ^ 4), vec![2, 4]);
        assert_eq!(best_with_xor(&cands, 1 ^ 8), vec![1, 8]);
    }
}
