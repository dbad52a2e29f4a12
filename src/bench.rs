// SPDX-License-Identifier: GPL-2.0

//! The in-kernel self-benchmark: `echo 1 > /proc/sys/net/mptcp_scramble/bench`
//! (initial namespace only) logs the throughput of both scrambler paths,
//! of the hardened mode's keystream on the kernel's ChaCha20, and of
//! memcpy as the baseline, on the machine the module runs on.

use kernel::prelude::*;

use crate::{
    hardened::{wipe, Crypto, Keystream, BASE_POINT},
    keypool,
    scrambler::{State, SEED_LEN},
    sys::{
        self,
        crypto::{self, Impl, LibCrypto},
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
    Ok(())
}

/// A write to the `bench` sysctl: `1` runs the benchmark; anything else
/// is refused with `EINVAL`.
pub(crate) fn run_on_write(text: &[u8]) -> Result {
    match sysctl::trimmed(text) {
        b"1" => run(),
        _ => Err(EINVAL),
    }
}
