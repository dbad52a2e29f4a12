//! The BPF maps' names and value layouts, mirrored from
//! `bpf/stackvirt.bpf.c` (`struct sv_config`, `struct sv_pseudonym`,
//! `struct sv_group_key`, `struct sv_addr`, `struct sv_mac`,
//! `enum sv_counter`).  Every field is in the byte order the C side says.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Array map, one [`Config`].
pub const CONFIG: &str = "CONFIG";
/// Array map of `u64`, indexed like [`COUNTER_NAMES`].
pub const COUNTERS: &str = "COUNTERS";
/// Hash map, pseudonym id (`u32`) to [`Pseudonym`].
pub const PSEUDONYMS: &str = "PSEUDONYMS";
/// Queue of pseudonym ids (`u32`) ready to be taken.
pub const FREE: &str = "FREE";
/// Hash map, group key to pseudonym id.
pub const GROUPS: &str = "GROUPS";
/// Hash map, pseudonym address ([`AddrKey`]) to its pseudonym's MAC
/// ([`MacKey`]), read by the egress guard.
pub const OWNERS: &str = "OWNERS";
/// Hash map, every pseudonym's MAC ([`MacKey`]) to `u32` (unused), read by
/// the egress guard.
pub const MACS: &str = "MACS";
/// Hash map, socket cookie (`u64`) to pseudonym id: the ICMP sockets
/// `sock_create` tied to a pseudonym's device.
pub const HELD: &str = "HELD";
/// Every map, as pinned under the daemon's bpffs directory.
pub const ALL: [&str; 8] = [
    CONFIG, COUNTERS, PSEUDONYMS, FREE, GROUPS, HELD, OWNERS, MACS,
];

/// The counters of `COUNTERS`, in index order: four program run counts,
/// then what the runs did, then the egress guard's drops, then the socket
/// programs' run counts and what they did.
pub const COUNTER_NAMES: [&str; 19] = [
    "run_connect4",
    "run_connect6",
    "run_sendmsg4",
    "run_sendmsg6",
    "applied",
    "other_netns",
    "explicit_bind",
    "pool_empty",
    "denied",
    "no_address",
    "bind_failed",
    "egress_forged",
    "run_sock_create",
    "run_sock_release",
    "device_bound",
    "held_full",
    "dns_tagged",
    "dns_untagged",
    "device_tied",
];

/// `struct sv_group_key`: which group a socket belongs to, by the fields
/// its policy uses (the others are zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// [`crate::policy::Policy`] as its discriminant.
    pub policy: u32,
    /// `AF_INET` or `AF_INET6` (flow and destination policies).
    pub family: u32,
    /// `IPPROTO_TCP`, `IPPROTO_UDP`, ... (flow policy).
    pub protocol: u32,
    /// Host order; UDP flows only.
    pub sport: u16,
    /// Host order (flow policy).
    pub dport: u16,
    /// Network byte order; IPv4 in the first four bytes.
    pub daddr: [u8; 16],
    /// The cgroup id (application policy) or uid (user policy).
    pub id: u64,
}

impl GroupKey {
    /// The destination address, for the flow and destination policies.
    fn destination(&self) -> IpAddr {
        if self.family == libc::AF_INET as u32 {
            IpAddr::V4(Ipv4Addr::new(
                self.daddr[0],
                self.daddr[1],
                self.daddr[2],
                self.daddr[3],
            ))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.daddr))
        }
    }

    /// The group in words: `tcp 10.0.0.1:80`, `udp 5353->[2001:db8::1]:53`,
    /// `to 10.0.0.1`, `cgroup N` (the caller may name it), `uid N`.
    pub fn describe(&self) -> String {
        let proto = match self.protocol as i32 {
            libc::IPPROTO_TCP => "tcp".to_string(),
            libc::IPPROTO_UDP => "udp".to_string(),
            libc::IPPROTO_ICMP => "icmp".to_string(),
            libc::IPPROTO_ICMPV6 => "icmp6".to_string(),
            p => format!("proto {p}"),
        };
        let dst = std::net::SocketAddr::new(self.destination(), self.dport);
        let icmp = matches!(
            self.protocol as i32,
            libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6
        );
        match self.policy {
            1 if icmp => format!("{proto} {}", self.destination()),
            1 if self.sport != 0 => format!("{proto} {}->{dst}", self.sport),
            1 => format!("{proto} {dst}"),
            2 => format!("to {}", self.destination()),
            3 => format!("cgroup {}", self.id),
            4 => format!("uid {}", self.id),
            _ => "connection".to_string(),
        }
    }
}

