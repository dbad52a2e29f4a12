//! The fast path against the byte-at-a-time reference, on random keys,
//! seeds, data and chunkings: same output and same state after every
//! chunk, for scrambling and descrambling.

mod common;

use common::{for_each_chunk, model_scramble, pseudo_random_bytes, seed_via_seed_with, Path};
use proptest::prelude::*;
use scramble_core::{State, RING_LEN, SEED_LEN};

/// Chunk sizes that stress the edges: empty and single-byte chunks, the
/// fast path's threshold, the word size and the ring's length, plus
/// anything up to a few rings.
fn chunk_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        0..10usize,
        30..35usize,
        (RING_LEN - 2)..(RING_LEN + 3),
        0..(4 * RING_LEN),
    ]
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(chunk_size(), 1..24).prop_map(|mut sizes| {
        if sizes.iter().all(|&s| s == 0) {
            sizes.push(1);
        }
        sizes
    })
}

/// A seed either straight from random bytes or derived from random keys.
fn seed() -> impl Strategy<Value = [u8; SEED_LEN]> {
    prop_oneof![
        any::<[u8; SEED_LEN]>(),
        (any::<u64>(), any::<u64>()).prop_map(|(ks, kr)| seed_via_seed_with(ks, kr)),
    ]
}

/// Data that is random, or nearly constant (long runs make the masks
/// repeat, where a mistake in the carry between words would hide less).
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1200),
        (any::<u8>(), 0..600usize).prop_map(|(b, len)| vec![b; len]),
    ]
}

