// SPDX-License-Identifier: GPL-2.0

//! The counters of one network namespace, as `/proc/net/mptcp_scramble`
//! lists them (docs/design.md, "Interfaces").

use kernel::{c_str, prelude::*};

use crate::sys::percpu::PerCpuU64s;

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// The counters, by name.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        pub(crate) enum Counter {
            $($(#[doc = $doc])* $name,)*
        }

        /// The names, in declaration order.
        const NAMES: &[&CStr] = &[$(c_str!(stringify!($name)),)*];
    };
}

counters! {
    /// Connections latched scrambled at establishment.
    connections_scrambled,
    /// Connections latched plain at establishment: this end or the peer
    /// offered nothing, or not the same mode.
    connections_plain,
    /// Scrambled connections alive now.
    connections_live,
    /// Bytes scrambled on their way into a send queue.
    bytes_scrambled,
    /// Bytes descrambled as they joined a receive stream.
    bytes_descrambled,
    /// Received skbs copied to make their data private.
    rx_copies,
    /// Received skbs dropped for lack of memory for that copy; MPTCP
    /// retransmits them.
    rx_drops,
    /// Connections left plain because the module was being unloaded.
    latch_refused,
    /// TCP Fast Open requests whose data was kept out of the SYN.
    tfo_syn_data_refused,
    /// Connections that offered scrambling and are plain because the peer
    /// did not offer the same mode (policy `opportunistic`).
    peer_no_offer,
    /// Connections refused because the peer did not offer the same mode
    /// (policy `required`), on the client or the server.
    refused,
    /// Connections reset because the offers on a subflow contradicted the
    /// first subflow's: a middlebox stripped or added one on some path.
    downgrades,
    /// Hardened connections that found no ephemeral keypair ready while
    /// their handler ran NMI-like (an int3-trapped kprobe, before the
    /// kprobe optimizer has run): reset.
    keypool_empty,
    /// Hardened handshakes whose handler made its own keypair, the pool
    /// being empty (a burst of connections outran the refill timer).
    keypool_inline,
    /// Hardened connections whose handshake failed (a changed message, a
    /// wrong confirmation, data before the keys): reset.
    handshake_failed,
}

/// Per-CPU, so that the data path adds without atomics or shared cache
/// lines; summed when read.  All-zero is a valid value, which counts
/// nothing until [`Counters::alloc`].
pub(crate) struct Counters(PerCpuU64s<{ NAMES.len() }>);

impl Counters {
    /// Allocates the counters, at zero (process context).  Fails with
    /// `ENOMEM`.
    pub(crate) fn alloc(&self) -> Result {
        self.0.alloc()
    }

    /// Adds `n` to counter `c`.  Any context.
    pub(crate) fn add(&self, c: Counter, n: u64) {
        self.0.add(c as usize, n);
    }

    /// Adds one to counter `c`.
    pub(crate) fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Takes one from counter `c` (on this CPU; the sum stays right).
    pub(crate) fn dec(&self, c: Counter) {
        self.add(c, u64::MAX);
    }

    /// Calls `f` with each counter's name and current value (the sum over
    /// the CPUs), in declaration order.  The CPUs' copies are read one
    /// after another, so `connections_live` read while a connection came
    /// up on one CPU and went on another can sum to "minus one" for a
    /// moment: such a sum (past `i64::MAX`, which no count reaches) shows
    /// as 0.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&CStr, u64)) {
        for (i, name) in NAMES.iter().enumerate() {
            let sum = self.0.sum(i);
            f(name, if sum > i64::MAX as u64 { 0 } else { sum });
        }
    }
}
