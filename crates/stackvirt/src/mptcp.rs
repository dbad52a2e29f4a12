//! MPTCP's userspace path manager, as the daemon runs it: the `mptcp_pm`
//! generic netlink family (`include/uapi/linux/mptcp_pm.h`,
//! `net/mptcp/pm_userspace.c`, Linux 5.19 and later).
//!
//! With `net.mptcp.pm_type=1` the kernel neither announces addresses nor
//! opens subflows by itself: it sends an event for each step of each
//! connection to the family's `mptcp_pm_events` multicast group and waits
//! to be told (`MPTCP_PM_CMD_SUBFLOW_CREATE`, RFC 8684 section 3.2's
//! MP_JOIN handshake) which subflow to open from which local address.
//!
//! Only the two messages the daemon needs are modelled: the events it
//! reads ([`Event`]) and the subflow it asks for ([`SubflowCreate`]).
//! Encoding and framing are `netlink-packet-generic`'s and `genetlink`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use genetlink::{message::RawGenlMessage, GenetlinkHandle};
use netlink_packet_core::{
    DecodeError, Emitable, NetlinkMessage, NetlinkPayload, Nla, NlasIterator,
    ParseableParametrized, NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::AsyncSocket;

/// `MPTCP_PM_NAME`.
pub const FAMILY: &str = "mptcp_pm";
/// `MPTCP_PM_EV_GRP_NAME` (`include/uapi/linux/mptcp.h`).
pub const EVENTS_GROUP: &str = "mptcp_pm_events";
/// `MPTCP_PM_VER`.
const VERSION: u8 = 1;

/// `enum mptcp_event_type`.
pub mod event {
    pub const CREATED: u8 = 1;
    pub const ESTABLISHED: u8 = 2;
    pub const CLOSED: u8 = 3;
    pub const ANNOUNCED: u8 = 6;
    pub const REMOVED: u8 = 7;
    pub const SUB_ESTABLISHED: u8 = 10;
    pub const SUB_CLOSED: u8 = 11;
}

/// `enum mptcp_event_attr`.
mod event_attr {
    pub const TOKEN: u16 = 1;
    pub const FAMILY: u16 = 2;
    pub const LOC_ID: u16 = 3;
    pub const REM_ID: u16 = 4;
    pub const SADDR4: u16 = 5;
    pub const SADDR6: u16 = 6;
    pub const DADDR4: u16 = 7;
    pub const DADDR6: u16 = 8;
    pub const SPORT: u16 = 9;
    pub const DPORT: u16 = 10;
    pub const ERROR: u16 = 12;
    pub const SERVER_SIDE: u16 = 18;
}

/// `MPTCP_PM_CMD_SUBFLOW_CREATE`.
const CMD_SUBFLOW_CREATE: u8 = 10;
/// `MPTCP_PM_ATTR_ADDR`, `MPTCP_PM_ATTR_TOKEN`, `MPTCP_PM_ATTR_ADDR_REMOTE`.
const ATTR_ADDR: u16 = 1;
const ATTR_TOKEN: u16 = 4;
const ATTR_ADDR_REMOTE: u16 = 6;
/// `MPTCP_PM_ADDR_ATTR_*`.
const ADDR_FAMILY: u16 = 1;
const ADDR_ID: u16 = 2;
const ADDR_ADDR4: u16 = 3;
const ADDR_ADDR6: u16 = 4;
const ADDR_PORT: u16 = 5;
const ADDR_IF_IDX: u16 = 7;

/// One event of the `mptcp_pm_events` group: which connection (`token`)
/// and what the kernel put in it.  Absent attributes are `None`; the
/// ports are host byte order (the kernel sends them big-endian).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// `enum mptcp_event_type` ([`event`]).
    pub kind: u8,
    /// The connection's local token (RFC 8684 section 3.2).
    pub token: Option<u32>,
    pub loc_id: Option<u8>,
    /// The peer's address id: of the announced address for ANNOUNCED.
    pub rem_id: Option<u8>,
    pub saddr: Option<IpAddr>,
    /// The peer's address: the announced one for ANNOUNCED.
    pub daddr: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    /// The connection was accepted, not opened, by this host.
    pub server_side: bool,
    /// SUB_CLOSED: the subflow's error (an errno).
    pub error: Option<u8>,
}

