//! The hardened mode for userspace.
//!
//! The handshake, key schedule and keystream are `src/hardened.rs` at the
//! top of the repository, the very file the kernel module compiles; this
//! crate gives it RustCrypto's primitives ([`RustCrypto`]) in place of the
//! kernel's `lib/crypto`.  The tests check it against `snow`, an
//! independent implementation of Noise, and the `hardened-vectors` tool
//! writes the known answers the module checks at load.
#![no_std]

#[path = "../../../src/hardened.rs"]
mod hardened;

pub use hardened::*;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20poly1305::{aead::AeadInPlace, ChaCha20Poly1305, KeyInit};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// [`Crypto`] from RustCrypto's `x25519-dalek`, `chacha20`,
/// `chacha20poly1305` and `sha2`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

impl Crypto for RustCrypto {
    fn x25519(&self, scalar: &[u8; KEY_LEN], point: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]> {
        let out = x25519_dalek::x25519(*scalar, *point);
        (!bool::from(out.ct_eq(&[0u8; KEY_LEN]))).then_some(out)
    }

    fn sha256(&self, parts: &[&[u8]]) -> [u8; KEY_LEN] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    fn aead_tag(&self, key: &[u8; KEY_LEN], n: u64, ad: &[u8]) -> [u8; TAG_LEN] {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_le_bytes());
        let tag = ChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached((&nonce).into(), ad, &mut [])
            .expect("an empty plaintext is within ChaCha20-Poly1305's limits");
        tag.into()
    }

    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }

    fn chacha20_xor(&self, key: &[u8; KEY_LEN], nonce: &[u8; 12], counter: u32, data: &mut [u8]) {
        let mut c = chacha20::ChaCha20::new(key.into(), nonce.into());
        c.seek(u64::from(counter) * CHACHA_BLOCK_LEN as u64);
        c.apply_keystream(data);
    }
}
