//! Helpers shared by the integration tests: the test vectors, the
//! two independent seed derivations, chunkings and a plain model of the
//! algorithm.

#![allow(dead_code)] // Each test binary uses its own subset.

use hmac::{Hmac, Mac};
use scramble_core::{seed_with, State, RING_LEN, SEED_LEN};
use sha2::{Digest, Sha256};

/// `tests/vectors/scramble-vectors.json`, made with Python's `hmac`
/// independently of the Rust code (see `tests/vectors/README.md`).
pub const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/scramble-vectors.json"
);

/// One case of the test vectors, decoded.
pub struct Vector {
    pub name: String,
    pub sender_key: u64,
    pub receiver_key: u64,
    pub seed: [u8; SEED_LEN],
    pub plaintext: Vec<u8>,
    pub scrambled: Vec<u8>,
}

/// The vector file: its HMAC label and its cases.
pub struct Vectors {
    pub label: String,
    pub cases: Vec<Vector>,
}

pub fn load_vectors() -> Vectors {
    let text = std::fs::read_to_string(VECTORS_PATH)
        .unwrap_or_else(|e| panic!("cannot read {VECTORS_PATH}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).expect("vector file is JSON");
    let field = |case: &serde_json::Value, key: &str| -> String {
        case[key]
            .as_str()
            .unwrap_or_else(|| panic!("vector field {key:?} is missing or not a string"))
            .to_owned()
    };
    let key = |case: &serde_json::Value, name: &str| -> u64 {
        u64::from_str_radix(&field(case, name), 16).expect("key is 16 hex digits")
    };
    let cases: Vec<Vector> = json["cases"]
        .as_array()
        .expect("vector file has a list of cases")
        .iter()
        .map(|case| Vector {
            name: field(case, "name"),
            sender_key: key(case, "sender_key"),
            receiver_key: key(case, "receiver_key"),
            seed: hex::decode(field(case, "seed_hmac"))
                .expect("seed is hex")
                .try_into()
                .expect("seed is 32 bytes"),
            plaintext: hex::decode(field(case, "plaintext")).expect("plaintext is hex"),
            scrambled: hex::decode(field(case, "scrambled")).expect("scrambled is hex"),
        })
        .collect();
    assert!(!cases.is_empty(), "the vector file has no cases");
    Vectors {
        label: field(&json, "label"),
        cases,
    }
}

pub fn sha256(data: &[u8]) -> [u8; SEED_LEN] {
    Sha256::digest(data).into()
}

/// The seed through the crate's own HMAC on top of `sha2`.
pub fn seed_via_seed_with(sender_key: u64, receiver_key: u64) -> [u8; SEED_LEN] {
    seed_with(sha256, sender_key, receiver_key)
}

/// The seed through the `hmac` crate, independent of `seed_with`.
pub fn seed_via_hmac_crate(sender_key: u64, receiver_key: u64) -> [u8; SEED_LEN] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&sender_key.to_be_bytes());
    key[8..].copy_from_slice(&receiver_key.to_be_bytes());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(scramble_core::SEED_LABEL);
    mac.finalize().into_bytes().into()
}

/// Which implementation processes a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Fast,
    Ref,
    /// Descrambling from a copy of the chunk into the chunk
    /// (`State::descramble_into`, the rx path's one pass); scrambling as
    /// `Fast`.
    Into,
}

impl Path {
    pub const BOTH: [Path; 2] = [Path::Fast, Path::Ref];

    pub fn scramble(self, state: &mut State, buf: &mut [u8]) {
        match self {
            Path::Fast | Path::Into => state.scramble(buf),
            Path::Ref => state.scramble_ref(buf),
        }
    }

    pub fn descramble(self, state: &mut State, buf: &mut [u8]) {
        match self {
            Path::Fast => state.descramble(buf),
            Path::Ref => state.descramble_ref(buf),
            Path::Into => {
                let src = buf.to_vec();
                state.descramble_into(&src, buf);
            }
        }
    }
}

/// Cuts `buf` into consecutive chunks whose lengths cycle through `sizes`
/// (zero-length chunks included), the last one cut short; calls `f` with
/// the index of each chunk.  `sizes` must hold a non-zero size.
pub fn for_each_chunk(buf: &mut [u8], sizes: &[usize], mut f: impl FnMut(usize, &mut [u8])) {
    assert!(sizes.iter().any(|&s| s > 0), "chunk sizes are all zero");
    let mut rest = buf;
    let mut index = 0;
    loop {
        let len = sizes[index % sizes.len()].min(rest.len());
        let (chunk, tail) = rest.split_at_mut(len);
        f(index, chunk);
        rest = tail;
        index += 1;
        if rest.is_empty() {
            break;
        }
    }
}

/// The algorithm written from docs/design.md with no ring at all: every
/// output byte is its plaintext byte XORed with the XOR of the 64 bytes
/// before it in `seed || zeros || plaintext`.
pub fn model_scramble(seed: &[u8; SEED_LEN], plaintext: &[u8]) -> Vec<u8> {
    let mut stream = seed.to_vec();
    stream.resize(RING_LEN, 0);
    stream.extend_from_slice(plaintext);
    (0..plaintext.len())
        .map(|i| {
            let before = &stream[i..i + RING_LEN];
            plaintext[i] ^ before.iter().fold(0, |acc, b| acc ^ b)
        })
        .collect()
}

/// What `State::history` must hold after `plaintext` went through a state
/// made from `seed`: the last 64 bytes of `seed || zeros || plaintext`.
pub fn model_history(seed: &[u8; SEED_LEN], plaintext: &[u8]) -> [u8; RING_LEN] {
    let mut stream = seed.to_vec();
    stream.resize(RING_LEN, 0);
    stream.extend_from_slice(plaintext);
    stream[stream.len() - RING_LEN..].try_into().unwrap()
}

/// Deterministic pseudo-random bytes (xorshift64*), for inputs too large
/// for proptest to generate quickly.
pub fn pseudo_random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}