impl Event {
    /// Parses the attributes `buf` of an event of type `kind`.
    ///
    /// # Errors
    /// A malformed attribute (short or of the wrong length).
    pub fn parse(kind: u8, buf: &[u8]) -> Result<Self, DecodeError> {
        let mut e = Self {
            kind,
            ..Self::default()
        };
        for nla in NlasIterator::new(buf) {
            let nla = nla?;
            let v = nla.value();
            let fixed = |n: usize| -> Result<&[u8], DecodeError> {
                v.get(..n).ok_or_else(|| {
                    DecodeError::from(format!("MPTCP event attribute {} is short", nla.kind()))
                })
            };
            match nla.kind() {
                event_attr::TOKEN => {
                    let b = fixed(4)?;
                    e.token = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                }
                event_attr::FAMILY => {}
                event_attr::LOC_ID => e.loc_id = Some(fixed(1)?[0]),
                event_attr::REM_ID => e.rem_id = Some(fixed(1)?[0]),
                event_attr::SADDR4 => e.saddr = Some(ipv4(fixed(4)?)),
                event_attr::SADDR6 => e.saddr = Some(ipv6(fixed(16)?)),
                event_attr::DADDR4 => e.daddr = Some(ipv4(fixed(4)?)),
                event_attr::DADDR6 => e.daddr = Some(ipv6(fixed(16)?)),
                event_attr::SPORT => e.sport = Some(be16(fixed(2)?)),
                event_attr::DPORT => e.dport = Some(be16(fixed(2)?)),
                event_attr::ERROR => e.error = Some(fixed(1)?[0]),
                event_attr::SERVER_SIDE => e.server_side = fixed(1)?[0] != 0,
                _ => {}
            }
        }
        Ok(e)
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn ipv4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn ipv6(b: &[u8]) -> IpAddr {
    let mut o = [0; 16];
    o.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(o))
}

/// `MPTCP_PM_CMD_SUBFLOW_CREATE`: open a subflow of connection `token`
/// from `local` (bound to device `ifindex`, announced to nobody) to
/// `remote` (`net/mptcp/pm_userspace.c`,
/// `mptcp_pm_nl_subflow_create_doit`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubflowCreate {
    pub token: u32,
    pub local: IpAddr,
    /// The local address id (1 to 255) the MP_JOIN carries.
    pub local_id: u8,
    /// The device the subflow is bound to (`SO_BINDTOIFINDEX`).
    pub ifindex: u32,
    pub remote: SocketAddr,
}

/// An address, as the `MPTCP_PM_ADDR_ATTR_*` of a nested attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AddrAttr {
    Family(u16),
    Id(u8),
    Addr(IpAddr),
    /// Host byte order (`nla_get_u16`).
    Port(u16),
    IfIdx(u32),
}

impl Nla for AddrAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Family(_) | Self::Port(_) => 2,
            Self::Id(_) => 1,
            Self::Addr(IpAddr::V4(_)) | Self::IfIdx(_) => 4,
            Self::Addr(IpAddr::V6(_)) => 16,
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Family(_) => ADDR_FAMILY,
            Self::Id(_) => ADDR_ID,
            Self::Addr(IpAddr::V4(_)) => ADDR_ADDR4,
            Self::Addr(IpAddr::V6(_)) => ADDR_ADDR6,
            Self::Port(_) => ADDR_PORT,
            Self::IfIdx(_) => ADDR_IF_IDX,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Self::Family(v) | Self::Port(v) => buf[..2].copy_from_slice(&v.to_ne_bytes()),
            Self::Id(v) => buf[0] = *v,
            Self::Addr(IpAddr::V4(a)) => buf[..4].copy_from_slice(&a.octets()),
            Self::Addr(IpAddr::V6(a)) => buf[..16].copy_from_slice(&a.octets()),
            Self::IfIdx(v) => buf[..4].copy_from_slice(&v.to_ne_bytes()),
        }
    }
}

