//! Every case of `tests/vectors/scramble-vectors.json` (made independently
//! of the project's code, see `tests/vectors/README.md`) through both seed
//! derivations and both implementations, whole and in uneven chunks.

mod common;

use common::{
    for_each_chunk, load_vectors, model_history, model_scramble, seed_via_hmac_crate,
    seed_via_seed_with, Path,
};
use scramble_core::{State, SEED_LABEL};

/// Chunkings that cut the vectors unevenly: zero-length chunks, single
/// bytes, chunks just under, at and over the ring's length and the fast
/// path's threshold, and ones that leave the ring index unaligned.
const CHUNKINGS: &[&[usize]] = &[
    &[1],
    &[0, 1],
    &[3],
    &[7, 0, 13],
    &[31, 32, 33],
    &[63],
    &[64],
    &[65],
    &[5, 64, 1, 100],
    &[100, 0, 37],
    &[129, 2],
    &[1000],
];

#[test]
fn vector_label_is_seed_label() {
    assert_eq!(load_vectors().label.as_bytes(), SEED_LABEL);
}

#[test]
fn seed_with_over_sha2_reproduces_every_vector_seed() {
    for v in load_vectors().cases {
        let seed = seed_via_seed_with(v.sender_key, v.receiver_key);
        assert_eq!(hex::encode(seed), hex::encode(v.seed), "vector {}", v.name);
    }
}

#[test]
fn hmac_crate_reproduces_every_vector_seed() {
    for v in load_vectors().cases {
        let seed = seed_via_hmac_crate(v.sender_key, v.receiver_key);
        assert_eq!(hex::encode(seed), hex::encode(v.seed), "vector {}", v.name);
    }
}

#[test]
fn model_reproduces_every_vector() {
    for v in load_vectors().cases {
        assert_eq!(
            hex::encode(model_scramble(&v.seed, &v.plaintext)),
            hex::encode(&v.scrambled),
            "vector {}",
            v.name
        );
    }
}

#[test]
fn scramble_whole_matches_every_vector() {
    for v in load_vectors().cases {
        for path in Path::BOTH {
            let mut state = State::from_seed(&v.seed);
            let mut buf = v.plaintext.clone();
            path.scramble(&mut state, &mut buf);
            assert_eq!(
                hex::encode(&buf),
                hex::encode(&v.scrambled),
                "vector {}, {path:?} path",
                v.name
            );
            assert_eq!(
                state.history(),
                model_history(&v.seed, &v.plaintext),
                "vector {}, {path:?} path: ring history",
                v.name
            );
        }
    }
}

#[test]
fn descramble_whole_matches_every_vector() {
    for v in load_vectors().cases {
        for path in Path::BOTH {
            let mut state = State::from_seed(&v.seed);
            let mut buf = v.scrambled.clone();
            path.descramble(&mut state, &mut buf);
            assert_eq!(
                hex::encode(&buf),
                hex::encode(&v.plaintext),
                "vector {}, {path:?} path",
                v.name
            );
            assert_eq!(
                state.history(),
                model_history(&v.seed, &v.plaintext),
                "vector {}, {path:?} path: ring history",
                v.name
            );
        }
    }
}

/// Which path processes the chunk of a given index.
type PathPlan = fn(usize) -> Path;

/// Each chunking with each path alone, and with the paths taking turns on
/// one stream, both ways round.
fn path_plans() -> [(&'static str, PathPlan); 4] {
    [
        ("fast", |_| Path::Fast),
        ("ref", |_| Path::Ref),
        ("fast then ref alternating", |i| Path::BOTH[i % 2]),
        ("ref then fast alternating", |i| Path::BOTH[(i + 1) % 2]),
    ]
}

#[test]
fn scramble_in_uneven_chunks_matches_every_vector() {
    for v in load_vectors().cases {
        for sizes in CHUNKINGS {
            for (plan, path_of) in path_plans() {
                let mut state = State::from_seed(&v.seed);
                let mut whole = State::from_seed(&v.seed);
                whole.scramble_ref(&mut v.plaintext.clone());
                let mut buf = v.plaintext.clone();
                for_each_chunk(&mut buf, sizes, |i, chunk| {
                    path_of(i).scramble(&mut state, chunk)
                });
                assert_eq!(
                    hex::encode(&buf),
                    hex::encode(&v.scrambled),
                    "vector {}, chunks {sizes:?}, {plan}",
                    v.name
                );
                assert_eq!(
                    state, whole,
                    "vector {}, chunks {sizes:?}, {plan}: state",
                    v.name
                );
            }
        }
    }
}

#[test]
fn descramble_in_uneven_chunks_matches_every_vector() {
    for v in load_vectors().cases {
        for sizes in CHUNKINGS {
            for (plan, path_of) in path_plans() {
                let mut state = State::from_seed(&v.seed);
                let mut whole = State::from_seed(&v.seed);
                whole.scramble_ref(&mut v.plaintext.clone());
                let mut buf = v.scrambled.clone();
                for_each_chunk(&mut buf, sizes, |i, chunk| {
                    path_of(i).descramble(&mut state, chunk)
                });
                assert_eq!(
                    hex::encode(&buf),
                    hex::encode(&v.plaintext),
                    "vector {}, chunks {sizes:?}, {plan}",
                    v.name
                );
                assert_eq!(
                    state, whole,
                    "vector {}, chunks {sizes:?}, {plan}: state",
                    v.name
                );
            }
        }
    }
}
