// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state: the sysctls under
//! `/proc/sys/net/mptcp_scramble/`, the counters, and
//! `/proc/net/mptcp_scramble` that shows them (docs/design.md,
//! "Interfaces").

use kernel::{c_str, prelude::*};

use crate::{
    bench,
    conn::Mode,
    counters::Counters,
    sys::{
        pernet::{Net, PernetData, PernetId},
        seq_file::{ProcNetFile, SeqFile, ShowNet},
        sysctl::{self, Entry, Kind, Names},
    },
};

/// Where the networking core keeps the storage id of [`NetState`].
pub(crate) static NET_ID: PernetId<NetState> = PernetId::new();

/// One namespace's state.  All-zero until `init`; the sysctls and the
/// /proc file then exist until it drops with the namespace.
pub(crate) struct NetState {
    /// What happens in this namespace.
    pub(crate) counters: Counters,
    /// `enabled`, `mode`, `policy`, `keylog`, and `bench` in the initial
    /// namespace.
    sysctls: sysctl::Dir<5>,
    proc: ProcNetFile,
}

/// Indexes in [`NetState::sysctls`].
const ENABLED: usize = 0;
const MODE: usize = 1;
const POLICY: usize = 2;
const KEYLOG: usize = 3;

/// The values of `mode`, in the order of [`Mode::from_index`].
static MODES: Names = Names(&[c_str!("paper"), c_str!("hardened")]);
/// The initial namespace's `mode` at load: `hardened`.  The paper's
/// transform hides little from one path (docs/design.md, "Security").
const MODE_DEFAULT: i32 = 1;
/// The values of `policy`: index 1 is `required`.
static POLICIES: Names = Names(&[c_str!("opportunistic"), c_str!("required")]);

impl NetState {
    /// Whether connections that start now offer scrambling (and accept
    /// the peer's offer) at all.
    pub(crate) fn enabled(&self) -> bool {
        self.sysctls.get(ENABLED) != 0
    }

    /// What a connection that starts now offers: `None` when `enabled`
    /// is 0, else the mode and whether the policy requires the peer's
    /// offer.
    pub(crate) fn offer(&self) -> Option<(Mode, bool)> {
        if !self.enabled() {
            return None;
        }
        let mode = Mode::from_index(self.sysctls.get(MODE))?;
        Some((mode, self.sysctls.get(POLICY) == 1))
    }

    /// TEST ONLY: whether hardened connections print their keys to the
    /// kernel log (`keylog`, docs/design.md "Interfaces").
    pub(crate) fn keylog(&self) -> bool {
        self.sysctls.get(KEYLOG) != 0
    }
}

/// What a write to `enabled` may say: `0` or `1`, optionally followed by
/// white space.  Anything else, `"0 1"` included, which `proc_dointvec()`
/// would take as its first number, is refused with `EINVAL`.
fn parse_enabled(text: &[u8]) -> Result<i32> {
    match sysctl::trimmed(text) {
        b"0" => Ok(0),
        b"1" => Ok(1),
        _ => Err(EINVAL),
    }
}

// SAFETY: all-zero is a valid `NetState`: no counters yet, an unregistered
// sysctl directory, no /proc file.
unsafe impl PernetData for NetState {
    fn id() -> &'static PernetId<Self> {
        &NET_ID
    }

    fn init(&self, net: Net<'_>) -> Result {
        self.counters.alloc()?;
        // The initial namespace starts in the hardened mode, opportunistic;
        // a new namespace starts with the initial namespace's mode and
        // policy, so that one setting there covers the containers that
        // follow; `enabled` starts at 1 everywhere.
        let (mode, policy) = if net.is_init() {
            (MODE_DEFAULT, 0)
        } else {
            // SAFETY: `init` runs for a registered `NetState`, and for the
            // initial namespace first; the reference ends with this call.
            let init = unsafe { NET_ID.get_init() };
            (init.sysctls.get(MODE), init.sysctls.get(POLICY))
        };
        let entries = [
            Entry {
                name: c_str!("enabled"),
                mode: 0o644,
                kind: Kind::Int {
                    initial: 1,
                    parse: parse_enabled,
                },
            },
            Entry {
                name: c_str!("mode"),
                mode: 0o644,
                kind: Kind::Choice {
                    initial: mode,
                    names: &MODES,
                },
            },
            Entry {
                name: c_str!("policy"),
                mode: 0o644,
                kind: Kind::Choice {
                    initial: policy,
                    names: &POLICIES,
                },
            },
            // TEST ONLY, like SSLKEYLOGFILE: 1 prints each hardened
            // connection's keys to the kernel log.  0 in every new
            // namespace.
            Entry {
                name: c_str!("keylog"),
                mode: 0o644,
                kind: Kind::Int {
                    initial: 0,
                    parse: parse_enabled,
                },
            },
            Entry {
                name: c_str!("bench"),
                mode: 0o200,
                kind: Kind::Action(bench::run_on_write),
            },
        ];
        // `bench` is for the machine's administrator: only in the initial
        // namespace, not for root of a container.
        let count = if net.is_init() { entries.len() } else { 4 };
        self.sysctls
            .register(net, c_str!("net/mptcp_scramble"), &entries, count)?;
        self.proc.create::<Self>(net, c_str!("mptcp_scramble"))
    }
}

impl ShowNet for NetState {
    /// The counters of the reader's namespace, one `name value` line each.
    fn show(&self, m: &mut SeqFile<'_>) {
        self.counters
            .for_each(|name, value| m.name_value(name, value));
        // Not per namespace: the kprobes are global.
        m.name_value(c_str!("kprobe_misses"), crate::hooks::missed());
    }
}
