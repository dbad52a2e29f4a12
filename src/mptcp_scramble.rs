// SPDX-License-Identifier: GPL-2.0

//! mptcp_scramble: eavesdropping protection for Multipath TCP.
//!
//! Every byte of a scrambled MPTCP connection's data stream is XORed with
//! the XOR of the 64 plaintext bytes before it, so an observer of one of
//! the paths MPTCP spreads the stream over sees scrambled bytes.  The
//! kernel carries the per-connection state and calls empty hooks (the
//! patch series in `patches/`); this module puts kprobes on those hooks
//! and does the work.  Loading it turns the feature on, unloading it off;
//! `/proc/sys/net/mptcp_scramble/enabled` decides per network namespace
//! for connections established from then on, and `/proc/net/mptcp_scramble`
//! counts what happens.
//!
//! - [`scrambler`]: the algorithm, shared with the userspace tools;
//! - [`conn`]: what happens at each hook, in safe Rust;
//! - [`netns`], [`counters`], [`bench`]: per-namespace sysctls and
//!   counters, the self-benchmark, in safe Rust;
//! - [`hooks`]: the kprobes on the hooks, turning their raw arguments into
//!   safe types;
//! - [`sys`]: small generic wrappers over the kernel's C API (kprobes,
//!   per-namespace values, sysctls, seq_file), the only other `unsafe`.

use kernel::prelude::*;

mod bench;
mod conn;
mod counters;
mod hooks;
mod keypool;
mod netns;
// Shared with userspace, where all of its API is used.
#[allow(dead_code, unreachable_pub)]
mod hardened;
mod hardened_kat;
// Shared with userspace, where all of its API is used.
#[allow(dead_code, unreachable_pub)]
mod scrambler;
mod sys;

module! {
    type: MptcpScramble,
    name: "mptcp_scramble",
    author: "mptcp-scramble developers",
    description: "Eavesdropping protection for Multipath TCP by data scrambling",
    license: "GPL",
}

/// The module's registrations.  Fields drop in order: the hooks go before
/// the namespace state they use.
struct MptcpScramble {
    _hooks: hooks::Hooks,
    _pernet: sys::pernet::Pernet<netns::NetState>,
    _keypool: keypool::KeyPool,
}

/// Known answer for the seed (the case "digits" of
/// `tests/vectors/scramble-vectors.json`): checks the kernel's SHA-256 and
/// the HMAC construction before any connection depends on them.
fn seed_self_test() -> Result {
    const EXPECTED: [u8; scrambler::SEED_LEN] = [
        0x9f, 0x3c, 0xe1, 0xf3, 0x6d, 0xd8, 0x86, 0xb1, 0xf5, 0xfb, 0x56, 0x96, 0xf1, 0xf7, 0xd5,
        0x97, 0xd5, 0x99, 0x5b, 0xab, 0xaa, 0x46, 0xa0, 0xfe, 0x65, 0xcf, 0xc9, 0x70, 0x4c, 0x96,
        0xe8, 0x77,
    ];
    let seed = scrambler::seed_with(sys::sha256, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
    if seed != EXPECTED {
        pr_err!("seed self-test failed: the kernel's SHA-256 disagrees\n");
        return Err(EINVAL);
    }
    Ok(())
}

/// Known answers for the hardened mode ([`hardened_kat`]): the kernel's
/// X25519, ChaCha20, ChaCha20-Poly1305 and SHA-256, and the handshake and
/// key schedule built on them, against values computed in userspace by
/// `snow` and RustCrypto.
fn hardened_self_test() -> Result {
    let kat = &hardened_kat::KAT;
    hardened::self_test(&sys::crypto::LibCrypto, kat).map_err(|what| {
        pr_err!("hardened self-test failed: {:?}\n", what);
        EINVAL
    })?;
    // Load runs in process context, where the keystream takes the
    // architecture's ChaCha20: check the generic one an int3-trapped
    // handler takes as well.
    let mut buf = kat.chacha_plain;
    sys::crypto::chacha20(
        &kat.chacha_key,
        &kat.chacha_nonce,
        kat.chacha_counter,
        &mut buf,
        sys::crypto::Impl::Generic,
    );
    if buf != kat.chacha_cipher {
        pr_err!("hardened self-test failed: the generic ChaCha20\n");
        return Err(EINVAL);
    }
    Ok(())
}

impl kernel::Module for MptcpScramble {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        seed_self_test()?;
        hardened_self_test()?;
        let keypool = keypool::KeyPool::start();
        let pernet = sys::pernet::Pernet::register()?;
        let hooks = hooks::Hooks::register()?;
        pr_info!(
            "scrambling MPTCP connections (net.mptcp_scramble.enabled=1 by default); \
             self-tests passed: seed, X25519, ChaCha20, ChaCha20-Poly1305, SHA-256, Noise NN\n"
        );
        Ok(MptcpScramble {
            _hooks: hooks,
            _pernet: pernet,
            _keypool: keypool,
        })
    }
}

impl Drop for MptcpScramble {
    fn drop(&mut self) {
        pr_info!("unloaded: new MPTCP connections are plain\n");
    }
}
