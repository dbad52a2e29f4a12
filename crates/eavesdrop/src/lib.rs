//! What an eavesdropper on one path of an mptcp-scramble connection
//! learns (docs/design.md, "Security").
//!
//! A capture is read ([`capture`]), its MPTCP options parsed ([`mptcp`]),
//! its subflows grouped into connections and their payload placed by data
//! sequence number ([`streams`], [`intervals`]); the report gives each
//! direction's coverage and what [`attack`] recovers under a byte
//! [`model`].  [`hexdump`] shows frames as Wireshark does, and [`rewrite`]
//! scrambles a plain capture after the fact for experiments.

pub mod attack;
pub mod capture;
pub mod hexdump;
pub mod intervals;
pub mod keylog;
pub mod model;
pub mod mptcp;
pub mod report;
pub mod rewrite;
pub mod streams;
