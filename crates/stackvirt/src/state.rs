//! What the daemon publishes for `stackvirtctl`: one JSON file, rewritten
//! whole (write then rename) whenever the pool changes.  The BPF maps hold
//! the live counts; this file holds what only the daemon knows (devices,
//! MACs, settings).

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    dhcp::Lease,
    dns::DnsCounters,
    policy::{FailMode, Policy},
};

/// One pseudonym as created.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PseudonymState {
    /// The id the BPF maps know it by.
    pub id: u32,
    /// Its macvlan device, e.g. `svp3` (in the IP-only mode its name
    /// only: its addresses are on the uplink).
    pub device: String,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// Its routing table.
    pub table: u32,
    /// Its DHCP lease, when its IPv4 address came from one
    /// (`--ipv4-dhcp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

impl PseudonymState {
    /// Its addresses, IPv4 first.
    #[must_use]
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
            .collect()
    }
}

/// The daemon's published state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct State {
    pub pid: u32,
    pub uplink: String,
    /// The cgroup (v2) directory the programs are attached to.
    pub cgroup: PathBuf,
    pub policy: Policy,
    pub fail: FailMode,
    /// Free pseudonyms the daemon keeps ready.
    pub pool: usize,
    pub pseudonyms: Vec<PseudonymState>,
    /// [`crate::bpf::object_id`] of the programs the daemon loaded.
    #[serde(default)]
    pub object: u64,
    /// The id the next pseudonym gets: a successor that adopts this state
    /// starts there, never reusing an id.
    #[serde(default)]
    pub next_id: u32,
    /// The DNS stub's counters, when it runs (`--dns-upstream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsCounters>,
    /// The MPTCP path manager's counters, when it runs (`--mptcp-pm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mptcp: Option<crate::mptcp::Counters>,
    /// `net.mptcp.pm_type` as it was before the first instance with
    /// `--mptcp-pm` set it: what a stop restores, kept across restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pm_type_before: Option<String>,
}

impl State {
    /// Writes the state to `path` atomically (a reader never sees half).
    ///
    /// # Errors
    /// The directory is not writable.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads the state at `path`.
    ///
    /// # Errors
    /// No file (no daemon ever ran with this path) or not the daemon's JSON.
    pub fn load(path: &Path) -> Result<Self> {
        let data = fs::read(path)
            .with_context(|| format!("reading {} (is stackvirtd running?)", path.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))
    }
}
