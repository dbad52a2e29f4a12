// SPDX-License-Identifier: GPL-2.0

//! The kernel's crypto library (`lib/crypto`: `curve25519.h`, `chacha.h`,
//! `poly1305.h`, `sha2.h`) as the hardened mode's [`Crypto`].
//!
//! Every call here is plain computation on the caller's buffers: no
//! allocation, no sleeping, no random bytes, so it may run in any context,
//! including a kprobe handler entered from an int3 trap (NMI-like on x86).
//! One thing differs by context: the x86 SIMD ChaCha20 (built into the
//! test kernels, a module on distro kernels) asks `irq_fpu_usable()`, which
//! warns in NMI context, before every call it is given.  So the keystream
//! takes the generic C ChaCha20 when [`sys::in_nmi()`] and the
//! architecture's otherwise, and the handshake's tags, a few per
//! connection, always use the generic ChaCha20 and Poly1305
//! (docs/design.md, "Primitives, and the contexts they run in").  The
//! libraries must be built in (`CRYPTO_LIB_CHACHA`, `_CURVE25519`,
//! `_CHACHA20POLY1305` `=y`, the last for the Poly1305 library it
//! selects).

use kernel::bindings;

use crate::{
    hardened::{wipe, Crypto, KEY_LEN, TAG_LEN},
    sys,
};

/// The bytes of a `u32` array, to wipe it.
fn bytemuck_words(w: &mut [u32]) -> &mut [u8] {
    // SAFETY: a `u32` array is readable and writable as 4 times as many
    // bytes, any byte pattern is a valid `u32`, and the borrow is handed
    // on.
    unsafe {
        core::slice::from_raw_parts_mut(w.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(w))
    }
}

/// ChaCha20 state: 16 32-bit words (`CHACHA_STATE_WORDS`).
const STATE_WORDS: usize = 16;

/// The kernel's crypto library.
pub(crate) struct LibCrypto;

impl Crypto for LibCrypto {
    fn x25519(&self, scalar: &[u8; KEY_LEN], point: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        let mut out = [0u8; KEY_LEN];
        // SAFETY: `curve25519()` reads 32 bytes from each of `scalar` and
        // `point` and writes 32 to `out`, all valid for that.
        let ok = unsafe { bindings::curve25519(out.as_mut_ptr(), scalar.as_ptr(), point.as_ptr()) };
        ok.then_some(out)
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; KEY_LEN] {
        // SAFETY: `struct sha256_state` is plain data; all zeroes is a
        // valid (if meaningless) value, and `sha256_init()` sets it up.
        let mut st: bindings::sha256_state = unsafe { core::mem::zeroed() };
        let mut out = [0u8; KEY_LEN];
        // SAFETY: `st` is a live `sha256_state`.
        unsafe { bindings::sha256_init(&mut st) };
        for p in parts {
            for chunk in p.chunks(u32::MAX as usize) {
                // `chunks()` keeps each length within `u32`.
                let len = chunk.len() as u32;
                // SAFETY: `chunk` is readable for `len` bytes; `st` was
                // initialised by `sha256_init()`.
                unsafe { bindings::sha256_update(&mut st, chunk.as_ptr(), len) };
            }
        }
        // SAFETY: `out` has room for the 32-byte digest; `sha256_final()`
        // also wipes `st`.
        unsafe { bindings::sha256_final(&mut st, out.as_mut_ptr()) };
        out
    }

