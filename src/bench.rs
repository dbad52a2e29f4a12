// SPDX-License-Identifier: GPL-2.0

//! The in-kernel self-benchmark: `echo 1 > /proc/sys/net/mptcp_scramble/bench`
//! (initial namespace only) logs the throughput of both scrambler paths,
//! of the hardened mode's keystream on the kernel's ChaCha20, and of
//! memcpy as the baseline; what the rx copy costs done apart from the
//! transform and in one pass with it; and the time one kprobe hit adds
//! to a call, for each kind of kprobe; on the machine the module runs on.

use core::{
    ffi::c_int,
    sync::atomic::{
        AtomicBool, AtomicU64,
        Ordering::{Acquire, Relaxed, Release},
    },
};
use kernel::{bindings, c_str, prelude::*};

use crate::{
    conn::{descramble_piece, Piece},
    hardened::{wipe, Crypto, Keystream, BASE_POINT},
    keypool,
    scrambler::{State, SEED_LEN},
    sys::{
        self,
        crypto::{self, Impl, LibCrypto},
        kprobe::{Kprobe, Placement, Slot},
        sysctl,
    },
};

/// Size of one call, as a large receive or send chunk.
const BUF_LEN: usize = 64 * 1024;
/// Bytes each path processes per measurement.
const TOTAL: usize = 16 * 1024 * 1024;

/// MB/s (10^6 bytes per second) for `bytes` in `ns` nanoseconds.
fn mb_per_s(bytes: usize, ns: i64) -> u64 {
    (bytes as u64).saturating_mul(1000) / (ns.max(1) as u64)
}

/// What the rx hook copies and transforms at a time: one piece, at most
/// a page of the fresh pages that replace an skb's frags.
const COPY_BLOCK: usize = 4096;

/// Copies `src` into `dst` (of the same length) a block at a time and
/// applies `f` to each block of `dst` while it is in the cache: how the
/// rx hook makes an skb private and decrypts it in the hardened mode
/// (patch 15, `conn::Piece`), against the two passes the rx path made
/// before (`skb_copy_ubufs()`, then the hook in place).
fn copy_through(src: &[u8], dst: &mut [u8], mut f: impl FnMut(&mut [u8])) {
    for (src, dst) in src.chunks(COPY_BLOCK).zip(dst.chunks_mut(COPY_BLOCK)) {
        f(Piece::Shared { src, dst }.into_private().0);
    }
}

/// Times `f` over [`TOTAL`] bytes in [`BUF_LEN`] calls.
fn measure(buf: &mut [u8], mut f: impl FnMut(&mut [u8])) -> u64 {
    let start = sys::now_ns();
    for _ in 0..TOTAL / BUF_LEN {
        f(buf);
        sys::cond_resched();
    }
    mb_per_s(TOTAL, sys::now_ns() - start)
}

