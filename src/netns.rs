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
use kernel::{bindings, c_str, error::to_result, prelude::*};

use crate::{bench, counters::Counters};

/// What `/proc/sys/net/mptcp_scramble/` holds.
const SYSCTL_PATH: &CStr = c_str!("net/mptcp_scramble");
/// The file in `/proc/net/`.
const PROC_NAME: &CStr = c_str!("mptcp_scramble");

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
    table[0].proc_handler = Some(enabled_handler);
    table[1].procname = c_str!("bench").as_char_ptr();
    table[1].maxlen = core::mem::size_of::<c_int>() as c_int;
    table[1].mode = 0o200;
    table[1].proc_handler = Some(bench::sysctl_handler);

    // `bench` is for the machine's administrator: only in the initial
    // namespace, not for root of a container.
    let init_net = core::ptr::addr_of!(bindings::init_net);
    let entries = if core::ptr::eq(net, init_net) {
        table.len()
    } else {
        1
    };
    // SAFETY: `table` lives in the namespace's storage, which outlives the
    // registration: `net_exit` unregisters it first.
    let header = unsafe {
        bindings::register_net_sysctl_sz(
            net,
            SYSCTL_PATH.as_char_ptr(),
            table.as_mut_ptr(),
            entries,
        )
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

/// What a write to `enabled` may say: `0` or `1`, optionally followed by
/// white space (`echo` adds a newline).  Anything else, `"0 1"` included,
/// which `proc_dointvec()` would take as its first number, is refused.
fn parse_enabled(text: &[u8]) -> Option<i32> {
    let end = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)?
        + 1;
    match &text[..end] {
        b"0" => Some(0),
        b"1" => Some(1),
        _ => None,
    }
}

/// The `enabled` sysctl: reads as `proc_dointvec()` does; a write must be
/// one whole `0` or `1`, else it fails with `-EINVAL` and changes nothing.
///
/// # Safety
///
/// Called by the sysctl core with its usual arguments; `buffer` holds
/// `*lenp` bytes of kernel memory.
unsafe extern "C" fn enabled_handler(
    table: *const bindings::ctl_table,
    write: c_int,
    buffer: *mut c_void,
    lenp: *mut usize,
    ppos: *mut bindings::loff_t,
) -> c_int {
    if write == 0 {
        // SAFETY: the arguments the sysctl core passed us.
        return unsafe { bindings::proc_dointvec(table, write, buffer, lenp, ppos) };
    }
    // SAFETY: for a write, `buffer` is the kernel copy of the `*lenp`
    // bytes written, and `data` points at this namespace's `enabled`.
    unsafe {
        if *ppos != 0 {
            return EINVAL.to_errno();
        }
        let text = core::slice::from_raw_parts(buffer.cast::<u8>(), *lenp);
        let Some(value) = parse_enabled(text) else {
            return EINVAL.to_errno();
        };
        (*(*table).data.cast::<AtomicI32>()).store(value, Ordering::Relaxed);
        *ppos += *lenp as bindings::loff_t;
    }
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
    let line = |name: &CStr, value: u64| {
        // SAFETY: `m` is the seq_file being shown; `name` is a C string.
        unsafe {
            bindings::__seq_puts(m, name.as_char_ptr());
            bindings::seq_put_decimal_ull(m, c_str!(" ").as_char_ptr(), value);
            bindings::seq_putc(m, b'\n' as _);
        }
    };
    state.counters.for_each(line);
    // Not per namespace: the kprobes are global.
    line(c_str!("kprobe_misses"), crate::hooks::missed());
    0
}
