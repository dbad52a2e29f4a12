// SPDX-License-Identifier: GPL-2.0

//! The hardened mode's ephemeral X25519 keypairs, made ahead of need
//! (docs/design.md, "Primitives, and the contexts they run in").
//!
//! A hook handler that needs a keypair (the client at establishment, the
//! server when message 1 arrives) may run in an int3 trap, where it may
//! not draw random bytes (the generator takes a lock lockdep would flag in
//! NMI context): it takes one from this pool, lock-free, and an empty pool
//! fails the handshake.  A timer refills the pool in softirq context, a
//! few keypairs per tick, so no tick runs long.

use kernel::{bindings, c_str};

use crate::{
    hardened::{wipe, Crypto, Keypair, BASE_POINT, KEY_LEN},
    sys::{self, crypto::LibCrypto, slots::Slots, timer::Timer},
};

/// Keypairs the pool holds when full.
pub(crate) const POOL_LEN: usize = 32;
/// Keypairs made per tick.
const PER_TICK: usize = 2;
/// Tick period while the pool is short, and once it is full: ms.
const TICK_REFILL_MS: u32 = 10;
const TICK_FULL_MS: u32 = 100;

/// Each slot: private key, then public key.
static POOL: Slots<{ 2 * KEY_LEN }, POOL_LEN> = Slots::new();
static TIMER: Timer = Timer::new();

/// Takes a keypair; `None` when the pool is empty.  Any context.
pub(crate) fn take() -> Option<Keypair> {
    let mut v = POOL.take()?;
    let (e, p) = v.split_at(KEY_LEN);
    let mut kp = ([0u8; KEY_LEN], [0u8; KEY_LEN]);
    kp.0.copy_from_slice(e);
    kp.1.copy_from_slice(p);
    wipe(&mut v);
    Some(kp)
}

/// Keypairs ready now.
pub(crate) fn ready() -> usize {
    POOL.ready()
}

/// A fresh keypair: 32 random bytes, clamped (RFC 7748 section 5), and
/// their public key.  Process or softirq context.
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
    TIMER.arm(if ready() < POOL_LEN { TICK_REFILL_MS } else { TICK_FULL_MS });
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
