//! Throughput of the reference and fast paths, scrambling and
//! descrambling, against `copy_from_slice` of the same size; the rx
//! path's copy and descramble in two passes and in one; and beside
//! them what protects a stream for real: the hardened mode's keystream
//! (`src/hardened.rs` over RustCrypto's `chacha20`) and the AEADs a TLS
//! stack would use, AES-128-GCM and ChaCha20-Poly1305 from `ring`.
//!
//! Criterion measures each case; then a table of GB/s, of the fast path
//! over memcpy and of fast over reference is printed, from a timing loop
//! of this file's own (best of several rounds), so the ratios compare
//! numbers taken the same way one right after the other.
//!
//! Run with `cargo bench -p scramble-core`; add `-- SIZE` (`64B`, `1500B`,
//! `64KiB`, `16MiB`) to run one size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use hardened::{Keystream, RustCrypto};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use scramble_core::State;

const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1500, "1500B"),
    (64 << 10, "64KiB"),
    (16 << 20, "16MiB"),
];

#[derive(Clone, Copy)]
enum Case {
    Memcpy,
    ScrambleRef,
    ScrambleFast,
    DescrambleRef,
    DescrambleFast,
    Hardened,
    Aes128Gcm,
    ChaCha20Poly1305,
    CopyThenDescramble,
    DescrambleInto,
}

impl Case {
    const ALL: [Case; 10] = [
        Case::Memcpy,
        Case::ScrambleRef,
        Case::ScrambleFast,
        Case::DescrambleRef,
        Case::DescrambleFast,
        Case::Hardened,
        Case::Aes128Gcm,
        Case::ChaCha20Poly1305,
        Case::CopyThenDescramble,
        Case::DescrambleInto,
    ];

    fn name(self) -> &'static str {
        match self {
            Case::Memcpy => "memcpy",
            Case::ScrambleRef => "scramble_ref",
            Case::ScrambleFast => "scramble",
            Case::DescrambleRef => "descramble_ref",
            Case::DescrambleFast => "descramble",
            Case::Hardened => "hardened_keystream",
            Case::Aes128Gcm => "aes128gcm_ring",
            Case::ChaCha20Poly1305 => "chacha20poly1305_ring",
            Case::CopyThenDescramble => "copy_then_descramble",
            Case::DescrambleInto => "descramble_into",
        }
    }
}

/// The buffers one case works on, and the one operation it times.
struct Bench {
    state: State,
    src: Vec<u8>,
    buf: Vec<u8>,
    /// Stream offset of the hardened keystream, moved on by each call.
    offset: u64,
    aes: LessSafeKey,
    chacha: LessSafeKey,
    /// AEAD nonce counter: a new nonce for each record, as TLS does.
    seq: u64,
}

fn aead_key(alg: &'static aead::Algorithm) -> LessSafeKey {
    LessSafeKey::new(
        UnboundKey::new(alg, &[0x42; 32][..alg.key_len()]).expect("key length of the algorithm"),
    )
}

impl Bench {
    fn new(len: usize) -> Self {
        let src: Vec<u8> = (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8)
            .collect();
        Bench {
            state: State::from_seed(&[0x5a; scramble_core::SEED_LEN]),
            buf: src.clone(),
            src,
            offset: 0,
            aes: aead_key(&aead::AES_128_GCM),
            chacha: aead_key(&aead::CHACHA20_POLY1305),
            seq: 0,
        }
    }

    #[inline(always)]
    fn run(&mut self, case: Case) {
        let buf = black_box(&mut self.buf[..]);
        match case {
            Case::Memcpy => buf.copy_from_slice(black_box(&self.src)),
            Case::ScrambleRef => self.state.scramble_ref(buf),
            Case::ScrambleFast => self.state.scramble(buf),
            Case::DescrambleRef => self.state.descramble_ref(buf),
            Case::DescrambleFast => self.state.descramble(buf),
            Case::CopyThenDescramble => {
                buf.copy_from_slice(black_box(&self.src));
                self.state.descramble(buf);
            }
            Case::DescrambleInto => self.state.descramble_into(black_box(&self.src), buf),
            Case::Hardened => {
                Keystream::new(&RustCrypto, &[0x42; 32]).apply(self.offset, buf);
                self.offset += buf.len() as u64;
            }
            Case::Aes128Gcm | Case::ChaCha20Poly1305 => {
                let key = if matches!(case, Case::Aes128Gcm) {
                    &self.aes
                } else {
                    &self.chacha
                };
                let mut n = [0u8; 12];
                n[4..].copy_from_slice(&self.seq.to_be_bytes());
                self.seq += 1;
                let tag = key
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), buf)
                    .expect("a record within the AEAD's limits");
                let _ = black_box(tag);
            }
        }
        black_box(&mut self.state);
    }
}

