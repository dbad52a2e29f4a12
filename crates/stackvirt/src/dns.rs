//! The host's stub resolver, with DNS kept with its flow (the paper's
//! section 4.3).
//!
//! Applications in the cgroup resolve names through the daemon (their
//! `/etc/resolv.conf` names [`DnsTag::stub`], by default `127.0.0.53`).
//! The connect and sendmsg programs recognise a socket that connects or
//! sends to the stub and, instead of a pseudonym's address, give it a
//! loopback source that names the pseudonym its group would get:
//! [`DnsTag::tag_net`]'s /16 with the pseudonym's id in the low 16 bits
//! (every `127.0.0.0/8` address is the host's, so the query never leaves
//! it).  The stub reads the id from the query's source and forwards the
//! query to the upstream resolver from that pseudonym's own address, so:
//!
//! - under the `application` and `user` policies, a query leaves from the
//!   pseudonym the application's connections use, and the answer's
//!   addresses are then reached from that same pseudonym;
//! - under `flow`, `destination` and `connection`, an application's
//!   queries share a pseudonym of their own, apart from its flows (a
//!   query is not one of the flows it serves; a pseudonym per query
//!   would drain the pool);
//! - a query from outside the cgroup (no tag) leaves from the host's own
//!   address, as from any resolver.
//!
//! Nothing is cached: a second application that asks for the same name
//! asks the network again, so no pseudonym's queries reveal what another
//! already looked up.  The query and the answer are forwarded byte for
//! byte but for the message ID: upstream sees a fresh random one, the
//! application its own.  Each message is checked with `hickory-proto`
//! first (a standard query with one question; an answer to that question).
//!
//! Over UDP and TCP (RFC 7766): an answer too large for UDP comes back
//! with the TC bit, and the application's retry over TCP to the stub is
//! relayed over TCP from the same pseudonym.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::{Context, Result};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpSocket, TcpStream, UdpSocket},
    sync::Semaphore,
};

/// How long the stub waits for the upstream resolver's answer before it
/// answers SERVFAIL.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(4);

/// The largest DNS message over UDP the stub relays (EDNS(0) sizes
/// included; RFC 6891 section 6.2.5).
const MAX_MESSAGE: usize = 4096;

/// Where the stub listens and how the programs tell it whose query it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsTag {
    /// The stub's address and port (IPv4: the tag lives in the source
    /// address, which IPv6 loopback does not have room for).
    pub stub: SocketAddrV4,
    /// A loopback /16 (`127.x.0.0`) whose low 16 bits carry the
    /// pseudonym's id.
    pub tag_net: Ipv4Addr,
}

impl DnsTag {
    /// The tag for the stub at `stub`, in the /16 of `tag_net`.
    ///
    /// # Errors
    /// `tag_net` is not in `127.0.0.0/8`, or its /16 holds `stub`'s
    /// address (the stub's own address would then name a pseudonym).
    pub fn new(stub: SocketAddrV4, tag_net: Ipv4Addr) -> Result<Self> {
        let net = Ipv4Addr::from(u32::from(tag_net) & 0xffff_0000);
        if !net.is_loopback() {
            anyhow::bail!("--dns-tag-net {tag_net}: not a loopback address (127.0.0.0/8)");
        }
        if u32::from(*stub.ip()) & 0xffff_0000 == u32::from(net) {
            anyhow::bail!(
                "--dns-tag-net {tag_net}: its /16 holds the stub {}",
                stub.ip()
            );
        }
        Ok(Self { stub, tag_net: net })
    }

    /// The pseudonym id a query from `source` names, or `None` for a
    /// source outside the tag's /16 (a process outside the cgroup).
    #[must_use]
    pub fn pseudonym_of(&self, source: IpAddr) -> Option<u32> {
        let IpAddr::V4(v4) = source else {
            return None;
        };
        let v = u32::from(v4);
        (v & 0xffff_0000 == u32::from(self.tag_net)).then_some(v & 0xffff)
    }

    /// The source the programs give a query of pseudonym `id`, as
    /// `bpf/stackvirt.bpf.c`'s `dns_tag()` makes it.
    #[must_use]
    pub fn source_of(&self, id: u32) -> Option<Ipv4Addr> {
        (id <= 0xffff).then(|| Ipv4Addr::from(u32::from(self.tag_net) | id))
    }
}

/// Each live pseudonym's addresses, by id: what the stub sends from.
pub type Book = Arc<Mutex<HashMap<u32, (Option<Ipv4Addr>, Option<Ipv6Addr>)>>>;