/// A top-level `MPTCP_PM_ATTR_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PmAttr {
    Token(u32),
    Addr(Vec<AddrAttr>),
    AddrRemote(Vec<AddrAttr>),
}

impl Nla for PmAttr {
    fn value_len(&self) -> usize {
        match self {
            Self::Token(_) => 4,
            Self::Addr(a) | Self::AddrRemote(a) => a.as_slice().buffer_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Token(_) => ATTR_TOKEN,
            Self::Addr(_) => ATTR_ADDR | NLA_F_NESTED,
            Self::AddrRemote(_) => ATTR_ADDR_REMOTE | NLA_F_NESTED,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Self::Token(t) => buf[..4].copy_from_slice(&t.to_ne_bytes()),
            Self::Addr(a) | Self::AddrRemote(a) => a.as_slice().emit(buf),
        }
    }
}

fn family_of(a: IpAddr) -> u16 {
    // AF_INET and AF_INET6 are small positive constants.
    (if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }) as u16
}

impl SubflowCreate {
    fn attrs(&self) -> Vec<PmAttr> {
        vec![
            PmAttr::Token(self.token),
            PmAttr::Addr(vec![
                AddrAttr::Family(family_of(self.local)),
                AddrAttr::Id(self.local_id),
                AddrAttr::Addr(self.local),
                AddrAttr::IfIdx(self.ifindex),
            ]),
            PmAttr::AddrRemote(vec![
                AddrAttr::Family(family_of(self.remote.ip())),
                AddrAttr::Addr(self.remote.ip()),
                AddrAttr::Port(self.remote.port()),
            ]),
        ]
    }
}

/// A message of the `mptcp_pm` family, as `genetlink` sends and parses
/// them: events come in, subflow requests go out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PmMessage {
    Event(Event),
    SubflowCreate(SubflowCreate),
}

impl GenlFamily for PmMessage {
    fn family_name() -> &'static str {
        FAMILY
    }

    fn command(&self) -> u8 {
        match self {
            Self::Event(e) => e.kind,
            Self::SubflowCreate(_) => CMD_SUBFLOW_CREATE,
        }
    }

    fn version(&self) -> u8 {
        VERSION
    }
}

impl Emitable for PmMessage {
    fn buffer_len(&self) -> usize {
        match self {
            // Events are only ever received.
            Self::Event(_) => 0,
            Self::SubflowCreate(s) => s.attrs().as_slice().buffer_len(),
        }
    }

    fn emit(&self, buf: &mut [u8]) {
        if let Self::SubflowCreate(s) = self {
            s.attrs().as_slice().emit(buf);
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for PmMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Event::parse(header.cmd, buf).map(Self::Event)
    }
}

/// What the path manager did, published in the daemon's state
/// (`stackvirtctl counters` prints them as `mptcp_NAME`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Events read.
    pub events: u64,
    /// Connections this host opened (CREATED or ESTABLISHED, not
    /// server side) that the daemon followed.
    pub connections: u64,
    /// Addresses the peers announced (ADD_ADDR) on followed connections.
    pub announced: u64,
    /// ... on connections the daemon does not follow (accepted by this
    /// host, or opened before it started): no subflow.
    pub not_followed: u64,
    /// Subflows the kernel accepted to open from a pseudonym.
    pub subflows: u64,
    /// ... whose MP_JOIN handshake completed (SUB_ESTABLISHED).
    pub subflows_established: u64,
    /// Subflows it refused (the errno is logged).
    pub subflow_failed: u64,
    /// No free pseudonym of the announced address's family: no subflow.
    pub no_pseudonym: u64,
    /// Subflows from a pseudonym that closed with an error.
    pub subflow_errors: u64,
}

/// The daemon's two `mptcp_pm` sockets: one subscribed to the events, one
/// for its requests.
pub struct PathManager {
    handle: GenetlinkHandle,
    family_id: u16,
    events: futures::stream::BoxStream<'static, NetlinkMessage<RawGenlMessage>>,
}