/// `struct sv_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The network namespace whose sockets get pseudonyms
    /// (`SO_NETNS_COOKIE`); other namespaces are left alone.
    pub netns_cookie: u64,
    /// [`crate::policy::Policy`] as its discriminant.
    pub policy: u32,
    /// 1 for [`crate::policy::FailMode::Closed`].
    pub fail_closed: u32,
    /// The stub resolver's IPv4 address ([`crate::dns::DnsTag::stub`]),
    /// network byte order; 0: no stub.
    pub dns_stub_ip4: u32,
    /// Its port, network byte order in the low 16 bits (as the programs
    /// read `user_port`).
    pub dns_stub_port: u32,
    /// [`crate::dns::DnsTag::tag_net`], network byte order.
    pub dns_tag_net: u32,
    /// 1: the IP-only mode (pseudonyms are addresses on the uplink).
    pub ip_only: u32,
}

impl Config {
    /// A configuration with only the stub resolver's fields set from
    /// `dns` (all zero for none), the others left to the caller.
    #[must_use]
    pub fn with_dns(dns: Option<crate::dns::DnsTag>) -> Self {
        Self {
            dns_stub_ip4: dns.map_or(0, |d| u32::from_ne_bytes(d.stub.ip().octets())),
            dns_stub_port: dns.map_or(0, |d| {
                u32::from(u16::from_ne_bytes(d.stub.port().to_be_bytes()))
            }),
            dns_tag_net: dns.map_or(0, |d| u32::from_ne_bytes(d.tag_net.octets())),
            ..Self::default()
        }
    }
}

/// `struct sv_pseudonym`: flag bits.
pub const HAS_IPV4: u32 = 1;
pub const HAS_IPV6: u32 = 2;

/// `struct sv_pseudonym`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Pseudonym {
    /// Network byte order.
    pub ipv4: [u8; 4],
    /// Network byte order.
    pub ipv6: [u8; 16],
    /// `HAS_IPV4 | HAS_IPV6`.
    pub flags: u32,
    /// The index of its device (a macvlan on the uplink).
    pub ifindex: u32,
    /// Open ICMP sockets tied to its device ([`HELD`]), counted by the
    /// programs.
    pub sockets: u32,
    /// Sockets, connects and sends that took this pseudonym, counted by the
    /// programs.
    pub uses: u64,
}

impl Pseudonym {
    /// The value the daemon announces for a new pseudonym on device
    /// `ifindex`: unused.
    pub fn new(ifindex: u32, ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> Self {
        let mut p = Self {
            ifindex,
            ..Self::default()
        };
        if let Some(a) = ipv4 {
            p.ipv4 = a.octets();
            p.flags |= HAS_IPV4;
        }
        if let Some(a) = ipv6 {
            p.ipv6 = a.octets();
            p.flags |= HAS_IPV6;
        }
        p
    }
}

/// `struct sv_addr`: a pseudonym's address, for the egress guard.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrKey {
    /// `AF_INET` or `AF_INET6`.
    pub family: u32,
    /// Network byte order; IPv4 in the first four bytes.
    pub addr: [u8; 16],
}

impl From<IpAddr> for AddrKey {
    fn from(a: IpAddr) -> Self {
        let mut k = Self::default();
        match a {
            IpAddr::V4(a) => {
                k.family = libc::AF_INET as u32;
                k.addr[..4].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                k.family = libc::AF_INET6 as u32;
                k.addr = a.octets();
            }
        }
        k
    }
}

/// `struct sv_mac`: a MAC address, padded to 8 bytes (the padding zero).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacKey {
    /// The address.
    pub mac: [u8; 6],
    /// Zero.
    pub pad: [u8; 2],
}

impl From<[u8; 6]> for MacKey {
    fn from(mac: [u8; 6]) -> Self {
        Self { mac, pad: [0; 2] }
    }
}

