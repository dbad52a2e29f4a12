// SPDX-License-Identifier: GPL-2.0

//! The hardened mode's handshake and keystream, wire version 1
//! (docs/design.md, "Hardened mode"), free of the kernel and of `std`.
//!
//! Like [`crate::scrambler`], the kernel module and the userspace crate
//! `hardened` both compile this very file.  The cryptographic primitives
//! come from outside through [`Crypto`]: the kernel's library (`lib/crypto`)
//! in the module, RustCrypto's crates in userspace.  What is written here is
//! the glue a reviewer must check: the Noise `NN` handshake
//! (`Noise_NN_25519_ChaChaPoly_SHA256`, the Noise Protocol Framework,
//! revision 34, sections 5 and 7.4), the key schedule after it and the
//! keystream indexed by stream offset.  The userspace tests run it against
//! `snow`, an independent implementation of Noise.
//!
//! No allocation, no floating point or SIMD, no `unsafe` but the volatile
//! stores of [`wipe`], and no input can make it panic as long as each
//! direction's stream stays below 2^64 bytes (the offsets are `u64`).
//!
//! # The bytes on the wire
//!
//! Each direction's MPTCP data stream starts with a preamble that the
//! kernel sends and consumes, never the application:
//!
//! ```text
//! client -> server:  e.pub (32)                    Noise message 1, "-> e"
//!                    confirm tag (16)              after message 2 arrived
//! server -> client:  e.pub (32) || tag (16)        Noise message 2, "<- e, ee"
//! ```
//!
//! The application's bytes follow each preamble, XORed with a ChaCha20
//! keystream ([`Keystream`]) whose key is derived from the handshake
//! ([`Keys`]).

/// The Noise protocol name; its 32 bytes are the initial chaining key and
/// handshake hash (Noise section 5.2, `InitializeSymmetric`).
pub const PROTOCOL_NAME: &[u8; 32] = b"Noise_NN_25519_ChaChaPoly_SHA256";

/// X25519 public and private keys, ChaCha20 keys, SHA-256 digests: bytes.
pub const KEY_LEN: usize = 32;

/// Poly1305 tag: bytes.
pub const TAG_LEN: usize = 16;

/// Noise message 1 (`-> e`), the client's ephemeral public key: bytes.
pub const MSG1_LEN: usize = KEY_LEN;

/// Noise message 2 (`<- e, ee`): the server's ephemeral public key and the
/// tag of an empty payload.
pub const MSG2_LEN: usize = KEY_LEN + TAG_LEN;

/// The client's key confirmation: the tag of an empty first transport
/// message.
pub const CONFIRM_LEN: usize = TAG_LEN;

/// Bytes the kernel owns at the head of the client's data stream.
pub const CLIENT_PREAMBLE_LEN: usize = MSG1_LEN + CONFIRM_LEN;

/// Bytes the kernel owns at the head of the server's data stream.
pub const SERVER_PREAMBLE_LEN: usize = MSG2_LEN;

/// The prologue: client key, server key (8 bytes each, as they are sent in
/// MP_CAPABLE, RFC 8684 section 3.1), then the client's offer and the
/// server's answer (4 bytes each, as sent in the MP_EXPERIMENTAL option).
pub const PROLOGUE_LEN: usize = 24;

/// Label of the keystream keys' derivation.
pub const STREAM_LABEL: &[u8; 24] = b"mptcp-scramble v1 stream";

/// Label of the MP_JOIN keys' derivation.
pub const JOIN_LABEL: &[u8; 22] = b"mptcp-scramble v1 join";

/// The HMAC-SHA256 block size: bytes.
const BLOCK_LEN: usize = 64;

/// ChaCha20 block: bytes of keystream per block counter value.
pub const CHACHA_BLOCK_LEN: usize = 64;

/// log2 of the ChaCha20 blocks in one nonce's segment of a keystream.
pub const SEGMENT_SHIFT: u32 = 31;

const SEGMENT_MASK: u64 = (1 << SEGMENT_SHIFT) - 1;

