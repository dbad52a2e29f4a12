//! stackvirtd: keeps a pool of ready pseudonyms on an uplink and the BPF
//! programs that hand them out at connect time.
//!
//! It takes over what an earlier instance with the same settings left
//! (killed, or left with SIGUSR1): its pinned programs and maps and its
//! pseudonyms, flows and all; otherwise (or with `--fresh`) it removes
//! what an earlier instance left, installs the nftables table, loads and
//! attaches the programs to the cgroup (pinned: they survive the daemon).
//! Then it keeps `--pool` unused pseudonyms ready, creating each after a
//! random delay so that their appearance on the link is not a metronome,
//! and retires a taken pseudonym once it has had no socket for
//! `--retire-after` seconds.  SIGTERM or SIGINT removes everything;
//! SIGUSR1 leaves everything for the next instance; SIGKILL leaves the
//! kernel state working (see docs/stackvirt.md, "Failure").

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Parser;
use rand::Rng;
use stackvirt::{
    bpf::{self, Loaded},
    dhcp::{Client, Lease, Refused},
    dns::{self, Book, DnsTag},
    maps,
    mptcp::{self, event, Event, PathManager, SubflowCreate},
    net::{Addresses, Net, Uplink},
    nft,
    policy::{FailMode, Policy},
    pool::{self, Ipv4Range},
    sockets::sockets_by_address,
    state::{PseudonymState, State},
};
use tokio::signal::unix::{signal, SignalKind};

/// Per-flow or per-application MAC and IP pseudonyms on an uplink.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The uplink to put pseudonyms on (macvlans of it).
    #[arg(long)]
    uplink: String,
    /// IPv4 addresses for pseudonyms, FIRST-LAST, on the uplink's subnet
    /// and unused by anyone else.
    #[arg(long, conflicts_with = "ipv4_dhcp")]
    ipv4_range: Option<Ipv4Range>,
    /// Give each pseudonym an IPv4 address leased from the link's DHCP
    /// server, as a client of its own with RFC 7844's anonymity profile
    /// (see stackvirt::dhcp); the lease is renewed while the pseudonym
    /// lives and released when it retires.
    #[arg(long)]
    ipv4_dhcp: bool,
    /// With --ipv4-dhcp: the most leases the host holds at once.  At the
    /// cap no pseudonym is made until one retires.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    max_leases: u32,
    /// Give pseudonyms IPv6 addresses with random interface identifiers in
    /// the uplink's /64 (from router advertisements).
    #[arg(long)]
    ipv6: bool,
    /// IP-only mode, for links that refuse extra MACs (managed Wi-Fi):
    /// a pseudonym is its addresses on the uplink itself, with the
    /// uplink's MAC, and no device of its own.
    #[arg(long)]
    ip_only: bool,
    /// Unused pseudonyms kept ready.
    #[arg(long, default_value_t = 4)]
    pool: usize,
    /// Which sockets share a pseudonym.
    #[arg(long, value_enum, default_value = "flow")]
    policy: Policy,
    /// What a connect does when no pseudonym is free.
    #[arg(long, value_enum, default_value = "open")]
    fail: FailMode,
    /// The cgroup (v2) whose processes get pseudonyms, with its descendants.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup: PathBuf,
    /// Where the programs' links and maps are pinned (on a bpffs).
    #[arg(long, default_value = "/sys/fs/bpf/stackvirt")]
    pin_dir: PathBuf,
    /// Where the state for stackvirtctl is written.
    #[arg(long, default_value = "/run/stackvirt/state.json")]
    state: PathBuf,
    /// Retire a pseudonym this many seconds after its last socket closed
    /// (TIME_WAIT included); 0: never.
    #[arg(long, default_value_t = 300)]
    retire_after: u64,
    /// The longest random delay between two pseudonyms' creation, in ms.
    #[arg(long, default_value_t = 200)]
    jitter_ms: u64,
    /// Serve as the host's stub resolver, forwarding each query to this
    /// resolver (ADDR:PORT) from the asking application's pseudonym, with
    /// no cache (see stackvirt::dns).  Point /etc/resolv.conf at
    /// --dns-listen.
    #[arg(long)]
    dns_upstream: Option<SocketAddr>,
    /// With --dns-upstream: where the stub listens.
    #[arg(long, default_value = "127.0.0.53:53")]
    dns_listen: SocketAddrV4,
    /// With --dns-upstream: the loopback /16 whose addresses name a
    /// query's pseudonym to the stub.
    #[arg(long, default_value = "127.83.0.0")]
    dns_tag_net: Ipv4Addr,
    /// Remove what an earlier instance left, even when it could be taken
    /// over (by default a daemon started with the same settings adopts
    /// the pinned programs and maps and the pseudonyms of one that was
    /// killed or left with SIGUSR1).
    #[arg(long)]
    fresh: bool,
    /// Be MPTCP's userspace path manager (sets net.mptcp.pm_type=1 in the
    /// daemon's network namespace, restored when it stops): each
    /// connection this host opens gets, once established, one subflow
    /// from a free pseudonym of its own (to the address --mptcp-join
    /// says).  The initial subflow stays where the host's routing puts
    /// it, and no pseudonym's address is ever announced (see
    /// docs/stackvirt.md, "MPTCP").
    #[arg(long)]
    mptcp_pm: bool,
    /// With --mptcp-pm, where the pseudonym's subflow goes: to the first
    /// address the peer announces (ADD_ADDR; none announced, no subflow),
    /// or to the connection's own remote address and port (a server
    /// reachable over both paths at one address).
    #[arg(long, value_enum, default_value = "announced", requires = "mptcp_pm")]
    mptcp_join: JoinTo,
}

