// SPDX-License-Identifier: GPL-2.0

//! A fixed array of slots, each empty or holding one secret of `L` bytes,
//! that any context may take from (an int3-trapped kprobe handler
//! included: no lock, no allocation, no waiting) and that a filler
//! refills.  A taken slot is wiped.

use core::{
    cell::UnsafeCell,
    sync::atomic::{AtomicU8, Ordering},
};

const EMPTY: u8 = 0;
const FILLING: u8 = 1;
const FULL: u8 = 2;
const TAKING: u8 = 3;

struct Slot<const L: usize> {
    state: AtomicU8,
    value: UnsafeCell<[u8; L]>,
}

/// `N` slots of `L` bytes.
///
/// # Invariants
///
/// A slot's `value` is accessed only by whoever moved its `state` from
/// `EMPTY` to `FILLING` (writes) or from `FULL` to `TAKING` (reads), until
/// it stores the next state with release ordering; the compare-exchanges
/// make that party unique.
pub(crate) struct Slots<const L: usize, const N: usize> {
    slots: [Slot<L>; N],
}

// SAFETY: per the invariant, each slot's value has one user at a time, and
// the acquire/release pairs on `state` order its accesses.
unsafe impl<const L: usize, const N: usize> Sync for Slots<L, N> {}

impl<const L: usize, const N: usize> Slots<L, N> {
    /// All slots empty.
    pub(crate) const fn new() -> Self {
        Self {
            slots: [const {
                Slot {
                    state: AtomicU8::new(EMPTY),
                    value: UnsafeCell::new([0; L]),
                }
            }; N],
        }
    }

    /// Takes the value out of a full slot, leaving zeroes in its place;
    /// `None` when all are empty.
    pub(crate) fn take(&self) -> Option<[u8; L]> {
        for slot in &self.slots {
            if slot
                .state
                .compare_exchange(FULL, TAKING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: this call moved the slot to TAKING, so it is the
                // value's only user (type invariant).
                let v = unsafe { core::ptr::replace(slot.value.get(), [0; L]) };
                slot.state.store(EMPTY, Ordering::Release);
                return Some(v);
            }
        }
        None
    }

    /// Fills up to `max` empty slots with `make()`; a `None` from it stops
    /// the round.  Returns how many it filled.
    pub(crate) fn refill(&self, max: usize, mut make: impl FnMut() -> Option<[u8; L]>) -> usize {
        let mut filled = 0;
        for slot in &self.slots {
            if filled == max {
                break;
            }
            if slot
                .state
                .compare_exchange(EMPTY, FILLING, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue;
            }
            match make() {
                Some(v) => {
                    // SAFETY: this call moved the slot to FILLING, so it is
                    // the value's only user (type invariant).
                    unsafe { *slot.value.get() = v };
                    slot.state.store(FULL, Ordering::Release);
                    filled += 1;
                }
                None => {
                    slot.state.store(EMPTY, Ordering::Release);
                    break;
                }
            }
        }
        filled
    }

    /// How many slots are full now (a snapshot).
    pub(crate) fn ready(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.state.load(Ordering::Relaxed) == FULL)
            .count()
    }

    /// Takes and wipes every full slot.
    pub(crate) fn clear(&self) {
        while let Some(mut v) = self.take() {
            v.fill(0);
        }
    }
}
