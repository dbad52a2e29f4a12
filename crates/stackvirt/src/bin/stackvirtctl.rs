//! stackvirtctl: what stackvirtd runs, from its state file, its pinned BPF
//! maps and its nftables counters.
//!
//!   stackvirtctl status     each pseudonym: device, MAC, addresses, uses,
//!                           groups, open sockets; below it, its groups
//!                           (flows, destinations, applications, users)
//!   stackvirtctl counters   one `name value` line per counter (the
//!                           programs', nftables', the DNS stub's)

use std::{
    collections::HashMap,
    fs,
    net::IpAddr,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use anyhow::Result;
use clap::{Parser, Subcommand};
use stackvirt::{bpf::Pinned, nft, sockets::sockets_by_address, state::State};

#[derive(Parser, Debug)]
#[command(version, about = "Shows what stackvirtd runs")]
struct Args {
    /// The daemon's --pin-dir.
    #[arg(long, default_value = "/sys/fs/bpf/stackvirt")]
    pin_dir: PathBuf,
    /// The daemon's --state.
    #[arg(long, default_value = "/run/stackvirt/state.json")]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The daemon's settings and each pseudonym with its MAC, addresses,
    /// uses (connects and sends that took it), groups and open sockets.
    Status,
    /// One `name value` line per counter: the BPF programs' run counts and
    /// outcomes, then nftables' inbound_dropped and egress_mismatch.
    Counters,
}

/// The directory under `root` (a cgroup v2 tree) whose inode number is
/// `id`: a cgroup's id is its directory's inode number.
fn cgroup_path(root: &Path, id: u64) -> Option<PathBuf> {
    if fs::metadata(root).ok()?.ino() == id {
        return Some(root.to_path_buf());
    }
    fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .find_map(|e| cgroup_path(&e.path(), id))
}

fn counters(pinned: &Pinned, state: &Path) -> Result<()> {
    for (name, value) in pinned.counters()? {
        println!("{name} {value}");
    }
    for name in ["inbound_dropped", "egress_mismatch"] {
        println!("{name} {}", nft::counter(name)?);
    }
    // The DNS stub's and the path manager's, as the daemon last
    // published them.
    let published = State::load(state).ok();
    let dns = published
        .as_ref()
        .and_then(|s| s.dns)
        .map(serde_json::to_value);
    let mptcp = published
        .as_ref()
        .and_then(|s| s.mptcp)
        .map(serde_json::to_value);
    for (prefix, fields) in [("dns_stub_", dns), ("mptcp_", mptcp)] {
        if let Some(serde_json::Value::Object(fields)) = fields.transpose()? {
            for (name, value) in fields {
                println!("{prefix}{name} {value}");
            }
        }
    }
    Ok(())
}

fn status(pinned: &Pinned, state: &State) -> Result<()> {
    let alive = fs::metadata(format!("/proc/{}", state.pid)).is_ok();
    println!(
        "stackvirtd pid {} ({}), uplink {}, policy {:?}, fail {:?}, pool {}",
        state.pid,
        if alive {
            "running"
        } else {
            "gone: the pool is no longer refilled"
        },
        state.uplink,
        state.policy,
        state.fail,
        state.pool
    );
    let usage: HashMap<u32, (u64, u32)> = pinned
        .uses()?
        .into_iter()
        .map(|u| (u.id, (u.uses, u.sockets)))
        .collect();
    let groups = pinned.groups()?;
    let sockets = sockets_by_address();
    println!(
        "{:<8} {:<17} {:<15} {:<39} {:>5} {:>6} {:>7}",
        "device", "mac", "ipv4", "ipv6", "uses", "groups", "sockets"
    );
    for p in &state.pseudonyms {
        let (uses, held) = usage.get(&p.id).copied().unwrap_or_default();
        let open: usize = [p.ipv4.map(IpAddr::V4), p.ipv6.map(IpAddr::V6)]
            .into_iter()
            .flatten()
            .map(|a| sockets.get(&a).copied().unwrap_or(0))
            .sum::<usize>()
            + held as usize;
        println!(
            "{:<8} {:<17} {:<15} {:<39} {:>5} {:>6} {:>7}",
            p.device,
            p.mac,
            p.ipv4.map_or("-".into(), |a| a.to_string()),
            p.ipv6.map_or("-".into(), |a| a.to_string()),
            uses,
            groups.get(&p.id).map_or(0, Vec::len),
            open
        );
        for key in groups.get(&p.id).into_iter().flatten() {
            match (key.policy, cgroup_path(&state.cgroup, key.id)) {
                // An application's DNS group under the other policies.
                (3, Some(path)) if key.dport == 53 => {
                    println!("    DNS of cgroup {}", path.display());
                }
                (3, Some(path)) => println!("    cgroup {}", path.display()),
                _ => println!("    {}", key.describe()),
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let pinned = Pinned::open(&args.pin_dir)?;
    match args.command {
        Command::Status => status(&pinned, &State::load(&args.state)?),
        Command::Counters => counters(&pinned, &args.state),
    }
}
