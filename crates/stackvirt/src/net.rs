//! The pseudonyms' network side, through rtnetlink: what the uplink offers
//! (its IPv4 subnet and gateway, the IPv6 prefix and router learnt from
//! router advertisements), and for each pseudonym a macvlan with its MAC,
//! its addresses, its routing table and the `from ADDRESS` rules that
//! select it, with ARP answered per device; in the IP-only mode, its
//! addresses on the uplink itself, with the uplink's MAC.

use std::{
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use rtnetlink::{
    new_connection,
    packet_route::{
        address::{AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope, CacheInfo},
        link::{LinkAttribute, MacVlanMode},
        route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope},
        rule::{RuleAction, RuleAttribute},
        AddressFamily,
    },
    Handle, IpVersion, LinkMacVlan, LinkUnspec, RouteMessageBuilder, RuleAddRequest,
};

use crate::pool::{self, DEVICE_PREFIX, RULE_PRIORITY, TABLE_BASE};

/// What the uplink's own configuration says about the link.
#[derive(Clone, Debug)]
pub struct Uplink {
    pub name: String,
    pub index: u32,
    /// Its own MAC: every pseudonym's in the IP-only mode.
    pub mac: [u8; 6],
    /// The IPv4 subnet (network address, prefix length) of the uplink's
    /// address, for the pseudonyms' on-link route.
    pub subnet4: Option<(Ipv4Addr, u8)>,
    /// The main table's IPv4 default gateway through the uplink.
    pub gateway4: Option<Ipv4Addr>,
    /// The /64 of the uplink's global IPv6 address (SLAAC from the router
    /// advertisements), where pseudonyms' IPv6 addresses come from.
    pub prefix6: Option<Ipv6Addr>,
    /// The IPv6 default router through the uplink (a link-local address).
    pub gateway6: Option<Ipv6Addr>,
}