/// The primitives, from the kernel's crypto library or from userspace
/// crates.  Implementations must be constant-time in their secret inputs.
pub trait Crypto {
    /// X25519 (RFC 7748 section 5): `scalar` (clamped by the function)
    /// times the u-coordinate `point`.  `None` when the result is all zero,
    /// as RFC 7748 section 6.1 allows a protocol to check, which Noise
    /// (section 12.1) lets an implementation treat as an error.
    fn x25519(&self, scalar: &[u8; KEY_LEN], point: &[u8; KEY_LEN]) -> Option<[u8; KEY_LEN]>;

    /// SHA-256 (FIPS 180-4) of the concatenation of `parts`.
    fn sha256(&self, parts: &[&[u8]]) -> [u8; KEY_LEN];

    /// The tag ChaCha20-Poly1305 (RFC 8439 section 2.8) gives an empty
    /// plaintext under `key`, the 96-bit nonce 4 zero bytes || LE64(`n`)
    /// (Noise section 12.3) and associated data `ad`.
    fn aead_tag(&self, key: &[u8; KEY_LEN], n: u64, ad: &[u8]) -> [u8; TAG_LEN];

    /// Whether `a` and `b` are equal, in time independent of their
    /// contents (the kernel's `crypto_memneq()`).
    fn ct_eq(&self, a: &[u8], b: &[u8]) -> bool;

    /// XOR `data` with the ChaCha20 keystream (RFC 8439 section 2.4) of
    /// `key` and `nonce`, starting at the start of block `counter`.
    /// `data` never runs past block 2^31 - 1.
    fn chacha20_xor(&self, key: &[u8; KEY_LEN], nonce: &[u8; 12], counter: u32, data: &mut [u8]);
}

/// The X25519 base point, u = 9 (RFC 7748 section 4.1).
pub const BASE_POINT: [u8; KEY_LEN] = {
    let mut p = [0u8; KEY_LEN];
    p[0] = 9;
    p
};

/// Why a handshake failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A Diffie-Hellman result, or an ephemeral public key, was all zero:
    /// the peer sent a low-order point.
    LowOrderPoint,
    /// Noise message 2's tag did not verify: the server derived other keys
    /// (a man in the middle, or the prologues differ).
    BadMessage2,
    /// The client's confirmation did not verify.
    BadConfirm,
}