/// The stub's counters, published in the daemon's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCounters {
    /// Queries received.
    pub queries: u64,
    /// ... with a pseudonym's tag.
    pub tagged: u64,
    /// ... without (outside the cgroup): sent from the host's address.
    pub untagged: u64,
    /// Not a standard query with one question: FORMERR.
    pub malformed: u64,
    /// Tagged with an id no live pseudonym has (retired meanwhile):
    /// SERVFAIL.
    pub unknown_pseudonym: u64,
    /// The pseudonym has no address of the upstream's family: SERVFAIL.
    pub no_address: u64,
    /// Answers relayed to the application.
    pub answered: u64,
    /// Messages from upstream that were not the answer (wrong ID or
    /// question, or not DNS): dropped.
    pub bad_answers: u64,
    /// No answer within [`UPSTREAM_TIMEOUT`]: SERVFAIL.
    pub timeouts: u64,
    /// A socket error towards upstream or the application.
    pub errors: u64,
    /// Refused: [`MAX_IN_FLIGHT`] queries or connections already served.
    #[serde(default)]
    pub overloaded: u64,
}

/// The live counters behind [`DnsCounters`].
#[derive(Debug, Default)]
pub struct Counters([AtomicU64; 11]);

/// Indexes of [`Counters`], in [`DnsCounters`]' order.
#[derive(Clone, Copy)]
enum C {
    Queries,
    Tagged,
    Untagged,
    Malformed,
    UnknownPseudonym,
    NoAddress,
    Answered,
    BadAnswers,
    Timeouts,
    Errors,
    Overloaded,
}

impl Counters {
    fn bump(&self, c: C) {
        self.0[c as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    #[must_use]
    pub fn snapshot(&self) -> DnsCounters {
        let g = |c: C| self.0[c as usize].load(Ordering::Relaxed);
        DnsCounters {
            queries: g(C::Queries),
            tagged: g(C::Tagged),
            untagged: g(C::Untagged),
            malformed: g(C::Malformed),
            unknown_pseudonym: g(C::UnknownPseudonym),
            no_address: g(C::NoAddress),
            answered: g(C::Answered),
            bad_answers: g(C::BadAnswers),
            timeouts: g(C::Timeouts),
            errors: g(C::Errors),
            overloaded: g(C::Overloaded),
        }
    }
}

/// A query the stub accepts: a standard query (QR 0, OPCODE 0) with
/// exactly one question (RFC 1035 section 4.1.1; what every stub sends).
///
/// # Errors
/// The message does not parse, or is not such a query.
pub fn check_query(bytes: &[u8]) -> Result<Message> {
    let m = Message::from_vec(bytes).context("not a DNS message")?;
    if m.metadata.message_type != MessageType::Query || m.metadata.op_code != OpCode::Query {
        anyhow::bail!("not a standard query");
    }
    if m.queries.len() != 1 {
        anyhow::bail!("{} questions, not 1", m.queries.len());
    }
    Ok(m)
}

/// Whether `bytes` is the answer to `query` (sent with ID `id`): a
/// response with that ID and the same question.
#[must_use]
pub fn is_answer(bytes: &[u8], query: &Message, id: u16) -> bool {
    Message::from_vec(bytes).is_ok_and(|a| {
        a.metadata.message_type == MessageType::Response
            && a.metadata.id == id
            && a.queries == query.queries
    })
}

/// `bytes` with its message ID (the first two bytes) set to `id`.
fn with_id(bytes: &[u8], id: u16) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[..2].copy_from_slice(&id.to_be_bytes());
    v
}

/// An error answer to the query with ID `id` and `question` (echoed, as
/// resolvers expect; RFC 1035 section 4.1.1).
fn error_answer(id: u16, question: Option<&Message>, code: ResponseCode) -> Vec<u8> {
    let mut m = Message::error_msg(id, OpCode::Query, code);
    if let Some(q) = question {
        m.queries.clone_from(&q.queries);
        m.metadata.recursion_desired = q.metadata.recursion_desired;
    }
    m.metadata.recursion_available = true;
    // A message of a header and a question always encodes.
    m.to_vec().unwrap_or_else(|_| {
        let mut v = vec![0; 12];
        v[..2].copy_from_slice(&id.to_be_bytes());
        v[2] = 0x80;
        v[3] = 0x80 | code.low();
        v
    })
}

/// The address to ask upstream from for a query from `from`: its
/// pseudonym's (`Some`), the host's (`None`), or the counter that says
/// why neither.
fn source_for(
    tag: &DnsTag,
    from: SocketAddr,
    upstream: SocketAddr,
    book: &Book,
    counters: &Counters,
) -> std::result::Result<Option<IpAddr>, C> {
    let Some(id) = tag.pseudonym_of(from.ip()) else {
        counters.bump(C::Untagged);
        return Ok(None);
    };
    counters.bump(C::Tagged);
    let addrs = book.lock().ok().and_then(|b| b.get(&id).copied());
    match (addrs, upstream) {
        (None, _) => Err(C::UnknownPseudonym),
        (Some((Some(v4), _)), SocketAddr::V4(_)) => Ok(Some(IpAddr::V4(v4))),
        (Some((_, Some(v6))), SocketAddr::V6(_)) => Ok(Some(IpAddr::V6(v6))),
        _ => Err(C::NoAddress),
    }
}

/// The stub's sockets, bound.
pub struct Stub {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Stub {
    /// Binds the stub's UDP socket and TCP listener at `tag.stub`.
    ///
    /// # Errors
    /// The address cannot be bound (in use: another resolver such as
    /// systemd-resolved on it).
    pub async fn bind(tag: &DnsTag) -> Result<Self> {
        let udp = UdpSocket::bind(tag.stub)
            .await
            .with_context(|| format!("binding the DNS stub to {} (UDP)", tag.stub))?;
        let tcp = TcpListener::bind(tag.stub)
            .await
            .with_context(|| format!("binding the DNS stub to {} (TCP)", tag.stub))?;
        Ok(Self { udp, tcp })
    }

