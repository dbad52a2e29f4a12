// SPDX-License-Identifier: GPL-2.0

//! Boolean module parameters, as C's `module_param(name, bool, 0444)` and
//! `MODULE_PARM_DESC()` make them (include/linux/moduleparam.h): the
//! `module!` macro of 6.12 has no parameters yet.  The entries are
//! `#[used(compiler)]`, as the macro's own `.modinfo` strings and C's
//! `__used`: a linker-retained section would not merge with theirs.
//!
//! [`bool_param!`] puts a `struct kernel_param` in the module's `__param`
//! section; the module loader parses `insmod ... name=value` into it with
//! the kernel's own `param_ops_bool` before the module's `init` runs, and
//! sysfs shows it read-only in `/sys/module/<module>/parameters/<name>`.

use core::cell::UnsafeCell;
use kernel::bindings;

/// A `bool` that the module loader writes before `init` and nothing
/// writes after.
///
/// # Invariants
///
/// Only the kernel's `param_set_bool()` writes the value, while the
/// module loads, before any of this module's code runs.
#[repr(transparent)]
pub(crate) struct Value(UnsafeCell<bool>);

// SAFETY: by the type invariant the value never changes while this
// module's code can read it.
unsafe impl Sync for Value {}

impl Value {
    /// A parameter whose value is `default` unless `insmod` says otherwise.
    pub(crate) const fn new(default: bool) -> Self {
        Value(UnsafeCell::new(default))
    }

    /// The value given at load (or the default).
    pub(crate) fn get(&self) -> bool {
        // SAFETY: by the type invariant nothing writes the value any more.
        unsafe { *self.0.get() }
    }

    /// Where `param_set_bool()` stores the value (a C `bool`: one byte,
    /// 0 or 1, as a Rust `bool`).
    pub(crate) const fn as_arg(&self) -> *mut core::ffi::c_void {
        self.0.get().cast()
    }
}

/// One entry of the `__param` section: a `struct kernel_param`.
#[repr(transparent)]
pub(crate) struct Param(pub(crate) bindings::kernel_param);

// SAFETY: the entry is immutable; the pointers in it are to static data
// (the name, the kernel's `param_ops_bool`, this module, a [`Value`]).
unsafe impl Sync for Param {}

/// `bool_param!(STATIC, "name", default, "description")`: declares
/// `STATIC`, a [`Value`] that `insmod <module> name=0|1|n|y` sets, shown
/// read-only (0444) in sysfs, with `modinfo`'s `parm` and `parmtype`
/// lines.  Loadable modules only: the name has no `module.` prefix.
macro_rules! bool_param {
    ($value:ident, $name:literal, $default:expr, $desc:literal) => {
        pub(crate) static $value: $crate::sys::param::Value =
            $crate::sys::param::Value::new($default);

        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: $crate::sys::param::Param =
                $crate::sys::param::Param(kernel::bindings::kernel_param {
                    name: ::kernel::c_str!($name).as_char_ptr(),
                    // SAFETY: `__this_module` is this module's `struct
                    // module`, which the module's own `.mod.c` defines (as
                    // the `module!` macro takes it for `THIS_MODULE`); only
                    // its address is taken.
                    mod_: unsafe {
                        // Only the address is used, never the layout.
                        #[allow(improper_ctypes)]
                        extern "C" {
                            static __this_module: kernel::types::Opaque<kernel::bindings::module>;
                        }
                        __this_module.get()
                    },
                    ops: ::core::ptr::addr_of!(kernel::bindings::param_ops_bool),
                    perm: 0o444,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: $value.as_arg(),
                    },
                });

            const PARMTYPE_STR: &str = concat!("parmtype=", $name, ":bool\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARMTYPE: [u8; PARMTYPE_STR.len()] = $crate::sys::param::modinfo(PARMTYPE_STR);

            const PARM_STR: &str = concat!("parm=", $name, ":", $desc, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM: [u8; PARM_STR.len()] = $crate::sys::param::modinfo(PARM_STR);
        };
    };
}

pub(crate) use bool_param;

/// A `.modinfo` string as the byte array the section holds.
pub(crate) const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}