// SAFETY: both are `repr(C)` with only integer fields and no padding
// (checked by the size tests below against the C layout), so every bit
// pattern is a valid value.
unsafe impl aya::Pod for Config {}
// SAFETY: as for `Config`.
unsafe impl aya::Pod for Pseudonym {}
// SAFETY: as for `Config`: 3 * u32 + 2 * u16 + 16 bytes + u64, 40 bytes.
unsafe impl aya::Pod for GroupKey {}
// SAFETY: as for `Config`: u32 + 16 bytes, 20 bytes.
unsafe impl aya::Pod for AddrKey {}
// SAFETY: as for `Config`: 8 bytes.
unsafe impl aya::Pod for MacKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        // struct sv_config: u64 + 6 * u32; struct sv_pseudonym: 4 + 16 +
        // 3 * 4 bytes, then a u64 at offset 32.
        assert_eq!(std::mem::size_of::<Config>(), 32);
        assert_eq!(std::mem::offset_of!(Config, dns_stub_ip4), 16);
        assert_eq!(std::mem::size_of::<Pseudonym>(), 40);
        assert_eq!(std::mem::offset_of!(Pseudonym, ifindex), 24);
        assert_eq!(std::mem::offset_of!(Pseudonym, uses), 32);
        // struct sv_group_key: 3 * u32, 2 * u16, 16 bytes, u64 at 32.
        assert_eq!(std::mem::size_of::<GroupKey>(), 40);
        assert_eq!(std::mem::offset_of!(GroupKey, id), 32);
        // struct sv_addr: u32 + 16 bytes; struct sv_mac: 6 + 2 bytes.
        assert_eq!(std::mem::size_of::<AddrKey>(), 20);
        assert_eq!(std::mem::size_of::<MacKey>(), 8);
    }

    #[test]
    fn the_dns_stub_is_configured_as_the_programs_read_it() {
        let tag = crate::dns::DnsTag::new(
            "127.0.0.53:53".parse().unwrap(),
            Ipv4Addr::new(127, 83, 0, 0),
        )
        .unwrap();
        let c = Config::with_dns(Some(tag));
        // struct bpf_sock_addr: user_ip4 and user_port in network byte order
        assert_eq!(c.dns_stub_ip4.to_ne_bytes(), [127, 0, 0, 53]);
        assert_eq!(c.dns_stub_port.to_ne_bytes(), [0, 53, 0, 0]);
        assert_eq!(c.dns_tag_net.to_ne_bytes(), [127, 83, 0, 0]);
        let none = Config::with_dns(None);
        assert_eq!(
            (none.dns_stub_ip4, none.dns_stub_port, none.dns_tag_net),
            (0, 0, 0)
        );
    }

    #[test]
    fn addresses_key_the_guard_like_the_c_side() {
        let k = AddrKey::from(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(k.family, libc::AF_INET as u32);
        assert_eq!(&k.addr[..4], &[10, 0, 0, 7]);
        assert!(k.addr[4..].iter().all(|&b| b == 0));
        let k = AddrKey::from("2001:db8::9".parse::<IpAddr>().unwrap());
        assert_eq!(k.family, libc::AF_INET6 as u32);
        assert_eq!(k.addr[15], 9);
        assert_eq!(MacKey::from([2, 1, 2, 3, 4, 5]).pad, [0, 0]);
    }

    #[test]
    fn group_keys_are_described_by_their_policy() {
        let mut k = GroupKey {
            policy: 1,
            family: libc::AF_INET as u32,
            protocol: libc::IPPROTO_TCP as u32,
            dport: 80,
            ..Default::default()
        };
        k.daddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(k.describe(), "tcp 10.0.0.1:80");
        k.protocol = libc::IPPROTO_ICMP as u32;
        k.dport = 0;
        assert_eq!(k.describe(), "icmp 10.0.0.1");
        k.policy = 2;
        assert_eq!(k.describe(), "to 10.0.0.1");
        k = GroupKey {
            policy: 4,
            id: 1000,
            ..Default::default()
        };
        assert_eq!(k.describe(), "uid 1000");
    }

    #[test]
    fn new_pseudonym_says_which_families_it_has() {
        let p = Pseudonym::new(7, Some(Ipv4Addr::new(10, 0, 0, 1)), None);
        assert_eq!(p.flags, HAS_IPV4);
        assert_eq!((p.ifindex, p.sockets, p.uses), (7, 0, 0));
        assert_eq!(p.ipv4, [10, 0, 0, 1]);
        let p = Pseudonym::new(8, None, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(p.flags, HAS_IPV6);
        assert_eq!(p.ipv6[15], 1);
    }
}