/// Where `--mptcp-pm` opens a connection's subflow from a pseudonym.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum JoinTo {
    /// The first address the peer announces.
    Announced,
    /// The connection's own remote address and port.
    Remote,
}

/// How the daemon leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// SIGTERM or SIGINT: everything is removed.
    Stop,
    /// SIGUSR1: everything stays for the next instance to adopt.
    Leave,
}

/// The pool as the daemon runs it.
struct Daemon {
    args: Args,
    net: Net,
    uplink: Uplink,
    bpf: Loaded,
    state: State,
    next_id: u32,
    macs: HashSet<[u8; 6]>,
    ipv4_taken: HashSet<Ipv4Addr>,
    ipv6_taken: HashSet<Ipv6Addr>,
    /// When each taken pseudonym last had a socket.
    last_busy: HashMap<u32, Instant>,
    /// With --ipv4-dhcp: each pseudonym's device index, when its lease was
    /// granted, and when to try to renew it next.
    leases: HashMap<u32, LeaseTimes>,
    /// Whether the lease cap stopped the pool from growing (said once).
    at_lease_cap: bool,
    /// Each pseudonym's addresses, for the DNS stub.
    book: Book,
    /// The DNS stub's counters, when it runs.
    dns: Option<Arc<dns::Counters>>,
    /// The MPTCP path manager, with `--mptcp-pm`.
    pm: Option<PathManager>,
    /// The connections it follows, by token.
    followed: HashMap<u32, Followed>,
    /// The path manager's counters as last published.
    published_mptcp: Option<mptcp::Counters>,
    /// Counters changed since the state was last written.
    dirty: bool,
    /// The pseudonym made last, while its IPv6 address is in DAD.
    pending: Option<Pending>,
}

/// A pseudonym [`Daemon::add_one`] made (its device, or its addresses on
/// the uplink, exist) and that is not offered yet.
struct Made {
    id: u32,
    /// Its device's index (the uplink's in the IP-only mode).
    index: u32,
    mac: [u8; 6],
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    lease: Option<Lease>,
}

/// A pseudonym made whose IPv6 address `ipv6` is still tentative.
/// [`Daemon::maintain`] checks it on each round, so that the loop goes on
/// reading MPTCP events while DAD runs (a second or more), and offers it
/// once DAD has passed.
struct Pending {
    made: Made,
    ipv6: Ipv6Addr,
    since: Instant,
}

/// How long DAD may take before a pending pseudonym is given up.
const DAD_LIMIT: Duration = Duration::from_secs(10);

/// A connection this host opened, as the path manager follows it.
struct Followed {
    /// Its destination port: an announced address without one is joined
    /// on it (RFC 8684 section 3.4.1).
    dport: u16,
    /// ESTABLISHED came: the kernel takes subflows only once the
    /// connection is fully established (`-ENOTCONN` before).
    established: bool,
    /// The first address the peer announced, with its port.
    announced: Option<SocketAddr>,
    /// Its remote address and port.
    remote: Option<SocketAddr>,
    /// When the daemon heard of it.
    created: Instant,
    join: Join,
}

/// Where a followed connection's subflow from a pseudonym stands.
#[derive(Clone, Copy)]
enum Join {
    /// Not asked for yet (not established, or nothing announced).
    Waiting,
    /// Asked for and refused for now (the connection's join keys not
    /// ready yet: `EAGAIN`, or `ENOTCONN`); asked again at `next`, with
    /// pseudonym `id`, until [`JOIN_PATIENCE`] after `since`.
    Retrying {
        id: u32,
        pseudonym: maps::Pseudonym,
        since: Instant,
        next: Instant,
    },
    /// The kernel took it, from pseudonym `id`.
    Joined(u32),
    /// Refused for good, or no pseudonym was free.
    Failed,
}

/// How long a subflow refused for now is asked for again.
const JOIN_PATIENCE: Duration = Duration::from_secs(10);
/// How often.
const JOIN_RETRY: Duration = Duration::from_millis(200);
/// How long a followed connection is kept without its CLOSED event.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How long a new connection holds off the making of pseudonyms (whose
/// device creation and DHCP exchange read no event while they last) for
/// its subflow to be asked for first (the ADD_ADDR comes right after the
/// connection is established).
const JOIN_HOLD: Duration = Duration::from_secs(3);

/// What woke the daemon's loop.
enum Woke {
    Timer,
    Event(Event),
    PmGone,
}

/// The next event of the path manager, if there is one; never otherwise.
async fn next_event(pm: Option<&mut PathManager>) -> Woke {
    match pm {
        Some(pm) => pm.next().await.map_or(Woke::PmGone, Woke::Event),
        None => std::future::pending().await,
    }
}

/// Where the network namespace's MPTCP path manager is chosen.
const PM_TYPE: &str = "/proc/sys/net/mptcp/pm_type";

/// Puts `net.mptcp.pm_type` back when dropped, on every way out of
/// `main` but a leave for the next instance ([`PmType::keep`]).
struct PmType(Option<String>);

