//! Loading `bpf/stackvirt.bpf.c` with `aya`, attaching its four programs to
//! a cgroup (v2) and its egress guard to the uplink (tcx egress), and
//! pinning programs' links and maps in bpffs, so that they outlive the
//! daemon: a killed daemon leaves every existing flow and
//! the rest of the pool working (see docs/stackvirt.md, "Failure").

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use anyhow::{anyhow, Context, Result};
use aya::{
    maps::{Array, HashMap, Map, MapData, Queue},
    programs::{
        links::FdLink, tc::TcAttachType, CgroupAttachMode, CgroupSock, CgroupSockAddr,
        SchedClassifier,
    },
    Ebpf,
};

use crate::{
    dns::DnsTag,
    maps::{self, AddrKey, Config, GroupKey, MacKey, Pseudonym},
    policy::{FailMode, Policy},
};

/// The programs' configuration for these settings, in the calling
/// thread's network namespace.
///
/// # Errors
/// See [`netns_cookie`].
pub fn config_for(
    policy: Policy,
    fail: FailMode,
    dns: Option<DnsTag>,
    ip_only: bool,
) -> Result<Config> {
    Ok(Config {
        netns_cookie: netns_cookie()?,
        policy: policy as u32,
        fail_closed: u32::from(fail == FailMode::Closed),
        ip_only: u32::from(ip_only),
        ..Config::with_dns(dns)
    })
}

/// A fingerprint of the programs this daemon loads (FNV-1a over the
/// object), published in its state: a successor adopts only pins of the
/// very same programs.
#[must_use]
pub fn object_id() -> u64 {
    OBJECT.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The compiled object, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/stackvirt.bpf.o"));

/// The `sock_addr` programs, by function name in the C source.
pub const PROGRAMS: [&str; 4] = [
    "stackvirt_connect4",
    "stackvirt_connect6",
    "stackvirt_sendmsg4",
    "stackvirt_sendmsg6",
];

/// The `sock` programs (socket creation and release), by function name.
pub const SOCK_PROGRAMS: [&str; 2] = ["stackvirt_sock_create", "stackvirt_sock_release"];

/// One pseudonym's counts, as the programs keep them in `PSEUDONYMS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Usage {
    /// The pseudonym's id.
    pub id: u32,
    /// Sockets, connects and sends that took it.
    pub uses: u64,
    /// Open ICMP sockets tied to its device.
    pub sockets: u32,
}

/// The egress guard, attached to the uplink.
pub const GUARD: &str = "stackvirt_egress";

/// The attached programs' maps, owned by the daemon: the programs stay
/// attached through their pinned links.
pub struct Loaded {
    /// Every map of [`maps::ALL`], by name.
    maps: std::collections::HashMap<&'static str, Map>,
    /// The IP-only mode: every pseudonym has the uplink's MAC, which the
    /// egress guard must not take for a pseudonym's (`MACS`).
    ip_only: bool,
}

/// The cookie of the calling thread's network namespace
/// (`SO_NETNS_COOKIE`, Linux 5.14), the key the programs compare with
/// `bpf_get_netns_cookie()`.
///
/// # Errors
/// The socket or getsockopt call's errno.
pub fn netns_cookie() -> Result<u64> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new
    // descriptor that nothing else owns.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .context("a socket to read the namespace cookie from");
    }
    // SAFETY: `fd` was just returned by socket() and is owned only here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid for writes of the sizes given,
    // and the descriptor is open for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("getsockopt(SO_NETNS_COOKIE)");
    }
    Ok(cookie)
}

