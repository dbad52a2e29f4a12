//! DHCPv4 leases for pseudonyms, with the anonymity profile of RFC 7844.
//!
//! Each pseudonym is a client of its own: its own MAC as `chaddr`, a
//! client identifier made of that MAC (RFC 7844 section 3.5), its own
//! transaction ids, and nothing else that a server or an observer could
//! link to the host or to another pseudonym.  In the IP-only mode every
//! pseudonym has the uplink's MAC as `chaddr`, and a random MAC of its
//! own in the client identifier ([`Client`]), which servers key leases by
//! (RFC 2131 section 4.2).  Every message carries only:
//!
//! - DHCPDISCOVER: message type (53), parameter request list (55), client
//!   identifier (61);
//! - DHCPREQUEST, selecting (RFC 2131 section 4.3.2): the same, with the
//!   offered address (50) and the chosen server (54), as RFC 2131 requires
//!   and RFC 7844 section 3.3 allows;
//! - DHCPREQUEST, renewing and rebinding: the same as DISCOVER, with the
//!   address in `ciaddr`;
//! - DHCPRELEASE: message type, client identifier, server identifier.
//!
//! Never a host name (12), an FQDN (81), a vendor class (60), a user class
//! (77), a previously used address in a DISCOVER, or a lease time wish.
//! `secs` stays 0 and the broadcast flag clear.  The options go in the
//! order of their codes (`dhcproto` keeps them sorted), the same for every
//! pseudonym of every host running this code.
//!
//! [`Lease::obtain`] and the other exchanges run over an `AF_PACKET`
//! socket on the pseudonym's own device (IP-only: the uplink; the
//! address does not exist yet, and answers are picked by transaction id),
//! building the IPv4 and UDP headers with `etherparse`.  Blocking: the
//! daemon runs them with `tokio::task::spawn_blocking`.

use std::{
    io,
    mem::size_of,
    net::Ipv4Addr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use dhcproto::{
    v4::{DhcpOption, Message, MessageType, Opcode, OptionCode},
    Decodable, Decoder, Encodable,
};
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};

/// The BOOTP ports (RFC 2131 section 4.1).
pub const SERVER_PORT: u16 = 67;
/// The client's port.
pub const CLIENT_PORT: u16 = 68;

/// What a pseudonym asks for (option 55): what it needs to route, and no
/// more, so that the list tells nothing about the operating system (RFC
/// 7844 section 3.6).
pub const PARAMETERS: [OptionCode; 3] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::AddressLeaseTime,
];

/// The client identifier of RFC 7844 section 3.5: hardware type 1
/// (Ethernet) and the pseudonym's own MAC, never a DUID of the machine.
pub fn client_id(mac: &[u8; 6]) -> Vec<u8> {
    let mut id = vec![1];
    id.extend_from_slice(mac);
    id
}

/// Who a pseudonym is to the DHCP server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    /// The MAC its frames leave with, and `chaddr`.
    pub link: [u8; 6],
    /// The hardware address in its client identifier: `link` itself
    /// (RFC 7844 section 3.5), except in the IP-only mode, where every
    /// pseudonym has the uplink's MAC and the server tells their leases
    /// apart by a random one of their own.
    pub id: [u8; 6],
}

impl Client {
    /// A client identified by its own MAC `mac`.
    #[must_use]
    pub fn own(mac: [u8; 6]) -> Self {
        Self { link: mac, id: mac }
    }
}

/// A message from `client` of `kind`, with the options every message of
/// the profile carries.
fn client_message(client: &Client, xid: u32, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
    let mut msg = Message::new_with_id(
        xid,
        ciaddr,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &client.link,
    );
    msg.set_opcode(Opcode::BootRequest);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ClientIdentifier(client_id(&client.id)));
    if kind != MessageType::Release {
        opts.insert(DhcpOption::ParameterRequestList(PARAMETERS.to_vec()));
    }
    msg
}

/// DHCPDISCOVER (RFC 2131 section 4.4.1): no address wished for.
pub fn discover(client: &Client, xid: u32) -> Message {
    client_message(client, xid, MessageType::Discover, Ipv4Addr::UNSPECIFIED)
}

/// DHCPREQUEST in the selecting state: take `offered` from `server`.
pub fn request_selecting(
    client: &Client,
    xid: u32,
    offered: Ipv4Addr,
    server: Ipv4Addr,
) -> Message {
    let mut msg = client_message(client, xid, MessageType::Request, Ipv4Addr::UNSPECIFIED);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::RequestedIpAddress(offered));
    opts.insert(DhcpOption::ServerIdentifier(server));
    msg
}

