// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state: the `net.mptcp_scramble.enabled` sysctl,
//! the counters, and `/proc/net/mptcp_scramble` that shows them.
//!
//! The state lives in the namespace's generic storage (`net_generic()`),
//! which the networking core allocates, zeroes and frees with the
//! namespace; [`Pernet`] registers the operations that set it up.

use core::{
    cell::UnsafeCell,
    ffi::{c_int, c_void},
    sync::atomic::{AtomicI32, AtomicU32, Ordering},
};
use kernel::{bindings, error::to_result, prelude::*};

use crate::{bench, counters::Counters};

/// What `/proc/sys/net/mptcp_scramble/` holds.
const SYSCTL_PATH: &CStr = c_str!("net/mptcp_scramble");
/// The file in `/proc/net/`.
const PROC_NAME: &CStr = c_str!("mptcp_scramble");

/// Bounds of `enabled`: `proc_dointvec_minmax()` rejects anything else
/// with `-EINVAL` and leaves the value unchanged.
static ZERO: c_int = 0;
static ONE: c_int = 1;

/// The generic-storage id the networking core assigns at registration.
static NET_ID: AtomicU32 = AtomicU32::new(0);

/// One namespace's state.
///
/// # Invariants
///
/// Lives in the namespace's generic storage from `net_init` to `net_exit`;
/// between the two, `table` is registered as the namespace's
/// `net/mptcp_scramble` sysctl directory and `header` is its handle.
#[repr(C)]
pub(crate) struct NetState {
    /// The sysctl: scramble connections established from now on.
    enabled: AtomicI32,
    /// What happens in this namespace.
    pub(crate) counters: Counters,
    table: UnsafeCell<[bindings::ctl_table; 2]>,
    header: UnsafeCell<*mut bindings::ctl_table_header>,
}

// SAFETY: `table` and `header` are only touched in `net_init` and
// `net_exit`, which the networking core runs once each, exclusively, per
// namespace; everything else is atomic.
unsafe impl Sync for NetState {}

impl NetState {
    /// Whether connections established now are to be scrambled.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed) != 0
    }

    /// The state of the namespace `net`.
    ///
    /// # Safety
    ///
    /// `net` is a live namespace and the operations of [`Pernet`] are
    /// registered; the returned reference must not outlive either.
    unsafe fn of_net<'a>(net: *const bindings::net) -> &'a NetState {
        // SAFETY: the caller guarantees `net` is live and our id valid, so
        // `net_generic()` returns our zero-initialised storage of
        // `size_of::<NetState>()` bytes, for which all-zero is valid.
        unsafe { &*bindings::net_generic(net, NET_ID.load(Ordering::Relaxed)).cast::<NetState>() }
    }

    /// The state of the namespace `sk` belongs to.
    ///
    /// # Safety
    ///
    /// `sk` is a live socket and the operations of [`Pernet`] are
    /// registered; the returned reference must not outlive either.
    pub(crate) unsafe fn of_sock<'a>(sk: *const bindings::sock) -> &'a NetState {
        // SAFETY: a live socket's namespace outlives it.
        unsafe { Self::of_net(bindings::sock_net(sk)) }
    }
}

/// The registered per-namespace operations; unregistered on drop, which
/// runs `net_exit` for every namespace.
pub(crate) struct Pernet {
    ops: KBox<Ops>,
}

/// A `struct pernet_operations` the networking core links into its list.
struct Ops(bindings::pernet_operations);

// SAFETY: after registration only the networking core touches the struct,
// under `pernet_ops_rwsem`, until `unregister_pernet_subsys()` returns.
unsafe impl Send for Ops {}
// SAFETY: see `Send`: no `&self` method reads the struct.
unsafe impl Sync for Ops {}