impl PmType {
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for PmType {
    fn drop(&mut self) {
        if let Some(before) = self.0.take() {
            match std::fs::write(PM_TYPE, &before) {
                Ok(()) => eprintln!("stackvirtd: pm_type {before} again"),
                Err(e) => eprintln!("stackvirtd: restoring {PM_TYPE} to {before}: {e}"),
            }
        }
    }
}

/// When a pseudonym's lease was granted and when to renew it.
struct LeaseTimes {
    index: u32,
    granted: Instant,
    next_renewal: Instant,
}

impl Daemon {
    /// Retires the taken pseudonyms that have had no socket for
    /// `--retire-after` seconds.
    async fn retire_idle(&mut self) -> Result<()> {
        if self.args.retire_after == 0 {
            return Ok(());
        }
        let usage = self.bpf.uses()?;
        let used: HashSet<u32> = usage.iter().filter(|u| u.uses > 0).map(|u| u.id).collect();
        // ICMP sockets tied to a pseudonym's device have no address of
        // their own to find in /proc/net: the programs count them.
        let held: HashSet<u32> = usage
            .iter()
            .filter(|u| u.sockets > 0)
            .map(|u| u.id)
            .collect();
        let sockets = sockets_by_address();
        let now = Instant::now();
        let limit = Duration::from_secs(self.args.retire_after);
        let mut idle = Vec::new();
        for p in self
            .state
            .pseudonyms
            .iter()
            .filter(|p| used.contains(&p.id))
        {
            let busy = held.contains(&p.id)
                || [p.ipv4.map(IpAddr::V4), p.ipv6.map(IpAddr::V6)]
                    .into_iter()
                    .flatten()
                    .any(|a| sockets.contains_key(&a));
            let since = self.last_busy.entry(p.id).or_insert(now);
            if busy {
                *since = now;
            } else if now.duration_since(*since) >= limit {
                idle.push(p.clone());
            }
        }
        for p in idle {
            self.remove_pseudonym(&p).await?;
            eprintln!("stackvirtd: retired {} ({})", p.device, p.mac);
        }
        Ok(())
    }

    /// Takes pseudonym `p` out of the programs' maps and the nftables
    /// sets, gives back its lease, removes its device, rules and table.
    async fn remove_pseudonym(&mut self, p: &PseudonymState) -> Result<()> {
        self.bpf.retire(
            p.id,
            pool::parse_mac(&p.mac).context("a pseudonym's MAC in the state")?,
            p.ipv4,
            p.ipv6,
        )?;
        let ips = p.addresses();
        nft::apply(&nft::retire(self.device_of(&p.device), &ips))?;
        self.release(p).await;
        self.net.remove(p.id).await?;
        if let Some(a) = p.ipv4 {
            self.ipv4_taken.remove(&a);
        }
        self.last_busy.remove(&p.id);
        if let Ok(mut b) = self.book.lock() {
            b.remove(&p.id);
        }
        self.state.pseudonyms.retain(|q| q.id != p.id);
        self.state.save(&self.args.state)
    }

    /// Gives back the lease of pseudonym `p`, if it has one (before its
    /// device goes).  A failure is logged: the server reclaims the address
    /// when the lease runs out.
    async fn release(&mut self, p: &PseudonymState) {
        let (Some(lease), Some(times)) = (p.lease.clone(), self.leases.remove(&p.id)) else {
            return;
        };
        let Some(mac) = pool::parse_mac(&p.mac) else {
            return;
        };
        let index = times.index;
        match tokio::task::spawn_blocking(move || lease.release(index, &mac)).await {
            Ok(Ok(())) => eprintln!(
                "stackvirtd: {} released {}",
                p.device,
                p.ipv4.map_or(String::new(), |a| a.to_string())
            ),
            Ok(Err(e)) => eprintln!("stackvirtd: {}: releasing the lease: {e:#}", p.device),
            Err(e) => eprintln!("stackvirtd: {}: releasing the lease: {e}", p.device),
        }
    }

    /// Renews the leases that reached T1 (RFC 2131 section 4.4.5), each
    /// try 10 s after a failed one; retires a pseudonym whose lease ran
    /// out, sockets or not: its address is no longer the host's to use.
    async fn renew_leases(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<u32> = self
            .leases
            .iter()
            .filter(|(_, t)| now >= t.next_renewal)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(p) = self.state.pseudonyms.iter().find(|p| p.id == id).cloned() else {
                self.leases.remove(&id);
                continue;
            };
            let (Some(lease), Some(mac)) = (p.lease.clone(), pool::parse_mac(&p.mac)) else {
                continue;
            };
            let Some(times) = self.leases.get(&id) else {
                continue;
            };
            let index = times.index;
            let granted = times.granted;
            let old = lease.clone();
            let renewed = tokio::task::spawn_blocking(move || old.renew(index, &mac)).await?;
            match renewed {
                Ok(new) if new.addr == lease.addr => {
                    let now = Instant::now();
                    if let Some(t) = self.leases.get_mut(&id) {
                        t.granted = now;
                        t.next_renewal = now + new.renew_after();
                    }
                    if let Some(q) = self.state.pseudonyms.iter_mut().find(|q| q.id == id) {
                        q.lease = Some(new);
                    }
                    self.state.save(&self.args.state)?;
                }
                other => {
                    // A DHCPNAK, or an ACK for another address: the address
                    // is no longer ours, now (RFC 2131 section 4.4.5).
                    let (why, lost) = match other {
                        Ok(new) => (format!("the server moved it to {}", new.addr), true),
                        Err(e) => (format!("{e:#}"), e.downcast_ref::<Refused>().is_some()),
                    };
                    eprintln!("stackvirtd: {}: renewing {}: {why}", p.device, lease.addr);
                    if lost {
                        eprintln!("stackvirtd: {}: {} is no longer ours", p.device, lease.addr);
                        self.remove_pseudonym(&p).await?;
                    } else if Instant::now() >= granted + lease.lasts() {
                        eprintln!(
                            "stackvirtd: {}: the lease on {} ran out",
                            p.device, lease.addr
                        );
                        self.remove_pseudonym(&p).await?;
                    } else if let Some(t) = self.leases.get_mut(&id) {
                        t.next_renewal = Instant::now() + Duration::from_secs(10);
                    }
                }
            }
        }
        Ok(())
    }