/// DHCPREQUEST in the renewing or rebinding state: extend the lease on
/// `addr` (in `ciaddr`, without options 50 and 54).
pub fn request_renewing(client: &Client, xid: u32, addr: Ipv4Addr) -> Message {
    client_message(client, xid, MessageType::Request, addr)
}

/// DHCPRELEASE (RFC 2131 section 4.4.6): give `addr` back to `server`.
pub fn release(client: &Client, xid: u32, addr: Ipv4Addr, server: Ipv4Addr) -> Message {
    let mut msg = client_message(client, xid, MessageType::Release, addr);
    msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    msg
}

/// A lease a server granted to one pseudonym.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The address (`yiaddr` of the DHCPACK).
    pub addr: Ipv4Addr,
    /// The subnet's prefix length (option 1; 24 when the server gave none).
    pub prefix_len: u8,
    /// The first router of option 3, if any.
    pub router: Option<Ipv4Addr>,
    /// The server (option 54), which renewals and the release go to.
    pub server: Ipv4Addr,
    /// The server's MAC, as its DHCPACK came from.
    pub server_mac: [u8; 6],
    /// The lease time (option 51), in seconds.
    pub seconds: u32,
    /// The client identifier's hardware address when it is not the
    /// link's MAC ([`Client::id`], the IP-only mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<[u8; 6]>,
}

impl Lease {
    /// When, counted from the lease's grant, to renew it: T1, half the
    /// lease time (RFC 2131 section 4.4.5).
    pub fn renew_after(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds) / 2)
    }

    /// How long the lease lasts from its grant.
    pub fn lasts(&self) -> Duration {
        Duration::from_secs(u64::from(self.seconds))
    }

    /// Asks the link of device `ifindex` for a lease for `client`:
    /// DISCOVER, the first OFFER, REQUEST, ACK.  Sends each message up to
    /// 4 times, waiting 1, 2, 4 and 8 s for the answer.  Errors: no server
    /// answered, a DHCPNAK, a socket error.
    pub fn obtain(ifindex: u32, client: &Client) -> Result<Lease> {
        let link = Link::open(ifindex)?;
        let xid: u32 = rand::random();
        let mac = &client.link;
        let offer = link
            .exchange(
                &discover(client, xid),
                Dest::Broadcast,
                mac,
                xid,
                &[MessageType::Offer],
            )
            .context("no DHCPOFFER")?;
        let server = server_of(&offer.0)?;
        let offered = offer.0.yiaddr();
        let req = request_selecting(client, xid, offered, server);
        let (ack, from) = link
            .exchange(
                &req,
                Dest::Broadcast,
                mac,
                xid,
                &[MessageType::Ack, MessageType::Nak],
            )
            .context("no DHCPACK")?;
        let mut lease = lease_of(&ack, from)?;
        lease.client_id = (client.id != client.link).then_some(client.id);
        Ok(lease)
    }

    /// The client this lease was granted to, whose frames leave with MAC
    /// `mac`.
    fn client(&self, mac: &[u8; 6]) -> Client {
        Client {
            link: *mac,
            id: self.client_id.unwrap_or(*mac),
        }
    }

    /// Extends this lease (a DHCPREQUEST from the leased address, to the
    /// server that granted it: the renewing state).  Returns the lease as
    /// the server now grants it.  Errors: no answer, [`Refused`] (a
    /// DHCPNAK: the address is no longer ours).  There is no rebinding
    /// (a broadcast after T2): a lease not renewed by its end is given up.
    pub fn renew(&self, ifindex: u32, mac: &[u8; 6]) -> Result<Lease> {
        let link = Link::open(ifindex)?;
        let xid: u32 = rand::random();
        let req = request_renewing(&self.client(mac), xid, self.addr);
        let dest = Dest::Unicast {
            src: self.addr,
            dst: self.server,
            mac: self.server_mac,
        };
        let (ack, from) = link
            .exchange(&req, dest, mac, xid, &[MessageType::Ack, MessageType::Nak])
            .context("no answer to the renewal")?;
        let mut lease = lease_of(&ack, from)?;
        lease.client_id = self.client_id;
        Ok(lease)
    }

    /// Gives the lease back (DHCPRELEASE; the server does not answer).
    pub fn release(&self, ifindex: u32, mac: &[u8; 6]) -> Result<()> {
        let link = Link::open(ifindex)?;
        let msg = release(&self.client(mac), rand::random(), self.addr, self.server);
        link.send(
            &msg,
            Dest::Unicast {
                src: self.addr,
                dst: self.server,
                mac: self.server_mac,
            },
        )
    }
}

/// The server identifier of a server's message.
fn server_of(msg: &Message) -> Result<Ipv4Addr> {
    match msg.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Ok(*s),
        _ => bail!("a DHCP answer without a server identifier"),
    }
}