impl Pernet {
    /// Registers the operations: `net_init` runs for every existing
    /// namespace now and for every new one later.
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: an all-zero `struct pernet_operations` has no callbacks
        // and is not linked anywhere, like C's `= { }`.
        let mut ops = KBox::new(Ops(unsafe { core::mem::zeroed() }), GFP_KERNEL)?;
        ops.0.init = Some(net_init);
        ops.0.exit = Some(net_exit);
        ops.0.id = NET_ID.as_ptr();
        ops.0.size = core::mem::size_of::<NetState>();
        // SAFETY: `ops` is valid and stays at its heap address until `drop`
        // unregisters it.
        to_result(unsafe { bindings::register_pernet_subsys(&mut ops.0) })?;
        Ok(Pernet { ops })
    }
}

impl Drop for Pernet {
    fn drop(&mut self) {
        // SAFETY: registered in `register`, never unregistered before.
        unsafe { bindings::unregister_pernet_subsys(&mut self.ops.0) };
    }
}

/// Sets up a namespace: `enabled` defaults to 1, the sysctl directory and
/// the /proc file appear.
unsafe extern "C" fn net_init(net: *mut bindings::net) -> c_int {
    // SAFETY: the networking core calls this for a live `net` with our
    // storage allocated.
    let state = unsafe { NetState::of_net(net) };
    state.enabled.store(1, Ordering::Relaxed);

    // SAFETY: only `net_init` and `net_exit` touch the table, see `Sync`.
    let table = unsafe { &mut *state.table.get() };
    table[0].procname = c_str!("enabled").as_char_ptr();
    table[0].data = state.enabled.as_ptr().cast::<c_void>();
    table[0].maxlen = core::mem::size_of::<c_int>() as c_int;
    table[0].mode = 0o644;
    table[0].proc_handler = Some(bindings::proc_dointvec_minmax);
    table[0].extra1 = (&ZERO as *const c_int).cast_mut().cast::<c_void>();
    table[0].extra2 = (&ONE as *const c_int).cast_mut().cast::<c_void>();
    table[1].procname = c_str!("bench").as_char_ptr();
    table[1].maxlen = core::mem::size_of::<c_int>() as c_int;
    table[1].mode = 0o200;
    table[1].proc_handler = Some(bench::sysctl_handler);

    // SAFETY: `table` lives in the namespace's storage, which outlives the
    // registration: `net_exit` unregisters it first.
    let header = unsafe {
        bindings::register_net_sysctl_sz(net, SYSCTL_PATH.as_char_ptr(), table.as_mut_ptr(), table.len())
    };
    if header.is_null() {
        return ENOMEM.to_errno();
    }
    // SAFETY: `net` is live; `show` reads only our storage of the reader's
    // namespace, which the proc core passes as `seq->private`.
    let proc = unsafe {
        bindings::proc_create_net_single(
            PROC_NAME.as_char_ptr(),
            0o444,
            (*net).proc_net,
            Some(show),
            core::ptr::null_mut(),
        )
    };
    if proc.is_null() {
        // SAFETY: registered just above.
        unsafe { bindings::unregister_net_sysctl_table(header) };
        return ENOMEM.to_errno();
    }
    // SAFETY: only `net_init` and `net_exit` touch `header`.
    unsafe { *state.header.get() = header };
    0
}

/// Tears down a namespace's sysctl directory and /proc file.
unsafe extern "C" fn net_exit(net: *mut bindings::net) {
    // SAFETY: the networking core calls this once for a namespace that
    // `net_init` set up successfully.
    unsafe {
        let state = NetState::of_net(net);
        bindings::remove_proc_entry(PROC_NAME.as_char_ptr(), (*net).proc_net);
        bindings::unregister_net_sysctl_table(*state.header.get());
    }
}

/// Prints the counters of the reader's namespace, one `name value` line
/// each.
unsafe extern "C" fn show(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: `proc_create_net_single()` files get the namespace the file
    // was opened in as `private`, held for as long as the file is open.
    let state = unsafe { NetState::of_net((*m).private.cast::<bindings::net>()) };
    state.counters.for_each(|name, value| {
        // SAFETY: `m` is the seq_file being shown; `name` is a C string.
        unsafe {
            bindings::seq_puts(m, name.as_char_ptr());
            bindings::seq_put_decimal_ull(m, c_str!(" ").as_char_ptr(), value);
            bindings::seq_putc(m, b'\n' as _);
        }
    });
    0
}
