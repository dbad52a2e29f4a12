//! The pure parts of making pseudonyms: random MACs and IPv6 interface
//! identifiers, IPv4 addresses from a configured range, device names and
//! routing tables.  No I/O: the daemon ([`crate::net`]) applies them.

use std::{
    collections::HashSet,
    net::{Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use rand::Rng;
use thiserror::Error;

/// Device names of pseudonyms: this prefix and the pseudonym's id.  The
/// nftables rules match the prefix (`svp*`).
pub const DEVICE_PREFIX: &str = "svp";
/// The first routing table of pseudonyms; pseudonym `id` uses
/// `TABLE_BASE + id`.
pub const TABLE_BASE: u32 = 10_000;
/// The priority of the `from ADDRESS lookup TABLE` rules, before `main`
/// (32766).
pub const RULE_PRIORITY: u32 = 1000;

/// The device name of pseudonym `id`, e.g. `svp7`.
pub fn device_name(id: u32) -> String {
    format!("{DEVICE_PREFIX}{id}")
}

/// The routing table of pseudonym `id`.
pub fn table(id: u32) -> u32 {
    TABLE_BASE + id
}

/// A random MAC address, locally administered (bit 1 of the first octet
/// set) and unicast (bit 0 clear), like the ones NetworkManager and phones
/// randomize.
pub fn random_mac(rng: &mut impl Rng) -> [u8; 6] {
    let mut mac: [u8; 6] = rng.gen();
    mac[0] = (mac[0] & 0xfc) | 0x02;
    mac
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The inverse of [`format_mac`]; `None` for anything else.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// An address in the /64 `prefix` with a random interface identifier (RFC
/// 7217's goal, without its stability: each pseudonym is new), avoiding
/// the reserved identifiers of RFC 5453 (zero, the subnet anycast range
/// fdff:ffff:ffff:ff80/121, the proxy-mobile 0200:5eff:fe00::/104 prefix).
pub fn random_ipv6(prefix: Ipv6Addr, rng: &mut impl Rng) -> Ipv6Addr {
    let net = u128::from(prefix) & !u128::from(u64::MAX);
    loop {
        let iid: u64 = rng.gen();
        let reserved = iid == 0 || iid >= 0xfdff_ffff_ffff_ff80 || iid >> 24 == 0x02_005e_fffe;
        if !reserved {
            return Ipv6Addr::from(net | iid as u128);
        }
    }
}

/// Why an IPv4 range is not one.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RangeError {
    #[error("an IPv4 range is FIRST-LAST, e.g. 192.168.1.100-192.168.1.199")]
    Syntax,
    #[error("{0} is not an IPv4 address")]
    Address(String),
    #[error("the range's first address {0} is after its last {1}")]
    Reversed(Ipv4Addr, Ipv4Addr),
}

/// An inclusive range of IPv4 addresses, `FIRST-LAST`, on the uplink's
/// subnet: where pseudonyms' IPv4 addresses come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Range {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl FromStr for Ipv4Range {
    type Err = RangeError;

    fn from_str(s: &str) -> Result<Self, RangeError> {
        let (a, b) = s.split_once('-').ok_or(RangeError::Syntax)?;
        let parse = |x: &str| {
            x.trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| RangeError::Address(x.to_string()))
        };
        let (first, last) = (parse(a)?, parse(b)?);
        if first > last {
            return Err(RangeError::Reversed(first, last));
        }
        Ok(Self { first, last })
    }
}

impl Ipv4Range {
    /// How many addresses the range holds.
    pub fn len(&self) -> u64 {
        u64::from(u32::from(self.last) - u32::from(self.first)) + 1
    }

    /// Whether the range is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// A random address of the range not in `taken`, or `None` when every
    /// one is taken.
    pub fn pick(&self, taken: &HashSet<Ipv4Addr>, rng: &mut impl Rng) -> Option<Ipv4Addr> {
        if taken.len() as u64 >= self.len() {
            return None;
        }
        let (lo, hi) = (u32::from(self.first), u32::from(self.last));
        // Random probes, then a sweep: a nearly full range still answers.
        for _ in 0..64 {
            let a = Ipv4Addr::from(rng.gen_range(lo..=hi));
            if !taken.contains(&a) {
                return Some(a);
            }
        }
        (lo..=hi).map(Ipv4Addr::from).find(|a| !taken.contains(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn macs_parse_back() {
        let mac = [0x02, 0xab, 0, 0x10, 0xff, 7];
        assert_eq!(parse_mac(&format_mac(&mac)), Some(mac));
        assert_eq!(parse_mac("02:ab:00:10:ff"), None);
        assert_eq!(parse_mac("02:ab:00:10:ff:07:01"), None);
        assert_eq!(parse_mac("02:ab:00:10:ff:0g"), None);
    }

    #[test]
    fn macs_are_locally_administered_unicast_and_distinct() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let mac = random_mac(&mut rng);
            assert_eq!(mac[0] & 0x03, 0x02, "{}", format_mac(&mac));
            assert!(seen.insert(mac));
        }
    }

    #[test]
    fn ipv6_keeps_the_prefix_and_randomizes_the_identifier() {
        let mut rng = StdRng::seed_from_u64(2);
        let prefix: Ipv6Addr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let a = random_ipv6(prefix, &mut rng);
        let b = random_ipv6(prefix, &mut rng);
        assert_eq!(a.segments()[..4], [0x2001, 0xdb8, 1, 2]);
        assert_ne!(a, b);
    }

    #[test]
    fn range_parses_and_refuses_nonsense() {
        let r: Ipv4Range = "10.0.0.10-10.0.0.12".parse().unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!("10.0.0.1".parse::<Ipv4Range>(), Err(RangeError::Syntax));
        assert!(matches!(
            "10.0.0.9-x".parse::<Ipv4Range>(),
            Err(RangeError::Address(_))
        ));
        assert!(matches!(
            "10.0.0.9-10.0.0.1".parse::<Ipv4Range>(),
            Err(RangeError::Reversed(..))
        ));
    }

    #[test]
    fn range_pick_never_repeats_and_reports_exhaustion() {
        let mut rng = StdRng::seed_from_u64(3);
        let r: Ipv4Range = "10.0.0.10-10.0.0.14".parse().unwrap();
        let mut taken = HashSet::new();
        for _ in 0..5 {
            let a = r.pick(&taken, &mut rng).unwrap();
            assert!(a >= r.first && a <= r.last);
            assert!(taken.insert(a));
        }
        assert_eq!(r.pick(&taken, &mut rng), None);
    }

    #[test]
    fn names_and_tables_follow_the_id() {
        assert_eq!(device_name(7), "svp7");
        assert_eq!(table(7), 10_007);
    }
}