impl Loaded {
    /// Loads the programs, configures them for the calling namespace with
    /// `policy` and `fail`, pins the maps under `pin_dir` (created; it must
    /// be on a bpffs), attaches the programs to `cgroup` and the egress
    /// guard to `uplink` (tcx egress, Linux 6.6), their links pinned under
    /// `pin_dir` too.  Any earlier pins in `pin_dir` are removed first
    /// (which detaches a dead daemon's programs).
    ///
    /// # Errors
    /// The kernel refusing a program (verifier log in the message), no
    /// bpffs at `pin_dir`, no cgroup v2 directory at `cgroup`, no tcx
    /// (`CONFIG_NET_XGRESS`) or no device `uplink`.
    pub fn attach(
        cgroup: &Path,
        uplink: &str,
        pin_dir: &Path,
        policy: Policy,
        fail: FailMode,
        dns: Option<DnsTag>,
        ip_only: bool,
    ) -> Result<Self> {
        remove_pins(pin_dir)?;
        fs::create_dir_all(pin_dir)
            .with_context(|| format!("creating {} (is bpffs mounted?)", pin_dir.display()))?;
        let mut ebpf = Ebpf::load(OBJECT).context("loading the BPF object")?;
        let config = config_for(policy, fail, dns, ip_only)?;
        Array::<_, Config>::try_from(map_mut(&mut ebpf, maps::CONFIG)?)?.set(0, config, 0)?;
        for name in maps::ALL {
            ebpf.map(name)
                .ok_or_else(|| anyhow!("no map {name}"))?
                .pin(pin_dir.join(name))
                .with_context(|| format!("pinning map {name}"))?;
        }
        let cgroup_dir = fs::File::open(cgroup)
            .with_context(|| format!("opening cgroup {}", cgroup.display()))?;
        // A BPF link each: other programs on the cgroup keep running, and
        // the kernel refuses the multi-attach flags for links (EINVAL).
        // A macro, as aya's program kinds share these calls but no trait.
        macro_rules! attach_to_cgroup {
            ($kind:ty, $names:expr) => {
                for name in $names {
                    let prog: &mut $kind = ebpf
                        .program_mut(name)
                        .ok_or_else(|| anyhow!("no program {name}"))?
                        .try_into()?;
                    prog.load().with_context(|| format!("loading {name}"))?;
                    let id = prog
                        .attach(&cgroup_dir, CgroupAttachMode::Single)
                        .with_context(|| format!("attaching {name} to {}", cgroup.display()))?;
                    let link: FdLink = prog.take_link(id)?.try_into()?;
                    link.pin(pin_dir.join(name))
                        .with_context(|| format!("pinning the link of {name}"))?;
                }
            };
        }
        attach_to_cgroup!(CgroupSockAddr, PROGRAMS);
        attach_to_cgroup!(CgroupSock, SOCK_PROGRAMS);
        let guard: &mut SchedClassifier = ebpf
            .program_mut(GUARD)
            .ok_or_else(|| anyhow!("no program {GUARD}"))?
            .try_into()?;
        guard.load().context("loading the egress guard")?;
        let id = guard
            .attach(uplink, TcAttachType::Egress)
            .with_context(|| format!("attaching the egress guard to {uplink} (tcx)"))?;
        let link: FdLink = guard.take_link(id)?.try_into()?;
        link.pin(pin_dir.join(GUARD))
            .context("pinning the egress guard's link")?;
        let mut by_name = std::collections::HashMap::new();
        for name in maps::ALL {
            let m = ebpf
                .take_map(name)
                .ok_or_else(|| anyhow!("no map {name}"))?;
            by_name.insert(name, m);
        }
        Ok(Self {
            maps: by_name,
            ip_only,
        })
    }

    /// Takes over what an earlier daemon pinned under `pin_dir`: its maps,
    /// with its programs still attached through their pinned links.
    /// `None` when any pin is missing (a daemon never ran there, or its
    /// pins were removed: the programs are detached).
    ///
    /// # Errors
    /// A pin that is there but cannot be opened.
    pub fn adopt(pin_dir: &Path) -> Result<Option<Self>> {
        let links = PROGRAMS.iter().chain(&SOCK_PROGRAMS).chain([&GUARD]);
        if !maps::ALL
            .iter()
            .chain(links)
            .all(|n| pin_dir.join(n).exists())
        {
            return Ok(None);
        }
        let mut by_name = std::collections::HashMap::new();
        for name in maps::ALL {
            let data = MapData::from_pin(pin_dir.join(name))
                .with_context(|| format!("opening pinned map {name}"))?;
            by_name.insert(name, Map::from_map_data(data)?);
        }
        let mut adopted = Self {
            maps: by_name,
            ip_only: false,
        };
        adopted.ip_only = adopted.config()?.ip_only != 0;
        Ok(Some(adopted))
    }

    /// The configuration the programs run with.
    ///
    /// # Errors
    /// A failing map read.
    pub fn config(&self) -> Result<Config> {
        Ok(Array::<_, Config>::try_from(self.map(maps::CONFIG)?)?.get(&0, 0)?)
    }

    fn map(&self, name: &str) -> Result<&Map> {
        self.maps.get(name).ok_or_else(|| anyhow!("no map {name}"))
    }

    fn map_mut(&mut self, name: &str) -> Result<&mut Map> {
        self.maps
            .get_mut(name)
            .ok_or_else(|| anyhow!("no map {name}"))
    }

