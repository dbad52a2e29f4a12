// SPDX-License-Identifier: GPL-2.0

//! What happens to a connection at each hook: the latch decision, the
//! seeds, scrambling and descrambling, accounting.  No `unsafe` here: the
//! hooks' raw arguments arrive as safe types from [`crate::hooks`].

use kernel::prelude::*;

use crate::{
    counters::Counter,
    hardened::{self, Keypair, Sender, Session},
    hooks::{Pieces, Scramble},
    keypool,
    netns::NetState,
    scrambler::{seed_with, State},
    sys::{self, crypto::LibCrypto},
};

/// What the rx hook reports.
pub(crate) enum RxEvent<'a> {
    /// The new bytes of one skb, which joined the in-order receive stream,
    /// in stream order: to make private and descramble.
    Pieces(Pieces<'a>),
    /// An skb was linearized to make its data private.
    Copied,
    /// An skb was dropped: no memory to make it private.
    Dropped,
    /// An event this module does not know (a newer patch series).
    Unknown,
}

/// A run of received bytes, as `struct mptcp_scramble_rx_piece` describes
/// it (`include/net/mptcp_scramble.h`).
pub(crate) enum Piece<'a> {
    /// Bytes that are the connection's alone: descramble them in place.
    Private(&'a mut [u8]),
    /// Bytes that may be shared (`src`), and the fresh memory of the same
    /// length (`dst`) that replaces them in the skb: descramble `src` into
    /// `dst` in one pass (the paper's mode), or copy it there and
    /// decrypt the copy while it is in the cache (the hardened mode).
    Shared { src: &'a [u8], dst: &'a mut [u8] },
}

impl<'a> Piece<'a> {
    /// The piece's bytes in memory the connection owns, copied there if
    /// they were shared, and whether they were: for a transform that can
    /// only work in place.
    pub(crate) fn into_private(self) -> (&'a mut [u8], bool) {
        match self {
            Piece::Private(data) => (data, false),
            Piece::Shared { src, dst } => {
                let len = src.len().min(dst.len());
                let dst = &mut dst[..len];
                dst.copy_from_slice(&src[..len]);
                (dst, true)
            }
        }
    }
}

/// A transform a connection can be scrambled with: the mode byte of the
/// scramble offer on the wire (docs/design.md, "Negotiation").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum Mode {
    /// The paper's 64-byte ring (`mode` = `paper`).
    Paper = 1,
    /// Noise NN in the data stream and a ChaCha20 keystream (`mode` =
    /// `hardened`, docs/design.md "Hardened mode, byte-exact").
    Hardened = 2,
}

impl Mode {
    /// The mode of the `mode` sysctl's value `index`.
    pub(crate) fn from_index(index: i32) -> Option<Self> {
        match index {
            0 => Some(Mode::Paper),
            1 => Some(Mode::Hardened),
            _ => None,
        }
    }

    /// The mode a received offer's byte names, if this module has it.
    pub(crate) fn from_wire(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Mode::Paper),
            2 => Some(Mode::Hardened),
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
        Reject::Refused => net.counters.inc(Counter::refused),
        Reject::Downgrade => net.counters.inc(Counter::downgrades),
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
        counters.inc(Counter::connections_plain);
        if local != 0 {
            counters.inc(Counter::peer_no_offer);
        }
        return;
    }
    // Each scrambled connection pins the module until it is destroyed.
    if !sys::module_get() {
        counters.inc(Counter::latch_refused);
        return;
    }
    match Mode::from_wire(local) {
        Some(Mode::Hardened) => established_hardened(net, scr, local, local_key, remote_key),
        _ => {
            let tx = State::from_seed(&seed_with(sys::sha256, local_key, remote_key));
            let rx = State::from_seed(&seed_with(sys::sha256, remote_key, local_key));
            scr.activate(net, tx, rx);
        }
    }
    counters.inc(Counter::connections_scrambled);
    counters.inc(Counter::connections_live);
}

/// The hardened mode starts: the client sends message 1 at once, the
/// server waits for it; neither application may send before its keys
/// exist.  The prologue binds the MPTCP keys and the offers
/// (docs/design.md, "The handshake").
fn established_hardened(
    net: &NetState,
    mut scr: Scramble<'_>,
    mode: u8,
    local_key: u64,
    remote_key: u64,
) {
    let offer = [0x1e, 0x04, 0xf1, mode];
    let client = !scr.passive();
    let (ck, sk) = if client {
        (local_key, remote_key)
    } else {
        (remote_key, local_key)
    };
    let prologue = hardened::prologue(ck, sk, &offer, &offer);
    let session = if client {
        match take_keypair(net) {
            Some(mut kp) => {
                let (session, msg1) = Session::client(&LibCrypto, &prologue, &kp);
                hardened::wipe(&mut kp.0);
                scr.send_preamble(&msg1, false);
                session
            }
            None => {
                // No keypair: latch anyway, so that the core resets the
                // connection rather than let it go plain.
                scr.abort();
                Session::server(&prologue)
            }
        }
    } else {
        Session::server(&prologue)
    };
    scr.hold_tx();
    scr.key_joins();
    scr.activate_hardened(net, session);
}

