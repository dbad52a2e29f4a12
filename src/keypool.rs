// SPDX-License-Identifier: GPL-2.0

//! The hardened mode's ephemeral X25519 keypairs, made ahead of need
//! (docs/design.md, "Primitives, and the contexts they run in").
//!
//! A hook handler that needs a keypair (the client at establishment, the
//! server when message 1 arrives) takes one from this pool, lock-free.
//! When the pool is empty it makes one itself, unless it runs in an int3
//! trap, where it may not draw random bytes (the generator takes a lock
//! lockdep would flag in NMI context): only then does an empty pool fail
//! the handshake.  A timer refills the pool in softirq context, a few
//! keypairs per tick, so no tick runs long.

use kernel::{bindings, c_str};

use crate::{
    hardened::{wipe, Crypto, Keypair, BASE_POINT, KEY_LEN},
    sys::{self, crypto::LibCrypto, slots::Slots, timer::Timer},
};

/// Keypairs the pool holds when full.
pub(crate) const POOL_LEN: usize = 64;
/// Keypairs made per tick.
const PER_TICK: usize = 4;
/// Tick period while the pool is short, and once it is full: ms.
const TICK_REFILL_MS: u32 = 10;
const TICK_FULL_MS: u32 = 100;

/// Each slot: private key, then public key.
static POOL: Slots<{ 2 * KEY_LEN }, POOL_LEN> = Slots::new();
static TIMER: Timer = Timer::new();

/// Takes a keypair; `None` when the pool is empty.  Any context.
pub(crate) fn take() -> Option<Keypair> {
    POOL.take().map(keypair)
}

/// Where [`take_or_make()`]'s keypair came from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Made ahead, by the timer or at load.
    Pool,
    /// Made by the caller, the pool being empty: one X25519 base-point
    /// multiplication on the caller's time.
    Inline,
}

/// Takes a keypair, or makes one when the pool is empty and this context
/// may draw random bytes ([`sys::in_nmi()`] is false).  `None` when the
/// pool is empty in an NMI-like context, or the made key was degenerate.
/// Any context.
pub(crate) fn take_or_make() -> Option<(Keypair, Origin)> {
    if let Some(kp) = take() {
        return Some((kp, Origin::Pool));
    }
    if sys::in_nmi() {
        return None;
    }
    make().map(|v| (keypair(v), Origin::Inline))
}

/// Splits a slot's bytes into a keypair and wipes them.
fn keypair(mut v: [u8; 2 * KEY_LEN]) -> Keypair {
    let (e, p) = v.split_at(KEY_LEN);
    let mut kp = ([0u8; KEY_LEN], [0u8; KEY_LEN]);
    kp.0.copy_from_slice(e);
    kp.1.copy_from_slice(p);
    wipe(&mut v);
    kp
}

/// Keypairs ready now.
pub(crate) fn ready() -> usize {
    POOL.ready()
}

/// A fresh keypair: 32 random bytes, clamped (RFC 7748 section 5), and
/// their public key.  Process, softirq or hardirq context, never an
/// NMI-like one.
pub(crate) fn make() -> Option<[u8; 2 * KEY_LEN]> {
    let mut v = [0u8; 2 * KEY_LEN];
    let (e, p) = v.split_at_mut(KEY_LEN);
    sys::random_bytes(e);
    let mut secret = [0u8; KEY_LEN];
    secret.copy_from_slice(e);
    secret[0] &= 248;
    secret[31] = (secret[31] & 127) | 64;
    e.copy_from_slice(&secret);
    let public = LibCrypto.x25519(&secret, &BASE_POINT);
    wipe(&mut secret);
    match public {
        Some(public) => {
            p.copy_from_slice(&public);
            Some(v)
        }
        None => {
            wipe(&mut v);
            None
        }
    }
}

/// The timer's callback: make a few keypairs, then come back soon if the
/// pool is still short.
///
/// # Safety
///
/// Only the kernel's timer code calls it, with [`TIMER`]'s `timer_list`.
unsafe extern "C" fn tick(_timer: *mut bindings::timer_list) {
    POOL.refill(PER_TICK, make);
    TIMER.arm(if ready() < POOL_LEN {
        TICK_REFILL_MS
    } else {
        TICK_FULL_MS
    });
}

/// The pool's lifetime: filled at load, refilled by the timer until
/// unload, wiped at unload.
pub(crate) struct KeyPool;

impl KeyPool {
    /// Fills the pool and starts the timer.  Process context.
    pub(crate) fn start() -> Self {
        POOL.refill(POOL_LEN, make);
        TIMER.init(tick, c_str!("mptcp_scramble_keypool"));
        TIMER.arm(TICK_FULL_MS);
        KeyPool
    }
}

impl Drop for KeyPool {
    fn drop(&mut self) {
        TIMER.shutdown();
        POOL.clear();
    }
}
