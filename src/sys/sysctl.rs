// SPDX-License-Identifier: GPL-2.0

//! Per-namespace sysctl directories whose entries are handled by safe Rust
//! (`register_net_sysctl_sz()`, net/sysctl_net.c; the handler signature of
//! include/linux/sysctl.h).
//!
//! An integer entry reads as `proc_dointvec()` shows it; a write goes to
//! the entry's parse function, whose error fails the write and leaves the
//! value unchanged.  A choice entry holds the index of one of its names,
//! reads as that name (`proc_dostring()`) and takes exactly one of them
//! (`EINVAL` and unchanged otherwise).  An action entry is write-only: a
//! write runs it.

use core::{
    ffi::{c_int, c_void},
    sync::atomic::{AtomicI32, AtomicPtr, Ordering},
};
use kernel::{bindings, error::from_result, prelude::*};

use super::pernet::Net;

/// What a write to an integer entry may say, as its value.
pub(crate) type Parse = fn(&[u8]) -> Result<i32>;
/// What a write to an action entry does.
pub(crate) type Action = fn(&[u8]) -> Result;

/// One entry of a directory.
pub(crate) struct Entry {
    pub(crate) name: &'static CStr,
    /// File mode, e.g. 0o644.
    pub(crate) mode: u16,
    pub(crate) kind: Kind,
}

pub(crate) enum Kind {
    /// An integer, `initial` until a write that `parse` accepts.
    Int { initial: i32, parse: Parse },
    /// One of `names`, by index: `initial` until a write of another name.
    Choice { initial: i32, names: &'static Names },
    /// Write-only: each write runs the action.
    Action(Action),
}

/// The names a choice entry may take; the value is the index of one.
pub(crate) struct Names(pub(crate) &'static [&'static CStr]);

impl Names {
    /// The index of the name `text` is, white space after it allowed.
    fn parse(&self, text: &[u8]) -> Result<i32> {
        let text = trimmed(text);
        self.0
            .iter()
            .position(|name| name.as_bytes() == text)
            .and_then(|i| i32::try_from(i).ok())
            .ok_or(EINVAL)
    }
}

/// A sysctl directory of `N` entries and the integer values it holds,
/// registered by [`Dir::register`] and unregistered on drop.  All-zero (the
/// state a per-namespace value starts in) is an unregistered directory.
///
/// # Invariants
///
/// `registered` is null or a leaked [`KBox`] of a [`Registered`] whose
/// table is registered with the sysctl core, its entries pointing at its
/// own values.
pub(crate) struct Dir<const N: usize> {
    registered: AtomicPtr<Registered<N>>,
}

/// What a registration needs at a fixed address: the heap, so that the
/// [`Dir`] holding it may move.
struct Registered<const N: usize> {
    values: [AtomicI32; N],
    table: [bindings::ctl_table; N],
    header: *mut bindings::ctl_table_header,
}