    /// Serves, over UDP and TCP, forever: each query forwarded to
    /// `upstream` from the address [`Book`] has for its tag.  A socket
    /// error is counted and the stub goes on after [`RETRY`]; at most
    /// [`MAX_IN_FLIGHT`] queries and connections are served at once (the
    /// others get SERVFAIL or are closed, counted as `overloaded`).
    pub async fn serve(
        self,
        tag: DnsTag,
        upstream: SocketAddr,
        book: Book,
        counters: Arc<Counters>,
    ) {
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        tokio::join!(
            serve_udp(
                self.udp,
                tag,
                upstream,
                book.clone(),
                counters.clone(),
                slots.clone()
            ),
            serve_tcp(self.tcp, tag, upstream, book, counters, slots),
        );
    }
}

/// How long the stub waits after an error of its own socket.
pub const RETRY: Duration = Duration::from_millis(100);

/// The most queries (UDP) and connections (TCP) served at once.
pub const MAX_IN_FLIGHT: usize = 256;

/// How long a TCP connection to the stub may sit idle between queries
/// (RFC 7766 section 6.2.3 asks servers to time idle connections out).
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// The stub's UDP side.
async fn serve_udp(
    stub: UdpSocket,
    tag: DnsTag,
    upstream: SocketAddr,
    book: Book,
    counters: Arc<Counters>,
    slots: Arc<Semaphore>,
) {
    let stub = Arc::new(stub);
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let Ok((n, from)) = stub.recv_from(&mut buf).await else {
            counters.bump(C::Errors);
            tokio::time::sleep(RETRY).await;
            continue;
        };
        counters.bump(C::Queries);
        let bytes = &buf[..n];
        let query = match check_query(bytes) {
            Ok(q) => q,
            Err(_) => {
                counters.bump(C::Malformed);
                if n >= 2 {
                    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
                    let _ = stub
                        .send_to(&error_answer(id, None, ResponseCode::FormErr), from)
                        .await;
                }
                continue;
            }
        };
        let source = match source_for(&tag, from, upstream, &book, &counters) {
            Ok(s) => s,
            Err(c) => {
                counters.bump(c);
                let e = error_answer(query.metadata.id, Some(&query), ResponseCode::ServFail);
                let _ = stub.send_to(&e, from).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.bump(C::Overloaded);
            let e = error_answer(query.metadata.id, Some(&query), ResponseCode::ServFail);
            let _ = stub.send_to(&e, from).await;
            continue;
        };
        let (stub, counters) = (stub.clone(), counters.clone());
        let bytes = bytes.to_vec();
        tokio::spawn(async move {
            forward(stub, from, bytes, query, source, upstream, counters).await;
            drop(slot);
        });
    }
}

/// The stub's TCP side: each connection served by a task of its own.
async fn serve_tcp(
    listener: TcpListener,
    tag: DnsTag,
    upstream: SocketAddr,
    book: Book,
    counters: Arc<Counters>,
    slots: Arc<Semaphore>,
) {
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            counters.bump(C::Errors);
            tokio::time::sleep(RETRY).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            counters.bump(C::Overloaded);
            continue; // dropped: closed
        };
        let (book, counters) = (book.clone(), counters.clone());
        tokio::spawn(async move {
            if serve_stream(stream, from, tag, upstream, &book, &counters)
                .await
                .is_err()
            {
                counters.bump(C::Errors);
            }
            drop(slot);
        });
    }
}

