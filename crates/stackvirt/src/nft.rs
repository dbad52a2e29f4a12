//! The inbound filter and the egress guard, as an nftables table
//! (`inet stackvirt`) driven through the `nft` command.
//!
//! - Inbound: a pseudonym accepts only what belongs to a flow it started
//!   (conntrack `established`/`related`: replies, ICMP errors such as
//!   port-unreachable, time-exceeded and packet-too-big) and the neighbour
//!   discovery and MLD that keep it reachable.  Anything else addressed to
//!   a pseudonym's IP, or arriving on a pseudonym's device (its MAC), is
//!   dropped and counted in `inbound_dropped`: a scan finds nothing.  One
//!   exception: a TCP connection to a socket an application bound to that
//!   very address (not the wildcard; nftables' `socket wildcard 0`, a
//!   socket lookup in the input hook), arriving through the pseudonym's
//!   own device, is let in: that is what an active
//!   FTP client does for its data connection (curl binds its listener to
//!   the control connection's local address, the pseudonym's), and what
//!   no service listening on every address does, so a scan still finds
//!   nothing.  The default address is not filtered.
//! - Egress guard: a packet whose source IP is a pseudonym's but leaves
//!   through another device (another pseudonym's MAC, or the uplink's real
//!   one) is dropped and counted in `egress_mismatch`, which must stay 0.
//!   The frame-level half of the guard, Ethernet source against IP or ARP
//!   sender address, is the BPF program `stackvirt_egress` on the uplink
//!   (`crate::bpf`): nftables' `netdev` family is not in the test kernels.

use std::{
    io::Write,
    net::IpAddr,
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::pool::DEVICE_PREFIX;

/// The table's family and name.
pub const TABLE: &str = "inet stackvirt";

/// The whole table, replacing any earlier one.
pub fn ruleset() -> String {
    let p = DEVICE_PREFIX;
    format!(
        r#"table {TABLE}
delete table {TABLE}
table {TABLE} {{
	set pseudo4 {{ type ipv4_addr; }}
	set pseudo6 {{ type ipv6_addr; }}
	set pair4 {{ type ipv4_addr . ifname; }}
	set pair6 {{ type ipv6_addr . ifname; }}
	counter inbound_dropped {{ }}
	counter egress_mismatch {{ }}

	chain inbound {{
		type filter hook input priority filter; policy accept;
		ct state established,related accept
		icmpv6 type {{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert, nd-redirect, mld-listener-query }} accept
		ip daddr . iifname @pair4 meta l4proto tcp socket wildcard 0 accept
		ip6 daddr . iifname @pair6 meta l4proto tcp socket wildcard 0 accept
		iifname "{p}*" counter name inbound_dropped drop
		ip daddr @pseudo4 counter name inbound_dropped drop
		ip6 daddr @pseudo6 counter name inbound_dropped drop
	}}

	chain egress {{
		type filter hook postrouting priority filter; policy accept;
		ip saddr @pseudo4 ip saddr . oifname != @pair4 counter name egress_mismatch drop
		ip6 saddr @pseudo6 ip6 saddr . oifname != @pair6 counter name egress_mismatch drop
	}}
}}
"#
    )
}

/// The commands that enrol a pseudonym's `addresses` on `device`.
pub fn enrol(device: &str, addresses: &[IpAddr]) -> String {
    let mut s = String::new();
    for a in addresses {
        let v = if a.is_ipv4() { 4 } else { 6 };
        s += &format!("add element {TABLE} pseudo{v} {{ {a} }}\n");
        s += &format!("add element {TABLE} pair{v} {{ {a} . \"{device}\" }}\n");
    }
    s
}

/// The commands that remove a retired pseudonym's `addresses` on `device`.
pub fn retire(device: &str, addresses: &[IpAddr]) -> String {
    enrol(device, addresses).replace("add element", "delete element")
}

/// Runs `nft -f -` on `script`.
///
/// # Errors
/// `nft` missing, or its complaint about the script.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run nft (install nftables)")?;
    child
        .stdin
        .take()
        .context("nft's stdin")?
        .write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Removes the table, if there is one.
pub fn remove() -> Result<()> {
    apply(&format!("table {TABLE}\ndelete table {TABLE}\n"))
}

/// The packets counted so far by the named counter (`inbound_dropped` or
/// `egress_mismatch`).
///
/// # Errors
/// No table (the daemon never ran), or output `nft` no longer prints.
pub fn counter(name: &str) -> Result<u64> {
    let out = Command::new("nft")
        .args(["list", "counter"])
        .args(TABLE.split(' '))
        .arg(name)
        .output()
        .context("cannot run nft")?;
    if !out.status.success() {
        bail!(
            "nft list counter {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_packets(&String::from_utf8_lossy(&out.stdout))
        .with_context(|| format!("no packet count in nft's listing of {name}"))
}

/// The `packets N` of an `nft list counter` listing.
fn parse_packets(listing: &str) -> Option<u64> {
    let mut words = listing.split_whitespace();
    words.find(|w| *w == "packets")?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_matches_the_device_prefix() {
        assert!(ruleset().contains("iifname \"svp*\""));
    }

    #[test]
    fn enrol_fills_both_sets_per_family() {
        let s = enrol(
            "svp3",
            &["10.0.0.5".parse().unwrap(), "2001:db8::5".parse().unwrap()],
        );
        assert!(s.contains("pseudo4 { 10.0.0.5 }"));
        assert!(s.contains("pair4 { 10.0.0.5 . \"svp3\" }"));
        assert!(s.contains("pair6 { 2001:db8::5 . \"svp3\" }"));
    }

    #[test]
    fn retire_undoes_enrol() {
        let s = retire("svp3", &["10.0.0.5".parse().unwrap()]);
        assert_eq!(s.lines().count(), 2);
        assert!(s
            .lines()
            .all(|l| l.starts_with("delete element inet stackvirt ")));
    }

    #[test]
    fn packets_are_read_from_a_listing() {
        let listing = "table inet stackvirt {\n\tcounter egress_mismatch {\n\t\tpackets 3 bytes 180\n\t}\n}\n";
        assert_eq!(parse_packets(listing), Some(3));
        assert_eq!(parse_packets("nothing"), None);
    }
}
