// SPDX-License-Identifier: GPL-2.0

//! The kernel's crypto library (`lib/crypto`: `curve25519.h`, `chacha.h`,
//! `chacha20poly1305.h`, `sha2.h`) as the hardened mode's [`Crypto`].
//!
//! Every call here is plain computation on the caller's buffers: no
//! allocation, no sleeping, no random bytes, so it may run in any context,
//! including a kprobe handler entered from an int3 trap, on the test
//! kernels, which build only the generic C code.  On a kernel with the x86
//! SIMD ChaCha20, `chacha_crypt()` would ask `crypto_simd_usable()`, which
//! WARNs in NMI context (an int3-trapped handler): such a kernel needs
//! `chacha_crypt_generic()` there (docs/design.md, "Primitives, and the
//! contexts they run in").  The libraries must be built in
//! (`CRYPTO_LIB_CHACHA`, `_CURVE25519`, `_CHACHA20POLY1305` `=y`).

use kernel::bindings;

use crate::hardened::{wipe, Crypto, KEY_LEN, TAG_LEN};

/// The bytes of a `u32` array, to wipe it.
fn bytemuck_words(w: &mut [u32]) -> &mut [u8] {
    // SAFETY: a `u32` array is readable and writable as 4 times as many
    // bytes, any byte pattern is a valid `u32`, and the borrow is handed
    // on.
    unsafe { core::slice::from_raw_parts_mut(w.as_mut_ptr().cast::<u8>(), core::mem::size_of_val(w)) }
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
        let mut tag = [0u8; TAG_LEN];
        let src = [0u8; 0];
        // SAFETY: with an empty plaintext `chacha20poly1305_encrypt()`
        // reads nothing from `src`, reads `ad.len()` bytes of `ad` and 32
        // of `key`, and writes only the 16-byte tag to `tag`.  Its nonce
        // is 4 zero bytes then LE64(n), as Noise's ChaChaPoly wants.
        unsafe {
            bindings::chacha20poly1305_encrypt(
                tag.as_mut_ptr(),
                src.as_ptr(),
                0,
                ad.as_ptr(),
                ad.len(),
                n,
                key.as_ptr(),
            )
        };
        tag
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        // SAFETY: `__crypto_memneq()` reads `a.len()` bytes of each, both
        // valid for that many.
        a.len() == b.len() && unsafe { bindings::__crypto_memneq(a.as_ptr().cast(), b.as_ptr().cast(), a.len()) } == 0
    }

    fn chacha20_xor(&self, key: &[u8; KEY_LEN], nonce: &[u8; 12], counter: u32, data: &mut [u8]) {
        let mut k = [0u32; KEY_LEN / 4];
        for (w, b) in k.iter_mut().zip(key.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
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
            // SAFETY: `chacha_crypt()` reads and writes `len` bytes at `p`
            // (in place is allowed) and advances the block counter in
            // `state`, so the chunks continue one keystream.
            unsafe { bindings::chacha_crypt(state.as_mut_ptr(), p, p, len, 20) };
        }
        wipe(bytemuck_words(&mut state));
        wipe(bytemuck_words(&mut k));
    }
}
