// SPDX-License-Identifier: GPL-2.0

//! Kprobes in static slots: registered with [`Kprobe::register`],
//! unregistered on drop, their miss counts readable for as long as the
//! module is loaded.

use kernel::{bindings, error::to_result, prelude::*, types::Opaque};

/// What a kprobe calls before the probed instruction: the raw C signature.
pub(crate) type PreHandler =
    unsafe extern "C" fn(*mut bindings::kprobe, *mut bindings::pt_regs) -> core::ffi::c_int;

/// Room for one `struct kprobe`, in the module's static data.
///
/// # Invariants
///
/// Only [`Kprobe::register`] writes the struct, before registering it;
/// once registered only the kprobes core does, until [`Kprobe`]'s drop
/// unregisters it.
pub(crate) struct Slot(Opaque<bindings::kprobe>);

// SAFETY: see the type invariant: no two threads of this module ever
// write a slot at once, and reads of `nmissed` are READ_ONCE-style.
unsafe impl Sync for Slot {}

impl Slot {
    /// An empty slot.
    pub(crate) const fn new() -> Self {
        // SAFETY: an all-zero `struct kprobe` is what C's `= { }` gives:
        // no address, no handlers, not registered.
        Slot(Opaque::new(unsafe { core::mem::zeroed() }))
    }

    /// How many hits of this kprobe the kprobes core skipped because
    /// another kprobe's handler was running on the same CPU.  Each one is a
    /// hook call this module never saw.
    pub(crate) fn missed(&self) -> u64 {
        // SAFETY: the field is always valid; the kprobes core increments it
        // with plain stores, so read it once, volatile, like READ_ONCE().
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*self.0.get()).nmissed)) as u64 }
    }
}

/// A registered kprobe on a kernel symbol.
///
/// # Invariants
///
/// `slot` is registered with the kprobes core until `drop`.
pub(crate) struct Kprobe {
    slot: &'static Slot,
}

impl Kprobe {
    /// Puts a kprobe on the entry of `symbol`, calling `pre` each time the
    /// function is entered.  `pre` runs in the probed function's context
    /// with preemption disabled: it must not sleep.  Each slot serves one
    /// registration per module load.
    pub(crate) fn register(
        slot: &'static Slot,
        symbol: &'static CStr,
        pre: PreHandler,
    ) -> Result<Self> {
        let kp = slot.0.get();
        // SAFETY: by the slot's invariant nothing else touches an
        // unregistered slot; after `register_kprobe()` succeeds, only the
        // kprobes core does, until `drop`.  The slot is static, so its
        // address is stable.
        unsafe {
            (*kp).symbol_name = symbol.as_char_ptr();
            (*kp).pre_handler = Some(pre);
            to_result(bindings::register_kprobe(kp))?;
        }
        // INVARIANT: registered just above.
        Ok(Kprobe { slot })
    }
}

impl Drop for Kprobe {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the kprobe is registered; once this
        // returns no handler runs any more.
        unsafe { bindings::unregister_kprobe(self.slot.0.get()) };
    }
}
