//! Protocol stack virtualization (Lindqvist and Tapio, WPES 2008), the
//! modern Linux way: one host appears on its link as many unrelated hosts.
//!
//! Each *pseudonym* is a macvlan on the uplink with a random, locally
//! administered MAC, its own IPv4 and/or IPv6 address and its own routing
//! table, all owned by the kernel.  cgroup `sock_addr` BPF programs
//! (`bpf/stackvirt.bpf.c`) give each socket the address of its group's
//! pseudonym when it connects or sends unconnected, so nothing runs per
//! packet.  `stackvirtd` keeps a pool of ready pseudonyms; `stackvirtctl`
//! shows them.
//!
//! - [`policy`]: which sockets share a pseudonym;
//! - [`pool`]: random MACs, addresses and names (pure, unit-tested);
//! - [`maps`]: the BPF maps' layouts, mirrored from the C program;
//! - [`bpf`]: loading, attaching and pinning the programs with `aya`;
//! - [`net`]: the pseudonyms' links, addresses, routes and rules (rtnetlink);
//! - [`nft`]: the inbound filter and the egress guard (nftables);
//! - [`dns`]: the stub resolver that keeps DNS with its flow;
//! - [`sockets`]: which addresses sockets use (idle pseudonyms);
//! - [`state`]: what the daemon publishes for `stackvirtctl`.

pub mod bpf;
pub mod dhcp;
pub mod dns;
pub mod maps;
pub mod mptcp;
pub mod net;
pub mod nft;
pub mod policy;
pub mod pool;
pub mod sockets;
pub mod state;
