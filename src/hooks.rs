// SPDX-License-Identifier: GPL-2.0

//! The kprobes on the hooks of `include/net/mptcp_scramble.h`, and the
//! one place that turns the hooks' raw arguments into safe types for the
//! logic in [`crate::conn`].
//!
//! Each pre-handler runs on entry of its hook, in the hook's (atomic)
//! context, with the hook's arguments in the x86-64 argument registers.

use core::ffi::c_int;
use core::mem::{align_of, offset_of, size_of, MaybeUninit};
use core::sync::atomic::{AtomicU8, Ordering};
use kernel::{bindings, c_str, prelude::*};

use crate::{
    conn::{self, Reject, RxEvent, TxState},
    hardened::{Sender, Session},
    netns::{NetState, NET_ID},
    scrambler::{State, RING_LEN},
    sys::kprobe::{Kprobe, Placement, PreHandler, Slot},
    sys::param::bool_param,
};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("hook arguments are read from x86-64 registers");

// `State` is `#[repr(C)] { ring: [u8; 64], idx: u8, x: u8 }`: the same
// layout as `struct mptcp_scramble_dir`.
const _: () = {
    assert!(size_of::<State>() == size_of::<bindings::mptcp_scramble_dir>());
    assert!(align_of::<State>() == align_of::<bindings::mptcp_scramble_dir>());
    assert!(offset_of!(bindings::mptcp_scramble_dir, ring) == 0);
    assert!(offset_of!(bindings::mptcp_scramble_dir, idx) == RING_LEN);
    assert!(offset_of!(bindings::mptcp_scramble_dir, x) == RING_LEN + 1);
};

/// The hooks, in the order they are registered.  `offer` comes last, and
/// `established` just before it: a connection latched scrambled while the
/// data path or destroy kprobes were still missing would go out plain or
/// never release the module, and one that offered while `established`
/// was missing would be reset by the core.  (On unload the order does
/// not matter: no scrambled connection is left, and one that offered and
/// cannot latch any more is reset by the core.)
const HOOKS: [(&CStr, PreHandler); 7] = [
    (c_str!("mptcp_scramble_hook_tx"), tx),
    (c_str!("mptcp_scramble_hook_rx"), rx),
    (c_str!("mptcp_scramble_hook_destroy"), destroy),
    (c_str!("mptcp_scramble_hook_fastopen"), fastopen),
    (c_str!("mptcp_scramble_hook_reject"), reject),
    (c_str!("mptcp_scramble_hook_established"), established),
    (c_str!("mptcp_scramble_hook_offer"), offer),
];

/// Where the kprobes live: static, so `/proc/net/mptcp_scramble` can read
/// their miss counts whenever the module is loaded.
static SLOTS: [Slot; HOOKS.len()] = [const { Slot::new() }; HOOKS.len()];

/// Hook calls the kprobes core skipped, summed over all hooks: a data
/// hook's makes the core reset its connection, an established hook's
/// leaves a connection plain.  Never expected: the hooks run
/// with BH disabled so that no hook's kprobe can interrupt another's.
pub(crate) fn missed() -> u64 {
    SLOTS.iter().map(Slot::missed).sum()
}

bool_param!(
    KPROBES_ON_FTRACE,
    "kprobes_on_ftrace",
    true,
    "Put each hook's kprobe on its ftrace call site where the kernel has one (default), or past it (0: int3-trapped, then jump-optimized kprobes)"
);

/// The kprobes on all hooks; dropping it removes them.
pub(crate) struct Hooks {
    _probes: KVec<Kprobe>,
}