/// The server answered DHCPNAK: the address is not the client's (any
/// more).  RFC 2131 section 4.4.5: a client that gets one while renewing
/// stops using the address at once.
#[derive(Debug, thiserror::Error)]
#[error("the server refused (DHCPNAK)")]
pub struct Refused;

/// The lease a DHCPACK grants; a DHCPNAK is [`Refused`].
fn lease_of(ack: &Message, from: [u8; 6]) -> Result<Lease> {
    if ack.opts().has_msg_type(MessageType::Nak) {
        return Err(Refused.into());
    }
    let server = server_of(ack)?;
    let prefix_len = match ack.opts().get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(m)) => u32::from(*m).leading_ones() as u8,
        _ => 24,
    };
    let router = match ack.opts().get(OptionCode::Router) {
        Some(DhcpOption::Router(r)) => r.first().copied(),
        _ => None,
    };
    let seconds = match ack.opts().get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(s)) => *s,
        _ => bail!("a DHCPACK without a lease time"),
    };
    Ok(Lease {
        addr: ack.yiaddr(),
        prefix_len,
        router,
        server,
        server_mac: from,
        seconds,
        client_id: None,
    })
}

/// Where a client message goes.
#[derive(Clone, Copy)]
enum Dest {
    /// From 0.0.0.0 to 255.255.255.255, to every MAC.
    Broadcast,
    /// From the leased address to the server, at its MAC.
    Unicast {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        mac: [u8; 6],
    },
}

/// An `AF_PACKET` datagram socket for IPv4 on one device.
struct Link {
    fd: OwnedFd,
    ifindex: u32,
}

impl Link {
    fn open(ifindex: u32) -> Result<Link> {
        let proto = (libc::ETH_P_IP as u16).to_be();
        // SAFETY: socket() has no memory arguments.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                i32::from(proto),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("packet socket");
        }
        // SAFETY: a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let sll = sockaddr_ll(ifindex, proto, None);
        // SAFETY: `sll` is a valid sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error()).context("binding the packet socket");
        }
        Ok(Link { fd, ifindex })
    }

    /// Sends `msg` as one IPv4/UDP datagram to `dest`.
    fn send(&self, msg: &Message, dest: Dest) -> Result<()> {
        let payload = msg.to_vec().context("encoding a DHCP message")?;
        let (src, dst, mac, sport, dport) = match dest {
            Dest::Broadcast => (
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                [0xff; 6],
                CLIENT_PORT,
                SERVER_PORT,
            ),
            Dest::Unicast { src, dst, mac } => (src, dst, mac, CLIENT_PORT, SERVER_PORT),
        };
        let builder = PacketBuilder::ipv4(src.octets(), dst.octets(), 64).udp(sport, dport);
        let mut frame = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut frame, &payload)
            .context("building the IPv4/UDP headers")?;
        let sll = sockaddr_ll(self.ifindex, (libc::ETH_P_IP as u16).to_be(), Some(mac));
        // SAFETY: `frame` is readable for its length and `sll` is a valid
        // sockaddr_ll of the size given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("sending a DHCP message");
        }
        Ok(())
    }

    /// Sends `msg` and waits for a server's answer to client `mac` with
    /// transaction `xid` of one of `kinds`, retransmitting after 1, 2, 4
    /// and 8 s (RFC 2131 section 4.1's backoff, shortened).  Returns the
    /// answer and the MAC it came from.
    fn exchange(
        &self,
        msg: &Message,
        dest: Dest,
        mac: &[u8; 6],
        xid: u32,
        kinds: &[MessageType],
    ) -> Result<(Message, [u8; 6])> {
        for wait in [1, 2, 4, 8] {
            self.send(msg, dest)?;
            let deadline = Instant::now() + Duration::from_secs(wait);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                let Some((frame, from)) = self.recv(left)? else {
                    break;
                };
                if let Some(answer) = answer(&frame, mac, xid, kinds) {
                    return Ok((answer, from));
                }
            }
        }
        bail!("no answer after 4 tries in 15 s")
    }

    /// One IPv4 packet for this device, or `None` after `timeout`.
    fn recv(&self, timeout: Duration) -> Result<Option<(Vec<u8>, [u8; 6])>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(e).context("waiting for a DHCP answer");
        }
        if rc == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; 2048];
        // SAFETY: all-zero is a valid sockaddr_ll to be filled in.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is writable for its length; `sll` and `len`
        // describe a writable sockaddr_ll.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&mut sll as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("receiving a DHCP answer");
        }
        buf.truncate(n as usize);
        let mut from = [0u8; 6];
        from.copy_from_slice(&sll.sll_addr[..6]);
        Ok(Some((buf, from)))
    }
}