impl PathManager {
    /// Resolves the family and joins its event group.  Must run inside a
    /// tokio runtime (the sockets' tasks are spawned on it).
    ///
    /// # Errors
    /// No `mptcp_pm` family (a kernel without `CONFIG_MPTCP`), or a
    /// netlink socket error.
    pub async fn subscribe() -> Result<Self> {
        let (mut conn, handle, _) =
            genetlink::new_connection().context("a generic netlink socket")?;
        // A refusal says why (the extended ACK's message), after the
        // request's header alone.
        let socket = conn.socket_mut().socket_mut();
        socket.set_ext_ack(true).context("NETLINK_EXT_ACK")?;
        socket.set_cap_ack(true).context("NETLINK_CAP_ACK")?;
        tokio::spawn(conn);
        let family = handle
            .resolve_family::<PmMessage>()
            .await
            .map_err(|e| anyhow!("{e}"))
            .context("the mptcp_pm generic netlink family (CONFIG_MPTCP)")?;
        let group = *family
            .multicast_groups
            .get(EVENTS_GROUP)
            .with_context(|| format!("mptcp_pm has no {EVENTS_GROUP} group"))?;
        let (mut conn, _, events) =
            genetlink::new_connection().context("a generic netlink socket")?;
        let socket = conn.socket_mut().socket_mut();
        // Bound first: an unbound socket's port id 0 is the kernel's, and
        // netlink_broadcast() skips the sender's own socket.
        socket.bind_auto().context("binding the event socket")?;
        socket
            .add_membership(group)
            .context("joining mptcp_pm_events")?;
        tokio::spawn(conn);
        Ok(Self {
            handle,
            family_id: family.id,
            events: events.map(|(m, _)| m).boxed(),
        })
    }

    /// The next event; `None` once the socket is gone.  Messages of other
    /// families and malformed events are skipped (said on stderr).
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let msg = self.events.next().await?;
            if msg.header.message_type != self.family_id {
                continue;
            }
            let NetlinkPayload::InnerMessage(raw) = msg.payload else {
                continue;
            };
            match raw.parse_into_genlmsg::<PmMessage>() {
                Ok(m) => {
                    if let PmMessage::Event(e) = m.payload {
                        return Some(e);
                    }
                }
                Err(e) => eprintln!("stackvirtd: a malformed MPTCP event: {e}"),
            }
        }
    }

    /// Asks the kernel for subflow `s` and waits for its answer (the
    /// subflow's SYN is then on its way: the handshake's outcome comes as
    /// SUB_ESTABLISHED or SUB_CLOSED).
    ///
    /// # Errors
    /// The kernel's refusal (its errno: an unknown token, a connection not
    /// under the userspace path manager, an address it cannot bind).
    pub async fn create_subflow(&mut self, s: SubflowCreate) -> Result<()> {
        let mut genl = GenlMessage::from_payload(PmMessage::SubflowCreate(s));
        genl.set_resolved_family_id(self.family_id);
        let mut msg = NetlinkMessage::from(genl);
        msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
        msg.finalize();
        let mut answers = self.handle.send_request(msg).map_err(|e| anyhow!("{e}"))?;
        // netlink-proto ends the stream at the ACK without passing it on:
        // only a refusal comes through.
        while let Some(answer) = answers.next().await {
            let answer = answer.context("a malformed answer")?;
            if let NetlinkPayload::Error(e) = answer.payload {
                if e.code.is_some() {
                    let err = anyhow::Error::new(e.to_io());
                    return Err(match ext_ack_message(&e.header) {
                        Some(why) => err.context(why),
                        None => err,
                    });
                }
            }
        }
        Ok(())
    }
}

/// `NLMSGERR_ATTR_MSG`.
const NLMSGERR_ATTR_MSG: u16 = 1;
/// The size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