fn criterion_groups(c: &mut Criterion) {
    for (len, label) in SIZES {
        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Bytes(len as u64));
        if len >= 1 << 20 {
            group.sample_size(10);
        }
        for case in Case::ALL {
            let mut bench = Bench::new(len);
            group.bench_function(BenchmarkId::from_parameter(case.name()), |b| {
                b.iter(|| bench.run(case))
            });
        }
        group.finish();
    }
}

/// Bytes per nanosecond (GB/s) of `case` on `len` bytes: the best of
/// rounds of about 1 MiB (at least one call each) for about 300 ms.  The
/// best round is the one least disturbed by other work on the machine.
fn gigabytes_per_second(case: Case, len: usize) -> f64 {
    const BUDGET: Duration = Duration::from_millis(300);
    const MIN_ROUNDS: usize = 5;
    let mut bench = Bench::new(len);
    let calls_per_round = (1usize << 20).div_ceil(len);
    let start = Instant::now();
    let mut best = Duration::MAX;
    let mut rounds = 0;
    while rounds < MIN_ROUNDS || start.elapsed() < BUDGET {
        let round = Instant::now();
        for _ in 0..calls_per_round {
            bench.run(case);
        }
        best = best.min(round.elapsed());
        rounds += 1;
    }
    (len * calls_per_round) as f64 / best.as_nanos().max(1) as f64
}

fn print_summary(sizes: &[(usize, &str)]) {
    println!();
    println!("Summary: GB/s (1e9 bytes/s), best round of this file's own timing loop; f/ref = fast over reference, f/mcpy = fast over memcpy");
    println!(
        "{:>6} | {:>7} | {:>8} {:>8} {:>7} {:>7} | {:>8} {:>8} {:>7} {:>7}",
        "size",
        "memcpy",
        "scr ref",
        "scr fast",
        "f/ref",
        "f/mcpy",
        "dsc ref",
        "dsc fast",
        "f/ref",
        "f/mcpy"
    );
    for &(len, label) in sizes {
        let [memcpy, scr_ref, scr_fast, dsc_ref, dsc_fast, ..] =
            Case::ALL.map(|case| gigabytes_per_second(case, len));
        println!(
            "{label:>6} | {memcpy:>7.2} | {scr_ref:>8.2} {scr_fast:>8.2} {:>6.1}x {:>6.2}x | \
             {dsc_ref:>8.2} {dsc_fast:>8.2} {:>6.1}x {:>6.2}x",
            scr_fast / scr_ref,
            scr_fast / memcpy,
            dsc_fast / dsc_ref,
            dsc_fast / memcpy,
        );
    }
    println!("Targets at 64KiB: fast >= 8x reference, fast >= 0.5x memcpy.");
    println!();
    println!("Beside them, GB/s and over the fast scrambler (x/scr): the hardened keystream, and ring's AEADs sealing each buffer as one record");
    println!(
        "{:>6} | {:>8} | {:>8} {:>6} | {:>8} {:>6} | {:>8} {:>6}",
        "size", "scr fast", "hardened", "x/scr", "aes-gcm", "x/scr", "chachapoly", "x/scr"
    );
    for &(len, label) in sizes {
        let [scr, hard, aes, chacha] = [
            Case::ScrambleFast,
            Case::Hardened,
            Case::Aes128Gcm,
            Case::ChaCha20Poly1305,
        ]
        .map(|case| gigabytes_per_second(case, len));
        println!(
            "{label:>6} | {scr:>8.2} | {hard:>8.2} {:>5.2}x | {aes:>8.2} {:>5.2}x | {chacha:>8.2} {:>5.2}x",
            hard / scr,
            aes / scr,
            chacha / scr,
        );
    }
    println!();
    println!("The rx copy: copy, then descramble the copy (two passes), against descramble_into (one pass)");
    println!("{:>6} | {:>8} {:>8} {:>7}", "size", "two", "one", "one/two");
    for &(len, label) in sizes {
        let [two, one] = [Case::CopyThenDescramble, Case::DescrambleInto]
            .map(|case| gigabytes_per_second(case, len));
        println!("{label:>6} | {two:>8.2} {one:>8.2} {:>6.2}x", one / two);
    }
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500))
        .sample_size(30)
        .nresamples(10_000)
        .configure_from_args();
    criterion_groups(&mut criterion);
    criterion.final_summary();

    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // there criterion only checks that each case runs once.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list") {
        let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        let sizes: Vec<(usize, &str)> = SIZES
            .into_iter()
            .filter(|(_, label)| {
                filters.is_empty() || filters.iter().any(|f| label.contains(f.as_str()))
            })
            .collect();
        print_summary(&sizes);
    }
}