/// Runs the benchmark and logs one line.  Process context: it sleeps to
/// allocate.
fn run() -> Result {
    let mut buf = KVec::with_capacity(BUF_LEN, GFP_KERNEL)?;
    let mut copy = KVec::with_capacity(BUF_LEN, GFP_KERNEL)?;
    for i in 0..BUF_LEN {
        buf.push((i % 251) as u8, GFP_KERNEL)?;
        copy.push(0u8, GFP_KERNEL)?;
    }
    let seed = [0x5a; SEED_LEN];
    let mut state = State::from_seed(&seed);

    let memcpy = measure(&mut buf, |b| copy.copy_from_slice(b));
    let scramble_ref = measure(&mut buf, |b| state.scramble_ref(b));
    let scramble = measure(&mut buf, |b| state.scramble(b));
    let descramble_ref = measure(&mut buf, |b| state.descramble_ref(b));
    let descramble = measure(&mut buf, |b| state.descramble(b));
    let mut offset = 0u64;
    let hardened = measure(&mut buf, |b| {
        Keystream::new(&LibCrypto, &seed).apply(offset, b);
        offset += b.len() as u64;
    });
    // The two ChaCha20s the keystream picks from by context: the one
    // above (process context: the architecture's, SIMD where there is
    // one) and the generic C one an int3-trapped handler takes.
    let mut counter = 0u32;
    let generic = measure(&mut buf, |b| {
        crypto::chacha20(&seed, &[0; 12], counter, b, Impl::Generic);
        counter = counter.wrapping_add((b.len() / 64) as u32);
    });
    // The rx copy: apart from the transform (copy, then transform the
    // copy), and in one pass with it.
    let rx_paper_two = measure(&mut buf, |b| {
        copy.copy_from_slice(b);
        state.descramble(&mut copy);
    });
    let rx_paper_one = measure(&mut buf, |b| {
        for (src, dst) in b.chunks(COPY_BLOCK).zip(copy.chunks_mut(COPY_BLOCK)) {
            descramble_piece(&mut state, Piece::Shared { src, dst });
        }
    });
    let keystream = Keystream::new(&LibCrypto, &seed);
    let rx_hardened_two = measure(&mut buf, |b| {
        copy.copy_from_slice(b);
        keystream.apply(offset, &mut copy);
        offset += b.len() as u64;
    });
    let rx_hardened_one = measure(&mut buf, |b| {
        copy_through(b, &mut copy, |d| {
            keystream.apply(offset, d);
            offset += d.len() as u64;
        })
    });
    // One X25519 keypair as the pool makes them (random bytes and a
    // scalar multiplication of the base point): microseconds each.
    const KEYPAIRS: i64 = 16;
    let start = sys::now_ns();
    for _ in 0..KEYPAIRS {
        if let Some(mut kp) = keypool::make() {
            wipe(&mut kp);
        }
        sys::cond_resched();
    }
    let keypair_us = (sys::now_ns() - start) / KEYPAIRS / 1000;
    // The pool, as a handler would find it, and one keypair taken from it
    // checked: its public key is its private key times the base point.
    let ready = keypool::ready();
    let valid = match keypool::take() {
        Some((mut e, p)) => {
            let ok = LibCrypto.x25519(&e, &BASE_POINT) == Some(p);
            wipe(&mut e);
            if ok {
                "valid"
            } else {
                "INVALID"
            }
        }
        None => "none",
    };
    pr_info!(
        "bench: {} KiB calls, MB/s: memcpy {}, scramble reference {} fast {}, \
         descramble reference {} fast {}, hardened keystream {} (generic ChaCha20 {}); \
         X25519 keypair {} us, keypairs ready {}/{}, taken {}\n",
        BUF_LEN / 1024,
        memcpy,
        scramble_ref,
        scramble,
        descramble_ref,
        descramble,
        hardened,
        generic,
        keypair_us,
        ready,
        keypool::POOL_LEN,
        valid
    );
    pr_info!(
        "bench: rx copy and transform of {} KiB, MB/s: two passes paper {} hardened {}, \
         one pass ({} KiB blocks) paper {} hardened {}\n",
        BUF_LEN / 1024,
        rx_paper_two,
        rx_hardened_two,
        COPY_BLOCK / 1024,
        rx_paper_one,
        rx_hardened_one
    );
    let k = kprobe_cost()?;
    pr_info!(
        "bench: kprobe hit on {}, ns added per call: ftrace {}, int3 trap {}, optimized {}; \
         call without {} ns; {}\n",
        PROBE_TARGET,
        Ns(k.ftrace),
        Ns(k.trapped),
        Ns(k.optimized),
        k.base,
        if k.all_hit {
            "every call hit"
        } else {
            "CALLS MISSED"
        }
    );
    Ok(())
}

/// The function the kprobe benchmark probes and calls: see
/// [`sys::current_umask`].
const PROBE_TARGET: &CStr = c_str!("current_umask");
/// The kprobe the benchmark times; one benchmark runs at a time
/// ([`RUNNING`]).
static PROBE: Slot = Slot::new();
/// Hits of [`PROBE`], by the benchmark's calls and any other task's.
static HITS: AtomicU64 = AtomicU64::new(0);
/// Whether a benchmark is running.
static RUNNING: AtomicBool = AtomicBool::new(false);
/// Calls per timing round.
const CALLS: u32 = 2000;
/// Calls timed on an int3-trapped kprobe: few, so that the kprobe
/// optimizer (which starts some jiffies after registration,
/// kernel/kprobes.c `OPTIMIZE_DELAY`) has not replaced the trap yet.
const TRAPPED_CALLS: u32 = 200;
/// How often and how long to wait for the kprobe optimizer.
const OPTIMIZER_POLLS: u32 = 30;
const OPTIMIZER_POLL_MS: u32 = 100;