/// Zeroes `buf` so that the compiler cannot drop the stores, as the
/// kernel's `memzero_explicit()` does: a plain `fill(0)` of memory that is
/// never read again is removed by the optimizer.
pub fn wipe(buf: &mut [u8]) {
    for b in buf.iter_mut() {
        // SAFETY: `b` is a valid, exclusive reference to a byte.
        unsafe { core::ptr::write_volatile(b, 0) };
    }
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// [`wipe`] for a `u64`.
fn wipe_u64(v: &mut u64) {
    // SAFETY: `v` is a valid, exclusive reference.
    unsafe { core::ptr::write_volatile(v, 0) };
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// HMAC-SHA256 (RFC 2104) with a 32-byte key of `a || b`.
pub fn hmac_sha256<C: Crypto + ?Sized>(
    c: &C,
    key: &[u8; KEY_LEN],
    a: &[u8],
    b: &[u8],
) -> [u8; KEY_LEN] {
    let mut ipad = [0x36u8; BLOCK_LEN];
    let mut opad = [0x5cu8; BLOCK_LEN];
    for ((i, o), k) in ipad.iter_mut().zip(opad.iter_mut()).zip(key.iter()) {
        *i ^= k;
        *o ^= k;
    }
    let inner = c.sha256(&[&ipad, a, b]);
    let out = c.sha256(&[&opad, &inner]);
    wipe(&mut ipad);
    wipe(&mut opad);
    out
}

/// Noise's `HKDF(chaining_key, input_key_material, 2)` (section 4.3).
fn hkdf2<C: Crypto + ?Sized>(
    c: &C,
    ck: &[u8; KEY_LEN],
    ikm: &[u8],
) -> ([u8; KEY_LEN], [u8; KEY_LEN]) {
    let mut temp = hmac_sha256(c, ck, ikm, &[]);
    let o1 = hmac_sha256(c, &temp, &[1], &[]);
    let o2 = hmac_sha256(c, &temp, &o1, &[2]);
    wipe(&mut temp);
    (o1, o2)
}

/// Noise's `SymmetricState` (section 5.2) for this one pattern: the
/// chaining key, the handshake hash and the cipher key, whose nonce is
/// always 0 here (each key encrypts one message).
struct Symmetric {
    ck: [u8; KEY_LEN],
    h: [u8; KEY_LEN],
    k: Option<[u8; KEY_LEN]>,
}

impl Symmetric {
    /// `InitializeSymmetric(protocol_name)` then `MixHash(prologue)`.
    fn new<C: Crypto + ?Sized>(c: &C, prologue: &[u8; PROLOGUE_LEN]) -> Self {
        Self {
            ck: *PROTOCOL_NAME,
            h: c.sha256(&[&PROTOCOL_NAME[..], &prologue[..]]),
            k: None,
        }
    }

    fn mix_hash<C: Crypto + ?Sized>(&mut self, c: &C, data: &[u8]) {
        self.h = c.sha256(&[&self.h, data]);
    }

    fn mix_key<C: Crypto + ?Sized>(&mut self, c: &C, ikm: &[u8; KEY_LEN]) {
        let (ck, k) = hkdf2(c, &self.ck, ikm);
        self.ck = ck;
        self.k = Some(k);
    }

    /// `EncryptAndHash` of an empty payload: no output before a key
    /// exists, the tag after.
    fn encrypt_empty<C: Crypto + ?Sized>(&mut self, c: &C) -> Option<[u8; TAG_LEN]> {
        match self.k {
            None => {
                self.mix_hash(c, &[]);
                None
            }
            Some(k) => {
                let tag = c.aead_tag(&k, 0, &self.h);
                self.mix_hash(c, &tag);
                Some(tag)
            }
        }
    }

    /// `Split()`, then the project's key schedule ([`Keys`]).
    fn split<C: Crypto + ?Sized>(&self, c: &C) -> Keys {
        let (mut k1, mut k2) = hkdf2(c, &self.ck, &[]);
        let keys = Keys::derive(c, &k1, &k2, &self.h);
        wipe(&mut k1);
        wipe(&mut k2);
        keys
    }
}

impl Drop for Symmetric {
    fn drop(&mut self) {
        wipe(&mut self.ck);
        if let Some(k) = self.k.as_mut() {
            wipe(k);
        }
    }
}

/// What a completed handshake gives each end.
///
/// `c2s` names the client-to-server direction, `s2c` the other.
pub struct Keys {
    /// The final handshake hash (Noise section 11.2): public, the same at
    /// both ends; for channel binding and tests.
    pub handshake_hash: [u8; KEY_LEN],
    /// The client's confirmation: ChaCha20-Poly1305 tag of an empty
    /// plaintext under Split()'s first key, nonce 0, no associated data
    /// (Noise's first transport message from the initiator).
    pub confirm: [u8; CONFIRM_LEN],
    /// ChaCha20 key of the client-to-server keystream:
    /// HMAC-SHA256(k1, [`STREAM_LABEL`] || handshake hash).
    pub stream_c2s: [u8; KEY_LEN],
    /// ChaCha20 key of the server-to-client keystream, the same with k2.
    pub stream_s2c: [u8; KEY_LEN],
    /// The client's stand-in for its MPTCP key in MP_JOIN HMACs (RFC 8684
    /// section 3.2): the first 8 bytes, big-endian, of
    /// HMAC-SHA256(k1, [`JOIN_LABEL`] || handshake hash).
    pub join_client: u64,
    /// The server's stand-in, the same with k2.
    pub join_server: u64,
}

impl Keys {
    fn derive<C: Crypto + ?Sized>(
        c: &C,
        k1: &[u8; KEY_LEN],
        k2: &[u8; KEY_LEN],
        h: &[u8; KEY_LEN],
    ) -> Self {
        let join = |k: &[u8; KEY_LEN]| {
            let mut mac = hmac_sha256(c, k, JOIN_LABEL, h);
            let v = u64::from_be_bytes([
                mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
            ]);
            wipe(&mut mac);
            v
        };
        Self {
            handshake_hash: *h,
            confirm: c.aead_tag(k1, 0, &[]),
            stream_c2s: hmac_sha256(c, k1, STREAM_LABEL, h),
            stream_s2c: hmac_sha256(c, k2, STREAM_LABEL, h),
            join_client: join(k1),
            join_server: join(k2),
        }
    }

    /// Whether `tag` is the client's confirmation (constant time).
    pub fn confirm_matches<C: Crypto + ?Sized>(&self, c: &C, tag: &[u8; CONFIRM_LEN]) -> bool {
        c.ct_eq(&self.confirm, tag)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        wipe(&mut self.confirm);
        wipe(&mut self.stream_c2s);
        wipe(&mut self.stream_s2c);
        wipe_u64(&mut self.join_client);
        wipe_u64(&mut self.join_server);
    }
}

/// The prologue ([`PROLOGUE_LEN`]) from the MPTCP keys, as `u64` in host
/// order, and the two 4-byte options as sent.
pub fn prologue(
    client_key: u64,
    server_key: u64,
    client_offer: &[u8; 4],
    server_answer: &[u8; 4],
) -> [u8; PROLOGUE_LEN] {
    let mut p = [0u8; PROLOGUE_LEN];
    let (keys, offers) = p.split_at_mut(16);
    let (ck, sk) = keys.split_at_mut(8);
    ck.copy_from_slice(&client_key.to_be_bytes());
    sk.copy_from_slice(&server_key.to_be_bytes());
    let (co, sa) = offers.split_at_mut(4);
    co.copy_from_slice(client_offer);
    sa.copy_from_slice(server_answer);
    p
}

/// The client's side: made with its ephemeral private key, it gives
/// message 1 and takes message 2.
pub struct Initiator {
    sym: Symmetric,
    e: [u8; KEY_LEN],
}

impl Initiator {
    /// Start the handshake with ephemeral private key `e` (from a pool of
    /// keypairs made in process context) and its public key `e_pub`;
    /// returns the state and message 1.
    pub fn start<C: Crypto + ?Sized>(
        c: &C,
        prologue: &[u8; PROLOGUE_LEN],
        e: &[u8; KEY_LEN],
        e_pub: &[u8; KEY_LEN],
    ) -> (Self, [u8; MSG1_LEN]) {
        let mut sym = Symmetric::new(c, prologue);
        sym.mix_hash(c, e_pub);
        // No key yet: the empty payload only moves the hash on.
        let _ = sym.encrypt_empty(c);
        (Self { sym, e: *e }, *e_pub)
    }

    /// Take message 2; on success the keys, whose `confirm` the client
    /// sends next.
    pub fn finish<C: Crypto + ?Sized>(
        mut self,
        c: &C,
        msg2: &[u8; MSG2_LEN],
    ) -> Result<Keys, Error> {
        let (re, tag) = split_msg2(msg2);
        self.sym.mix_hash(c, &re);
        let mut dh = c.x25519(&self.e, &re).ok_or(Error::LowOrderPoint)?;
        self.sym.mix_key(c, &dh);
        wipe(&mut dh);
        let expect = self.sym.encrypt_empty(c).ok_or(Error::BadMessage2)?;
        if !c.ct_eq(&expect, &tag) {
            return Err(Error::BadMessage2);
        }
        Ok(self.sym.split(c))
    }
}

impl Drop for Initiator {
    fn drop(&mut self) {
        wipe(&mut self.e);
    }
}

fn split_msg2(msg2: &[u8; MSG2_LEN]) -> ([u8; KEY_LEN], [u8; TAG_LEN]) {
    let mut re = [0u8; KEY_LEN];
    let mut tag = [0u8; TAG_LEN];
    let (a, b) = msg2.split_at(KEY_LEN);
    re.copy_from_slice(a);
    tag.copy_from_slice(b);
    (re, tag)
}

/// The server's side, in one step: take message 1, give message 2 and
/// the keys.  The server then waits for the client's confirmation
/// ([`Keys::confirm_matches`]) before it delivers any byte.
pub fn respond<C: Crypto + ?Sized>(
    c: &C,
    prologue: &[u8; PROLOGUE_LEN],
    e: &[u8; KEY_LEN],
    e_pub: &[u8; KEY_LEN],
    msg1: &[u8; MSG1_LEN],
) -> Result<([u8; MSG2_LEN], Keys), Error> {
    let mut sym = Symmetric::new(c, prologue);
    sym.mix_hash(c, msg1);
    let _ = sym.encrypt_empty(c);
    sym.mix_hash(c, e_pub);
    let mut dh = c.x25519(e, msg1).ok_or(Error::LowOrderPoint)?;
    sym.mix_key(c, &dh);
    wipe(&mut dh);
    let tag = sym.encrypt_empty(c).ok_or(Error::BadMessage2)?;
    let mut msg2 = [0u8; MSG2_LEN];
    let (a, b) = msg2.split_at_mut(KEY_LEN);
    a.copy_from_slice(e_pub);
    b.copy_from_slice(&tag);
    Ok((msg2, sym.split(c)))
}

/// One direction's keystream: the byte at offset `o` of the application's
/// bytes in that direction (0 = the first byte after the preamble) is
/// XORed with byte `o mod 64` of ChaCha20 block `b = o / 64`, taken with
/// block counter `b mod 2^31` and the nonce 4 zero bytes || LE64(`b / 2^31`):
/// each 128 GiB of the stream has a nonce of its own, and the 32-bit block
/// counter never reaches its last value (where some implementations stop).  The transform of a
/// byte depends only on the key and its offset, so retransmissions and
/// reinjections reproduce their ciphertext.
pub struct Keystream<'a, C: Crypto + ?Sized> {
    c: &'a C,
    key: &'a [u8; KEY_LEN],
}

impl<'a, C: Crypto + ?Sized> Keystream<'a, C> {
    /// The keystream of `key`.
    pub fn new(c: &'a C, key: &'a [u8; KEY_LEN]) -> Self {
        Self { c, key }
    }

    /// XOR `data`, which starts at stream offset `offset`, with the
    /// keystream.  Encrypts and decrypts alike.
    pub fn apply(&self, mut offset: u64, mut data: &mut [u8]) {
        while !data.is_empty() {
            let block = offset / CHACHA_BLOCK_LEN as u64;
            let skip = (offset % CHACHA_BLOCK_LEN as u64) as usize;
            let mut nonce = [0u8; 12];
            if let Some(n) = nonce.get_mut(4..) {
                n.copy_from_slice(&(block >> SEGMENT_SHIFT).to_le_bytes());
            }
            let counter = (block & SEGMENT_MASK) as u32;
            if skip != 0 {
                // The rest of a block started earlier.
                let mut ks = [0u8; CHACHA_BLOCK_LEN];
                self.c.chacha20_xor(self.key, &nonce, counter, &mut ks);
                let n = data.len().min(CHACHA_BLOCK_LEN - skip);
                let (head, rest) = core::mem::take(&mut data).split_at_mut(n);
                for (d, k) in head.iter_mut().zip(ks.iter().skip(skip)) {
                    *d ^= k;
                }
                wipe(&mut ks);
                data = rest;
                offset += n as u64;
                continue;
            }
            // Whole blocks up to the end of this nonce's segment.
            let left_in_segment =
                ((1u64 << SEGMENT_SHIFT) - u64::from(counter)) * CHACHA_BLOCK_LEN as u64;
            let n = (data.len() as u64).min(left_in_segment) as usize;
            let (head, rest) = core::mem::take(&mut data).split_at_mut(n);
            self.c.chacha20_xor(self.key, &nonce, counter, head);
            data = rest;
            offset += n as u64;
        }
    }
}

/// One end of a hardened connection, from establishment on: the state
/// machine the module's hooks drive, with no kernel in it.
///
/// The client starts with [`Session::client`], which gives message 1 to
/// send; the server with [`Session::server`].  Every byte the peer sends,
/// in stream order and cut anyhow, goes through [`Session::rx`], which
/// consumes the peer's preamble (reporting how many leading bytes were
/// the kernel's), answers it, and decrypts the application's bytes in
/// place.  Once this end's keys exist, `rx` hands out the send side, a
/// [`Sender`], through which every application byte to send goes.  The
/// two sides share nothing, so the kernel may run them concurrently (the
/// send side under the msk socket lock, the receive side under its data
/// lock).
pub struct Session {
    phase: Phase,
    client: bool,
    /// The peer's preamble message being received.
    buf: [u8; MSG2_LEN],
    buf_len: usize,
    /// Application bytes received so far: the keystream offset.
    rx_off: u64,
    /// The client's and the server's MPTCP keys (the prologue's head),
    /// which name the connection in [`Session::keylog`].
    mptcp_keys: [u8; 16],
}

/// The send side of a session: this end's keystream and how far it went.
pub struct Sender {
    key: [u8; KEY_LEN],
    off: u64,
}

impl Sender {
    /// Encrypt the application's `data`, next in this end's stream.
    pub fn tx<C: Crypto + ?Sized>(&mut self, c: &C, data: &mut [u8]) {
        Keystream::new(c, &self.key).apply(self.off, data);
        self.off += data.len() as u64;
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        wipe(&mut self.key);
    }
}

enum Phase {
    /// The client sent message 1 and waits for message 2.
    ClientAwaitMsg2(Initiator),
    /// The server waits for message 1.
    ServerAwaitMsg1([u8; PROLOGUE_LEN]),
    /// The server sent message 2 (and may send data) and waits for the
    /// client's confirmation before it delivers anything.
    ServerAwaitConfirm(Keys),
    /// Keys confirmed both ways: the receive key, the MP_JOIN keys.
    Open(Keys),
    /// Broken: every later call fails.
    Failed,
}

/// Why a session cannot go on.  The kernel resets the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError {
    /// The handshake failed (see [`Error`]).
    Handshake(Error),
    /// No ephemeral keypair was ready when the server needed one.
    NoKeypair,
    /// The session had failed already.
    Failed,
}

