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

/// Both keys are known: latch the connection scrambled or plain, for its
/// whole life, from the namespace's `enabled`.
pub(crate) fn established(net: &NetState, mut scr: Scramble<'_>, local_key: u64, remote_key: u64) {
    let counters = &net.counters;
    if !net.enabled() {
        inc(&counters.connections_plain);
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

/// A TCP Fast Open connect: if this connection is going to be scrambled,
/// its data must not ride in the SYN, where it could not be.
pub(crate) fn fastopen(net: &NetState, mut scr: Scramble<'_>) {
    if net.enabled() {
        scr.refuse_syn_data();
        inc(&net.counters.tfo_syn_data_refused);
    }
}
