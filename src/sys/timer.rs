// SPDX-License-Identifier: GPL-2.0

//! A static kernel timer (`struct timer_list`, `include/linux/timer.h`)
//! whose callback runs in softirq context.

use kernel::{bindings, types::Opaque};

/// A timer in static storage.
///
/// # Invariants
///
/// Once [`Timer::init`] has run, `timer` is an initialised `timer_list`
/// for good; [`Timer::arm`] does nothing before `init`, and after
/// [`Timer::shutdown`] the kernel ignores it (`timer_shutdown_sync()`
/// clears the callback, and `mod_timer()` skips a timer without one).
pub(crate) struct Timer {
    timer: Opaque<bindings::timer_list>,
    key: Opaque<bindings::lock_class_key>,
    initing: core::sync::atomic::AtomicBool,
    ready: core::sync::atomic::AtomicBool,
}

// SAFETY: the kernel's timer functions serialise their own access to the
// `timer_list`; this type only hands out its address.
unsafe impl Sync for Timer {}

/// The callback's signature: it gets the `timer_list`, in softirq context.
pub(crate) type Callback = unsafe extern "C" fn(*mut bindings::timer_list);

impl Timer {
    /// A timer yet to be initialised.
    pub(crate) const fn new() -> Self {
        Self {
            timer: Opaque::uninit(),
            key: Opaque::uninit(),
            initing: core::sync::atomic::AtomicBool::new(false),
            ready: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Sets the timer up to call `f`; `name` labels it for lockdep.  Only
    /// the first call does anything: a second could re-initialise an armed
    /// timer.
    pub(crate) fn init(&'static self, f: Callback, name: &'static kernel::str::CStr) {
        if self
            .initing
            .swap(true, core::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        // SAFETY: both pointers are to static storage this type owns; this
        // is the only call that gets here (`initing`), before any `arm()`
        // can (`ready` is still false), so nothing else uses the timer;
        // `name` is a static C string.
        unsafe {
            bindings::init_timer_key(
                self.timer.get(),
                Some(f),
                0,
                name.as_char_ptr(),
                self.key.get(),
            )
        };
        self.ready
            .store(true, core::sync::atomic::Ordering::Release);
    }

    /// (Re)arms the timer to fire in `ms` milliseconds.  Process or softirq
    /// context (not from an NMI-like one: it takes the timer base lock).
    pub(crate) fn arm(&self, ms: u32) {
        if !self.ready.load(core::sync::atomic::Ordering::Acquire) {
            return;
        }
        // SAFETY: `jiffies` is a kernel global read without a lock by design.
        let now = unsafe { core::ptr::read_volatile(core::ptr::addr_of!(bindings::jiffies)) };
        // SAFETY: `__msecs_to_jiffies()` has no preconditions.
        let delta = unsafe { bindings::__msecs_to_jiffies(ms) };
        // SAFETY: `ready` says the timer was initialised and not shut
        // down; after `timer_shutdown_sync()` the kernel ignores re-arming.
        unsafe { bindings::mod_timer(self.timer.get(), now.wrapping_add(delta)) };
    }

    /// Stops the timer for good and waits for a running callback to end;
    /// later [`Timer::arm`] calls, even from the callback, do nothing.
    /// Process context.
    pub(crate) fn shutdown(&self) {
        if !self.ready.load(core::sync::atomic::Ordering::Acquire) {
            return;
        }
        // SAFETY: the timer was initialised (`ready`).
        unsafe { bindings::timer_shutdown_sync(self.timer.get()) };
    }
}