/// What the kernel must do after [`Session::rx`].
pub struct RxOutcome {
    /// Leading bytes of the data given that were the peer's preamble:
    /// never delivered to the application.
    pub owned: usize,
    /// Preamble bytes this end must now send, ahead of any later
    /// application byte: the first `send_len` bytes of `send`.
    pub send: [u8; MSG2_LEN],
    /// How many bytes of `send` are meaningful (0: nothing to send).
    pub send_len: usize,
    /// The send side, once this end's keys exist: the application may
    /// send through it once `send` is queued.
    pub sender: Option<Sender>,
}

impl Default for RxOutcome {
    fn default() -> Self {
        Self {
            owned: 0,
            send: [0; MSG2_LEN],
            send_len: 0,
            sender: None,
        }
    }
}

/// An X25519 keypair: private key, public key.
pub type Keypair = ([u8; KEY_LEN], [u8; KEY_LEN]);

impl Session {
    /// The client's session, established with `prologue`, using the
    /// ephemeral `keypair`; and message 1, which it must send first.
    pub fn client<C: Crypto + ?Sized>(
        c: &C,
        prologue: &[u8; PROLOGUE_LEN],
        keypair: &Keypair,
    ) -> (Self, [u8; MSG1_LEN]) {
        let (init, msg1) = Initiator::start(c, prologue, &keypair.0, &keypair.1);
        (
            Self::new(Phase::ClientAwaitMsg2(init), true, prologue),
            msg1,
        )
    }

