// SPDX-License-Identifier: GPL-2.0

//! The counters of one network namespace, as `/proc/net/mptcp_scramble`
//! lists them (docs/design.md, "Interfaces").

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};
use kernel::{c_str, prelude::*};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Updated locklessly from any CPU; all-zero is the initial state.
        #[repr(C)]
        pub(crate) struct Counters {
            $($(#[doc = $doc])* pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            /// Calls `f` with each counter's name and current value, in
            /// declaration order.
            pub(crate) fn for_each(&self, mut f: impl FnMut(&CStr, u64)) {
                $(f(c_str!(stringify!($name)), self.$name.load(Relaxed));)*
            }
        }
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

/// Adds `n` to counter `c`.
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

/// Adds one to counter `c`.
pub(crate) fn inc(c: &AtomicU64) {
    add(c, 1);
}

/// Takes one from counter `c`.
pub(crate) fn dec(c: &AtomicU64) {
    c.fetch_sub(1, Relaxed);
}