/// A pseudonym's addresses, as asked of [`Net::create`].
#[derive(Clone, Copy, Debug)]
pub struct Addresses {
    pub mac: [u8; 6],
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// A netlink connection (its task runs on the current tokio runtime).
pub struct Net {
    handle: Handle,
}

/// Writes a sysctl under /proc/sys/net.
fn sysctl(path: &str, value: &str) -> Result<()> {
    let p = format!("/proc/sys/net/{path}");
    fs::write(&p, value).with_context(|| format!("writing {value} to {p}"))
}

/// Adds `rule`, sending what it matches to pseudonym table `table`.
async fn into_table<T>(rule: RuleAddRequest<T>, table: u32) -> Result<(), rtnetlink::Error> {
    rule.table_id(table)
        .action(RuleAction::ToTable)
        .priority(RULE_PRIORITY)
        .execute()
        .await
}

/// The gateway and output device of a default route, if it is one.
fn default_route(r: &RouteMessage) -> Option<(IpAddr, u32)> {
    if r.header.destination_prefix_length != 0 {
        return None;
    }
    let mut gw = None;
    let mut oif = None;
    for a in &r.attributes {
        match a {
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => gw = Some(IpAddr::V4(*g)),
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gw = Some(IpAddr::V6(*g)),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    Some((gw?, oif?))
}

impl Net {
    /// Opens the connection.
    ///
    /// # Errors
    /// No netlink socket.
    pub fn new() -> Result<Self> {
        let (connection, handle, _) = new_connection().context("opening rtnetlink")?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    async fn index(&self, name: &str) -> Result<u32> {
        Ok(self.link(name).await?.header.index)
    }

    async fn link(&self, name: &str) -> Result<rtnetlink::packet_route::link::LinkMessage> {
        self.handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute()
            .try_next()
            .await
            .with_context(|| format!("no link {name}"))?
            .ok_or_else(|| anyhow!("no link {name}"))
    }

    /// The index of device `name`, if there is one.
    pub async fn device(&self, name: &str) -> Option<u32> {
        self.index(name).await.ok()
    }

    /// The addresses of device `index`, as the kernel dumps them.
    async fn addresses_of(&self, index: u32) -> Result<Vec<AddressMessage>> {
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(m) = addrs.try_next().await? {
            out.push(m);
        }
        Ok(out)
    }

    /// Whether device `index` has address `ip`.
    ///
    /// # Errors
    /// A failing dump.
    pub async fn has_address(&self, index: u32, ip: IpAddr) -> Result<bool> {
        Ok(self.addresses_of(index).await?.iter().any(|m| {
            m.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(a) if *a == ip))
        }))
    }

    /// Reads the uplink `name`, and makes it silent for the pseudonyms'
    /// addresses (`arp_ignore=1`, `arp_announce=2`).
    ///
    /// # Errors
    /// No such link, or a failing dump.
    pub async fn uplink(&self, name: &str) -> Result<Uplink> {
        let link = self.link(name).await?;
        let index = link.header.index;
        let mac = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(m) => <[u8; 6]>::try_from(m.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| anyhow!("{name} has no Ethernet address"))?;
        let mut up = Uplink {
            name: name.to_string(),
            index,
            mac,
            subnet4: None,
            gateway4: None,
            prefix6: None,
            gateway6: None,
        };
        for m in self.addresses_of(index).await? {
            let len = m.header.prefix_len;
            for a in &m.attributes {
                match a {
                    // The first (primary) address; an IP-only pseudonym's
                    // /32 is no subnet.
                    AddressAttribute::Address(IpAddr::V4(ip))
                        if up.subnet4.is_none() && len < 32 =>
                    {
                        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                        up.subnet4 = Some((Ipv4Addr::from(u32::from(*ip) & mask), len));
                    }
                    AddressAttribute::Address(IpAddr::V6(ip))
                        if m.header.scope == AddressScope::Universe && len == 64 =>
                    {
                        up.prefix6 = Some(*ip);
                    }
                    _ => {}
                }
            }
        }
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
        for query in [v4, v6] {
            let mut routes = self.handle.route().get(query).execute();
            while let Some(r) = routes.try_next().await? {
                match default_route(&r) {
                    Some((IpAddr::V4(g), oif)) if oif == index => up.gateway4 = Some(g),
                    Some((IpAddr::V6(g), oif)) if oif == index => up.gateway6 = Some(g),
                    _ => {}
                }
            }
        }
        sysctl(&format!("ipv4/conf/{name}/arp_ignore"), "1")?;
        sysctl(&format!("ipv4/conf/{name}/arp_announce"), "2")?;
        Ok(up)
    }

    /// Creates pseudonym `id` on `up` with `addr`: a private-mode macvlan
    /// (pseudonyms do not see each other's frames) with the MAC, ARP
    /// answered only for its own address and announced from it, no SLAAC
    /// or router solicitation of its own, the addresses as /32 and /128 (no
    /// on-link routes in `main`, so the default address keeps the uplink),
    /// a routing table with the on-link and default routes through the
    /// device, and the `from ADDRESS` and `oif DEVICE` rules into it (the
    /// second for sockets tied to the device with no address yet: ICMP
    /// sockets, see bpf/stackvirt.bpf.c).  Returns the device's
    /// index.  Kernel DAD runs on the IPv6 address: see
    /// [`Net::dad_done`].
    ///
    /// # Errors
    /// The kernel's refusal of any step (the caller removes what was made).
    pub async fn create(&self, up: &Uplink, id: u32, addr: &Addresses) -> Result<u32> {
        let index = self.create_link(up, id, addr.mac).await?;
        if let Some(ip) = addr.ipv4 {
            self.add_ipv4(id, index, ip, up.subnet4, up.gateway4)
                .await?;
        }
        if let Some(ip) = addr.ipv6 {
            self.add_ipv6(up, id, index, ip).await?;
        }
        Ok(index)
    }

    /// Creates pseudonym `id` in the IP-only mode: no device of its own,
    /// its addresses on the uplink `up` itself (so it has the uplink's
    /// MAC), as /32 and /128 (no on-link route in `main`), the IPv6 one
    /// deprecated (preferred lifetime 0) so that the host's own sockets
    /// never choose it as a source (RFC 6724 rule 3) while a socket bound
    /// to it may use it; its table and the `from ADDRESS` rule into it as
    /// in [`Net::create`], but no `oif` rule (the device is the host's).
    /// Returns the uplink's index.
    ///
    /// # Errors
    /// The kernel's refusal of any step (the caller removes what was made).
    pub async fn create_shared(&self, up: &Uplink, id: u32, addr: &Addresses) -> Result<u32> {
        if let Some(ip) = addr.ipv4 {
            self.address_v4(id, up.index, ip, up.subnet4, up.gateway4, None)
                .await?;
        }
        if let Some(ip) = addr.ipv6 {
            self.address_v6(up, id, up.index, ip, None).await?;
        }
        Ok(up.index)
    }

    /// [`Net::add_ipv4`] in the IP-only mode: on the uplink, without the
    /// `oif` rule (see [`Net::create_shared`]).
    pub async fn add_ipv4_shared(
        &self,
        up: &Uplink,
        id: u32,
        ip: Ipv4Addr,
        subnet: Option<(Ipv4Addr, u8)>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        self.address_v4(id, up.index, ip, subnet, gateway, None)
            .await
    }

    /// [`Net::add_ipv6`] in the IP-only mode: on the uplink, deprecated,
    /// without the `oif` rule (see [`Net::create_shared`]).
    pub async fn add_ipv6_shared(&self, up: &Uplink, id: u32, ip: Ipv6Addr) -> Result<()> {
        self.address_v6(up, id, up.index, ip, None).await
    }

    /// The device of pseudonym `id` alone, up, without addresses: the
    /// first step of [`Net::create`], before a DHCP lease.  Returns its
    /// index.
    pub async fn create_link(&self, up: &Uplink, id: u32, mac: [u8; 6]) -> Result<u32> {
        let dev = pool::device_name(id);
        self.handle
            .link()
            .add(
                LinkMacVlan::new(&dev, up.index, MacVlanMode::Private)
                    .address(mac.to_vec())
                    .build(),
            )
            .execute()
            .await
            .with_context(|| format!("creating macvlan {dev} on {}", up.name))?;
        let index = self.index(&dev).await?;
        // A pseudonym never forwards: a frame for an address it does not
        // have yet (a DHCP offer) must not be routed on, with an ARP from
        // the host's own address that would tie the two together.
        sysctl(&format!("ipv4/conf/{dev}/forwarding"), "0")?;
        sysctl(&format!("ipv4/conf/{dev}/arp_ignore"), "1")?;
        sysctl(&format!("ipv4/conf/{dev}/arp_announce"), "2")?;
        for (k, v) in [
            ("accept_ra", "0"),
            ("autoconf", "0"),
            ("use_tempaddr", "0"),
            ("router_solicitations", "0"),
        ] {
            sysctl(&format!("ipv6/conf/{dev}/{k}"), v)?;
        }
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .with_context(|| format!("setting {dev} up"))?;
        Ok(index)
    }

    /// Gives pseudonym `id` (device `index`) the IPv4 address `ip` as /32,
    /// its table the on-link route to `subnet` and the default route via
    /// `gateway`, and the rules into the table.
    pub async fn add_ipv4(
        &self,
        id: u32,
        index: u32,
        ip: Ipv4Addr,
        subnet: Option<(Ipv4Addr, u8)>,
        gateway: Option<Ipv4Addr>,
    ) -> Result<()> {
        let dev = pool::device_name(id);
        self.address_v4(id, index, ip, subnet, gateway, Some(dev))
            .await
    }

    /// [`Net::add_ipv4`] on device `index`, with the `oif` rule for
    /// `oif_rule`, if any.
    async fn address_v4(
        &self,
        id: u32,
        index: u32,
        ip: Ipv4Addr,
        subnet: Option<(Ipv4Addr, u8)>,
        gateway: Option<Ipv4Addr>,
        oif_rule: Option<String>,
    ) -> Result<()> {
        let table = pool::table(id);
        self.handle
            .address()
            .add(index, IpAddr::V4(ip), 32)
            .execute()
            .await?;
        if let Some((net, len)) = subnet {
            let onlink = RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(net, len)
                .output_interface(index)
                .pref_source(ip)
                .scope(RouteScope::Link)
                .table_id(table)
                .build();
            self.handle.route().add(onlink).execute().await?;
        }
        if let Some(gw) = gateway {
            let default = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .pref_source(ip)
                .table_id(table)
                .build();
            self.handle.route().add(default).execute().await?;
        }
        let rule = || self.handle.rule().add().v4();
        into_table(rule().source_prefix(ip, 32), table)
            .await
            .with_context(|| format!("rule from {ip} lookup {table}"))?;
        if let Some(dev) = oif_rule {
            into_table(rule().output_interface(dev.clone()), table)
                .await
                .with_context(|| format!("rule oif {dev} lookup {table}"))?;
        }
        Ok(())
    }

    /// Gives pseudonym `id` (device `index`) the IPv6 address `ip` as
    /// /128, its table the on-link route to the uplink's /64 and the
    /// default route via its router, and the rules into the table.
    pub async fn add_ipv6(&self, up: &Uplink, id: u32, index: u32, ip: Ipv6Addr) -> Result<()> {
        let dev = pool::device_name(id);
        self.address_v6(up, id, index, ip, Some(dev)).await
    }

    /// [`Net::add_ipv6`] on device `index`, with the `oif` rule for
    /// `oif_rule`, if any; without one (the IP-only mode, on the uplink)
    /// the address is deprecated from the start.
    async fn address_v6(
        &self,
        up: &Uplink,
        id: u32,
        index: u32,
        ip: Ipv6Addr,
        oif_rule: Option<String>,
    ) -> Result<()> {
        let table = pool::table(id);
        let mut add = self.handle.address().add(index, IpAddr::V6(ip), 128);
        if oif_rule.is_none() {
            let mut lifetimes = CacheInfo::default();
            lifetimes.ifa_valid = u32::MAX; // forever
            add.message_mut()
                .attributes
                .push(AddressAttribute::CacheInfo(lifetimes));
        }
        add.execute().await?;
        if let Some(prefix) = up.prefix6 {
            let onlink = RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(prefix, 64)
                .output_interface(index)
                .table_id(table)
                .build();
            self.handle.route().add(onlink).execute().await?;
        }
        if let Some(gw) = up.gateway6 {
            let default = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .table_id(table)
                .build();
            self.handle.route().add(default).execute().await?;
        }
        let rule = || self.handle.rule().add().v6();
        into_table(rule().source_prefix(ip, 128), table)
            .await
            .with_context(|| format!("rule from {ip} lookup {table}"))?;
        if let Some(dev) = oif_rule {
            into_table(rule().output_interface(dev.clone()), table)
                .await
                .with_context(|| format!("rule oif {dev} lookup {table}"))?;
        }
        Ok(())
    }

    /// Whether the IPv6 address `ip` of device `index` has passed
    /// duplicate address detection: `true` once it is no longer
    /// tentative (or gone from the device), `false` while DAD runs.  One
    /// address dump; it never waits.
    ///
    /// # Errors
    /// DAD failed (another host has the address), or the dump failed.
    pub async fn dad_done(&self, index: u32, ip: Ipv6Addr) -> Result<bool> {
        let mut tentative = false;
        for m in self.addresses_of(index).await? {
            // Only `ip`: the IP-only mode's uplink has the host's
            // addresses too.
            let this = m
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V6(a)) if *a == ip));
            if m.header.family != AddressFamily::Inet6 || !this {
                continue;
            }
            if m.header.flags.contains(AddressHeaderFlags::Dadfailed) {
                bail!("duplicate address detection failed for {ip} on device {index}");
            }
            tentative |= m.header.flags.contains(AddressHeaderFlags::Tentative);
        }
        Ok(!tentative)
    }

    /// Removes pseudonym `id`: its device (with its addresses and routes)
    /// or, in the IP-only mode (no device of its own), its addresses on
    /// the uplink and its table's routes; then the rules into its table.
    ///
    /// # Errors
    /// A failing dump or deletion.
    pub async fn remove(&self, id: u32) -> Result<()> {
        let table = pool::table(id);
        if let Ok(index) = self.index(&pool::device_name(id)).await {
            self.handle.link().del(index).execute().await?;
        }
        self.remove_rules(|t| t == table).await
    }

    /// Deletes the daemon's rules (priority [`RULE_PRIORITY`]) whose table
    /// satisfies `doomed`, the /32 and /128 addresses their `from`
    /// selectors name (on whatever device: the IP-only mode puts them on
    /// the uplink) and the routes of their tables.
    async fn remove_rules(&self, doomed: impl Fn(u32) -> bool) -> Result<()> {
        let mut sources = Vec::new();
        let mut tables = std::collections::HashSet::new();
        for version in [IpVersion::V4, IpVersion::V6] {
            let mut rules = self.handle.rule().get(version).execute();
            let mut found = Vec::new();
            while let Some(r) = rules.try_next().await? {
                let table = r.attributes.iter().find_map(|a| match a {
                    RuleAttribute::Table(t) => Some(*t),
                    _ => None,
                });
                // Only the daemon's own rules: its priority, its tables.
                let ours = r
                    .attributes
                    .iter()
                    .any(|a| matches!(a, RuleAttribute::Priority(p) if *p == RULE_PRIORITY));
                if ours && table.is_some_and(&doomed) {
                    tables.extend(table);
                    sources.extend(r.attributes.iter().find_map(|a| match a {
                        RuleAttribute::Source(ip) => Some(*ip),
                        _ => None,
                    }));
                    found.push(r);
                }
            }
            for r in found {
                self.handle.rule().del(r).execute().await?;
            }
        }
        let mut addrs = self.handle.address().get().execute();
        let mut found = Vec::new();
        while let Some(m) = addrs.try_next().await? {
            // A pseudonym's address is a /32 or /128, never a subnet's.
            let host = m.header.prefix_len == 32 || m.header.prefix_len == 128;
            let ours = host
                && m.attributes
                    .iter()
                    .any(|a| matches!(a, AddressAttribute::Address(ip) if sources.contains(ip)));
            if ours {
                found.push(m);
            }
        }
        for m in found {
            self.handle.address().del(m).execute().await?;
        }
        let v4 = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let v6 = RouteMessageBuilder::<Ipv6Addr>::new().build();
        for query in [v4, v6] {
            let mut routes = self.handle.route().get(query).execute();
            let mut found = Vec::new();
            while let Some(r) = routes.try_next().await? {
                let table = r
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        RouteAttribute::Table(t) => Some(*t),
                        _ => None,
                    })
                    .unwrap_or(u32::from(r.header.table));
                if tables.contains(&table) {
                    found.push(r);
                }
            }
            for r in found {
                // Gone already with its address (IPv4 routes that use it).
                let _ = self.handle.route().del(r).execute().await;
            }
        }
        Ok(())
    }

    /// Removes every pseudonym: the `svp*` devices (their addresses and
    /// routes go with them) and the rules into their tables.
    ///
    /// # Errors
    /// A failing dump or deletion.
    pub async fn remove_all(&self) -> Result<()> {
        let mut links = self.handle.link().get().execute();
        let mut doomed = Vec::new();
        while let Some(l) = links.try_next().await? {
            let ours = l.attributes.iter().any(|a| {
                matches!(a, LinkAttribute::IfName(n) if n.starts_with(DEVICE_PREFIX)
                    && n[DEVICE_PREFIX.len()..].bytes().all(|b| b.is_ascii_digit()))
            });
            if ours {
                doomed.push(l.header.index);
            }
        }
        for index in doomed {
            self.handle.link().del(index).execute().await?;
        }
        self.remove_rules(|t| t >= TABLE_BASE).await
    }
}