impl Hooks {
    /// Puts a kprobe on every hook, on its ftrace call site or past it as
    /// the `kprobes_on_ftrace` parameter says.  A kernel without the patch
    /// series has no hooks: that fails with `ENODEV` and says so.
    pub(crate) fn register() -> Result<Self> {
        let placement = if KPROBES_ON_FTRACE.get() {
            Placement::Entry
        } else {
            Placement::PastFtrace
        };
        let mut probes = KVec::with_capacity(HOOKS.len(), GFP_KERNEL)?;
        for ((symbol, pre), slot) in HOOKS.into_iter().zip(SLOTS.iter()) {
            match Kprobe::register(slot, symbol, pre, placement) {
                Ok(probe) => probes.push(probe, GFP_KERNEL)?,
                Err(e) if e == ENOENT => {
                    pr_err!(
                        "this kernel lacks the hook {} of the mptcp-scramble patch series; \
                         boot a kernel built with patches/ applied\n",
                        symbol
                    );
                    return Err(ENODEV);
                }
                Err(e) => {
                    pr_err!(
                        "cannot put a kprobe on {}: error {}\n",
                        symbol,
                        e.to_errno()
                    );
                    return Err(e);
                }
            }
        }
        Ok(Hooks { _probes: probes })
    }
}

/// A connection's whole scramble state, borrowed by a hook that has it to
/// itself (establishment, destruction, Fast Open).
pub(crate) struct Scramble<'a>(&'a mut bindings::mptcp_scramble);

impl Scramble<'_> {
    /// Whether the connection was latched scrambled.
    pub(crate) fn is_active(&self) -> bool {
        self.0.active != 0
    }

    /// Latches the connection scrambled, with the initial state of each
    /// direction, in the namespace `net`.
    pub(crate) fn activate(&mut self, net: &NetState, tx: State, rx: State) {
        // SAFETY: `tx` and `rx` are fields of the exclusively borrowed
        // state; `priv_` is large and aligned enough for `Private`
        // (asserted below) and holds no live value: the connection is not
        // active.
        unsafe {
            *direction(&mut self.0.tx) = tx;
            *direction(&mut self.0.rx) = rx;
            private(self.0).write(Private {
                net,
                hardened: MaybeUninit::uninit(),
            });
        }
        // SAFETY: a valid, exclusively borrowed `u8`.  The release store
        // pairs with the core's smp_load_acquire() in
        // mptcp_scramble_active(): whoever sees the flag sees the states.
        unsafe { AtomicU8::from_ptr(&mut self.0.active).store(1, Ordering::Release) };
    }

    /// The mode this end offered when the connection started, 0: none.
    pub(crate) fn local_offer(&self) -> u8 {
        self.0.local_offer
    }

    /// The mode the peer offered on the first subflow (on the client: the
    /// server's answer), 0: none.
    pub(crate) fn peer_offer(&self) -> u8 {
        self.0.peer_offer
    }

    /// Whether this is the server's end.
    pub(crate) fn passive(&self) -> bool {
        self.0.passive != 0
    }

    /// Latches the connection hardened, with its session, in the
    /// namespace `net`.
    pub(crate) fn activate_hardened(&mut self, net: &NetState, session: Session) {
        let state = HardenedState {
            rx: session,
            tx: None,
        };
        // SAFETY: as in `activate()`.
        unsafe {
            private(self.0).write(Private {
                net,
                hardened: MaybeUninit::new(state),
            })
        };
        // SAFETY: as in `activate()`; the value 2 says which state `priv_`
        // holds.
        unsafe { AtomicU8::from_ptr(&mut self.0.active).store(2, Ordering::Release) };
    }

    /// Drops a hardened connection's state, wiping its keys.
    pub(crate) fn drop_hardened(&mut self) {
        if self.0.active == 2 {
            // SAFETY: `active == 2` says `priv_` holds the
            // `HardenedState` `activate_hardened()` wrote; no hook uses it
            // any more (destroy runs after the subflows are gone), and the
            // core zeroes the whole state after this hook.
            unsafe { core::ptr::drop_in_place(hardened_state(self.0)) };
        }
    }

    /// Leaves `bytes` for the worker to send ahead of the application's;
    /// with `release`, the application may send after them.  A preamble
    /// still unsent (never expected) aborts instead.
    pub(crate) fn send_preamble(&mut self, bytes: &[u8], release: bool) {
        set_preamble(self.0, bytes, release);
    }

    /// Holds the application's data back until a preamble with `release`
    /// is queued.
    pub(crate) fn hold_tx(&mut self) {
        // SAFETY: a valid, exclusively borrowed field, read by C with
        // READ_ONCE().
        unsafe { core::ptr::write_volatile(&mut self.0.tx_hold, 1) };
    }

    /// Has the core key this connection's MP_JOIN HMACs with the keys
    /// the handshake will give (`set_join_keys()`), and make or accept no
    /// join before.  Call after `hold_tx()`.
    pub(crate) fn key_joins(&mut self) {
        // SAFETY: a valid, exclusively borrowed field; the core reads it
        // with smp_load_acquire(), which this release store pairs with,
        // so that it sees `tx_hold` set too.
        unsafe { AtomicU8::from_ptr(&mut self.0.join_keyed).store(1, Ordering::Release) };
    }

    /// Asks the core to reset the connection.
    pub(crate) fn abort(&mut self) {
        // SAFETY: as for `hold_tx()`.
        unsafe { core::ptr::write_volatile(&mut self.0.abort, 1) };
    }

    /// Asks the core to keep data out of the SYN.
    pub(crate) fn refuse_syn_data(&mut self) {
        // SAFETY: a valid, exclusively borrowed field, read by C with
        // READ_ONCE().
        unsafe { core::ptr::write_volatile(&mut self.0.no_syn_data, 1) };
    }
}

