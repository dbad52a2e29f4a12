//! Which local addresses sockets use, from /proc/net/{tcp,udp,icmp,raw}[6]
//! of the caller's network namespace: how `stackvirtd` knows a pseudonym is
//! idle (no socket, not even in TIME_WAIT) and `stackvirtctl` counts
//! sockets.  ICMP sockets tied to a pseudonym's device without an address
//! are counted by the BPF programs instead (`bpf::Usage::sockets`).

use std::{
    collections::HashMap,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// The local addresses of the sockets listed in a
/// /proc/net/{tcp,udp,icmp,raw}[6] file (`tcp4_seq_show()`,
/// `ping_v4_format_sock()`, `raw_sock_seq_show()`, ... share the layout): each `local_address` column is the address in hex, one
/// host-order (little-endian here) 32-bit word at a time, then `:PORT`.
pub fn local_addresses(listing: &str) -> Vec<IpAddr> {
    let word = |h: &str| u32::from_str_radix(h, 16).ok().map(|w| w.to_le_bytes());
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let hex = line.split_whitespace().nth(1)?.split(':').next()?;
            match hex.len() {
                8 => Some(IpAddr::V4(Ipv4Addr::from(word(hex)?))),
                32 => {
                    let mut b = [0u8; 16];
                    for i in 0..4 {
                        b[i * 4..i * 4 + 4].copy_from_slice(&word(&hex[i * 8..i * 8 + 8])?);
                    }
                    Some(IpAddr::V6(Ipv6Addr::from(b)))
                }
                _ => None,
            }
        })
        .collect()
}

/// Open sockets per local address, in the caller's network namespace.
pub fn sockets_by_address() -> HashMap<IpAddr, usize> {
    let mut out = HashMap::new();
    for f in ["tcp", "tcp6", "udp", "udp6", "icmp", "icmp6", "raw", "raw6"] {
        if let Ok(listing) = fs::read_to_string(format!("/proc/net/{f}")) {
            for a in local_addresses(&listing) {
                *out.entry(a).or_default() += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_local_addresses_are_decoded() {
        let tcp = "  sl  local_address rem_address   st\n   0: 0100007F:1F90 00000000:0000 0A\n";
        assert_eq!(local_addresses(tcp), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let tcp6 = "  sl  local_address\n   0: B80D0120000000000000000001000000:0016 x\n";
        assert_eq!(
            local_addresses(tcp6),
            vec!["2001:db8::1".parse::<IpAddr>().unwrap()]
        );
    }
}
