// SPDX-License-Identifier: GPL-2.0

//! The mptcp-scramble algorithm (docs/design.md, "The scrambler,
//! byte-exact"), free of the kernel and of `std`.
//!
//! The kernel module and the userspace crate `scramble-core` both compile
//! this very file, so what the tests, the fuzzer and the benchmarks check
//! in userspace is what runs in the kernel.  It has no dependencies, no
//! `unsafe`, no allocation and no floating point or SIMD, and no input can
//! make it panic.
//!
//! Each direction of a connection has a [`State`]: a 64-byte ring of the
//! last plaintext bytes, the index of the newest one and the XOR of all of
//! them.  Every output byte is its plaintext byte XORed with the XOR of
//! the 64 plaintext bytes before it, the seed standing in for the bytes
//! before the first.  So the result does not depend on how the stream is
//! cut into chunks, and [`State::scramble`] and [`State::scramble_ref`]
//! (or the `descramble` pair) can take turns on one stream.

/// Length of the ring: how many preceding plaintext bytes each byte is
/// mixed with.
pub const RING_LEN: usize = 64;

/// The HMAC message the seed is derived with (docs/design.md, "Seed").
pub const SEED_LABEL: &[u8; 17] = b"mptcp-scramble v1";

/// Length of a SHA-256 digest, and so of the seed.
pub const SEED_LEN: usize = 32;

/// Below this many bytes the word-at-a-time path costs more than it saves.
const FAST_MIN_LEN: usize = 32;

/// `0x0101_0101_0101_0101`: multiplying a byte by it copies it to all eight
/// byte lanes of a word.
const LANES: u64 = u64::MAX / 0xff;

/// The scrambler state of one direction of one connection.
///
/// The layout is that of `struct mptcp_scramble_dir` in
/// `include/net/mptcp_scramble.h`, so the kernel module can use the state
/// that lives in `struct mptcp_sock` directly.
///
/// # Invariants
///
/// `x` is the XOR of the 64 bytes of `ring`.  `idx` is only ever read
/// modulo 64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    ring: [u8; RING_LEN],
    idx: u8,
    x: u8,
}