/// A hardened connection's state, in the `priv_` area of its
/// `struct mptcp_scramble`: the receive side and handshake (used under the
/// msk data lock) and the send side (under the msk socket lock, once the
/// receive side has installed it and the core has released the hold).
pub(crate) struct HardenedState {
    rx: Session,
    tx: Option<Sender>,
}

/// What the module keeps in the `priv_` area of an active connection's
/// `struct mptcp_scramble`, written once at activation.
#[repr(C)]
struct Private {
    /// The state of the connection's namespace, for the data path hooks'
    /// counters without a lookup per call.  A socket holds a reference to
    /// its namespace, whose state lives until the namespace goes.
    net: *const NetState,
    /// With `active == 2` only.
    hardened: MaybeUninit<HardenedState>,
}

const _: () = {
    assert!(size_of::<Private>() <= bindings::MPTCP_SCRAMBLE_PRIV_LEN as usize);
    assert!(align_of::<Private>() <= 8);
    assert!(offset_of!(bindings::mptcp_scramble, priv_) % 8 == 0);
};

/// The `Private` place in `scr`'s `priv_` area.
fn private(scr: *mut bindings::mptcp_scramble) -> *mut Private {
    // The place of a field, no access: no `unsafe` needed beyond the
    // caller's own.
    scr.wrapping_byte_add(offset_of!(bindings::mptcp_scramble, priv_))
        .cast()
}

/// The `HardenedState` place in `scr`'s `priv_` area.
fn hardened_state(scr: *mut bindings::mptcp_scramble) -> *mut HardenedState {
    private(scr)
        .wrapping_byte_add(offset_of!(Private, hardened))
        .cast()
}

/// The state of an active connection's namespace, as activation recorded
/// it.
///
/// # Safety
///
/// `scr` is the `struct mptcp_scramble` of a live, active msk; the
/// reference must not outlive it.
unsafe fn net_of_active<'a>(scr: *mut bindings::mptcp_scramble) -> &'a NetState {
    // SAFETY: an active connection's `priv_` holds the `Private` its
    // activation wrote, before the release store of `active` that let the
    // data path run; the namespace outlives the socket (see `Private`).
    unsafe { &*(*private(scr)).net }
}

/// Writes a preamble for the worker (see `Scramble::send_preamble`).
fn set_preamble(scr: &mut bindings::mptcp_scramble, bytes: &[u8], release: bool) {
    if scr.preamble_len != 0 || bytes.len() > scr.preamble.len() {
        // SAFETY: a valid, exclusively borrowed field, read by C with
        // READ_ONCE().
        unsafe { core::ptr::write_volatile(&mut scr.abort, 1) };
        return;
    }
    if let Some(dst) = scr.preamble.get_mut(..bytes.len()) {
        dst.copy_from_slice(bytes);
    }
    scr.preamble_release = u8::from(release);
    // SAFETY: as above; the core reads it under the same data lock.
    unsafe { core::ptr::write_volatile(&mut scr.preamble_len, bytes.len() as u8) };
}