/// An ephemeral keypair for a handshake, counted by where it came from.
fn take_keypair(net: &NetState) -> Option<Keypair> {
    match keypool::take_or_make() {
        Some((kp, origin)) => {
            if origin == keypool::Origin::Inline {
                net.counters.inc(Counter::keypool_inline);
            }
            Some(kp)
        }
        None => {
            net.counters.inc(Counter::keypool_empty);
            None
        }
    }
}

/// Bytes entered the send queue: scramble them.  Returns false when they
/// could not be (the core then resets the connection).
pub(crate) fn tx(net: &NetState, dir: TxState<'_>, data: &mut [u8]) -> bool {
    match dir {
        TxState::Paper(state) => state.scramble(data),
        TxState::Hardened(sender) => sender.tx(&LibCrypto, data),
    }
    net.counters
        .add(Counter::bytes_scrambled, data.len() as u64);
    true
}

/// The send side of a connection, as its mode keeps it.
pub(crate) enum TxState<'a> {
    Paper(&'a mut State),
    Hardened(&'a mut Sender),
}

/// What the rx hook must tell the core after the hardened session took
/// bytes.
pub(crate) struct RxReply {
    /// Leading bytes that were the peer's preamble.
    pub(crate) owned: usize,
    /// Preamble to send, and the send side once this end's keys exist.
    pub(crate) send: Option<([u8; hardened::MSG2_LEN], usize, Option<Sender>)>,
    /// The handshake failed: nothing may be delivered, reset.
    pub(crate) abort: bool,
}

/// Bytes joined the receive stream of a hardened connection: consume the
/// peer's preamble, answer it, decrypt the rest.
pub(crate) fn rx_hardened(net: &NetState, session: &mut Session, data: &mut [u8]) -> RxReply {
    let counters = &net.counters;
    match session.rx(&LibCrypto, data, || take_keypair(net)) {
        Ok(out) => {
            if out.send_len > 0 && net.keylog() {
                keylog(session);
            }
            counters.add(Counter::bytes_descrambled, (data.len() - out.owned) as u64);
            RxReply {
                owned: out.owned,
                send: (out.send_len > 0).then_some((out.send, out.send_len, out.sender)),
                abort: false,
            }
        }
        Err(_) => {
            counters.inc(Counter::handshake_failed);
            RxReply {
                owned: 0,
                send: None,
                abort: true,
            }
        }
    }
}

/// TEST ONLY (`keylog`=1): one kernel log line with what decrypts the
/// connection in a capture, printed once when this end's keys appear
/// (`mptcp-eavesdrop analyze --keylog`).  printk neither sleeps nor
/// allocates, and may run in an int3 trap.
fn keylog(session: &Session) {
    if let Some((mptcp_keys, c2s, s2c)) = session.keylog() {
        pr_info!(
            "keylog {} {} {} {}\n",
            Hex(&mptcp_keys[..8]),
            Hex(&mptcp_keys[8..]),
            Hex(c2s),
            Hex(s2c)
        );
    }
}

/// Bytes as lower-case hex digits, formatted without allocating.
struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// An skb's bytes joined the receive stream of a connection in the
/// paper's mode: copy each shared piece and descramble it in one pass.
/// Or an skb had to be linearized first, or was dropped.
pub(crate) fn rx(net: &NetState, state: &mut State, event: RxEvent<'_>) {
    let counters = &net.counters;
    match event {
        RxEvent::Pieces(pieces) => {
            let (mut bytes, mut copied) = (0, false);
            for piece in pieces {
                let (len, shared) = descramble_piece(state, piece);
                bytes += len;
                copied |= shared;
            }
            counters.add(Counter::bytes_descrambled, bytes as u64);
            rx_copied(net, copied);
        }
        other => rx_event(net, other),
    }
}

/// Descrambles one piece in the paper's mode, a shared one into its
/// destination in the same pass as the copy; returns its length and
/// whether it was shared.
pub(crate) fn descramble_piece(state: &mut State, piece: Piece<'_>) -> (usize, bool) {
    match piece {
        Piece::Private(data) => {
            state.descramble(data);
            (data.len(), false)
        }
        Piece::Shared { src, dst } => {
            state.descramble_into(src, dst);
            (src.len().min(dst.len()), true)
        }
    }
}

/// Counts an skb whose data a call of the rx hook copied to make it
/// private, if `copied`.
pub(crate) fn rx_copied(net: &NetState, copied: bool) {
    if copied {
        net.counters.inc(Counter::rx_copies);
    }
}

/// An rx event without data (an skb linearized or dropped).
pub(crate) fn rx_event(net: &NetState, event: RxEvent<'_>) {
    match event {
        RxEvent::Copied => net.counters.inc(Counter::rx_copies),
        RxEvent::Dropped => net.counters.inc(Counter::rx_drops),
        RxEvent::Pieces(_) | RxEvent::Unknown => {}
    }
}

/// The connection's state goes away: wipe its keys, unpin the module.
pub(crate) fn destroy(net: &NetState, mut scr: Scramble<'_>) {
    scr.drop_hardened();
    if scr.is_active() {
        net.counters.dec(Counter::connections_live);
        sys::module_put();
    }
}

/// A TCP Fast Open connect: if this connection is going to offer
/// scrambling, its data must not ride in the SYN, where it could not be
/// scrambled.
pub(crate) fn fastopen(net: &NetState, mut scr: Scramble<'_>) {
    if net.enabled() {
        scr.refuse_syn_data();
        net.counters.inc(Counter::tfo_syn_data_refused);
    }
}
