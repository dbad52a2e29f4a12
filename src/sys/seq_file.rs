// SPDX-License-Identifier: GPL-2.0

//! `/proc/net` files of one line per value, shown through a seq_file
//! (`proc_create_net_single()`, fs/proc/proc_net.c; include/linux/seq_file.h).

use core::{
    ffi::{c_int, c_void},
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, Ordering},
};
use kernel::{bindings, c_str, error::from_result, prelude::*};

use super::pernet::{Net, PernetData};

/// A seq_file being shown.
pub(crate) struct SeqFile<'a>(
    NonNull<bindings::seq_file>,
    PhantomData<&'a mut bindings::seq_file>,
);

impl SeqFile<'_> {
    /// Writes the line `name value\n`.
    pub(crate) fn name_value(&mut self, name: &CStr, value: u64) {
        let m = self.0.as_ptr();
        // SAFETY: `m` is the seq_file being shown, ours for this call;
        // `name` is a C string.
        unsafe {
            bindings::__seq_puts(m, name.as_char_ptr());
            bindings::seq_put_decimal_ull(m, c_str!(" ").as_char_ptr(), value);
            bindings::seq_putc(m, b'\n' as _);
        }
    }
}

/// A per-namespace value that a `/proc/net` file shows.
pub(crate) trait ShowNet: PernetData {
    fn show(&self, m: &mut SeqFile<'_>);
}

/// A `/proc/net` file of one namespace; removed on drop.  All-zero is no
/// file.
pub(crate) struct ProcNetFile(AtomicPtr<bindings::proc_dir_entry>);

impl ProcNetFile {
    /// Creates `/proc/net/NAME` in `net`, showing `T`'s value of the
    /// namespace the reader opened it in.
    pub(crate) fn create<T: ShowNet>(&self, net: Net<'_>, name: &'static CStr) -> Result {
        if !self.0.load(Ordering::Relaxed).is_null() {
            return Err(EINVAL);
        }
        // SAFETY: `net` is live; `show::<T>` reads only `T`'s value of the
        // namespace the proc core passes as `seq->private`.
        let pde = unsafe {
            bindings::proc_create_net_single(
                name.as_char_ptr(),
                0o444,
                (*net.as_ptr()).proc_net,
                Some(show::<T>),
                core::ptr::null_mut(),
            )
        };
        if pde.is_null() {
            return Err(ENOMEM);
        }
        self.0.store(pde, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for ProcNetFile {
    fn drop(&mut self) {
        // SAFETY: null or the entry `create` made, not removed before;
        // `proc_remove()` waits for readers to finish.
        unsafe { bindings::proc_remove(self.0.load(Ordering::Relaxed)) };
    }
}

unsafe extern "C" fn show<T: ShowNet>(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    from_result(|| {
        // SAFETY: `proc_create_net_single()` files get the namespace the
        // file was opened in as `private`, held while the file is open; the
        // file exists only while `T` is registered (it is removed when the
        // namespace's value drops).
        let value = unsafe { T::id().get((*m).private.cast::<bindings::net>()) };
        // SAFETY: `m` is the seq_file being shown, ours for this call.
        let mut file = SeqFile(unsafe { NonNull::new_unchecked(m) }, PhantomData);
        value.show(&mut file);
        Ok(0)
    })
}