/// Tells the core that this hook call's data was handled, by clearing
/// the flag it set before the call: a call whose flag stays set (the
/// kprobe was disarmed or skipped) makes the core reset the connection.
///
/// # Safety
///
/// `flag` is the `tx_unhandled` or `rx_unhandled` field of a live
/// `struct mptcp_scramble`, written only under the lock the hook runs
/// under.
unsafe fn handled(flag: *mut u8) {
    // SAFETY: as the caller guarantees; C reads it with READ_ONCE().
    unsafe { core::ptr::write_volatile(flag, 0) };
}

/// The first five integer arguments of the probed function.
fn args(regs: &bindings::pt_regs) -> [u64; 5] {
    [regs.di, regs.si, regs.dx, regs.cx, regs.r8].map(|r| r as u64)
}

/// The state of the namespace the socket `sk` belongs to.
///
/// # Safety
///
/// `sk` is a live socket; the reference must not outlive it or the module.
unsafe fn net_of<'a>(sk: u64) -> &'a NetState {
    // SAFETY: a live socket's namespace outlives it, and the module's
    // per-namespace state is registered before any hook.
    unsafe { NET_ID.get(bindings::sock_net(sk as *const bindings::sock)) }
}

/// Borrows a connection's whole scramble state.
///
/// # Safety
///
/// `scr` is the `struct mptcp_scramble` of a live msk, and no other
/// reference to it exists for `'a`: the hook runs under the locks its
/// declaration names and no tx or rx hook can run on the connection.
unsafe fn scramble<'a>(scr: u64) -> Scramble<'a> {
    // SAFETY: as the caller guarantees.
    Scramble(unsafe { &mut *(scr as *mut bindings::mptcp_scramble) })
}

/// Borrows one direction's state.
///
/// # Safety
///
/// `dir` is a `struct mptcp_scramble_dir` of an active connection that
/// only this hook invocation uses for `'a` (tx runs under the msk socket
/// lock, rx under the msk data lock; each uses its own direction).
unsafe fn direction<'a>(dir: *mut bindings::mptcp_scramble_dir) -> &'a mut State {
    // SAFETY: same layout (asserted above); exclusive as the caller
    // guarantees.  Any bit pattern is a valid `State`.
    unsafe { &mut *dir.cast::<State>() }
}

/// `mptcp_scramble_hook_established(sk, scr, local_key, remote_key)`: under
/// the msk data lock, before any data joined the msk.
unsafe extern "C" fn established(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [sk, scr, local_key, remote_key, _] = args(unsafe { &*regs });
    // SAFETY: the hook's contract: `sk` is the live msk and `scr` its
    // inactive state, which no data path hook touches yet.
    let (net, scr) = unsafe { (net_of(sk), scramble(scr)) };
    conn::established(net, scr, local_key, remote_key);
    0
}

/// `mptcp_scramble_hook_tx(sk, scr, data, len)`: under the msk socket lock, on
/// a kernel copy in the send queue that no subflow can see yet.
unsafe extern "C" fn tx(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [_, scr, data, len, _] = args(unsafe { &*regs });
    let scr = scr as *mut bindings::mptcp_scramble;
    // SAFETY: the hook's contract: `scr` is the active state of a live
    // msk, of which the tx direction is only used under the socket lock
    // this hook runs under; `data` is `len` bytes of kernel memory no one
    // else reads or writes now.
    let (net, dir, data) = unsafe {
        let dir = if (*scr).active == 2 {
            // `priv_` holds a `HardenedState` (`activate_hardened()`);
            // the send side is this hook's alone, and was installed
            // before the core released the hold that let these bytes in.
            (*hardened_state(scr)).tx.as_mut().map(TxState::Hardened)
        } else {
            Some(TxState::Paper(direction(core::ptr::addr_of_mut!(
                (*scr).tx
            ))))
        };
        (
            net_of_active(scr),
            dir,
            core::slice::from_raw_parts_mut(data as *mut u8, len as usize),
        )
    };
    // No send side yet: leave the call unhandled, the core resets.
    if dir.is_some_and(|dir| conn::tx(net, dir, data)) {
        // SAFETY: `scr` is the live state of the connection whose socket
        // lock this hook runs under; the core reads the flag with
        // READ_ONCE() once the hook has returned.
        unsafe { handled(core::ptr::addr_of_mut!((*scr).tx_unhandled)) };
    }
    0
}