/// The DHCP answer in the IPv4 packet `packet`, if it is a server's
/// message to client `mac` in transaction `xid`, of one of `kinds`.
pub fn answer(packet: &[u8], mac: &[u8; 6], xid: u32, kinds: &[MessageType]) -> Option<Message> {
    let sliced = SlicedPacket::from_ip(packet).ok()?;
    let Some(TransportSlice::Udp(udp)) = sliced.transport else {
        return None;
    };
    if udp.source_port() != SERVER_PORT || udp.destination_port() != CLIENT_PORT {
        return None;
    }
    let msg = Message::decode(&mut Decoder::new(udp.payload())).ok()?;
    let kind = msg.opts().msg_type()?;
    (msg.opcode() == Opcode::BootReply
        && msg.xid() == xid
        && msg.chaddr().get(..6) == Some(&mac[..])
        && kinds.contains(&kind))
    .then_some(msg)
}

fn sockaddr_ll(ifindex: u32, proto_be: u16, mac: Option<[u8; 6]>) -> libc::sockaddr_ll {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto_be;
    sll.sll_ifindex = ifindex as i32;
    if let Some(mac) = mac {
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&mac);
    }
    sll
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];

    /// The option codes of `msg` once encoded and decoded again.
    fn codes(msg: &Message) -> Vec<u8> {
        let bytes = msg.to_vec().unwrap();
        let back = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        back.opts().iter().map(|(c, _)| u8::from(*c)).collect()
    }

    #[test]
    fn discover_carries_only_the_profile() {
        let msg = discover(&Client::own(MAC), 7);
        assert_eq!(codes(&msg), vec![53, 55, 61]);
        assert_eq!(msg.chaddr(), &MAC[..]);
        assert_eq!(msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
        assert_eq!(msg.secs(), 0);
        assert!(!msg.flags().broadcast());
        assert_eq!(
            msg.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![
                1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55
            ]))
        );
    }

    #[test]
    fn ip_only_clients_are_told_apart_by_their_identifier() {
        let id = [0x0a, 1, 2, 3, 4, 5];
        let msg = discover(&Client { link: MAC, id }, 7);
        assert_eq!(msg.chaddr(), &MAC[..]);
        assert_eq!(
            msg.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(vec![1, 0x0a, 1, 2, 3, 4, 5]))
        );
        assert_eq!(codes(&msg), vec![53, 55, 61]);
    }

    #[test]
    fn request_names_only_the_offer_and_its_server() {
        let msg = request_selecting(
            &Client::own(MAC),
            7,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        assert_eq!(codes(&msg), vec![50, 53, 54, 55, 61]);
        let renew = request_renewing(&Client::own(MAC), 8, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(codes(&renew), vec![53, 55, 61]);
        assert_eq!(renew.ciaddr(), Ipv4Addr::new(10, 0, 0, 5));
    }

    #[test]
    fn release_names_the_address_and_server_only() {
        let msg = release(
            &Client::own(MAC),
            9,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        assert_eq!(codes(&msg), vec![53, 54, 61]);
        assert_eq!(msg.ciaddr(), Ipv4Addr::new(10, 0, 0, 5));
    }

    #[test]
    fn an_ack_becomes_a_lease() {
        let mut ack = Message::new_with_id(
            7,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            &MAC,
        );
        ack.set_opcode(Opcode::BootReply);
        let o = ack.opts_mut();
        o.insert(DhcpOption::MessageType(MessageType::Ack));
        o.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(10, 0, 0, 1)));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 254, 0)));
        o.insert(DhcpOption::Router(vec![Ipv4Addr::new(10, 0, 0, 1)]));
        o.insert(DhcpOption::AddressLeaseTime(120));
        let lease = lease_of(&ack, [2; 6]).unwrap();
        assert_eq!(lease.addr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(lease.prefix_len, 23);
        assert_eq!(lease.router, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(lease.renew_after(), Duration::from_secs(60));

        // As a UDP datagram from the server: found for its client and
        // transaction only.
        let payload = ack.to_vec().unwrap();
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 5], 64).udp(67, 68);
        let mut pkt = Vec::new();
        b.write(&mut pkt, &payload).unwrap();
        assert!(answer(&pkt, &MAC, 7, &[MessageType::Ack]).is_some());
        assert!(answer(&pkt, &MAC, 8, &[MessageType::Ack]).is_none());
        assert!(answer(&pkt, &[2; 6], 7, &[MessageType::Ack]).is_none());
        assert!(answer(&pkt, &MAC, 7, &[MessageType::Offer]).is_none());

        o_nak(&mut ack);
        let err = lease_of(&ack, [2; 6]).unwrap_err();
        assert!(err.downcast_ref::<Refused>().is_some());
    }

    fn o_nak(msg: &mut Message) {
        msg.opts_mut()
            .insert(DhcpOption::MessageType(MessageType::Nak));
    }
}