    /// Announces pseudonym `id` (device `ifindex`) with its MAC and
    /// addresses to the egress guard and offers it to the programs: the
    /// next group without a pseudonym may take it.
    ///
    /// # Errors
    /// A full map (4096 pseudonyms, 256 free at once).
    pub fn offer(
        &mut self,
        id: u32,
        ifindex: u32,
        mac: [u8; 6],
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<Ipv6Addr>,
    ) -> Result<()> {
        let mut owners = HashMap::<_, AddrKey, MacKey>::try_from(self.map_mut(maps::OWNERS)?)?;
        for a in addresses(ipv4, ipv6) {
            owners.insert(AddrKey::from(a), MacKey::from(mac), 0)?;
        }
        if !self.ip_only {
            let mut macs = HashMap::<_, MacKey, u32>::try_from(self.map_mut(maps::MACS)?)?;
            macs.insert(MacKey::from(mac), 1, 0)?;
        }
        let mut table = HashMap::<_, u32, Pseudonym>::try_from(self.map_mut(maps::PSEUDONYMS)?)?;
        table.insert(id, Pseudonym::new(ifindex, ipv4, ipv6), 0)?;
        let mut free = Queue::<_, u32>::try_from(self.map_mut(maps::FREE)?)?;
        free.push(id, 0).context("offering a pseudonym")?;
        Ok(())
    }

    /// Withdraws pseudonym `id` (MAC `mac`, addresses `ipv4`, `ipv6`): a
    /// group that had it gets a new one at its next connect (the programs
    /// drop the stale choice), and the egress guard forgets it.
    ///
    /// # Errors
    /// A failing map update (an id never announced is not one).
    pub fn retire(
        &mut self,
        id: u32,
        mac: [u8; 6],
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<Ipv6Addr>,
    ) -> Result<()> {
        let mut table = HashMap::<_, u32, Pseudonym>::try_from(self.map_mut(maps::PSEUDONYMS)?)?;
        table.remove(&id).context("withdrawing a pseudonym")?;
        let mut owners = HashMap::<_, AddrKey, MacKey>::try_from(self.map_mut(maps::OWNERS)?)?;
        for a in addresses(ipv4, ipv6) {
            owners
                .remove(&AddrKey::from(a))
                .context("withdrawing an address")?;
        }
        if !self.ip_only {
            let mut macs = HashMap::<_, MacKey, u32>::try_from(self.map_mut(maps::MACS)?)?;
            macs.remove(&MacKey::from(mac))
                .context("withdrawing a MAC")?;
        }
        Ok(())
    }

    /// Takes a free pseudonym with an address of the family `flag`
    /// ([`maps::HAS_IPV4`] or [`maps::HAS_IPV6`]) for the daemon's own
    /// use (an MPTCP subflow), as a program takes one for a group: out of
    /// `FREE`, its `uses` counted, so that no program hands it out and
    /// the pool refills.  One id at a time leaves the queue, and free
    /// pseudonyms of the other family go back to its tail: while one is
    /// on its way back a program may find the queue one shorter (empty,
    /// if it was the last: that connect is then one the pool could not
    /// serve).  Rewriting the whole value is safe because no program
    /// can reach an id out of `FREE` and in no group.  `None`: none
    /// free.
    ///
    /// # Errors
    /// A failing map update.
    pub fn take(&mut self, flag: u32) -> Result<Option<(u32, Pseudonym)>> {
        let mut seen = std::collections::HashSet::new();
        loop {
            let id = {
                let mut free = Queue::<_, u32>::try_from(self.map_mut(maps::FREE)?)?;
                match free.pop(0) {
                    Ok(id) => id,
                    Err(_) => return Ok(None),
                }
            };
            let mut table =
                HashMap::<_, u32, Pseudonym>::try_from(self.map_mut(maps::PSEUDONYMS)?)?;
            // Withdrawn meanwhile: no longer free, dropped.
            let Ok(mut p) = table.get(&id, 0) else {
                continue;
            };
            if p.flags & flag != 0 {
                p.uses += 1;
                table.insert(id, p, 0).context("taking a pseudonym")?;
                return Ok(Some((id, p)));
            }
            let mut free = Queue::<_, u32>::try_from(self.map_mut(maps::FREE)?)?;
            free.push(id, 0).context("giving back a free pseudonym")?;
            if !seen.insert(id) {
                return Ok(None);
            }
        }
    }

    /// Every announced pseudonym's counts, by id.
    ///
    /// # Errors
    /// A failing map read.
    pub fn uses(&self) -> Result<Vec<Usage>> {
        read_uses(self.map(maps::PSEUDONYMS)?)
    }

    /// Removes the `GROUPS` and `HELD` entries whose pseudonym id `keep`
    /// refuses (pseudonyms retired or gone before an adoption).
    ///
    /// # Errors
    /// A failing map read or update.
    pub fn forget_all_but(&mut self, keep: impl Fn(u32) -> bool) -> Result<()> {
        remove_unkept::<GroupKey>(self.map_mut(maps::GROUPS)?, &keep)?;
        remove_unkept::<u64>(self.map_mut(maps::HELD)?, &keep)
    }

