// SPDX-License-Identifier: GPL-2.0

//! What happens to a connection at each hook: the latch decision, the
//! seeds, scrambling and descrambling, accounting.  No `unsafe` here: the
//! hooks' raw arguments arrive as safe types from [`crate::hooks`].

use crate::{
    counters::{add, dec, inc},
    hooks::Scramble,
    netns::NetState,
    scrambler::{seed_with, State},
    sys,
};

/// What the rx hook reports.
pub(crate) enum RxEvent<'a> {
    /// Bytes that joined the in-order receive stream, to descramble in
    /// place.
    Data(&'a mut [u8]),
    /// An skb was copied to make its data private.
    Copied,
    /// An skb was dropped: no memory for that copy.
    Dropped,
    /// An event this module does not know (a newer patch series).
    Unknown,
}

/// A transform a connection can be scrambled with: the mode byte of the
/// scramble offer on the wire (docs/design.md, "Negotiation").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Mode {
    /// The paper's 64-byte ring (`mode` = `paper`).
    Paper = 1,
}

impl Mode {
    /// The mode of the `mode` sysctl's value `index`.
    pub(crate) fn from_index(index: i32) -> Option<Self> {
        match index {
            0 => Some(Mode::Paper),
            _ => None,
        }
    }

    /// The mode a received offer's byte names, if this module has it.
    pub(crate) fn from_wire(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Mode::Paper),
            _ => None,
        }
    }
}

/// Why the core refused or reset a connection.
pub(crate) enum Reject {
    /// The policy `required`: the peer did not offer the same mode.
    Refused,
    /// A subflow's offer contradicted the first subflow's.
    Downgrade,
    /// A reason this module does not know (a newer patch series).
    Unknown,
}

/// A connection starts (a connect(), or a SYN reaching a listener): what
/// it offers, from its namespace's `enabled`, `mode` and `policy`.
/// Returns the offer's mode byte (0: none) and whether it is required.
pub(crate) fn offer(net: &NetState) -> (u8, bool) {
    match net.offer() {
        Some((mode, required)) => (mode as u8, required),
        None => (0, false),
    }
}

/// The core refused a connection, or reset one for a downgrade.
pub(crate) fn reject(net: &NetState, why: Reject) {
    match why {
        Reject::Refused => inc(&net.counters.refused),
        Reject::Downgrade => inc(&net.counters.downgrades),
        Reject::Unknown => {}
    }
}

/// Both keys are known: latch the connection scrambled or plain, for its
/// whole life.  Scrambled when both ends offered the same mode, which this
/// end did from its namespace's settings when the connection started.
pub(crate) fn established(net: &NetState, mut scr: Scramble<'_>, local_key: u64, remote_key: u64) {
    let counters = &net.counters;
    let (local, peer) = (scr.local_offer(), scr.peer_offer());
    if local == 0 || peer != local || Mode::from_wire(local).is_none() {
        inc(&counters.connections_plain);
        if local != 0 {
            inc(&counters.peer_no_offer);
        }
        return;
    }
    // Each scrambled connection pins the module until it is destroyed.
    if !sys::module_get() {
        inc(&counters.latch_refused);
        return;
    }
    let tx = State::from_seed(&seed_with(sys::sha256, local_key, remote_key));
    let rx = State::from_seed(&seed_with(sys::sha256, remote_key, local_key));
    scr.activate(tx, rx);
    inc(&counters.connections_scrambled);
    inc(&counters.connections_live);
}

/// Bytes entered the send queue: scramble them.
pub(crate) fn tx(net: &NetState, state: &mut State, data: &mut [u8]) {
    state.scramble(data);
    add(&net.counters.bytes_scrambled, data.len() as u64);
}

/// Bytes joined the receive stream, or an skb had to be copied first.
pub(crate) fn rx(net: &NetState, state: &mut State, event: RxEvent<'_>) {
    let counters = &net.counters;
    match event {
        RxEvent::Data(data) => {
            state.descramble(data);
            add(&counters.bytes_descrambled, data.len() as u64);
        }
        RxEvent::Copied => inc(&counters.rx_copies),
        RxEvent::Dropped => inc(&counters.rx_drops),
        RxEvent::Unknown => {}
    }
}

/// The connection's state goes away: unpin the module.
pub(crate) fn destroy(net: &NetState, scr: Scramble<'_>) {
    if scr.is_active() {
        dec(&net.counters.connections_live);
        sys::module_put();
    }
}

/// A TCP Fast Open connect: if this connection is going to offer
/// scrambling, its data must not ride in the SYN, where it could not be
/// scrambled.
pub(crate) fn fastopen(net: &NetState, mut scr: Scramble<'_>) {
    if net.enabled() {
        scr.refuse_syn_data();
        inc(&net.counters.tfo_syn_data_refused);
    }
}