/// The pieces of one rx hook call (`struct mptcp_scramble_rx_piece`), as
/// [`conn::Piece`]s.
pub(crate) struct Pieces<'a> {
    raw: core::slice::Iter<'a, bindings::mptcp_scramble_rx_piece>,
}

impl Pieces<'_> {
    /// The `n` pieces at `pieces`.
    ///
    /// # Safety
    ///
    /// The rx hook's contract, for the duration of `'a`: `pieces` points
    /// to `n` pieces; each piece's `len` bytes at `dst` are memory only
    /// this call writes, and its `len` bytes at `src` are either the same
    /// memory (`src == dst`) or memory no one writes and that overlaps no
    /// piece's `dst`.
    unsafe fn from_raw(pieces: *const bindings::mptcp_scramble_rx_piece, n: usize) -> Self {
        Pieces {
            // SAFETY: as the caller guarantees.
            raw: unsafe { core::slice::from_raw_parts(pieces, n) }.iter(),
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = conn::Piece<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let p = self.raw.next()?;
        let len = p.len as usize;
        // SAFETY: as `from_raw` requires: each piece is yielded once, so
        // its `dst` is borrowed mutably once; `src` is only read.
        Some(unsafe {
            if core::ptr::eq(p.src, p.dst) {
                conn::Piece::Private(core::slice::from_raw_parts_mut(p.dst, len))
            } else {
                conn::Piece::Shared {
                    src: core::slice::from_raw_parts(p.src, len),
                    dst: core::slice::from_raw_parts_mut(p.dst, len),
                }
            }
        })
    }
}

/// `mptcp_scramble_hook_rx(sk, scr, pieces, n, event)`: under the msk data
/// lock; each piece's destination is memory this connection alone owns.
unsafe extern "C" fn rx(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [_, scr, pieces, n, event] = args(unsafe { &*regs });
    let scr = scr as *mut bindings::mptcp_scramble;
    let event = match event as u32 {
        bindings::mptcp_scramble_rx_event_MPTCP_SCRAMBLE_RX_PIECES if pieces != 0 => {
            // SAFETY: the hook's contract: `n` pieces of an skb whose
            // bytes joined the receive stream (see `Pieces::from_raw`).
            RxEvent::Pieces(unsafe {
                Pieces::from_raw(
                    pieces as *const bindings::mptcp_scramble_rx_piece,
                    n as usize,
                )
            })
        }
        bindings::mptcp_scramble_rx_event_MPTCP_SCRAMBLE_RX_COPIED => RxEvent::Copied,
        bindings::mptcp_scramble_rx_event_MPTCP_SCRAMBLE_RX_DROPPED => RxEvent::Dropped,
        _ => RxEvent::Unknown,
    };
    // SAFETY: the hook's contract: `scr` is the active state of a live
    // msk, of which the rx direction is only used under the data lock
    // this hook runs under.
    let net = unsafe { net_of_active(scr) };
    let data = matches!(event, RxEvent::Pieces(_));
    // SAFETY: as above; `active` is only written before the data path runs.
    if unsafe { (*scr).active } == 2 {
        // SAFETY: `priv_` holds a `HardenedState`, whose receive side is
        // this hook's alone (data lock); `scr` is valid for the call.
        let (state, scr) = unsafe { (&mut *hardened_state(scr), &mut *scr) };
        match event {
            RxEvent::Pieces(pieces) => rx_hardened(net, state, scr, pieces),
            other => conn::rx_event(net, other),
        }
    } else {
        // SAFETY: the rx direction is this hook's alone (data lock).
        let state = unsafe { direction(core::ptr::addr_of_mut!((*scr).rx)) };
        conn::rx(net, state, event);
    }
    if data {
        // SAFETY: `scr` is the live state of the connection whose data
        // lock this hook runs under; the core reads the flag with
        // READ_ONCE() once the hook has returned.
        unsafe { handled(core::ptr::addr_of_mut!((*scr).rx_unhandled)) };
    }
    0
}