impl State {
    /// The state a direction starts in: the 32 seed bytes, then 32 zero
    /// bytes ("higher bytes set to zero"), the newest at index 63.
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut ring = [0u8; RING_LEN];
        let mut x = 0;
        for (slot, &b) in ring.iter_mut().zip(seed.iter()) {
            *slot = b;
            x ^= b;
        }
        // INVARIANT: `x` is the XOR of `ring`: the seed's bytes, then zeros.
        State {
            ring,
            idx: (RING_LEN - 1) as u8,
            x,
        }
    }

    /// The ring, oldest byte first: the last 64 plaintext bytes.
    pub fn history(&self) -> [u8; RING_LEN] {
        let mut out = [0u8; RING_LEN];
        let start = self.next_slot();
        for (k, b) in out.iter_mut().enumerate() {
            *b = self.ring[(start + k) % RING_LEN];
        }
        out
    }

    /// The XOR of the ring: what the next plaintext byte is XORed with.
    pub fn mask(&self) -> u8 {
        self.x
    }

    /// The ring slot the next byte goes to.
    fn next_slot(&self) -> usize {
        (usize::from(self.idx) + 1) % RING_LEN
    }

    /// Records plaintext byte `b` and returns the mask it was XORed with.
    #[inline(always)]
    fn step(&mut self, b: u8) -> u8 {
        let mask = self.x;
        let slot = self.next_slot();
        self.idx = slot as u8;
        // INVARIANT: the oldest byte leaves the XOR and `b` joins it.
        self.x ^= self.ring[slot] ^ b;
        self.ring[slot] = b;
        mask
    }

    /// Scrambles `buf` in place, one byte at a time, exactly as
    /// docs/design.md ("Scramble and descramble") and the paper's Figure 7
    /// state it.
    pub fn scramble_ref(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            *b ^= self.step(*b);
        }
    }

    /// Descrambles `buf` in place, one byte at a time (the paper's
    /// Figure 8).
    pub fn descramble_ref(&mut self, buf: &mut [u8]) {
        for c in buf.iter_mut() {
            let plain = *c ^ self.x;
            self.step(plain);
            *c = plain;
        }
    }

    /// Descrambles `src` into `dst`, one byte at a time, up to the end of
    /// the shorter.
    fn descramble_ref_into(&mut self, src: &[u8], dst: &mut [u8]) {
        for (&c, out) in src.iter().zip(dst.iter_mut()) {
            let plain = c ^ self.x;
            self.step(plain);
            *out = plain;
        }
    }

    /// Bytes to process one at a time before the next slot is 8-aligned.
    fn unaligned_head(&self, len: usize) -> usize {
        ((8 - self.next_slot() % 8) % 8).min(len)
    }

    /// Scrambles `buf` in place, eight bytes at a time.
    ///
    /// With `d[j] = p[i+j] ^ p[i+j-64]`, the mask of byte `i+j` is the mask
    /// `x` of byte `i` XORed with `d[0] ^ .. ^ d[j-1]`.  With `s` the
    /// inclusive prefix XOR of `d` across the word's bytes (three shifts),
    /// the scrambled byte `p[i+j] ^ x ^ s[j] ^ d[j]` is therefore
    /// `p[i+j-64] ^ x ^ s[j]`.  The only dependency from one word to the
    /// next is `x`, one XOR.  Whole rings of eight words go through a
    /// local copy of the ring, which the compiler keeps in registers.
    pub fn scramble(&mut self, buf: &mut [u8]) {
        let Some((rest, first)) = self.fast_start(buf, Self::scramble_ref) else {
            return;
        };

        // `ring[k]` is the ring word in slot `first + k`: oldest first now,
        // and again after each whole ring of words.
        let mut ring = self.ring_words(first);
        let mut x = u64::from(self.x);
        let (done, tail) = for_each_word(rest, &mut ring, |chunk, old| {
            x = scramble_word(chunk, old, x);
        });
        self.set_ring_words(first, &ring);
        // INVARIANT: `x` tracked the XOR of the ring word by word.
        self.x = x as u8;
        self.set_next_slot((first + done) * 8);

        self.scramble_ref(tail);
    }

    /// Descrambles `buf` in place, eight bytes at a time.
    ///
    /// With `A[t]` the XOR of the plaintext from the oldest ring byte up to
    /// byte `t`, a scrambled byte is `c[i] = A[i] ^ A[i-65]`, so
    /// `A[i] = c[i] ^ A[i-65]` needs no byte of the same word, and the
    /// plaintext is `p[i] = A[i] ^ A[i-1]`.  A local array keeps, word by
    /// word, `A[t-1]` for each of the last 64 bytes `t`: what both formulas
    /// need.  The ring is rebuilt from it at the end.
    pub fn descramble(&mut self, buf: &mut [u8]) {
        let Some((rest, first)) = self.fast_start(buf, Self::descramble_ref) else {
            return;
        };
        let (mut before, mut a_top) = self.descramble_start(first);
        let (done, tail) = for_each_word(rest, &mut before, |chunk, word| {
            let (plain, top) = descramble_word(load(chunk), word, a_top);
            store(chunk, plain);
            a_top = top;
        });
        self.descramble_finish(first, done, &before, a_top);
        self.descramble_ref(tail);
    }

    /// Descrambles `src` into `dst` in one pass, eight bytes at a time, up
    /// to the end of the shorter: what [`State::descramble`] would make of
    /// a copy of `src`, without writing `src` or reading `dst`.  The rx
    /// path copies received data to fresh pages this way
    /// (docs/design.md, "Made private as it is descrambled").
    pub fn descramble_into(&mut self, src: &[u8], dst: &mut [u8]) {
        let len = src.len().min(dst.len());
        let (src, dst) = (&src[..len], &mut dst[..len]);
        if len < FAST_MIN_LEN {
            self.descramble_ref_into(src, dst);
            return;
        }
        let head = self.unaligned_head(len);
        let ((src_head, src), (dst_head, dst)) = (src.split_at(head), dst.split_at_mut(head));
        self.descramble_ref_into(src_head, dst_head);
        let first = self.next_slot() / 8;

        let (mut before, mut a_top) = self.descramble_start(first);
        let (done, src_tail, dst_tail) =
            for_each_word_into(src, dst, &mut before, |chunk, out, word| {
                let (plain, top) = descramble_word(load(chunk), word, a_top);
                store(out, plain);
                a_top = top;
            });
        self.descramble_finish(first, done, &before, a_top);
        self.descramble_ref_into(src_tail, dst_tail);
    }

    /// The fast descrambler's start: for each ring word from word slot
    /// `first` on, oldest first, the `A` of the bytes one back (see
    /// [`State::descramble`]), and the `A` of the newest ring byte.
    #[inline(always)]
    fn descramble_start(&self, first: usize) -> ([u64; 8], u64) {
        let mut before = self.ring_words(first);
        // `A` of the byte before the oldest one is 0 by definition of `A`;
        // from then on, `a_top` is `A` of the newest byte.
        let mut a_top = 0u64;
        for word in before.iter_mut() {
            let a = prefix_xor(*word) ^ a_top.wrapping_mul(LANES);
            *word = (a << 8) | a_top;
            a_top = a >> 56;
        }
        (before, a_top)
    }

    /// The fast descrambler's end: the ring rebuilt from `before` after
    /// `done` words of a last, partial ring of words, and `a_top`.
    #[inline(always)]
    fn descramble_finish(&mut self, first: usize, done: usize, before: &[u64; 8], a_top: u64) {
        // Back to plaintext: `A` of a word is its `before` shifted down one
        // byte, topped with the low byte of the next word's `before`.
        let mut ring = [0u64; 8];
        for k in 0..8 {
            let slot = (done + k) % 8;
            let newer_top = if k == 7 {
                a_top
            } else {
                before[(slot + 1) % 8] & 0xff
            };
            let a = (before[slot] >> 8) | (newer_top << 56);
            ring[slot] = a ^ before[slot];
        }
        self.set_ring_words(first, &ring);
        // INVARIANT: the XOR of the last 64 plaintext bytes is `A` of the
        // newest byte XOR `A` of the byte before the oldest.
        self.x = (a_top ^ before[done % 8]) as u8;
        self.set_next_slot((first + done) * 8);
    }

    /// The start of both fast paths: a buffer too short for them goes
    /// through `slow` whole (`None`); otherwise `slow` takes the bytes up to
    /// the ring's next word boundary, and the rest comes back with the word
    /// slot it starts at.
    #[inline(always)]
    fn fast_start<'a>(
        &mut self,
        buf: &'a mut [u8],
        slow: fn(&mut Self, &mut [u8]),
    ) -> Option<(&'a mut [u8], usize)> {
        if buf.len() < FAST_MIN_LEN {
            slow(self, buf);
            return None;
        }
        let (head, rest) = buf.split_at_mut(self.unaligned_head(buf.len()));
        slow(self, head);
        Some((rest, self.next_slot() / 8))
    }

    /// The ring as eight words, starting with the one in word slot `first`.
    fn ring_words(&self, first: usize) -> [u64; 8] {
        let mut words = [0u64; 8];
        for (k, word) in words.iter_mut().enumerate() {
            *word = self.ring_word(first + k);
        }
        words
    }

    /// Stores eight words into the ring, the first into word slot `first`.
    fn set_ring_words(&mut self, first: usize, words: &[u64; 8]) {
        for (k, &word) in words.iter().enumerate() {
            self.set_ring_word(first + k, word);
        }
    }

    /// Makes ring byte `slot` (taken modulo 64) the next one to be written.
    fn set_next_slot(&mut self, slot: usize) {
        self.idx = ((slot + RING_LEN - 1) % RING_LEN) as u8;
    }

    fn ring_word(&self, slot: usize) -> u64 {
        let start = (slot % 8) * 8;
        load(&self.ring[start..start + 8])
    }

    fn set_ring_word(&mut self, slot: usize, w: u64) {
        let start = (slot % 8) * 8;
        store(&mut self.ring[start..start + 8], w);
    }
}