    /// Pseudonyms offered but not yet taken by any socket.
    fn free(&self) -> Result<usize> {
        let used: HashSet<u32> = self
            .bpf
            .uses()?
            .into_iter()
            .filter(|u| u.uses > 0)
            .map(|u| u.id)
            .collect();
        Ok(self
            .state
            .pseudonyms
            .iter()
            .filter(|p| !used.contains(&p.id))
            .count())
    }

    /// The device pseudonym `name`'s packets leave through: its own, or
    /// in the IP-only mode the uplink.
    fn device_of<'a>(&'a self, name: &'a str) -> &'a str {
        if self.args.ip_only {
            &self.uplink.name
        } else {
            name
        }
    }

    /// Creates, checks and offers one pseudonym.
    async fn add_one(&mut self) -> Result<()> {
        let mut rng = rand::thread_rng();
        let id = self.next_id;
        self.next_id += 1;
        // Published before the pseudonym exists: a successor never reuses
        // an id that a stale group or socket entry may still name.
        self.state.next_id = self.next_id;
        let mac = if self.args.ip_only {
            self.uplink.mac
        } else {
            loop {
                let m = pool::random_mac(&mut rng);
                if self.macs.insert(m) {
                    break m;
                }
            }
        };
        let mut ipv4 = match self.args.ipv4_range {
            Some(r) => Some(
                r.pick(&self.ipv4_taken, &mut rng)
                    .context("the IPv4 range is used up")?,
            ),
            None => None,
        };
        let ipv6 = match (self.args.ipv6, self.uplink.prefix6) {
            (true, Some(prefix)) => Some(loop {
                let a = pool::random_ipv6(prefix, &mut rng);
                if self.ipv6_taken.insert(a) {
                    break a;
                }
            }),
            _ => None,
        };
        ipv4.map(|a| self.ipv4_taken.insert(a));
        let mut lease = None;
        let index = if self.args.ipv4_dhcp {
            // The device first, alone: the lease is asked for from it.
            // IP-only: from the uplink, told apart by a client identifier
            // of the pseudonym's own.
            let (index, client) = if self.args.ip_only {
                let id_mac = pool::random_mac(&mut rng);
                (
                    self.uplink.index,
                    Client {
                        link: mac,
                        id: id_mac,
                    },
                )
            } else {
                let index = self.net.create_link(&self.uplink, id, mac).await?;
                (index, Client::own(mac))
            };
            let asked = Instant::now();
            let got = tokio::task::spawn_blocking(move || Lease::obtain(index, &client))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|r| r);
            let got = match got {
                Ok(l) => l,
                Err(e) => {
                    self.net.remove(id).await?;
                    return Err(e.context("no DHCP lease"));
                }
            };
            let subnet = Ipv4Addr::from(
                u32::from(got.addr)
                    & (u32::MAX
                        .checked_shl(32 - u32::from(got.prefix_len))
                        .unwrap_or(0)),
            );
            let subnet = Some((subnet, got.prefix_len));
            let gateway = got.router.or(self.uplink.gateway4);
            let mut added = if self.args.ip_only {
                let up = &self.uplink;
                self.net
                    .add_ipv4_shared(up, id, got.addr, subnet, gateway)
                    .await
            } else {
                self.net
                    .add_ipv4(id, index, got.addr, subnet, gateway)
                    .await
            };
            if let (Ok(()), Some(a)) = (&added, ipv6) {
                added = if self.args.ip_only {
                    self.net.add_ipv6_shared(&self.uplink, id, a).await
                } else {
                    self.net.add_ipv6(&self.uplink, id, index, a).await
                };
            }
            if let Err(e) = added {
                let l = got.clone();
                let _ = tokio::task::spawn_blocking(move || l.release(index, &mac)).await;
                let _ = self.net.remove(id).await;
                return Err(e);
            }
            let now = Instant::now();
            self.leases.insert(
                id,
                LeaseTimes {
                    index,
                    granted: now,
                    next_renewal: now + got.renew_after(),
                },
            );
            ipv4 = Some(got.addr);
            self.ipv4_taken.insert(got.addr);
            eprintln!(
                "stackvirtd: {} leased {} for {} s from {} in {} ms",
                pool::device_name(id),
                got.addr,
                got.seconds,
                got.server,
                asked.elapsed().as_millis()
            );
            lease = Some(got);
            index
        } else {
            let addr = Addresses { mac, ipv4, ipv6 };
            if self.args.ip_only {
                self.net.create_shared(&self.uplink, id, &addr).await?
            } else {
                self.net.create(&self.uplink, id, &addr).await?
            }
        };
        let made = Made {
            id,
            index,
            mac,
            ipv4,
            ipv6,
            lease,
        };
        let Some(ipv6) = ipv6 else {
            return self.offer(made).await;
        };
        // Offered once DAD has passed (maintain()).
        self.pending = Some(Pending {
            made,
            ipv6,
            since: Instant::now(),
        });
        Ok(())
    }

    /// Offers the pending pseudonym once its IPv6 address has passed DAD;
    /// gives it up when DAD failed or took longer than [`DAD_LIMIT`].
    /// Returns whether one is still pending.
    async fn check_pending(&mut self) -> bool {
        let Some(p) = self.pending.take() else {
            return false;
        };
        let done = match self.net.dad_done(p.made.index, p.ipv6).await {
            Ok(false) if p.since.elapsed() < DAD_LIMIT => {
                self.pending = Some(p);
                return true;
            }
            Ok(false) => Err(anyhow::anyhow!(
                "{} still tentative after {DAD_LIMIT:?}",
                p.ipv6
            )),
            Ok(true) => Ok(()),
            Err(e) => Err(e),
        };
        let id = p.made.id;
        let result = match done {
            Ok(()) => self.offer(p.made).await,
            Err(e) => {
                self.abandon(p.made).await;
                Err(e)
            }
        };
        if let Err(e) = result {
            eprintln!("stackvirtd: pseudonym {id} not made: {e:#}");
        }
        false
    }

    /// Gives up the pending pseudonym, if there is one (on the way out).
    async fn abandon_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.abandon(p.made).await;
        }
    }

    /// Removes a pseudonym that was never offered: its lease goes back,
    /// its device goes.
    async fn abandon(&mut self, m: Made) {
        if let Some(l) = m.lease {
            let (index, mac) = (m.index, m.mac);
            let _ = tokio::task::spawn_blocking(move || l.release(index, &mac)).await;
        }
        self.leases.remove(&m.id);
        let _ = self.net.remove(m.id).await;
    }

    /// Offers a pseudonym made by [`Daemon::add_one`] whose IPv6 address,
    /// if any, has passed DAD; removes it when that fails, so that
    /// nothing half made stays.
    async fn offer(&mut self, m: Made) -> Result<()> {
        let result = self.enrol(&m);
        if result.is_err() {
            self.abandon(m).await;
        }
        result
    }

    /// The last steps of [`Daemon::offer`]: the nftables sets, the
    /// programs' maps, the published state.
    fn enrol(&mut self, m: &Made) -> Result<()> {
        let Made {
            id,
            index,
            mac,
            ipv4,
            ipv6,
            ref lease,
        } = *m;
        let device = pool::device_name(id);
        let ips: Vec<_> = ipv4
            .map(Into::into)
            .into_iter()
            .chain(ipv6.map(Into::into))
            .collect();
        nft::apply(&nft::enrol(self.device_of(&device), &ips))?;
        if let Ok(mut b) = self.book.lock() {
            b.insert(id, (ipv4, ipv6));
        }
        self.bpf.offer(id, index, mac, ipv4, ipv6)?;
        self.state.pseudonyms.push(PseudonymState {
            id,
            device,
            mac: pool::format_mac(&mac),
            ipv4,
            ipv6,
            table: pool::table(id),
            lease: lease.clone(),
        });
        self.state.save(&self.args.state)
    }

    /// Keeps the pool full until a signal asks to stop.
    async fn run(&mut self) -> Result<Exit> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut leave = signal(SignalKind::user_defined1())?;
        let mut due = Instant::now();
        loop {
            if Instant::now() >= due {
                let delay = self.maintain().await;
                due = Instant::now() + Duration::from_millis(delay);
            }
            let woke = tokio::select! {
                () = tokio::time::sleep_until(due.into()) => Woke::Timer,
                _ = term.recv() => return Ok(Exit::Stop),
                _ = int.recv() => return Ok(Exit::Stop),
                _ = leave.recv() => return Ok(Exit::Leave),
                w = next_event(self.pm.as_mut()) => w,
            };
            match woke {
                Woke::Timer => self.retry_joins().await,
                Woke::Event(e) => self.on_mptcp(e).await,
                Woke::PmGone => {
                    eprintln!(
                        "stackvirtd: the mptcp_pm event socket closed: no more MPTCP subflows"
                    );
                    self.pm = None;
                    self.followed.clear();
                }
            }
        }
    }

    /// One round of upkeep: retirement, lease renewal, published
    /// counters, one pseudonym more if the pool is short.  Returns the
    /// delay to the next round, in ms.
    async fn maintain(&mut self) -> u64 {
        {
            if let Err(e) = self.retire_idle().await {
                eprintln!("stackvirtd: retiring: {e:#}");
            }
            if let Err(e) = self.renew_leases().await {
                eprintln!("stackvirtd: renewing leases: {e:#}");
            }
            if let Some(c) = &self.dns {
                let now = Some(c.snapshot());
                if now != self.state.dns {
                    self.state.dns = now;
                    self.dirty = true;
                }
            }
            if self.state.mptcp != self.published_mptcp {
                self.published_mptcp = self.state.mptcp;
                self.dirty = true;
            }
            if std::mem::take(&mut self.dirty) {
                if let Err(e) = self.state.save(&self.args.state) {
                    eprintln!("stackvirtd: publishing the counters: {e:#}");
                }
            }
            let capped = self.args.ipv4_dhcp && self.leases.len() >= self.args.max_leases as usize;
            if capped != self.at_lease_cap {
                self.at_lease_cap = capped;
                if capped {
                    eprintln!("stackvirtd: holding {} leases, the cap: no new pseudonym until one retires", self.leases.len());
                }
            }
            // DAD runs beside the loop (Pending), but the creation and a
            // DHCP exchange do not: no event is read meanwhile, so joins
            // come first.  Connections whose CLOSED never came (an event lost to a
            // full socket buffer) are forgotten after a day.
            self.followed
                .retain(|_, c| c.created.elapsed() < FORGET_AFTER);
            // At most JOIN_HOLD per new connection (a stream of them to
            // servers that announce nothing delays the refill: known).
            let now = Instant::now();
            let joining = self.followed.values().any(|c| match c.join {
                Join::Waiting => now.duration_since(c.created) < JOIN_HOLD,
                Join::Retrying { since, .. } => now.duration_since(since) < JOIN_PATIENCE,
                Join::Joined(_) | Join::Failed => false,
            });
            if self.check_pending().await {
                // DAD runs: the next look in 50 ms.
                return 50;
            }
            // Counted after check_pending(), which may just have offered one.
            let free = self.free().unwrap_or_else(|e| {
                eprintln!("stackvirtd: reading the pool: {e:#}");
                self.args.pool
            });
            if !capped && !joining && free < self.args.pool {
                if let Err(e) = self.add_one().await {
                    eprintln!("stackvirtd: pseudonym {} not made: {e:#}", self.next_id - 1);
                }
                rand::thread_rng().gen_range(self.args.jitter_ms / 2..=self.args.jitter_ms.max(1))
            } else {
                100
            }
        }
    }

    /// Follows the connections this host opens and gives each, when its
    /// peer announces an address, one subflow to it from a pseudonym of
    /// its own.
    async fn on_mptcp(&mut self, e: Event) {
        let counters = self.state.mptcp.get_or_insert_with(Default::default);
        counters.events += 1;
        let Some(token) = e.token else {
            return;
        };
        match e.kind {
            event::CREATED | event::ESTABLISHED if !e.server_side => {
                let Some(dport) = e.dport else {
                    return;
                };
                let conn = self.followed.entry(token).or_insert_with(|| {
                    counters.connections += 1;
                    Followed {
                        dport,
                        established: false,
                        announced: None,
                        // An IPv6 socket's IPv4 peer is ::ffff:a.b.c.d.
                        remote: e.daddr.map(|a| SocketAddr::new(a.to_canonical(), dport)),
                        created: Instant::now(),
                        join: Join::Waiting,
                    }
                });
                conn.established |= e.kind == event::ESTABLISHED;
                self.join(token).await;
            }
            event::ANNOUNCED => {
                let (Some(conn), Some(addr)) = (self.followed.get_mut(&token), e.daddr) else {
                    counters.not_followed += 1;
                    return;
                };
                counters.announced += 1;
                if conn.announced.is_none() {
                    let port = e.dport.filter(|&p| p != 0).unwrap_or(conn.dport);
                    conn.announced = Some(SocketAddr::new(addr.to_canonical(), port));
                }
                self.join(token).await;
            }
            event::SUB_ESTABLISHED | event::SUB_CLOSED => {
                let ours = self
                    .followed
                    .get(&token)
                    .and_then(|c| match c.join {
                        Join::Joined(id) => Some(id),
                        _ => None,
                    })
                    .and_then(|id| self.state.pseudonyms.iter().find(|p| p.id == id))
                    .is_some_and(|p| e.saddr.is_some_and(|a| p.addresses().contains(&a)));
                if ours && e.kind == event::SUB_ESTABLISHED {
                    counters.subflows_established += 1;
                } else if ours && e.error.is_some_and(|err| err != 0) {
                    counters.subflow_errors += 1;
                    eprintln!(
                        "stackvirtd: MPTCP {token:08x}: the subflow from {:?} closed: {}",
                        e.saddr,
                        std::io::Error::from_raw_os_error(i32::from(e.error.unwrap_or(0)))
                    );
                }
            }
            event::CLOSED => {
                self.followed.remove(&token);
            }
            _ => {}
        }
    }

    /// Asks again for the subflows refused for now whose time came.
    async fn retry_joins(&mut self) {
        let now = Instant::now();
        let due: Vec<u32> = self
            .followed
            .iter()
            .filter(|(_, c)| matches!(c.join, Join::Retrying { next, .. } if next <= now))
            .map(|(t, _)| *t)
            .collect();
        for token in due {
            self.join(token).await;
        }
    }

    /// Opens connection `token`'s subflow to the address `--mptcp-join`
    /// names (the one its peer announced, or its own remote address),
    /// from a free pseudonym taken for it alone, once the connection is
    /// established and that address known; a refusal
    /// for now (`EAGAIN`, `ENOTCONN`) is asked again every [`JOIN_RETRY`]
    /// for [`JOIN_PATIENCE`].
    async fn join(&mut self, token: u32) {
        let Some(conn) = self.followed.get(&token) else {
            return;
        };
        let target = match self.args.mptcp_join {
            JoinTo::Announced => conn.announced,
            JoinTo::Remote => conn.remote,
        };
        let (true, Some(remote)) = (conn.established, target) else {
            return;
        };
        if self.pm.is_none() {
            return;
        }
        let now = Instant::now();
        let (id, p, since) = match conn.join {
            Join::Waiting => {
                let flag = if remote.is_ipv4() {
                    maps::HAS_IPV4
                } else {
                    maps::HAS_IPV6
                };
                let taken = self.bpf.take(flag).unwrap_or_else(|e| {
                    eprintln!("stackvirtd: taking a pseudonym for MPTCP: {e:#}");
                    None
                });
                let Some((id, p)) = taken else {
                    if let Some(c) = self.state.mptcp.as_mut() {
                        c.no_pseudonym += 1;
                    }
                    self.set_join(token, Join::Failed);
                    eprintln!("stackvirtd: MPTCP {token:08x}: no free pseudonym for a subflow to {remote}");
                    return;
                };
                (id, p, now)
            }
            Join::Retrying {
                id,
                pseudonym,
                since,
                next,
            } if next <= now => (id, pseudonym, since),
            _ => return,
        };
        let Some(pm) = self.pm.as_mut() else {
            return;
        };
        let local = if remote.is_ipv4() {
            IpAddr::from(p.ipv4)
        } else {
            IpAddr::from(p.ipv6)
        };
        let asked = SubflowCreate {
            token,
            local,
            // The initial subflow's is 0; this is the connection's only
            // other local address.
            local_id: 1,
            ifindex: p.ifindex,
            remote,
        };
        let result = pm.create_subflow(asked).await;
        let later = |e: &anyhow::Error| {
            e.downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::raw_os_error)
                .is_some_and(|n| n == libc::EAGAIN || n == libc::ENOTCONN)
        };
        let Some(counters) = self.state.mptcp.as_mut() else {
            return;
        };
        let join = match result {
            Ok(()) => {
                counters.subflows += 1;
                eprintln!(
                    "stackvirtd: MPTCP {token:08x}: subflow from {} ({local}) to {remote}",
                    pool::device_name(id)
                );
                Join::Joined(id)
            }
            Err(e) if later(&e) && now.duration_since(since) < JOIN_PATIENCE => {
                if since == now {
                    eprintln!("stackvirtd: MPTCP {token:08x}: subflow from {local} to {remote}: {e:#}; asking again");
                }
                Join::Retrying {
                    id,
                    pseudonym: p,
                    since,
                    next: now + JOIN_RETRY,
                }
            }
            Err(e) => {
                counters.subflow_failed += 1;
                eprintln!("stackvirtd: MPTCP {token:08x}: subflow from {local} to {remote}: {e:#}");
                Join::Failed
            }
        };
        self.set_join(token, join);
    }

    fn set_join(&mut self, token: u32, join: Join) {
        if let Some(c) = self.followed.get_mut(&token) {
            c.join = join;
        }
    }

    /// Takes over the pseudonyms `earlier` of the instance whose pins
    /// were adopted: each whose device (or, IP-only, whose addresses on
    /// the uplink) is still there is the daemon's again, with its lease
    /// renewed at once; the others are withdrawn from the maps.
    async fn take_over(&mut self, earlier: Vec<PseudonymState>, next_id: u32) -> Result<()> {
        let now = Instant::now();
        let mut kept = HashSet::new();
        let mut dropped = false;
        self.next_id = next_id;
        for p in earlier {
            let ips = p.addresses();
            let index = if self.args.ip_only {
                let mut all = true;
                for &a in &ips {
                    all &= self.net.has_address(self.uplink.index, a).await?;
                }
                all.then_some(self.uplink.index)
            } else {
                self.net.device(&p.device).await
            };
            let mac = pool::parse_mac(&p.mac).context("a pseudonym's MAC in the state")?;
            self.next_id = self.next_id.max(p.id + 1);
            let Some(index) = index else {
                eprintln!("stackvirtd: {} is gone: withdrawn", p.device);
                dropped = true;
                let _ = self.bpf.retire(p.id, mac, p.ipv4, p.ipv6);
                let _ = nft::apply(&nft::retire(self.device_of(&p.device), &ips));
                let _ = self.net.remove(p.id).await;
                continue;
            };
            self.macs.insert(mac);
            self.ipv4_taken.extend(p.ipv4);
            self.ipv6_taken.extend(p.ipv6);
            if let Ok(mut b) = self.book.lock() {
                b.insert(p.id, (p.ipv4, p.ipv6));
            }
            if p.lease.is_some() {
                self.leases.insert(
                    p.id,
                    LeaseTimes {
                        index,
                        granted: now,
                        next_renewal: now,
                    },
                );
            }
            kept.insert(p.id);
            self.state.pseudonyms.push(p);
        }
        if dropped {
            self.bpf.refresh_free(|id| kept.contains(&id))?;
        }
        // Groups and sockets of pseudonyms retired before the adoption
        // (the earlier instance may have died between the steps).
        self.bpf.forget_all_but(|id| kept.contains(&id))?;
        if !kept.is_empty() {
            eprintln!("stackvirtd: adopted {} pseudonyms", kept.len());
        }
        self.state.next_id = self.next_id;
        self.state.save(&self.args.state)
    }
}