    /// The server's session, established with `prologue`.
    pub fn server(prologue: &[u8; PROLOGUE_LEN]) -> Self {
        Self::new(Phase::ServerAwaitMsg1(*prologue), false, prologue)
    }

    fn new(phase: Phase, client: bool, prologue: &[u8; PROLOGUE_LEN]) -> Self {
        let mut mptcp_keys = [0u8; 16];
        mptcp_keys.copy_from_slice(&prologue[..16]);
        Self {
            phase,
            client,
            buf: [0; MSG2_LEN],
            buf_len: 0,
            rx_off: 0,
            mptcp_keys,
        }
    }

    /// TEST ONLY (the `keylog` sysctl, like SSLKEYLOGFILE): what lets a
    /// capture be decrypted, once this end's keys exist: the client's and
    /// the server's MPTCP keys (8 bytes each, big-endian), the client to
    /// server keystream key, the server to client one.
    pub fn keylog(&self) -> Option<(&[u8; 16], &[u8; KEY_LEN], &[u8; KEY_LEN])> {
        match &self.phase {
            Phase::ServerAwaitConfirm(k) | Phase::Open(k) => {
                Some((&self.mptcp_keys, &k.stream_c2s, &k.stream_s2c))
            }
            _ => None,
        }
    }

    /// Whether the session failed.
    pub fn failed(&self) -> bool {
        matches!(self.phase, Phase::Failed)
    }