/// Reads one length-prefixed DNS message (RFC 1035 section 4.2.2), or
/// `None` at a clean end of the stream.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        r => r?,
    };
    let mut m = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut m).await?;
    Ok(Some(m))
}

/// Writes `m` length-prefixed.
async fn write_message(stream: &mut TcpStream, m: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(m.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
    let mut v = Vec::with_capacity(m.len() + 2);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(m);
    stream.write_all(&v).await
}

/// One application's TCP connection to the stub: its queries, one after
/// the other, over one upstream connection from its pseudonym, opened at
/// the first query.  A malformed query ends the connection after FORMERR.
async fn serve_stream(
    mut client: TcpStream,
    from: SocketAddr,
    tag: DnsTag,
    upstream: SocketAddr,
    book: &Book,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut up: Option<TcpStream> = None;
    loop {
        let Ok(next) = tokio::time::timeout(TCP_IDLE, read_message(&mut client)).await else {
            return Ok(()); // idle: closed
        };
        let Some(bytes) = next? else {
            return Ok(());
        };
        counters.bump(C::Queries);
        let Ok(query) = check_query(&bytes) else {
            counters.bump(C::Malformed);
            let id = bytes
                .get(..2)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            return write_message(&mut client, &error_answer(id, None, ResponseCode::FormErr))
                .await;
        };
        let client_id = query.metadata.id;
        if up.is_none() {
            match source_for(&tag, from, upstream, book, counters) {
                Ok(source) => up = connect_upstream(source, upstream).await.ok(),
                Err(c) => {
                    counters.bump(c);
                    let e = error_answer(client_id, Some(&query), ResponseCode::ServFail);
                    return write_message(&mut client, &e).await;
                }
            }
        }
        let answer = match &mut up {
            Some(s) => ask_stream(s, &bytes, &query, counters).await,
            None => Err(C::Errors),
        };
        let reply = match answer {
            Ok(a) => {
                counters.bump(C::Answered);
                with_id(&a, client_id)
            }
            Err(c) => {
                counters.bump(c);
                up = None;
                error_answer(client_id, Some(&query), ResponseCode::ServFail)
            }
        };
        write_message(&mut client, &reply).await?;
    }
}

/// A TCP connection to `upstream` from `source` (`None`: the host's
/// address).
async fn connect_upstream(
    source: Option<IpAddr>,
    upstream: SocketAddr,
) -> std::io::Result<TcpStream> {
    let socket = match upstream {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    tokio::time::timeout(UPSTREAM_TIMEOUT, socket.connect(upstream))
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// The answer to `query` over `stream`, asked with a fresh ID.
async fn ask_stream(
    stream: &mut TcpStream,
    bytes: &[u8],
    query: &Message,
    counters: &Counters,
) -> std::result::Result<Vec<u8>, C> {
    let id: u16 = rand::random();
    write_message(stream, &with_id(bytes, id))
        .await
        .map_err(|_| C::Errors)?;
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let m = match tokio::time::timeout_at(deadline, read_message(stream)).await {
            Err(_) => return Err(C::Timeouts),
            Ok(Ok(Some(m))) => m,
            Ok(_) => return Err(C::Errors),
        };
        if is_answer(&m, query, id) {
            return Ok(m);
        }
        counters.bump(C::BadAnswers);
    }
}

/// Sends `bytes` (the query `query` of the application at `from`) to
/// `upstream` from `source` (`None`: the host's address) and relays the
/// answer, or SERVFAIL after [`UPSTREAM_TIMEOUT`].
async fn forward(
    stub: Arc<UdpSocket>,
    from: SocketAddr,
    bytes: Vec<u8>,
    query: Message,
    source: Option<IpAddr>,
    upstream: SocketAddr,
    counters: Arc<Counters>,
) {
    let client_id = query.metadata.id;
    let reply = match ask(&bytes, &query, source, upstream, &counters).await {
        Ok(answer) => {
            counters.bump(C::Answered);
            with_id(&answer, client_id)
        }
        Err(c) => {
            counters.bump(c);
            error_answer(client_id, Some(&query), ResponseCode::ServFail)
        }
    };
    if stub.send_to(&reply, from).await.is_err() {
        counters.bump(C::Errors);
    }
}

/// The upstream answer to `query` asked from `source` with a fresh ID, or
/// the counter that says why there is none.
async fn ask(
    bytes: &[u8],
    query: &Message,
    source: Option<IpAddr>,
    upstream: SocketAddr,
    counters: &Counters,
) -> std::result::Result<Vec<u8>, C> {
    let local = source.unwrap_or(match upstream {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))
        .await
        .map_err(|_| C::Errors)?;
    socket.connect(upstream).await.map_err(|_| C::Errors)?;
    let id: u16 = rand::random();
    socket
        .send(&with_id(bytes, id))
        .await
        .map_err(|_| C::Errors)?;
    let deadline = tokio::time::Instant::now() + UPSTREAM_TIMEOUT;
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Err(C::Timeouts),
            Ok(Err(_)) => return Err(C::Errors),
            Ok(Ok(n)) => n,
        };
        if is_answer(&buf[..n], query, id) {
            return Ok(buf[..n].to_vec());
        }
        counters.bump(C::BadAnswers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::{
        op::Query,
        rr::{Name, RecordType},
    };

    fn tag() -> DnsTag {
        DnsTag::new(
            SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 53), 53),
            Ipv4Addr::new(127, 83, 0, 0),
        )
        .unwrap()
    }

    #[test]
    fn tag_round_trips_the_id() {
        let t = tag();
        for id in [0, 1, 255, 256, 4095, 0xffff] {
            let s = t.source_of(id).unwrap();
            assert_eq!(t.pseudonym_of(IpAddr::V4(s)), Some(id));
        }
        assert_eq!(t.source_of(0x1_0000), None);
        assert_eq!(t.pseudonym_of("127.0.0.1".parse().unwrap()), None);
        assert_eq!(t.pseudonym_of("::1".parse().unwrap()), None);
        // what the C side computes: tag_net | htonl(id), in network order
        assert_eq!(t.source_of(0x0102), Some(Ipv4Addr::new(127, 83, 1, 2)));
    }

    #[test]
    fn tag_net_must_be_loopback_and_apart_from_the_stub() {
        let stub = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 53), 53);
        assert!(DnsTag::new(stub, Ipv4Addr::new(10, 0, 0, 0)).is_err());
        assert!(DnsTag::new(stub, Ipv4Addr::new(127, 0, 9, 0)).is_err());
        assert_eq!(
            DnsTag::new(stub, Ipv4Addr::new(127, 83, 4, 5))
                .unwrap()
                .tag_net,
            Ipv4Addr::new(127, 83, 0, 0)
        );
    }

    fn query(id: u16, name: &str) -> Message {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.queries
            .push(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.metadata.recursion_desired = true;
        m
    }

    #[test]
    fn only_standard_queries_with_one_question_pass() {
        let q = query(7, "www.example.");
        assert!(check_query(&q.to_vec().unwrap()).is_ok());
        let mut two = q.clone();
        two.queries.push(Query::query(
            Name::from_ascii("b.example.").unwrap(),
            RecordType::A,
        ));
        assert!(check_query(&two.to_vec().unwrap()).is_err());
        let mut resp = q.clone();
        resp.metadata.message_type = MessageType::Response;
        assert!(check_query(&resp.to_vec().unwrap()).is_err());
        assert!(check_query(&[1, 2, 3]).is_err());
    }

    #[test]
    fn an_answer_must_match_id_and_question() {
        let q = query(7, "www.example.");
        let mut a = q.clone();
        a.metadata.message_type = MessageType::Response;
        a.metadata.id = 99;
        let bytes = a.to_vec().unwrap();
        assert!(is_answer(&bytes, &q, 99));
        assert!(!is_answer(&bytes, &q, 7));
        assert!(!is_answer(&bytes, &query(99, "other.example."), 99));
        assert!(!is_answer(&q.to_vec().unwrap(), &q, 7));
        // the relayed answer carries the application's ID, nothing else changed
        let back = with_id(&bytes, 7);
        assert_eq!(&back[..2], &[0, 7]);
        assert_eq!(&back[2..], &bytes[2..]);
    }

    #[test]
    fn error_answers_echo_the_question() {
        let q = query(0x1234, "www.example.");
        let e = Message::from_vec(&error_answer(0x1234, Some(&q), ResponseCode::ServFail)).unwrap();
        assert_eq!(e.metadata.id, 0x1234);
        assert_eq!(e.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(e.metadata.message_type, MessageType::Response);
        assert_eq!(e.queries, q.queries);
    }
}