/// Scrambles or descrambles `input` twice in the same chunks, once with
/// the reference path and once with `path_of` choosing per chunk, and
/// checks output and state after every chunk.
fn assert_paths_agree(
    seed: &[u8; SEED_LEN],
    prefix: &[u8],
    input: &[u8],
    sizes: &[usize],
    path_of: impl Fn(usize) -> Path,
    descramble: bool,
) -> Result<(), TestCaseError> {
    let mut reference = State::from_seed(seed);
    reference.scramble_ref(&mut prefix.to_vec());
    let mut tested = reference;

    let mut want = input.to_vec();
    let mut chunks_ref = Vec::new();
    for_each_chunk(&mut want, sizes, |_, chunk| {
        if descramble {
            reference.descramble_ref(chunk);
        } else {
            reference.scramble_ref(chunk);
        }
        chunks_ref.push(reference);
    });

    let mut got = input.to_vec();
    let mut offset = 0;
    let mut failure = None;
    for_each_chunk(&mut got, sizes, |i, chunk| {
        let path = path_of(i);
        if descramble {
            path.descramble(&mut tested, chunk);
        } else {
            path.scramble(&mut tested, chunk);
        }
        if failure.is_none() && tested != chunks_ref[i] {
            failure = Some(format!(
                "state differs after chunk {i} ({path:?}, bytes {offset}..{})",
                offset + chunk.len()
            ));
        }
        offset += chunk.len();
    });
    prop_assert_eq!(&got, &want, "output differs");
    if let Some(message) = failure {
        return Err(TestCaseError::fail(message));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_scramble_matches_ref(
        seed in seed(), prefix in prop::collection::vec(any::<u8>(), 0..70),
        data in data(), sizes in chunk_sizes(),
    ) {
        assert_paths_agree(&seed, &prefix, &data, &sizes, |_| Path::Fast, false)?;
    }

    #[test]
    fn fast_descramble_matches_ref(
        seed in seed(), prefix in prop::collection::vec(any::<u8>(), 0..70),
        data in data(), sizes in chunk_sizes(),
    ) {
        assert_paths_agree(&seed, &prefix, &data, &sizes, |_| Path::Fast, true)?;
    }

    #[test]
    fn one_pass_descramble_matches_ref(
        seed in seed(), prefix in prop::collection::vec(any::<u8>(), 0..70),
        data in data(), sizes in chunk_sizes(),
    ) {
        assert_paths_agree(&seed, &prefix, &data, &sizes, |_| Path::Into, true)?;
    }

    #[test]
    fn mixed_paths_on_one_stream_match_ref(
        seed in seed(), prefix in prop::collection::vec(any::<u8>(), 0..70),
        data in data(), sizes in chunk_sizes(),
        paths in prop::collection::vec(0..3usize, 1..16),
        descramble in any::<bool>(),
    ) {
        let path_of = |i: usize| [Path::Fast, Path::Ref, Path::Into][paths[i % paths.len()]];
        assert_paths_agree(&seed, &prefix, &data, &sizes, path_of, descramble)?;
    }

    #[test]
    fn fast_scramble_matches_model(seed in seed(), data in data(), sizes in chunk_sizes()) {
        let mut state = State::from_seed(&seed);
        let mut buf = data.clone();
        for_each_chunk(&mut buf, &sizes, |_, chunk| state.scramble(chunk));
        prop_assert_eq!(buf, model_scramble(&seed, &data));
    }

    #[test]
    fn descramble_undoes_scramble(
        seed in seed(), data in data(),
        sender_sizes in chunk_sizes(), receiver_sizes in chunk_sizes(),
        sender_fast in any::<bool>(), receiver_fast in any::<bool>(),
    ) {
        let pick = |fast| if fast { Path::Fast } else { Path::Ref };
        let mut sender = State::from_seed(&seed);
        let mut receiver = State::from_seed(&seed);
        let mut buf = data.clone();
        for_each_chunk(&mut buf, &sender_sizes, |_, c| pick(sender_fast).scramble(&mut sender, c));
        for_each_chunk(&mut buf, &receiver_sizes, |_, c| {
            pick(receiver_fast).descramble(&mut receiver, c)
        });
        prop_assert_eq!(buf, data);
        prop_assert_eq!(sender, receiver);
    }
}

/// Every ring position as the start, with lengths around the word size,
/// the fast path's threshold and the ring's length, so that chunks start
/// and end on both sides of the ring's wrap-around.
#[test]
fn chunks_straddling_the_ring_boundary_match_ref() {
    let seed: [u8; SEED_LEN] = core::array::from_fn(|i| (i * 29 + 3) as u8);
    let lens = [
        0, 1, 7, 8, 9, 31, 32, 33, 56, 63, 64, 65, 71, 72, 73, 127, 128, 129, 200,
    ];
    let data = pseudo_random_bytes(RING_LEN + 8 + 200, 11);
    for start in 0..=(RING_LEN + 8) {
        for &len in &lens {
            for descramble in [false, true] {
                assert_paths_agree(
                    &seed,
                    &data[..start],
                    &data[start..start + len],
                    &[len.max(1)],
                    |_| Path::Fast,
                    descramble,
                )
                .unwrap_or_else(|e| {
                    panic!("start {start}, length {len}, descramble {descramble}: {e}")
                });
            }
        }
    }
}

/// A multi-megabyte stream in pseudo-random chunks of up to 70 000 bytes,
/// scrambled and descrambled by both paths.
#[test]
fn multi_megabyte_stream_matches_ref() {
    const LEN: usize = 6 << 20;
    let seed = seed_via_seed_with(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
    let plaintext = pseudo_random_bytes(LEN, 0x5eed);
    let sizes: Vec<usize> = pseudo_random_bytes(64, 99)
        .chunks(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize % 70_000)
        .chain([1])
        .collect();

    let mut fast = State::from_seed(&seed);
    let mut reference = State::from_seed(&seed);
    let mut by_fast = plaintext.clone();
    let mut by_ref = plaintext.clone();
    for_each_chunk(&mut by_fast, &sizes, |_, c| fast.scramble(c));
    for_each_chunk(&mut by_ref, &sizes, |_, c| reference.scramble_ref(c));
    assert!(by_fast == by_ref, "scrambled streams differ");
    assert_eq!(fast, reference);

    let mut fast = State::from_seed(&seed);
    let mut reference = State::from_seed(&seed);
    for_each_chunk(&mut by_fast, &sizes, |_, c| fast.descramble(c));
    for_each_chunk(&mut by_ref, &sizes, |_, c| reference.descramble_ref(c));
    assert!(
        by_fast == plaintext,
        "fast descramble did not restore the stream"
    );
    assert!(
        by_ref == plaintext,
        "reference descramble did not restore the stream"
    );
    assert_eq!(fast, reference);
}
