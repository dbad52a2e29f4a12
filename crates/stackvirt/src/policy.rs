//! Grouping policies and the failure mode, as the daemon's command line
//! names them and as the BPF program's `CONFIG` map encodes them.

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Which sockets share a pseudonym.  The discriminants are the C program's
/// `enum sv_policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// A fresh pseudonym for every connect and every unconnected send.
    Connection = 0,
    /// The paper's flow keys: (tcp, dst, dport), (udp, dst, sport, dport),
    /// (icmp, dst) for ping sockets that connect().
    Flow = 1,
    /// One pseudonym per destination address.
    Destination = 2,
    /// One pseudonym per application, that is per cgroup (v2) of the
    /// connecting task.
    Application = 3,
    /// One pseudonym per uid of the connecting task.
    User = 4,
}

/// What a connect or unconnected send does when no pseudonym is free (the
/// pool is exhausted, for example because the daemon was killed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Proceed from the host's default address: traffic flows, linkable.
    Open,
    /// Fail the call with `EPERM`: nothing leaves unprotected.
    Closed,
}