/// Byte `j` of the result is the XOR of bytes `0..=j` of `w` (byte 0 is the
/// least significant).
#[inline(always)]
fn prefix_xor(mut w: u64) -> u64 {
    w ^= w << 8;
    w ^= w << 16;
    w ^= w << 32;
    w
}

/// Scrambles the word in `chunk` whose mask is `x`, given `old`, the
/// plaintext word 64 bytes before it, which it replaces; returns the mask
/// of the byte after the word.
/// Calls `step` on each whole 8-byte word of `buf` with the word of `ring`
/// of the same position in its ring of eight words, in order: whole rings
/// of words first, then the remaining words.  Returns how many words the
/// last, partial ring had and the bytes after the last whole word.
#[inline(always)]
fn for_each_word<'a>(
    buf: &'a mut [u8],
    ring: &mut [u64; 8],
    mut step: impl FnMut(&mut [u8], &mut u64),
) -> (usize, &'a mut [u8]) {
    let mut rings = buf.chunks_exact_mut(RING_LEN);
    for block in &mut rings {
        for (chunk, word) in block.as_chunks_mut::<8>().0.iter_mut().zip(ring.iter_mut()) {
            step(chunk, word);
        }
    }
    // A copy for the variable number of remaining words, so that the loop
    // above indexes `ring` by constants only and keeps it in registers.
    let (words, rest) = rings.into_remainder().as_chunks_mut::<8>();
    let mut tail_ring = *ring;
    let mut done = 0;
    for (chunk, word) in words.iter_mut().zip(tail_ring.iter_mut()) {
        step(chunk, word);
        done += 1;
    }
    *ring = tail_ring;
    (done, rest)
}

