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

    /// Whether the registered kprobe in this slot runs from an ftrace
    /// call site (`KPROBE_FLAG_FTRACE`, include/linux/kprobes.h) rather
    /// than from an int3 trap or an optimized jump.
    pub(crate) fn on_ftrace(&self) -> bool {
        // SAFETY: the field is always valid; the kprobes core sets this
        // flag at registration and never clears it while registered.
        let flags = unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*self.0.get()).flags)) };
        flags & bindings::KPROBE_FLAG_FTRACE != 0
    }

    /// How many hits of this kprobe the kprobes core skipped because
    /// another kprobe's handler was running on the same CPU.  Each one is a
    /// hook call this module never saw.  An ftrace-based kprobe also skips
    /// a hit that recursed inside ftrace itself
    /// (`ftrace_test_recursion_trylock()`), without counting it here: only
    /// the hooks' own unhandled-call detection sees those.
    pub(crate) fn missed(&self) -> u64 {
        // SAFETY: the field is always valid; the kprobes core increments it
        // with plain stores, so read it once, volatile, like READ_ONCE().
        unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*self.0.get()).nmissed)) as u64 }
    }
}

/// Where a kprobe on a function's entry goes when the function starts
/// with an ftrace call site (`CONFIG_KPROBES_ON_FTRACE`, as on distro
/// kernels).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// On the ftrace call site where there is one (the kprobes core's own
    /// choice for an entry probe): the handler runs from ftrace, in the
    /// function's context.  Elsewhere as [`Placement::PastFtrace`].
    Entry,
    /// On the first instruction after the ftrace call site, so that the
    /// kprobe is an int3 trap or, once the kprobe optimizer has run, a
    /// jump (`[OPTIMIZED]`), as on a kernel without ftrace.  The argument
    /// registers are still the entry's: the call site is a 5-byte NOP
    /// while no tracer uses it, and ftrace preserves them when one does.
    PastFtrace,
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
    /// Puts a kprobe on the entry of `symbol` (where `placement` says),
    /// calling `pre` each time the function is entered.  `pre` runs in
    /// the probed function's context with preemption disabled: it must
    /// not sleep.  A slot serves one registration at a time; it can be
    /// registered again once the [`Kprobe`] is dropped.
    pub(crate) fn register(
        slot: &'static Slot,
        symbol: &'static CStr,
        pre: PreHandler,
        placement: Placement,
    ) -> Result<Self> {
        let probe = Self::register_at(slot, Some(symbol), core::ptr::null_mut(), pre)?;
        if placement == Placement::PastFtrace && slot.on_ftrace() {
            // The kprobes core tells an ftrace call site only once the
            // kprobe is on it (ftrace_location() is not exported): register
            // again on the instruction after it.  The call site is not
            // always the symbol's first byte (an `endbr64` may come first).
            // SAFETY: the slot is registered (by `probe`); the core wrote
            // `addr` at registration and leaves it alone.
            let site = unsafe { (*slot.0.get()).addr };
            drop(probe);
            let next = site.wrapping_byte_add(FTRACE_CALL_SIZE);
            return Self::register_at(slot, None, next, pre);
        }
        Ok(probe)
    }

    /// Registers `slot` on `symbol`'s entry, or on `addr` when `symbol` is
    /// `None`.
    fn register_at(
        slot: &'static Slot,
        symbol: Option<&'static CStr>,
        addr: *mut bindings::kprobe_opcode_t,
        pre: PreHandler,
    ) -> Result<Self> {
        let kp = slot.0.get();
        // SAFETY: by the slot's invariant nothing else touches an
        // unregistered slot (a slot given back by `drop` is unregistered
        // again); after `register_kprobe()` succeeds, only the kprobes
        // core does, until `drop`.  The slot is static, so its address is
        // stable.
        unsafe {
            kp.write(core::mem::zeroed());
            match symbol {
                Some(symbol) => (*kp).symbol_name = symbol.as_char_ptr(),
                None => (*kp).addr = addr,
            }
            (*kp).pre_handler = Some(pre);
            to_result(bindings::register_kprobe(kp))?;
        }
        // INVARIANT: registered just above.
        Ok(Kprobe { slot })
    }
}

/// The size of the call instruction at an ftrace call site (x86's
/// `MCOUNT_INSN_SIZE`, the 5-byte `call __fentry__`).
#[cfg(CONFIG_KPROBES_ON_FTRACE)]
const FTRACE_CALL_SIZE: usize = bindings::MCOUNT_INSN_SIZE as usize;
/// Without `CONFIG_KPROBES_ON_FTRACE` no kprobe is ever on an ftrace call
/// site, so this is never used.
#[cfg(not(CONFIG_KPROBES_ON_FTRACE))]
const FTRACE_CALL_SIZE: usize = 0;

impl Drop for Kprobe {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the kprobe is registered; once this
        // returns no handler runs any more.
        unsafe { bindings::unregister_kprobe(self.slot.0.get()) };
    }
}