    /// Rebuilds `FREE` from the ids in it that `keep` accepts (after an
    /// adoption that dropped pseudonyms whose device was gone): a program
    /// must never pop an id with no pseudonym behind it.
    ///
    /// # Errors
    /// A failing map update.
    pub fn refresh_free(&mut self, keep: impl Fn(u32) -> bool) -> Result<()> {
        let mut free = Queue::<_, u32>::try_from(self.map_mut(maps::FREE)?)?;
        let mut ids = Vec::new();
        while let Ok(id) = free.pop(0) {
            ids.push(id);
        }
        for id in ids.into_iter().filter(|&id| keep(id)) {
            free.push(id, 0)?;
        }
        Ok(())
    }
}

fn addresses(ipv4: Option<Ipv4Addr>, ipv6: Option<Ipv6Addr>) -> impl Iterator<Item = IpAddr> {
    ipv4.map(IpAddr::V4).into_iter().chain(ipv6.map(IpAddr::V6))
}

fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Map> {
    ebpf.map_mut(name)
        .ok_or_else(|| anyhow!("no map {name} in the BPF object"))
}

/// Removes the entries of `map`, a hash map from `K` to a pseudonym id,
/// whose id `keep` refuses.
fn remove_unkept<K: aya::Pod>(map: &mut Map, keep: &impl Fn(u32) -> bool) -> Result<()> {
    let mut m = HashMap::<_, K, u32>::try_from(map)?;
    let stale: Vec<K> = m
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, id)| !keep(*id))
        .map(|(k, _)| k)
        .collect();
    for k in stale {
        // Gone meanwhile (a program replaced it): nothing to remove.
        let _ = m.remove(&k);
    }
    Ok(())
}

fn read_uses(m: &Map) -> Result<Vec<Usage>> {
    let table = HashMap::<_, u32, Pseudonym>::try_from(m)?;
    let mut out = Vec::new();
    for entry in table.iter() {
        let (id, p) = entry?;
        out.push(Usage {
            id,
            uses: p.uses,
            sockets: p.sockets,
        });
    }
    out.sort_unstable_by_key(|u| u.id);
    Ok(out)
}

/// Removes the pins under `pin_dir`: programs whose links were pinned there
/// are detached once nothing else holds them.  No directory: nothing to do.
///
/// # Errors
/// A pin that cannot be removed.
pub fn remove_pins(pin_dir: &Path) -> Result<()> {
    match fs::remove_dir_all(pin_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", pin_dir.display()))
        }
        _ => Ok(()),
    }
}

/// The pinned maps of a running (or killed) daemon, read-only, for
/// `stackvirtctl`.
pub struct Pinned {
    dir: PathBuf,
}

impl Pinned {
    /// The pins under `pin_dir`.
    ///
    /// # Errors
    /// No pins there: the daemon is not running, or uses another directory.
    pub fn open(pin_dir: &Path) -> Result<Self> {
        if !pin_dir.join(maps::COUNTERS).exists() {
            return Err(anyhow!(
                "no stackvirt maps pinned in {} (is stackvirtd running?)",
                pin_dir.display()
            ));
        }
        Ok(Self {
            dir: pin_dir.to_path_buf(),
        })
    }

    fn map(&self, name: &str) -> Result<Map> {
        let data = MapData::from_pin(self.dir.join(name))
            .with_context(|| format!("opening pinned map {name}"))?;
        Ok(Map::from_map_data(data)?)
    }

    /// `COUNTERS`, named as in [`maps::COUNTER_NAMES`].
    ///
    /// # Errors
    /// A failing map read.
    pub fn counters(&self) -> Result<Vec<(&'static str, u64)>> {
        let m = self.map(maps::COUNTERS)?;
        let counters = Array::<_, u64>::try_from(&m)?;
        maps::COUNTER_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((*n, counters.get(&(i as u32), 0)?)))
            .collect()
    }

    /// Every announced pseudonym's counts, by id.
    ///
    /// # Errors
    /// A failing map read.
    pub fn uses(&self) -> Result<Vec<Usage>> {
        read_uses(&self.map(maps::PSEUDONYMS)?)
    }

    /// The groups each pseudonym serves (GROUPS inverted).
    ///
    /// # Errors
    /// A failing map read.
    pub fn groups(&self) -> Result<std::collections::HashMap<u32, Vec<GroupKey>>> {
        let m = self.map(maps::GROUPS)?;
        let mut out: std::collections::HashMap<u32, Vec<GroupKey>> =
            std::collections::HashMap::new();
        let groups = HashMap::<_, GroupKey, u32>::try_from(&m)?;
        for entry in groups.iter() {
            let (key, id) = entry?;
            out.entry(id).or_default().push(key);
        }
        Ok(out)
    }

    /// The configuration the programs run with.
    ///
    /// # Errors
    /// A failing map read.
    pub fn config(&self) -> Result<Config> {
        let m = self.map(maps::CONFIG)?;
        Ok(Array::<_, Config>::try_from(&m)?.get(&0, 0)?)
    }
}
