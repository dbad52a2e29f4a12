// SPDX-License-Identifier: GPL-2.0

//! A registered kprobe, unregistered on drop.

use kernel::{bindings, error::to_result, prelude::*};

/// What a kprobe calls before the probed instruction: the raw C signature.
pub(crate) type PreHandler =
    unsafe extern "C" fn(*mut bindings::kprobe, *mut bindings::pt_regs) -> core::ffi::c_int;

/// A `struct kprobe` that the kprobes core holds a pointer to.
struct Raw(bindings::kprobe);

// SAFETY: after registration only the kprobes core touches the struct,
// under its own locking; this module never reads or writes it again until
// `unregister_kprobe()` returns.  Sharing the owner between threads (the
// module struct is `Sync`) is therefore sound.
unsafe impl Send for Raw {}
// SAFETY: see `Send`: no `&self` method reads the struct.
unsafe impl Sync for Raw {}

/// A kprobe on a kernel symbol.
///
/// # Invariants
///
/// `raw` is registered with the kprobes core and lives at a stable heap
/// address until `drop` unregisters it.
pub(crate) struct Kprobe {
    raw: KBox<Raw>,
}

impl Kprobe {
    /// Puts a kprobe on the entry of `symbol`, calling `pre` each time the
    /// function is entered.  `pre` runs in the probed function's context
    /// with preemption disabled: it must not sleep.
    pub(crate) fn register(symbol: &'static CStr, pre: PreHandler) -> Result<Self> {
        // SAFETY: an all-zero `struct kprobe` is what C's `= { }` gives:
        // no address, no offset, no handlers, not registered.
        let mut raw = KBox::new(Raw(unsafe { core::mem::zeroed() }), GFP_KERNEL)?;
        raw.0.symbol_name = symbol.as_char_ptr();
        raw.0.pre_handler = Some(pre);
        // SAFETY: `raw.0` is a valid, initialised `struct kprobe` at a heap
        // address that stays put until `drop` unregisters it.
        to_result(unsafe { bindings::register_kprobe(&mut raw.0) })?;
        // INVARIANT: registered just above.
        Ok(Kprobe { raw })
    }
}

impl Drop for Kprobe {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the kprobe is registered; once this
        // returns no handler runs any more.
        unsafe { bindings::unregister_kprobe(&mut self.raw.0) };
    }
}
