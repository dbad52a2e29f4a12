// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace values: a `T` in every namespace's generic storage
//! (`net_generic()`, include/net/netns/generic.h), set up when the
//! namespace appears and dropped when it goes, through the networking
//! core's `register_pernet_subsys()` (include/net/net_namespace.h).

use core::{
    ffi::c_int,
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{bindings, error::from_result, error::to_result, prelude::*};

/// A live network namespace, borrowed for the duration of a callback.
#[derive(Clone, Copy)]
pub(crate) struct Net<'a>(NonNull<bindings::net>, PhantomData<&'a bindings::net>);

impl Net<'_> {
    /// Whether this is the initial namespace, the machine's own.
    pub(crate) fn is_init(self) -> bool {
        core::ptr::eq(self.0.as_ptr(), core::ptr::addr_of!(bindings::init_net))
    }

    pub(crate) fn as_ptr(self) -> *mut bindings::net {
        self.0.as_ptr()
    }
}

/// A type kept per namespace.
///
/// # Safety
///
/// All-zero bytes are a valid `Self`: the networking core zeroes the
/// storage before [`PernetData::init`] runs.
pub(crate) unsafe trait PernetData: Sync + Sized + 'static {
    /// Where the networking core keeps the storage id of this type.
    fn id() -> &'static PernetId<Self>;

    /// Sets up the value of a new namespace, which starts all-zero.  An
    /// error fails the namespace's creation (or, for namespaces that exist
    /// at registration, the registration); the value is dropped either way.
    fn init(&self, net: Net<'_>) -> Result;
}

/// The storage id the networking core assigns to a [`PernetData`] type at
/// registration.
pub(crate) struct PernetId<T>(AtomicU32, PhantomData<T>);

impl<T: PernetData> PernetId<T> {
    pub(crate) const fn new() -> Self {
        PernetId(AtomicU32::new(0), PhantomData)
    }

    /// The value of namespace `net`.
    ///
    /// # Safety
    ///
    /// `net` is a live namespace and a [`Pernet<T>`] is registered; the
    /// reference must not outlive either.
    pub(crate) unsafe fn get<'a>(&self, net: *const bindings::net) -> &'a T {
        // SAFETY: as the caller guarantees, `net_generic()` returns our
        // storage of `size_of::<T>()` bytes, initialised by `net_init`.
        unsafe { &*bindings::net_generic(net, self.0.load(Ordering::Relaxed)).cast::<T>() }
    }

    /// The value of the initial namespace.
    ///
    /// # Safety
    ///
    /// A [`Pernet<T>`] is registered, and the reference must not outlive
    /// it.  (`register_pernet_subsys()` initialises the initial namespace
    /// first, before any other.)
    pub(crate) unsafe fn get_init<'a>(&self) -> &'a T {
        // SAFETY: the initial namespace lives for ever; the registration
        // as the caller guarantees.
        unsafe { self.get(core::ptr::addr_of!(bindings::init_net)) }
    }
}

/// The registration of a [`PernetData`] type; dropping it drops the value
/// of every namespace.
pub(crate) struct Pernet<T: PernetData> {
    ops: KBox<Ops>,
    _t: PhantomData<T>,
}

/// A `struct pernet_operations` the networking core links into its list.
struct Ops(bindings::pernet_operations);

// SAFETY: after registration only the networking core touches the struct,
// under `pernet_ops_rwsem`, until `unregister_pernet_subsys()` returns.
unsafe impl Send for Ops {}
// SAFETY: see `Send`: no `&self` method reads the struct.
unsafe impl Sync for Ops {}

impl<T: PernetData> Pernet<T> {
    /// Registers `T`: [`PernetData::init`] runs for every existing
    /// namespace now and for every new one later.
    pub(crate) fn register() -> Result<Self> {
        // SAFETY: an all-zero `struct pernet_operations` has no callbacks
        // and is not linked anywhere, like C's `= { }`.
        let mut ops = KBox::new(Ops(unsafe { core::mem::zeroed() }), GFP_KERNEL)?;
        ops.0.init = Some(net_init::<T>);
        ops.0.exit = Some(net_exit::<T>);
        ops.0.id = T::id().0.as_ptr();
        ops.0.size = core::mem::size_of::<T>();
        // SAFETY: `ops` is valid and stays at its heap address until `drop`
        // unregisters it.
        to_result(unsafe { bindings::register_pernet_subsys(&mut ops.0) })?;
        Ok(Pernet {
            ops,
            _t: PhantomData,
        })
    }
}

impl<T: PernetData> Drop for Pernet<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `register`, never unregistered before; this
        // runs `net_exit` for every namespace.
        unsafe { bindings::unregister_pernet_subsys(&mut self.ops.0) };
    }
}

/// `net`'s storage for `T`.
///
/// # Safety
///
/// `net` is live and `T` registered; the storage is valid for `T`.
unsafe fn storage<T: PernetData>(net: *mut bindings::net) -> *mut T {
    // SAFETY: as the caller guarantees.
    unsafe { bindings::net_generic(net, T::id().0.load(Ordering::Relaxed)).cast::<T>() }
}

unsafe extern "C" fn net_init<T: PernetData>(net: *mut bindings::net) -> c_int {
    from_result(|| {
        // SAFETY: the networking core calls this once for a live `net`, with
        // our storage allocated, zeroed (a valid `T`, see `PernetData`) and
        // not yet visible to anyone else.
        let value = unsafe { storage::<T>(net) };
        // SAFETY: as above; `net` is live for the duration of the call.
        let r = unsafe { (*value).init(Net(NonNull::new_unchecked(net), PhantomData)) };
        if r.is_err() {
            // The core calls no `exit` after a failed `init`.
            // SAFETY: as above; nothing else uses the value.
            unsafe { core::ptr::drop_in_place(value) };
        }
        r.map(|()| 0)
    })
}

unsafe extern "C" fn net_exit<T: PernetData>(net: *mut bindings::net) {
    // SAFETY: the networking core calls this once for a namespace whose
    // `init` succeeded, after which the storage is freed: drop the value.
    unsafe { core::ptr::drop_in_place(storage::<T>(net)) };
}