    /// Whether the peer is confirmed: it derived the same keys.
    pub fn open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// The MP_JOIN keys, this end's then the peer's, once they exist.
    pub fn join_keys(&self) -> Option<(u64, u64)> {
        match &self.phase {
            Phase::ServerAwaitConfirm(k) | Phase::Open(k) if self.client => {
                Some((k.join_client, k.join_server))
            }
            Phase::ServerAwaitConfirm(k) | Phase::Open(k) => Some((k.join_server, k.join_client)),
            _ => None,
        }
    }

    /// This end's send side from its keys.
    fn sender(&self, k: &Keys) -> Sender {
        Sender {
            key: if self.client {
                k.stream_c2s
            } else {
                k.stream_s2c
            },
            off: 0,
        }
    }

    /// Take `data`, the next bytes of the peer's stream: consume what is
    /// left of its preamble, then decrypt the rest in place.  `keypair`
    /// gives the server its ephemeral keypair when message 1 is complete.
    pub fn rx<C: Crypto + ?Sized>(
        &mut self,
        c: &C,
        data: &mut [u8],
        keypair: impl FnOnce() -> Option<Keypair>,
    ) -> Result<RxOutcome, SessionError> {
        let mut out = RxOutcome::default();
        let mut keypair = Some(keypair);
        let mut rest = data;
        loop {
            let want = match &self.phase {
                Phase::Failed => return Err(SessionError::Failed),
                Phase::Open(_) => break,
                Phase::ClientAwaitMsg2(_) => MSG2_LEN,
                Phase::ServerAwaitMsg1(_) => MSG1_LEN,
                Phase::ServerAwaitConfirm(_) => CONFIRM_LEN,
            };
            // Gather the message: it may come in pieces.
            let n = rest.len().min(want - self.buf_len);
            let (head, tail) = core::mem::take(&mut rest).split_at_mut(n);
            if let Some(dst) = self.buf.get_mut(self.buf_len..self.buf_len + n) {
                dst.copy_from_slice(head);
            }
            self.buf_len += n;
            out.owned += n;
            rest = tail;
            if self.buf_len < want {
                return Ok(out);
            }
            self.buf_len = 0;
            let phase = core::mem::replace(&mut self.phase, Phase::Failed);
            self.phase = match phase {
                Phase::ClientAwaitMsg2(init) => {
                    let keys = init.finish(c, &self.buf).map_err(SessionError::Handshake)?;
                    out.send[..CONFIRM_LEN].copy_from_slice(&keys.confirm);
                    out.send_len = CONFIRM_LEN;
                    out.sender = Some(self.sender(&keys));
                    Phase::Open(keys)
                }
                Phase::ServerAwaitMsg1(prologue) => {
                    let mut kp = keypair
                        .take()
                        .and_then(|f| f())
                        .ok_or(SessionError::NoKeypair)?;
                    let mut msg1 = [0u8; MSG1_LEN];
                    msg1.copy_from_slice(&self.buf[..MSG1_LEN]);
                    let r = respond(c, &prologue, &kp.0, &kp.1, &msg1);
                    wipe(&mut kp.0);
                    let (msg2, keys) = r.map_err(SessionError::Handshake)?;
                    out.send = msg2;
                    out.send_len = MSG2_LEN;
                    out.sender = Some(self.sender(&keys));
                    Phase::ServerAwaitConfirm(keys)
                }
                Phase::ServerAwaitConfirm(keys) => {
                    let mut tag = [0u8; CONFIRM_LEN];
                    tag.copy_from_slice(&self.buf[..CONFIRM_LEN]);
                    if !keys.confirm_matches(c, &tag) {
                        return Err(SessionError::Handshake(Error::BadConfirm));
                    }
                    Phase::Open(keys)
                }
                Phase::Open(_) | Phase::Failed => return Err(SessionError::Failed),
            };
            wipe(&mut self.buf);
        }
        if let Phase::Open(k) = &self.phase {
            let key = if self.client {
                &k.stream_s2c
            } else {
                &k.stream_c2s
            };
            Keystream::new(c, key).apply(self.rx_off, rest);
        }
        self.rx_off += rest.len() as u64;
        Ok(out)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        wipe(&mut self.buf);
    }
}