/// [`for_each_word`] for a source and a destination of the same length:
/// `step` gets each word of `src`, the word of `dst` at the same place and
/// the ring word.  Returns how many words the last, partial ring had and
/// the bytes of both after the last whole word.
#[inline(always)]
fn for_each_word_into<'a, 'b>(
    src: &'a [u8],
    dst: &'b mut [u8],
    ring: &mut [u64; 8],
    mut step: impl FnMut(&[u8], &mut [u8], &mut u64),
) -> (usize, &'a [u8], &'b mut [u8]) {
    let (mut rings, mut rings_out) = (src.chunks_exact(RING_LEN), dst.chunks_exact_mut(RING_LEN));
    for (block, block_out) in (&mut rings).zip(&mut rings_out) {
        let words = block.as_chunks::<8>().0.iter();
        let words_out = block_out.as_chunks_mut::<8>().0.iter_mut();
        for ((chunk, out), word) in words.zip(words_out).zip(ring.iter_mut()) {
            step(chunk, out, word);
        }
    }
    // As in `for_each_word`: a copy for the remaining words.
    let (words, rest) = rings.remainder().as_chunks::<8>();
    let (words_out, rest_out) = rings_out.into_remainder().as_chunks_mut::<8>();
    let mut tail_ring = *ring;
    let mut done = 0;
    for ((chunk, out), word) in words
        .iter()
        .zip(words_out.iter_mut())
        .zip(tail_ring.iter_mut())
    {
        step(chunk, out, word);
        done += 1;
    }
    *ring = tail_ring;
    (done, rest, rest_out)
}

#[inline(always)]
fn scramble_word(chunk: &mut [u8], old: &mut u64, x: u64) -> u64 {
    let w = load(chunk);
    let s = prefix_xor(w ^ *old);
    store(chunk, *old ^ s ^ x.wrapping_mul(LANES));
    *old = w;
    x ^ (s >> 56)
}

/// Descrambles the word `c`, given in `before` the `A` of the bytes 65
/// back, which it replaces with the `A` of the bytes 1 back, and `a_top`,
/// the `A` of the byte before the word; returns the plaintext word and the
/// `A` of the word's last byte.
#[inline(always)]
fn descramble_word(c: u64, before: &mut u64, a_top: u64) -> (u64, u64) {
    let a = c ^ *before;
    // `(a << 8) | a_top` and `a >> 56` from one rotation: written as two
    // shifts, the compiler fuses them across words into x86 funnel shifts
    // (`shrd`), which are slow on recent AMD cores.
    let rotated = a.rotate_left(8);
    let shifted = (rotated & !0xff) | a_top;
    *before = shifted;
    (a ^ shifted, rotated & 0xff)
}

// `load` and `store` avoid `copy_from_slice`, which the kernel's `core`
// does not inline: one call per word would cost more than the word's work.
// Callers always pass 8 bytes or more; the `None` arms are never taken.

#[inline(always)]
fn load(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(w) => u64::from_le_bytes(*w),
        None => 0,
    }
}

#[inline(always)]
fn store(bytes: &mut [u8], w: u64) {
    if let Some(out) = bytes.first_chunk_mut::<8>() {
        *out = w.to_le_bytes();
    }
}

/// The seed of the direction whose sender has MPTCP key `sender_key` and
/// whose receiver has `receiver_key`:
/// `HMAC-SHA256(BE64(sender_key) || BE64(receiver_key), SEED_LABEL)`, RFC
/// 2104 on top of the given SHA-256.  The kernel module passes the
/// kernel's `sha256()`; userspace tests check this against the `hmac`
/// crate.
pub fn seed_with(
    mut sha256: impl FnMut(&[u8]) -> [u8; SEED_LEN],
    sender_key: u64,
    receiver_key: u64,
) -> [u8; SEED_LEN] {
    const BLOCK: usize = 64;
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&sender_key.to_be_bytes());
    key[8..].copy_from_slice(&receiver_key.to_be_bytes());

    let mut input = [0u8; BLOCK + SEED_LEN];
    let pad = |input: &mut [u8; BLOCK + SEED_LEN], fill: u8| {
        input[..BLOCK].fill(fill);
        for (i, k) in input.iter_mut().zip(key.iter()) {
            *i ^= k;
        }
    };

    pad(&mut input, 0x36);
    input[BLOCK..BLOCK + SEED_LABEL.len()].copy_from_slice(SEED_LABEL);
    let inner = sha256(&input[..BLOCK + SEED_LABEL.len()]);

    pad(&mut input, 0x5c);
    input[BLOCK..].copy_from_slice(&inner);
    sha256(&input)
}