/// What an earlier instance left that this one can take over: its pinned
/// maps (the programs attached through pinned links) and its published
/// state, when it is no longer running and ran with the same uplink,
/// cgroup and program configuration `wanted`.  `None` (with the reason
/// said) when there is nothing to adopt.
///
/// # Errors
/// The earlier instance is still running.
async fn adoptable(args: &Args, wanted: &maps::Config) -> Result<Option<(Loaded, State)>> {
    let Ok(earlier) = State::load(&args.state) else {
        return Ok(None);
    };
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", earlier.pid)).unwrap_or_default();
    if earlier.pid != std::process::id() && comm.trim() == "stackvirtd" {
        bail!(
            "stackvirtd pid {} is running with {}",
            earlier.pid,
            args.state.display()
        );
    }
    let said = |why: &str| {
        eprintln!(
            "stackvirtd: not adopting pid {}'s state: {why}",
            earlier.pid
        );
        Ok(None)
    };
    if earlier.uplink != args.uplink || earlier.cgroup != args.cgroup {
        return said("another uplink or cgroup");
    }
    if earlier.object != bpf::object_id() {
        return said("another build of the BPF programs");
    }
    let bpf = match Loaded::adopt(&args.pin_dir) {
        Ok(Some(b)) => b,
        Ok(None) => return said("its pins are gone"),
        Err(e) => return said(&format!("{e:#}")),
    };
    if bpf.config().ok().as_ref() != Some(wanted) {
        return said("other settings (policy, fail, DNS, IP-only) or network namespace");
    }
    if nft::counter("inbound_dropped").is_err() {
        return said("its nftables table is gone");
    }
    Ok(Some((bpf, earlier)))
}

