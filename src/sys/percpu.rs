// SPDX-License-Identifier: GPL-2.0

//! Per-CPU `u64` counters (include/linux/percpu-defs.h): each CPU adds to
//! its own copy with one `this_cpu_add()`, without atomics or a cache line
//! shared with other CPUs; a reader sums the copies of every possible
//! CPU.

use core::{
    ffi::c_int,
    marker::PhantomData,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{bindings, prelude::*};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("PerCpuU64s::add() relies on this_cpu_add() being one NMI-safe instruction");

/// `N` counters per possible CPU, all zero at first.  All-zero is a
/// valid value: no counters yet, so that [`add`](Self::add) does nothing
/// and every [`sum`](Self::sum) is 0 until [`alloc`](Self::alloc).
///
/// # Invariants
///
/// `ptr` is null or a per-CPU allocation of `[u64; N]` from
/// `__alloc_percpu()`, owned by this value; it changes only from null to
/// an allocation, in [`PerCpuU64s::alloc`], before any other use.
pub(crate) struct PerCpuU64s<const N: usize> {
    ptr: AtomicPtr<u64>,
    _counters: PhantomData<[u64; N]>,
}

// SAFETY: the per-CPU memory is only written with `this_cpu_add()` (each
// CPU its own copy, one instruction) and read with volatile loads.
unsafe impl<const N: usize> Sync for PerCpuU64s<N> {}
// SAFETY: the allocation is not tied to a thread.
unsafe impl<const N: usize> Send for PerCpuU64s<N> {}

impl<const N: usize> PerCpuU64s<N> {
    /// Allocates the counters (process context: it may sleep).  Fails
    /// with `ENOMEM`, or with `EEXIST` when they exist already.
    pub(crate) fn alloc(&self) -> Result {
        if !self.ptr.load(Ordering::Relaxed).is_null() {
            return Err(EEXIST);
        }
        // SAFETY: `__alloc_percpu()` has no preconditions beyond process
        // context; it returns zeroed memory for every possible CPU, or
        // null.
        let ptr = unsafe { bindings::__alloc_percpu(size_of::<[u64; N]>(), align_of::<u64>()) };
        if ptr.is_null() {
            return Err(ENOMEM);
        }
        // INVARIANT: null before, an allocation of `[u64; N]` now.  The
        // release store pairs with the acquire loads of the users: who
        // sees the pointer sees the zeroed memory.
        self.ptr.store(ptr.cast(), Ordering::Release);
        Ok(())
    }

    /// Adds `n` (wrapping) to counter `i` on this CPU.  Any context,
    /// NMI-like ones included; `i` past the end does nothing.
    pub(crate) fn add(&self, i: usize, n: u64) {
        let ptr = self.ptr.load(Ordering::Acquire);
        if ptr.is_null() || i >= N {
            return;
        }
        // SAFETY: `ptr` is a live per-CPU `[u64; N]` (type invariant) and
        // `i < N`, so `ptr + i` is a per-CPU `u64`; on x86-64
        // `this_cpu_add()` is one instruction, safe against preemption,
        // interrupts and NMIs.
        unsafe { bindings::this_cpu_add_u64(ptr.wrapping_add(i), n) };
    }

    /// The sum over all possible CPUs of counter `i`, wrapping: a count
    /// that went up on one CPU and down on another sums right.  Any
    /// context; the copies are read one after another, not as one
    /// snapshot.
    pub(crate) fn sum(&self, i: usize) -> u64 {
        let ptr = self.ptr.load(Ordering::Acquire);
        if ptr.is_null() || i >= N {
            return 0;
        }
        let mut total = 0u64;
        let mut cpu: c_int = -1;
        loop {
            // SAFETY: `__cpu_possible_mask` is a valid, static cpumask;
            // `cpumask_next()` only reads it.
            let next = unsafe {
                bindings::cpumask_next(cpu, core::ptr::addr_of!(bindings::__cpu_possible_mask))
            };
            // SAFETY: `nr_cpu_ids` is set at boot and never changes.
            if next >= unsafe { bindings::nr_cpu_ids } {
                break;
            }
            // SAFETY: `next` is a possible CPU, so `per_cpu_ptr()` gives
            // its copy of the live allocation (type invariant), of which
            // `i < N` is in bounds; it is written only by that CPU's
            // single-instruction adds, so a volatile load sees whole
            // values.
            let value = unsafe {
                bindings::per_cpu_ptr(ptr.cast(), next)
                    .cast::<u64>()
                    .wrapping_add(i)
                    .read_volatile()
            };
            total = total.wrapping_add(value);
            cpu = next as c_int;
        }
        total
    }
}

impl<const N: usize> Drop for PerCpuU64s<N> {
    fn drop(&mut self) {
        let ptr = *self.ptr.get_mut();
        if !ptr.is_null() {
            // SAFETY: our own allocation (type invariant), no longer used:
            // `drop` has the value to itself.
            unsafe { bindings::free_percpu(ptr.cast()) };
        }
    }
}