    fn aead_tag(&self, key: &[u8; KEY_LEN], n: u64, ad: &[u8]) -> [u8; TAG_LEN] {
        // RFC 8439 section 2.8 with an empty plaintext, on the generic
        // code in every context (the library's chacha20poly1305_encrypt()
        // would reach the SIMD ChaCha20).  Noise's nonce: 4 zero bytes,
        // then LE64(n).
        let mut nonce = [0u8; 12];
        if let Some(tail) = nonce.get_mut(4..) {
            tail.copy_from_slice(&n.to_le_bytes());
        }
        // The one-time Poly1305 key: the first 32 bytes of the keystream's
        // block 0 (section 2.6).
        let mut otk = [0u8; POLY1305_KEY_LEN];
        chacha20(key, &nonce, 0, &mut otk, Impl::Generic);
        // SAFETY: `struct poly1305_desc_ctx` is plain data; all zeroes is
        // a valid value, and `poly1305_init_generic()` sets it up.
        let mut ctx: bindings::poly1305_desc_ctx = unsafe { core::mem::zeroed() };
        // SAFETY: `ctx` is a live context; `otk` has the 32 key bytes.
        unsafe { bindings::poly1305_init_generic(&mut ctx, otk.as_ptr()) };
        wipe(&mut otk);
        let pad = [0u8; 16];
        let mut lens = [0u8; 16];
        if let Some(ad_len) = lens.get_mut(..8) {
            ad_len.copy_from_slice(&(ad.len() as u64).to_le_bytes());
        }
        // The MAC input: AD, zeros to a multiple of 16, the (empty)
        // ciphertext, LE64(AD length), LE64(0).
        let parts: [&[u8]; 3] = [
            ad,
            pad.get(..(16 - ad.len() % 16) % 16).unwrap_or(&[]),
            &lens,
        ];
        for part in parts {
            for chunk in part.chunks(u32::MAX as usize) {
                // SAFETY: `chunk` is readable for its length, which
                // `chunks()` keeps within `u32`; `ctx` was initialised.
                unsafe {
                    bindings::poly1305_update_generic(&mut ctx, chunk.as_ptr(), chunk.len() as u32)
                };
            }
        }
        let mut tag = [0u8; TAG_LEN];
        // SAFETY: `tag` has room for the 16-byte digest;
        // `poly1305_final_generic()` also zeroes `ctx`.
        unsafe { bindings::poly1305_final_generic(&mut ctx, tag.as_mut_ptr()) };
        tag
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        // SAFETY: `__crypto_memneq()` reads `a.len()` bytes of each, both
        // valid for that many.
        a.len() == b.len()
            && unsafe { bindings::__crypto_memneq(a.as_ptr().cast(), b.as_ptr().cast(), a.len()) }
                == 0
    }

    fn chacha20_xor(&self, key: &[u8; KEY_LEN], nonce: &[u8; 12], counter: u32, data: &mut [u8]) {
        let which = if sys::in_nmi() {
            Impl::Generic
        } else {
            Impl::Arch
        };
        chacha20(key, nonce, counter, data, which);
    }
}

/// Poly1305's one-time key: bytes (`POLY1305_KEY_SIZE`).
const POLY1305_KEY_LEN: usize = 32;

/// Which ChaCha20 of the library [`chacha20()`] runs.
#[derive(Clone, Copy)]
pub(crate) enum Impl {
    /// `chacha_crypt_generic()`: plain C, fit for any context.
    Generic,
    /// `chacha_crypt()`: the architecture's code where there is one, which
    /// may use SIMD where `crypto_simd_usable()` allows it; never in NMI
    /// context.
    Arch,
}

/// XOR `data` with the ChaCha20 keystream (RFC 8439 section 2.4) of `key`
/// and `nonce` from block `counter` on.  `which` must be
/// [`Impl::Generic`] in NMI context.
pub(crate) fn chacha20(
    key: &[u8; KEY_LEN],
    nonce: &[u8; 12],
    counter: u32,
    data: &mut [u8],
    which: Impl,
) {
    let mut k = [0u32; KEY_LEN / 4];
    for (w, b) in k.iter_mut().zip(key.as_chunks::<4>().0) {
        *w = u32::from_le_bytes(*b);
    }
    // The IV `chacha_init()` takes: the block counter, then the nonce
    // (RFC 8439 section 2.3's state words 12 to 15).
    let mut iv = [0u8; 16];
    let (ctr, rest) = iv.split_at_mut(4);
    ctr.copy_from_slice(&counter.to_le_bytes());
    rest.copy_from_slice(nonce);
    let mut state = [0u32; STATE_WORDS];
    // SAFETY: `state` has the 16 words, `k` the 8 key words and `iv`
    // the 16 bytes `chacha_init()` uses.
    unsafe { bindings::chacha_init(state.as_mut_ptr(), k.as_ptr(), iv.as_ptr()) };
    for chunk in data.chunks_mut(1 << 30) {
        // `chunks_mut()` keeps each length within `u32`.
        let len = chunk.len() as u32;
        let p = chunk.as_mut_ptr();
        // SAFETY: both read and write `len` bytes at `p` (in place is
        // allowed) and advance the block counter in `state`, so the chunks
        // continue one keystream; `which` is `Arch` only outside NMI
        // context.
        unsafe {
            match which {
                Impl::Generic => bindings::chacha_crypt_generic(state.as_mut_ptr(), p, p, len, 20),
                Impl::Arch => bindings::chacha_crypt(state.as_mut_ptr(), p, p, len, 20),
            }
        };
    }
    wipe(bytemuck_words(&mut state));
    wipe(bytemuck_words(&mut k));
}