/// Removes every trace of a daemon: pins (which detaches the programs),
/// the nftables table, the pseudonyms' devices and rules, the state file.
async fn teardown(net: &Net, args: &Args) -> Result<()> {
    bpf::remove_pins(&args.pin_dir)?;
    // No table yet is fine: nothing to remove.
    let _ = nft::remove();
    net.remove_all().await?;
    match std::fs::remove_file(&args.state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.ipv4_range.is_none() && !args.ipv4_dhcp && !args.ipv6 {
        bail!("give pseudonyms addresses: --ipv4-range or --ipv4-dhcp, --ipv6, or both");
    }
    let net = Net::new()?;
    let uplink = net.uplink(&args.uplink).await?;
    if args.ipv6 && (uplink.prefix6.is_none() || uplink.gateway6.is_none()) {
        bail!(
            "--ipv6: {} has no /64 and default router from router advertisements yet",
            args.uplink
        );
    }
    let tag = args
        .dns_upstream
        .map(|_| DnsTag::new(args.dns_listen, args.dns_tag_net))
        .transpose()?;
    if let Some(u) = args.dns_upstream.filter(|u| u.ip().is_loopback()) {
        // A pseudonym's address may not talk to the host's loopback (the
        // egress filter drops it): every query would time out.
        bail!("--dns-upstream {u}: a resolver on the network, not on this host's loopback");
    }
    // Bound first: a stub that cannot be (its address in use) stops the
    // daemon before it changes anything.
    let stub = match &tag {
        Some(t) => Some(dns::Stub::bind(t).await?),
        None => None,
    };
    let wanted = bpf::config_for(args.policy, args.fail, tag, args.ip_only)?;
    // An earlier instance with --mptcp-pm that left with SIGUSR1 or was
    // killed left pm_type 1: the value before it is in its state.
    let left_pm_type = State::load(&args.state).ok().and_then(|s| s.pm_type_before);
    let adopted = if args.fresh {
        None
    } else {
        adoptable(&args, &wanted).await?
    };
    let (bpf, earlier, next_id) = match adopted {
        Some((bpf, earlier)) => {
            let next = earlier.next_id.max(
                earlier
                    .pseudonyms
                    .iter()
                    .map(|p| p.id + 1)
                    .max()
                    .unwrap_or(0),
            );
            (bpf, earlier.pseudonyms, next)
        }
        None => {
            teardown(&net, &args)
                .await
                .context("removing an earlier instance's state")?;
            nft::apply(&nft::ruleset())?;
            let bpf = Loaded::attach(
                &args.cgroup,
                &args.uplink,
                &args.pin_dir,
                args.policy,
                args.fail,
                tag,
                args.ip_only,
            )?;
            (bpf, Vec::new(), 0)
        }
    };
    let mut state = State {
        pid: std::process::id(),
        uplink: args.uplink.clone(),
        cgroup: args.cgroup.clone(),
        policy: args.policy,
        fail: args.fail,
        pool: args.pool,
        pseudonyms: Vec::new(),
        dns: tag.map(|_| dns::DnsCounters::default()),
        next_id: 0,
        object: bpf::object_id(),
        mptcp: args.mptcp_pm.then(mptcp::Counters::default),
        pm_type_before: None,
    };
    let book = Book::default();
    let counters = Arc::new(dns::Counters::default());
    let stub = match (tag, args.dns_upstream, stub) {
        (Some(tag), Some(upstream), Some(stub)) => {
            eprintln!(
                "stackvirtd: DNS stub on {}, upstream {upstream}, tags in {}/16",
                tag.stub, tag.tag_net
            );
            tokio::spawn(stub.serve(tag, upstream, book.clone(), counters.clone()));
            true
        }
        _ => false,
    };
    let (pm, mut pm_type) = if args.mptcp_pm {
        let pm = PathManager::subscribe().await?;
        let now = std::fs::read_to_string(PM_TYPE)
            .with_context(|| format!("{PM_TYPE} (CONFIG_MPTCP, Linux 5.19 or later)"))?;
        let before = left_pm_type.unwrap_or_else(|| now.trim().to_owned());
        std::fs::write(PM_TYPE, "1").with_context(|| format!("setting {PM_TYPE} to 1"))?;
        eprintln!("stackvirtd: MPTCP's userspace path manager (pm_type 1, was {before})");
        (Some(pm), PmType(Some(before)))
    } else {
        // Without --mptcp-pm now: what an earlier one left goes back.
        drop(PmType(left_pm_type));
        (None, PmType(None))
    };
    state.pm_type_before.clone_from(&pm_type.0);
    eprintln!(
        "stackvirtd: {uplink:?}, policy {:?}, fail {:?}",
        args.policy, args.fail
    );
    let mut daemon = Daemon {
        args,
        net,
        uplink,
        bpf,
        state,
        next_id: 0,
        macs: HashSet::new(),
        ipv4_taken: HashSet::new(),
        ipv6_taken: HashSet::new(),
        last_busy: HashMap::new(),
        leases: HashMap::new(),
        at_lease_cap: false,
        book,
        dns: stub.then_some(counters),
        pm,
        followed: HashMap::new(),
        published_mptcp: None,
        dirty: false,
        pending: None,
    };
    // Saves the state: not before, so that a failure until here leaves the
    // earlier instance's for the next try.
    daemon.take_over(earlier, next_id).await?;
    let result = daemon.run().await;
    // A pseudonym still in DAD was never published: it goes either way.
    daemon.abandon_pending().await;
    if let Ok(Exit::Leave) = result {
        pm_type.keep();
        eprintln!(
            "stackvirtd: leaving {} pseudonyms, the programs and maps for the next instance",
            daemon.state.pseudonyms.len()
        );
        return Ok(());
    }
    // Leases go back to the server before the devices go.
    for p in daemon.state.pseudonyms.clone() {
        daemon.release(&p).await;
    }
    // pm_type goes back first, whatever the teardown does (PmType).
    drop(pm_type);
    teardown(&daemon.net, &daemon.args).await?;
    result.map(|_| ())
}
