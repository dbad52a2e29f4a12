//! The BPF maps' names and value layouts, mirrored from
//! `bpf/stackvirt.bpf.c` (`struct sv_config`, `struct sv_pseudonym`,
//! `enum sv_counter`).  Every field is in the byte order the C side says.

use std::net::{Ipv4Addr, Ipv6Addr};

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
/// Every map, as pinned under the daemon's bpffs directory.
pub const ALL: [&str; 5] = [CONFIG, COUNTERS, PSEUDONYMS, FREE, GROUPS];

/// The counters of `COUNTERS`, in index order: four program run counts,
/// then what the runs did.
pub const COUNTER_NAMES: [&str; 11] = [
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
];

/// `sizeof(struct sv_group_key)`: its fields are private to the programs;
/// userspace only counts the groups.
pub const GROUP_KEY_SIZE: usize = 40;

/// `struct sv_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// The network namespace whose sockets get pseudonyms
    /// (`SO_NETNS_COOKIE`); other namespaces are left alone.
    pub netns_cookie: u64,
    /// [`crate::policy::Policy`] as its discriminant.
    pub policy: u32,
    /// 1 for [`crate::policy::FailMode::Closed`].
    pub fail_closed: u32,
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
    /// Connects and sends that took this pseudonym, counted by the programs.
    pub uses: u64,
}

impl Pseudonym {
    /// The value the daemon announces for a new pseudonym: unused.
    pub fn new(ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> Self {
        let mut p = Self::default();
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

// SAFETY: both are `repr(C)` with only integer fields and no padding
// (checked by the size tests below against the C layout), so every bit
// pattern is a valid value.
unsafe impl aya::Pod for Config {}
// SAFETY: as for `Config`.
unsafe impl aya::Pod for Pseudonym {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_structs() {
        // struct sv_config: u64 + 2 * u32; struct sv_pseudonym: 4 + 16 + 4
        // bytes, then a u64 at offset 24.
        assert_eq!(std::mem::size_of::<Config>(), 16);
        assert_eq!(std::mem::size_of::<Pseudonym>(), 32);
        assert_eq!(std::mem::offset_of!(Pseudonym, uses), 24);
    }

    #[test]
    fn new_pseudonym_says_which_families_it_has() {
        let p = Pseudonym::new(Some(Ipv4Addr::new(10, 0, 0, 1)), None);
        assert_eq!(p.flags, HAS_IPV4);
        assert_eq!(p.ipv4, [10, 0, 0, 1]);
        let p = Pseudonym::new(None, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(p.flags, HAS_IPV6);
        assert_eq!(p.ipv6[15], 1);
    }
}