/// The kernel's reason for a refusal: the `NLMSGERR_ATTR_MSG` of an
/// extended ACK (`Documentation/userspace-api/netlink/intro.rst`), which
/// follows the request's header in `after_code` when `NETLINK_CAP_ACK`
/// and `NETLINK_EXT_ACK` are set.
fn ext_ack_message(after_code: &[u8]) -> Option<String> {
    let tlvs = after_code.get(NLMSG_HDRLEN..)?;
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find(|n| n.kind() == NLMSGERR_ATTR_MSG)
        .map(|n| {
            String::from_utf8_lossy(n.value())
                .trim_end_matches('\0')
                .to_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ANNOUNCED event as `mptcp_event_addr_announced()` builds it
    /// (`net/mptcp/pm_netlink.c`): token, rem id, family, daddr4, dport.
    #[test]
    fn parses_an_announcement() {
        let mut buf = Vec::new();
        let mut put = |kind: u16, v: &[u8]| {
            let len = 4 + v.len();
            buf.extend_from_slice(&(len as u16).to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(v);
            buf.resize(buf.len().next_multiple_of(4), 0);
        };
        put(event_attr::TOKEN, &0xdead_beefu32.to_ne_bytes());
        put(event_attr::REM_ID, &[3]);
        put(event_attr::FAMILY, &2u16.to_ne_bytes());
        put(event_attr::DADDR4, &[10, 20, 0, 2]);
        put(event_attr::DPORT, &8080u16.to_be_bytes());
        let e = Event::parse(event::ANNOUNCED, &buf).expect("parses");
        assert_eq!(e.token, Some(0xdead_beef));
        assert_eq!(e.rem_id, Some(3));
        assert_eq!(e.daddr, Some("10.20.0.2".parse().unwrap()));
        assert_eq!(e.dport, Some(8080));
        assert!(!e.server_side);
    }

    #[test]
    fn reads_the_kernels_reason() {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        let why = b"invalid token\0";
        buf.extend_from_slice(&((4 + why.len()) as u16).to_ne_bytes());
        buf.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        buf.extend_from_slice(why);
        buf.resize(buf.len().next_multiple_of(4), 0);
        assert_eq!(ext_ack_message(&buf).as_deref(), Some("invalid token"));
        assert_eq!(ext_ack_message(&buf[..NLMSG_HDRLEN]), None);
    }

    #[test]
    fn a_short_attribute_is_an_error() {
        // DADDR4 with 2 bytes of value.
        let buf = [6, 0, 7, 0, 10, 20, 0, 0];
        assert!(Event::parse(event::ANNOUNCED, &buf).is_err());
    }

    /// The request's layout, as `pm_nl_ctl csf` of the kernel's MPTCP
    /// selftests sends it: token, then the nested local and remote
    /// addresses with the nested flag.
    #[test]
    fn emits_a_subflow_request() {
        let s = SubflowCreate {
            token: 7,
            local: "10.10.0.100".parse().unwrap(),
            local_id: 1,
            ifindex: 5,
            remote: "10.20.0.2:443".parse().unwrap(),
        };
        let m = PmMessage::SubflowCreate(s);
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf);
        let attrs: Vec<_> = NlasIterator::new(&buf[..])
            .map(|n| n.expect("an attribute"))
            .map(|n| (n.kind(), n.value().to_vec()))
            .collect();
        assert_eq!(attrs[0], (ATTR_TOKEN, 7u32.to_ne_bytes().to_vec()));
        assert_eq!(attrs[1].0, ATTR_ADDR);
        assert_eq!(attrs[2].0, ATTR_ADDR_REMOTE);
        let remote: Vec<_> = NlasIterator::new(&attrs[2].1[..])
            .map(|n| n.expect("an attribute"))
            .map(|n| (n.kind(), n.value().to_vec()))
            .collect();
        assert!(remote.contains(&(ADDR_ADDR4, vec![10, 20, 0, 2])));
        assert!(remote.contains(&(ADDR_PORT, 443u16.to_ne_bytes().to_vec())));
        // The nested flag is set on the wire.
        let raw_kind = u16::from_ne_bytes([buf[10], buf[11]]);
        assert_eq!(raw_kind, ATTR_ADDR | NLA_F_NESTED);
    }
}