/// The pieces of one skb joined the receive stream of a hardened
/// connection: copy each shared one and take it through the session in
/// one pass; tell the core how many leading bytes were the peer's
/// preamble, what to send, or to reset.
fn rx_hardened(
    net: &NetState,
    state: &mut HardenedState,
    scr: &mut bindings::mptcp_scramble,
    pieces: Pieces<'_>,
) {
    let (mut owned, mut seen, mut copied) = (0usize, 0usize, false);
    for piece in pieces {
        let (bytes, shared) = piece.into_private();
        copied |= shared;
        let reply = conn::rx_hardened(net, &mut state.rx, bytes);
        // The preamble only ever comes first in the stream.
        if reply.abort || (reply.owned > 0 && owned != seen) {
            // SAFETY: a valid field, read by C with READ_ONCE().
            unsafe { core::ptr::write_volatile(&mut scr.abort, 1) };
            break;
        }
        owned += reply.owned;
        seen += bytes.len();
        if let Some((bytes, len, sender)) = reply.send {
            if let Some(sender) = sender {
                state.tx = Some(sender);
                // The keys exist: the join keys go with them, before the
                // preamble that releases the hold, after which the core
                // reads them (docs/design.md, "MP_JOIN").
                if let Some((local, remote)) = state.rx.join_keys() {
                    scr.join_local_key = local;
                    scr.join_remote_key = remote;
                }
            }
            set_preamble(scr, bytes.get(..len).unwrap_or(&[]), state.tx.is_some());
        }
    }
    conn::rx_copied(net, copied);
    // SAFETY: a valid field, read by C with READ_ONCE() after the call.
    unsafe { core::ptr::write_volatile(&mut scr.rx_owned, owned as u32) };
}

/// `mptcp_scramble_hook_destroy(sk, scr)`: under the msk data lock, after the
/// subflows are gone.
unsafe extern "C" fn destroy(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [sk, scr, ..] = args(unsafe { &*regs });
    // SAFETY: the hook's contract: `sk` is the msk being torn down, with
    // no subflow left to run a data path hook.
    let (net, scr) = unsafe { (net_of(sk), scramble(scr)) };
    conn::destroy(net, scr);
    0
}

/// `mptcp_scramble_hook_fastopen(sk, scr)`: under the msk socket lock, before
/// the connection exists.
unsafe extern "C" fn fastopen(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [sk, scr, ..] = args(unsafe { &*regs });
    // SAFETY: the hook's contract: `sk` is a live msk that is not
    // established, so no other hook touches `scr`.
    let (net, scr) = unsafe { (net_of(sk), scramble(scr)) };
    conn::fastopen(net, scr);
    0
}

/// `mptcp_scramble_hook_offer(sk, offer)`: a connection starts in `sk`'s
/// namespace; `offer` is the core's, on its stack, for this call alone.
unsafe extern "C" fn offer(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [sk, offer, ..] = args(unsafe { &*regs });
    // SAFETY: the hook's contract: `sk` is a live socket, `offer` a
    // `struct mptcp_scramble_offer` that nothing else uses during the call.
    let (net, offer) = unsafe {
        (
            net_of(sk),
            &mut *(offer as *mut bindings::mptcp_scramble_offer),
        )
    };
    let (mode, required) = conn::offer(net);
    offer.mode = mode;
    offer.required = u8::from(required);
    0
}

/// `mptcp_scramble_hook_reject(sk, why)`: any context.
unsafe extern "C" fn reject(_: *mut bindings::kprobe, regs: *mut bindings::pt_regs) -> c_int {
    // SAFETY: kprobes pass the registers at entry of the probed function.
    let [sk, why, ..] = args(unsafe { &*regs });
    let why = match why as u32 {
        bindings::mptcp_scramble_reject_MPTCP_SCRAMBLE_REFUSED => Reject::Refused,
        bindings::mptcp_scramble_reject_MPTCP_SCRAMBLE_DOWNGRADE => Reject::Downgrade,
        _ => Reject::Unknown,
    };
    // SAFETY: the hook's contract: `sk` is a live socket.
    conn::reject(unsafe { net_of(sk) }, why);
    0
}