/// Known-answer values the module checks at load, for each primitive and
/// for this file's handshake, computed in userspace by independent code
/// (`crates/hardened`'s `hardened-vectors kat`, from `snow`, `x25519-dalek`,
/// `chacha20`): see `src/hardened_kat.rs`.
pub struct Kat {
    /// RFC 7748 section 5.2, the first X25519 test vector.
    pub x25519_scalar: [u8; KEY_LEN],
    pub x25519_point: [u8; KEY_LEN],
    pub x25519_out: [u8; KEY_LEN],
    /// RFC 8439 section 2.4.2: key, nonce, initial counter, and the
    /// first 64 bytes of the ciphertext of its "sunscreen" plaintext.
    pub chacha_key: [u8; KEY_LEN],
    pub chacha_nonce: [u8; 12],
    pub chacha_counter: u32,
    pub chacha_plain: [u8; 64],
    pub chacha_cipher: [u8; 64],
    /// A handshake between fixed ephemeral keys, its messages and keys.
    pub prologue: [u8; PROLOGUE_LEN],
    pub client_e: [u8; KEY_LEN],
    pub server_e: [u8; KEY_LEN],
    pub msg1: [u8; MSG1_LEN],
    pub msg2: [u8; MSG2_LEN],
    pub handshake_hash: [u8; KEY_LEN],
    pub confirm: [u8; CONFIRM_LEN],
    pub stream_c2s: [u8; KEY_LEN],
    pub join_client: u64,
    pub join_server: u64,
    /// Keystream of `stream_c2s` at offset `ks_offset`, 80 bytes
    /// (crossing a block boundary).
    pub ks_offset: u64,
    pub ks: [u8; 80],
}

