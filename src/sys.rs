// SPDX-License-Identifier: GPL-2.0

//! The thin unsafe layer: small generic wrappers over the kernel's C API,
//! with no feature in them, and the few single C calls the logic needs.

use kernel::bindings;

pub(crate) mod crypto;
pub(crate) mod kprobe;
pub(crate) mod param;
pub(crate) mod percpu;
pub(crate) mod pernet;
pub(crate) mod seq_file;
pub(crate) mod slots;
pub(crate) mod sysctl;
pub(crate) mod timer;

use crate::scrambler::SEED_LEN;

/// SHA-256 of `data`, by the kernel's library implementation (callable in
/// any context).
pub(crate) fn sha256(data: &[u8]) -> [u8; SEED_LEN] {
    let mut out = [0u8; SEED_LEN];
    // The seed's HMAC never hashes more than 96 bytes; a longer input
    // would be cut, never overrun.
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    // SAFETY: `data` is readable for `len <= data.len()` bytes and `out`
    // has room for the 32-byte digest.
    unsafe { bindings::sha256(data.as_ptr(), len, out.as_mut_ptr()) };
    out
}

/// Fills `buf` from the kernel's random number generator.  Process or
/// softirq context, never an NMI-like one (it takes a local lock).
pub(crate) fn random_bytes(buf: &mut [u8]) {
    // SAFETY: `buf` is writable for `buf.len()` bytes.
    unsafe { bindings::get_random_bytes(buf.as_mut_ptr().cast(), buf.len()) };
}

/// Whether this CPU runs NMI-like now (`in_nmi()`,
/// include/linux/preempt.h): in an NMI, or, on x86, in the handler of a
/// kprobe hit that trapped on int3 (`exc_int3()` enters NMI context); an
/// optimized or ftrace-based kprobe's handler runs in the probed code's
/// context instead.
pub(crate) fn in_nmi() -> bool {
    // SAFETY: `in_nmi()` only reads this CPU's preempt count.
    unsafe { bindings::in_nmi() }
}

/// Monotonic time in nanoseconds.
pub(crate) fn now_ns() -> i64 {
    // SAFETY: `ktime_get()` has no preconditions.
    unsafe { bindings::ktime_get() }
}

/// Pins this module: each scrambled connection holds one reference, so
/// `rmmod` refuses while any is alive.  Fails once unloading has begun.
pub(crate) fn module_get() -> bool {
    // SAFETY: `THIS_MODULE` is this module, which is alive while its code
    // runs.
    unsafe { bindings::try_module_get(crate::THIS_MODULE.as_ptr()) }
}

/// Releases a reference taken by [`module_get`].
pub(crate) fn module_put() {
    // SAFETY: as for `module_get`; the caller owns a reference.
    unsafe { bindings::module_put(crate::THIS_MODULE.as_ptr()) }
}

/// Lets the scheduler run something else if it wants to (process context
/// only).
pub(crate) fn cond_resched() {
    // SAFETY: `__cond_resched()` may sleep; callers are in process context.
    unsafe { bindings::__cond_resched() };
}

/// Sleeps for at least `ms` milliseconds (process context only).
pub(crate) fn msleep(ms: u32) {
    // SAFETY: `msleep()` may sleep; callers are in process context.
    unsafe { bindings::msleep(ms) };
}

/// The calling task's umask (fs/fs_struct.c): a cheap exported kernel
/// function with an ftrace call site, that the self-benchmark puts a
/// kprobe on to time a kprobe hit.  Process context only.
pub(crate) fn current_umask() -> i32 {
    // SAFETY: `current_umask()` reads `current->fs`, which every task
    // that can write a sysctl has.
    unsafe { bindings::current_umask() }
}
