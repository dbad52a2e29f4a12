//! The fast path against the byte-at-a-time reference: the fuzzer picks
//! the seed, the data, how the stream is cut into chunks and which path
//! handles each chunk; output and state must match the reference after
//! every chunk, scrambling and descrambling, and descrambling the
//! scrambled stream must give the data back.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use scramble_core::State;

#[derive(Arbitrary, Debug)]
struct Input {
    seed: [u8; 32],
    /// Chunk lengths (taken modulo 600, zero included), used in turn.
    cuts: Vec<u16>,
    /// Per chunk, in turn: whether the fast path handles it.
    fast: Vec<bool>,
    data: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Direction {
    Scramble,
    Descramble,
}

/// The chunks `cuts` makes of `len` bytes: its lengths in turn, zero
/// included, the last one cut short.
fn chunk_lens(cuts: &[u16], len: usize) -> Vec<usize> {
    let cuts: Vec<usize> = cuts.iter().map(|&cut| usize::from(cut % 600)).collect();
    if cuts.iter().all(|&cut| cut == 0) {
        return vec![0, len];
    }
    let mut lens = Vec::new();
    let mut left = len;
    for &cut in cuts.iter().cycle() {
        if left == 0 {
            break;
        }
        lens.push(cut.min(left));
        left -= cut.min(left);
    }
    lens
}

/// Runs `data` through `direction` twice in the same chunks, with the
/// reference path and with the paths `input.fast` picks, checking output
/// and state after every chunk; returns the output.
fn check(input: &Input, direction: Direction, data: &[u8]) -> Vec<u8> {
    let mut reference = State::from_seed(&input.seed);
    let mut tested = reference;
    let mut want = data.to_vec();
    let mut got = data.to_vec();
    let mut offset = 0;
    for (chunk, len) in chunk_lens(&input.cuts, data.len()).into_iter().enumerate() {
        let fast = input.fast.is_empty() || input.fast[chunk % input.fast.len()];
        let range = offset..offset + len;
        let (want, got) = (&mut want[range.clone()], &mut got[range.clone()]);
        match (direction, fast) {
            (Direction::Scramble, true) => tested.scramble(got),
            (Direction::Scramble, false) => tested.scramble_ref(got),
            (Direction::Descramble, true) => tested.descramble(got),
            (Direction::Descramble, false) => tested.descramble_ref(got),
        }
        match direction {
            Direction::Scramble => reference.scramble_ref(want),
            Direction::Descramble => reference.descramble_ref(want),
        }
        assert_eq!(
            got, want,
            "output of chunk {chunk} ({range:?}, fast {fast})"
        );
        assert_eq!(
            tested, reference,
            "state after chunk {chunk} ({range:?}, fast {fast})"
        );
        offset += len;
    }
    got
}

fuzz_target!(|input: Input| {
    let scrambled = check(&input, Direction::Scramble, &input.data);
    let descrambled = check(&input, Direction::Descramble, &scrambled);
    assert_eq!(
        descrambled, input.data,
        "descramble(scramble(data)) != data"
    );
});
