//! The mptcp-scramble algorithm for userspace.
//!
//! The algorithm is `src/scrambler.rs` at the top of the repository, the
//! very file the kernel module compiles; this crate only wraps it.
#![no_std]

#[path = "../../../src/scrambler.rs"]
mod scrambler;

pub use scrambler::*;