/// Which known answer differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KatFailure {
    X25519,
    ChaCha20,
    Sha256,
    Message1,
    Message2,
    HandshakeHash,
    Confirm,
    StreamKey,
    JoinKeys,
    Keystream,
    Handshake(Error),
}

/// Check the primitives and the handshake against `kat`.
pub fn self_test<C: Crypto + ?Sized>(c: &C, kat: &Kat) -> Result<(), KatFailure> {
    if c.x25519(&kat.x25519_scalar, &kat.x25519_point) != Some(kat.x25519_out) {
        return Err(KatFailure::X25519);
    }
    let mut buf = kat.chacha_plain;
    c.chacha20_xor(
        &kat.chacha_key,
        &kat.chacha_nonce,
        kat.chacha_counter,
        &mut buf,
    );
    if buf != kat.chacha_cipher {
        return Err(KatFailure::ChaCha20);
    }
    // FIPS 180-4 example "abc", split to exercise the parts.
    const ABC: [u8; 32] = [
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22,
        0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
        0x15, 0xad,
    ];
    if c.sha256(&[&b"a"[..], &[], &b"bc"[..]]) != ABC {
        return Err(KatFailure::Sha256);
    }
    let client_pub = c
        .x25519(&kat.client_e, &BASE_POINT)
        .ok_or(KatFailure::X25519)?;
    let server_pub = c
        .x25519(&kat.server_e, &BASE_POINT)
        .ok_or(KatFailure::X25519)?;
    let (init, msg1) = Initiator::start(c, &kat.prologue, &kat.client_e, &client_pub);
    if msg1 != kat.msg1 {
        return Err(KatFailure::Message1);
    }
    let (msg2, server_keys) = respond(c, &kat.prologue, &kat.server_e, &server_pub, &msg1)
        .map_err(KatFailure::Handshake)?;
    if msg2 != kat.msg2 {
        return Err(KatFailure::Message2);
    }
    let keys = init.finish(c, &msg2).map_err(KatFailure::Handshake)?;
    if keys.handshake_hash != kat.handshake_hash || server_keys.handshake_hash != kat.handshake_hash
    {
        return Err(KatFailure::HandshakeHash);
    }
    if keys.confirm != kat.confirm || !server_keys.confirm_matches(c, &keys.confirm) {
        return Err(KatFailure::Confirm);
    }
    if keys.stream_c2s != kat.stream_c2s || server_keys.stream_c2s != kat.stream_c2s {
        return Err(KatFailure::StreamKey);
    }
    if (keys.join_client, keys.join_server) != (kat.join_client, kat.join_server) {
        return Err(KatFailure::JoinKeys);
    }
    let mut ks = [0u8; 80];
    Keystream::new(c, &keys.stream_c2s).apply(kat.ks_offset, &mut ks);
    if ks != kat.ks {
        return Err(KatFailure::Keystream);
    }
    Ok(())
}
