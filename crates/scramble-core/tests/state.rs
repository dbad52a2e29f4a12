//! The state's observable semantics: the seeded ring, `history` and `mask`.

mod common;

use common::{model_history, pseudo_random_bytes, Path};
use scramble_core::{State, RING_LEN, SEED_LEN};

fn xor_all(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

#[test]
fn fresh_state_holds_seed_then_zeros() {
    let seed: [u8; SEED_LEN] = core::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
    let state = State::from_seed(&seed);
    let history = state.history();
    assert_eq!(&history[..SEED_LEN], &seed);
    assert_eq!(&history[SEED_LEN..], &[0u8; RING_LEN - SEED_LEN]);
    assert_eq!(state.mask(), xor_all(&seed));
}

#[test]
fn history_and_mask_follow_every_prefix_length() {
    let seed: [u8; SEED_LEN] = core::array::from_fn(|i| i as u8 + 1);
    let data = pseudo_random_bytes(3 * RING_LEN + 5, 7);
    for path in Path::BOTH {
        for len in 0..=data.len() {
            let mut state = State::from_seed(&seed);
            path.scramble(&mut state, &mut data[..len].to_vec());
            let want = model_history(&seed, &data[..len]);
            assert_eq!(state.history(), want, "{path:?} path after {len} bytes");
            assert_eq!(
                state.mask(),
                xor_all(&want),
                "{path:?} path after {len} bytes"
            );
        }
    }
}

#[test]
fn next_output_byte_is_plaintext_xor_mask() {
    let seed = [0x5a; SEED_LEN];
    let mut state = State::from_seed(&seed);
    for (i, b) in pseudo_random_bytes(500, 3).into_iter().enumerate() {
        let mask = state.mask();
        let mut one = [b];
        state.scramble(&mut one);
        assert_eq!(one[0], b ^ mask, "byte {i}");
    }
}