/// The handler: counts the hit and nothing else, so that what is timed is
/// the kprobe's own cost.
extern "C" fn count_hit(_: *mut bindings::kprobe, _: *mut bindings::pt_regs) -> c_int {
    HITS.fetch_add(1, Relaxed);
    0
}

/// Nanoseconds per call of [`PROBE_TARGET`], over `calls` calls.
fn ns_per_call(calls: u32) -> i64 {
    let start = sys::now_ns();
    for _ in 0..calls {
        core::hint::black_box(sys::current_umask());
    }
    (sys::now_ns() - start) / i64::from(calls.max(1))
}

/// The fastest of five rounds of [`CALLS`] calls: an interrupt only ever
/// makes a round slower.
fn best_ns_per_call(calls: &mut u64) -> i64 {
    *calls += 5 * u64::from(CALLS);
    (0..5).map(|_| ns_per_call(CALLS)).min().unwrap_or(0)
}

/// What one kprobe hit adds to a call, by kind; `None` where this kernel
/// has no such kprobe (no `KPROBES_ON_FTRACE`, optimization off).
struct KprobeCost {
    base: i64,
    ftrace: Option<i64>,
    trapped: Option<i64>,
    optimized: Option<i64>,
    /// Whether the handler ran at least once for each timed call.
    all_hit: bool,
}

/// Formats an optional figure.
struct Ns(Option<i64>);

impl core::fmt::Display for Ns {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(ns) => write!(f, "{ns}"),
            None => f.write_str("n/a"),
        }
    }
}

/// Times calls of [`PROBE_TARGET`] without a kprobe, with one on its
/// ftrace call site, and with one past it: an int3 trap at first, a jump
/// once the kprobe optimizer has run (the three kinds the hooks' kprobes
/// can be, docs/design.md "The kprobe handlers' context").  Process
/// context: it sleeps.
fn kprobe_cost() -> Result<KprobeCost> {
    let mut calls = 0u64;
    let base = best_ns_per_call(&mut 0);
    HITS.store(0, Relaxed);
    let probe = Kprobe::register(&PROBE, PROBE_TARGET, count_hit, Placement::Entry)?;
    let ftrace = PROBE
        .on_ftrace()
        .then(|| best_ns_per_call(&mut calls) - base);
    drop(probe);
    let probe = Kprobe::register(&PROBE, PROBE_TARGET, count_hit, Placement::PastFtrace)?;
    calls += u64::from(TRAPPED_CALLS);
    let trapped_ns = ns_per_call(TRAPPED_CALLS);
    let mut optimized = None;
    for _ in 0..OPTIMIZER_POLLS {
        sys::msleep(OPTIMIZER_POLL_MS);
        calls += u64::from(CALLS);
        // Optimized: a jump costs a fraction of a trap.
        if ns_per_call(CALLS) * 2 < trapped_ns {
            optimized = Some(best_ns_per_call(&mut calls) - base);
            break;
        }
    }
    drop(probe);
    Ok(KprobeCost {
        base,
        ftrace,
        // Without a jump to compare with, the first round may not have
        // been a trap throughout.
        trapped: optimized.map(|_| trapped_ns - base),
        optimized,
        all_hit: HITS.load(Relaxed) >= calls,
    })
}

/// A write to the `bench` sysctl: `1` runs the benchmark; anything else
/// is refused with `EINVAL`.
/// Another write while a run is going fails with `EBUSY`.
pub(crate) fn run_on_write(text: &[u8]) -> Result {
    if sysctl::trimmed(text) != b"1" {
        return Err(EINVAL);
    }
    if RUNNING.swap(true, Acquire) {
        return Err(EBUSY);
    }
    let result = run();
    RUNNING.store(false, Release);
    result
}