impl<const N: usize> Dir<N> {
    /// Registers the first `count` of `entries` as the directory `path` of
    /// `net` (a `count` below `N` leaves entries out, e.g. in some
    /// namespaces).  Fails with `EBUSY` if already registered.  Process
    /// context: it allocates.
    pub(crate) fn register(
        &self,
        net: Net<'_>,
        path: &'static CStr,
        entries: &[Entry; N],
        count: usize,
    ) -> Result {
        if count > N {
            return Err(EINVAL);
        }
        if !self.registered.load(Ordering::Acquire).is_null() {
            return Err(EBUSY);
        }
        let reg = KBox::new(
            Registered {
                values: [const { AtomicI32::new(0) }; N],
                // SAFETY: an all-zero `struct ctl_table` is C's `= { }`.
                table: unsafe { core::mem::zeroed() },
                header: core::ptr::null_mut(),
            },
            GFP_KERNEL,
        )?;
        let reg = KBox::into_raw(reg);
        // SAFETY: `reg` is ours alone until published below.
        let r = unsafe { &mut *reg };
        for ((e, slot), value) in entries.iter().zip(r.table.iter_mut()).zip(r.values.iter()) {
            slot.procname = e.name.as_char_ptr();
            slot.mode = e.mode;
            match e.kind {
                Kind::Int { initial, parse } => {
                    value.store(initial, Ordering::Relaxed);
                    slot.data = value.as_ptr().cast::<c_void>();
                    slot.maxlen = core::mem::size_of::<c_int>() as c_int;
                    slot.extra1 = parse as *mut c_void;
                    slot.proc_handler = Some(handler);
                }
                Kind::Choice { initial, names } => {
                    value.store(initial, Ordering::Relaxed);
                    slot.data = value.as_ptr().cast::<c_void>();
                    slot.maxlen = core::mem::size_of::<c_int>() as c_int;
                    slot.extra2 = (names as *const Names).cast_mut().cast::<c_void>();
                    slot.proc_handler = Some(handler);
                }
                Kind::Action(run) => {
                    slot.extra1 = run as *mut c_void;
                    slot.proc_handler = Some(handler);
                }
            }
        }
        // SAFETY: the table is on the heap until `drop` unregisters it, and
        // `net` is live.
        r.header = unsafe {
            bindings::register_net_sysctl_sz(
                net.as_ptr(),
                path.as_char_ptr(),
                r.table.as_mut_ptr(),
                count,
            )
        };
        let failed = if r.header.is_null() {
            Some(ENOMEM)
        } else if self
            .registered
            .compare_exchange(
                core::ptr::null_mut(),
                reg,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: registered just above, published nowhere.
            unsafe { bindings::unregister_net_sysctl_table(r.header) };
            Some(EBUSY)
        } else {
            // INVARIANT: registered, pointing at its own values, published.
            None
        };
        match failed {
            Some(e) => {
                // SAFETY: from `KBox::into_raw` above, not published.
                drop(unsafe { KBox::from_raw(reg) });
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// The current value of integer entry `i`; 0 while unregistered.
    pub(crate) fn get(&self, i: usize) -> i32 {
        let reg = self.registered.load(Ordering::Acquire);
        if reg.is_null() {
            return 0;
        }
        // SAFETY: by the type invariant, a live registration, freed only by
        // `drop`, which takes `&mut self`.
        unsafe {
            (*reg)
                .values
                .get(i)
                .map_or(0, |v| v.load(Ordering::Relaxed))
        }
    }
}

impl<const N: usize> Drop for Dir<N> {
    fn drop(&mut self) {
        let reg = *self.registered.get_mut();
        if reg.is_null() {
            return;
        }
        // SAFETY: by the type invariant; once `unregister_net_sysctl_table()`
        // returns no handler runs any more, so the box can go.
        unsafe {
            bindings::unregister_net_sysctl_table((*reg).header);
            drop(KBox::from_raw(reg));
        }
    }
}

/// `s` without trailing white space or NULs (`echo` adds a newline).
pub(crate) fn trimmed(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace() && *b != 0)
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// The bytes of a write, from offset 0 only (a partial or seeked write is
/// refused), and the entry written.  The caller advances `*ppos` once the
/// write succeeded: a refused write leaves the file where it was.
///
/// # Safety
///
/// The arguments of a write the sysctl core passed a handler: `buffer` is
/// the kernel copy of the `*lenp` bytes written.
unsafe fn write_args<'a>(
    table: *const bindings::ctl_table,
    buffer: *mut c_void,
    lenp: *mut usize,
    ppos: *mut bindings::loff_t,
) -> Result<(&'a bindings::ctl_table, &'a [u8])> {
    // SAFETY: as the caller guarantees.
    unsafe {
        if *ppos != 0 {
            return Err(EINVAL);
        }
        Ok((
            &*table,
            core::slice::from_raw_parts(buffer.cast::<u8>(), *lenp),
        ))
    }
}

/// Reads a choice entry: its current name, as `proc_dostring()` shows a
/// string (as net/ipv4/sysctl_net_ipv4.c shows the congestion control).
///
/// # Safety
///
/// The arguments of a read the sysctl core passed a handler, for a choice
/// entry that `register` set up.
unsafe fn read_choice(
    table: *const bindings::ctl_table,
    buffer: *mut c_void,
    lenp: *mut usize,
    ppos: *mut bindings::loff_t,
) -> c_int {
    // SAFETY: `register` pointed `data` at the entry's value and `extra2`
    // at its `Names`, both outliving the registration.
    let (value, names) = unsafe {
        (
            (*(*table).data.cast::<AtomicI32>()).load(Ordering::Relaxed),
            &*(*table).extra2.cast::<Names>(),
        )
    };
    let Some(name) = usize::try_from(value).ok().and_then(|i| names.0.get(i)) else {
        return EINVAL.to_errno();
    };
    // SAFETY: an all-zero `struct ctl_table` is C's `= { }`.
    let mut shown: bindings::ctl_table = unsafe { core::mem::zeroed() };
    shown.data = name.as_char_ptr().cast_mut().cast::<c_void>();
    shown.maxlen = (name.len() + 1) as c_int;
    // SAFETY: a read (write == 0) only copies from `data`, a NUL-terminated
    // string of `maxlen` bytes; the rest are the core's arguments.
    unsafe { bindings::proc_dostring(&shown, 0, buffer, lenp, ppos) }
}

/// The handler of every entry: an integer or choice entry has `data` (a
/// choice entry also `extra2`), an action entry none.
unsafe extern "C" fn handler(
    table: *const bindings::ctl_table,
    write: c_int,
    buffer: *mut c_void,
    lenp: *mut usize,
    ppos: *mut bindings::loff_t,
) -> c_int {
    // SAFETY: the entry the sysctl core passed us.
    let (has_value, is_choice) = unsafe { (!(*table).data.is_null(), !(*table).extra2.is_null()) };
    if write == 0 {
        if !has_value {
            return EPERM.to_errno();
        }
        if is_choice {
            // SAFETY: a read of a choice entry.
            return unsafe { read_choice(table, buffer, lenp, ppos) };
        }
        // SAFETY: the arguments the sysctl core passed us; `data` points at
        // the entry's `AtomicI32`, an `int` for C.
        return unsafe { bindings::proc_dointvec(table, write, buffer, lenp, ppos) };
    }
    from_result(|| {
        // SAFETY: the arguments of a write, see `write_args`.
        let (entry, text) = unsafe { write_args(table, buffer, lenp, ppos)? };
        if is_choice {
            // SAFETY: `register` pointed `extra2` at the entry's `Names`
            // and `data` at its value, both outliving the registration.
            let (names, value) = unsafe {
                (
                    &*entry.extra2.cast::<Names>(),
                    &*entry.data.cast::<AtomicI32>(),
                )
            };
            value.store(names.parse(text)?, Ordering::Relaxed);
        } else if has_value {
            // SAFETY: `register` stored a `Parse` in `extra1` of every
            // integer entry and pointed `data` at the entry's value, which
            // outlives the registration.
            let (parse, value) = unsafe {
                (
                    core::mem::transmute::<*mut c_void, Parse>(entry.extra1),
                    &*entry.data.cast::<AtomicI32>(),
                )
            };
            value.store(parse(text)?, Ordering::Relaxed);
        } else {
            // SAFETY: `register` stored an `Action` in `extra1` of every
            // action entry.
            let run = unsafe { core::mem::transmute::<*mut c_void, Action>(entry.extra1) };
            run(text)?;
        }
        // SAFETY: the core's position and length of this write, valid for
        // the call.
        unsafe { *ppos += *lenp as bindings::loff_t };
        Ok(0)
    })
}
