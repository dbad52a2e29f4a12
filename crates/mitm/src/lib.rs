//! A man in the middle on one path of a hardened connection
//! (docs/design.md, "Hardened mode, byte-exact"; the test that uses it:
//! tests/mitm.sh).
//!
//! It sees the first subflow, so it knows both MPTCP keys and both
//! offers, hence the handshake's prologue.  It runs the Noise `NN`
//! handshake with each end in turn: toward the server it is the client
//! (its own message 1 and confirmation), toward the client the server (its
//! own message 2).  The lengths match, so it rewrites bytes in place and
//! no sequence number moves.  Then it decrypts what it relays with one
//! end's keys and encrypts it again with the other's: on this path it
//! reads everything.  What it cannot do is make the two ends derive the
//! same MP_JOIN keys, which is what the hardened mode's second-path check
//! rests on.
//!
//! [`Relay`] is one connection's state, fed with stream bytes at their
//! offsets (offset 0: the first byte after the sender's IDSN, preamble
//! included), in any order and any number of times (retransmissions).

use hardened::{
    Crypto, Initiator, Keys, Keystream, RustCrypto, CLIENT_PREAMBLE_LEN, KEY_LEN, MSG1_LEN,
    MSG2_LEN, PROLOGUE_LEN, SERVER_PREAMBLE_LEN,
};
use mptcp_eavesdrop::intervals::IntervalMap;

/// Which way bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

/// Why bytes cannot be relayed yet: the packet must be dropped (TCP sends
/// it again later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotYet {
    /// The handshake has not got far enough to rewrite these bytes.
    Handshake,
    /// An end's handshake message did not verify: the relay gave up.
    Failed,
}

/// An ephemeral X25519 keypair: (private, public).
pub type Keypair = ([u8; KEY_LEN], [u8; KEY_LEN]);

/// A fresh keypair from the operating system's random numbers.
pub fn keypair() -> Keypair {
    let mut e = [0u8; KEY_LEN];
    getrandom::getrandom(&mut e).expect("the OS random number generator works");
    let public = RustCrypto
        .x25519(&e, &hardened::BASE_POINT)
        .expect("the base point has full order");
    (e, public)
}

/// Bytes of one handshake message, as they arrive, in any order.
struct Collect<const N: usize> {
    bytes: [u8; N],
    have: [bool; N],
}

impl<const N: usize> Collect<N> {
    fn new() -> Self {
        Self {
            bytes: [0; N],
            have: [false; N],
        }
    }

    fn put(&mut self, at: usize, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            if let Some(slot) = self.bytes.get_mut(at + i) {
                *slot = b;
                self.have[at + i] = true;
            }
        }
    }

    fn complete(&self) -> Option<&[u8; N]> {
        self.have.iter().all(|&h| h).then_some(&self.bytes)
    }
}

/// One connection's man in the middle.
pub struct Relay {
    /// Toward the server: the initiator until message 2, then its keys.
    to_server: Option<Initiator>,
    /// Our message 1 toward the server.
    msg1_out: [u8; MSG1_LEN],
    server_keys: Option<Keys>,
    /// Toward the client: our keypair, then, once message 1 is complete,
    /// our message 2 and the keys.
    to_client: Keypair,
    msg2_out: Option<[u8; MSG2_LEN]>,
    client_keys: Option<Keys>,
    prologue: [u8; PROLOGUE_LEN],
    msg1_in: Collect<MSG1_LEN>,
    msg2_in: Collect<MSG2_LEN>,
    failed: bool,
    /// The client's application bytes, decrypted, from offset 0 as far as
    /// they are contiguous (what the man in the middle reads).
    pub plain_c2s: Plain,
    /// The server's, likewise.
    pub plain_s2c: Plain,
}

/// Decrypted application bytes of one direction, read from offset 0 as
/// far as they are contiguous, up to a cap.  Pieces past a gap (a segment
/// lost before the relay saw it, which TCP sends again later) are kept
/// and join the prefix once the gap is filled: the eavesdropper's
/// [`IntervalMap`] keeps them.
pub struct Plain {
    map: IntervalMap,
    cap: u64,
}

impl Plain {
    fn new(cap: usize) -> Self {
        Self {
            map: IntervalMap::default(),
            cap: cap as u64,
        }
    }

    fn put(&mut self, offset: u64, data: &[u8]) {
        if offset >= self.cap {
            return;
        }
        let room = usize::try_from(self.cap - offset).unwrap_or(usize::MAX);
        self.map.insert(offset, &data[..data.len().min(room)]);
    }

    /// The bytes, from offset 0 to the first gap.
    pub fn bytes(&self) -> &[u8] {
        match self.map.runs().next() {
            Some((0, run)) => run,
            _ => &[],
        }
    }
}

impl Relay {
    /// A relay for the connection whose handshake prologue is `prologue`
    /// (`hardened::prologue()` of the keys and offers seen on the first
    /// subflow), with two fresh keypairs; keeps up to `cap` decrypted bytes
    /// per direction.
    pub fn new(prologue: [u8; PROLOGUE_LEN], cap: usize) -> Self {
        Self::with_keypairs(prologue, keypair(), keypair(), cap)
    }

    /// As [`Relay::new`], with given keypairs: `to_server` for our message
    /// 1, `to_client` for our message 2.
    pub fn with_keypairs(
        prologue: [u8; PROLOGUE_LEN],
        to_server: Keypair,
        to_client: Keypair,
        cap: usize,
    ) -> Self {
        let (init, msg1_out) = Initiator::start(&RustCrypto, &prologue, &to_server.0, &to_server.1);
        Self {
            to_server: Some(init),
            msg1_out,
            server_keys: None,
            to_client,
            msg2_out: None,
            client_keys: None,
            prologue,
            msg1_in: Collect::new(),
            msg2_in: Collect::new(),
            failed: false,
            plain_c2s: Plain::new(cap),
            plain_s2c: Plain::new(cap),
        }
    }

    /// Whether both handshakes are done: from here on it reads and
    /// re-keys everything on its path.
    pub fn keyed(&self) -> bool {
        self.client_keys.is_some() && self.server_keys.is_some()
    }

    /// The MP_JOIN keys (client's, server's) each end derived: they differ.
    pub fn join_keys(&self) -> Option<((u64, u64), (u64, u64))> {
        let c = self.client_keys.as_ref()?;
        let s = self.server_keys.as_ref()?;
        Some((
            (c.join_client, c.join_server),
            (s.join_client, s.join_server),
        ))
    }

    /// Rewrite `data`, the bytes at stream `offset` of direction `dir`, in
    /// place: what the other end must see.  On `Err` nothing was changed
    /// and the packet must not be relayed.
    pub fn rewrite(&mut self, dir: Dir, offset: u64, data: &mut [u8]) -> Result<(), NotYet> {
        if self.failed {
            return Err(NotYet::Failed);
        }
        // Check first, change after: all of the packet or none of it.
        self.learn(dir, offset, data)?;
        self.ready(dir, offset, data.len())?;
        let preamble = match dir {
            Dir::C2s => CLIENT_PREAMBLE_LEN,
            Dir::S2c => SERVER_PREAMBLE_LEN,
        } as u64;
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (n, chunk);
            if at < preamble {
                n = rest.len().min((preamble - at) as usize);
                (chunk, rest) = rest.split_at_mut(n);
                self.preamble_out(dir, at as usize, chunk);
            } else {
                n = rest.len();
                (chunk, rest) = rest.split_at_mut(n);
                self.rekey(dir, at - preamble, chunk);
            }
            at += n as u64;
        }
        Ok(())
    }

    /// Takes note of the ends' handshake bytes in `data`, and moves the
    /// handshakes on when a message is complete.
    fn learn(&mut self, dir: Dir, offset: u64, data: &[u8]) -> Result<(), NotYet> {
        let Some(head) = usize::try_from(offset).ok().filter(|&o| o < MSG2_LEN) else {
            return Ok(());
        };
        match dir {
            Dir::C2s => self.msg1_in.put(head, data),
            Dir::S2c => self.msg2_in.put(head, data),
        }
        if self.msg2_out.is_none() {
            if let Some(msg1) = self.msg1_in.complete() {
                let (e, e_pub) = (self.to_client.0, self.to_client.1);
                match hardened::respond(&RustCrypto, &self.prologue, &e, &e_pub, msg1) {
                    Ok((msg2, keys)) => {
                        self.msg2_out = Some(msg2);
                        self.client_keys = Some(keys);
                    }
                    Err(_) => {
                        self.failed = true;
                        return Err(NotYet::Failed);
                    }
                }
            }
        }
        if self.server_keys.is_none() {
            if let Some(msg2) = self.msg2_in.complete() {
                let msg2 = *msg2;
                if let Some(init) = self.to_server.take() {
                    match init.finish(&RustCrypto, &msg2) {
                        Ok(keys) => self.server_keys = Some(keys),
                        Err(_) => {
                            self.failed = true;
                            return Err(NotYet::Failed);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every byte of `len` at `offset` can be rewritten now.
    fn ready(&self, dir: Dir, offset: u64, len: usize) -> Result<(), NotYet> {
        let end = offset + len as u64;
        let need = match dir {
            // our message 1 is ready from the start; our confirmation
            // needs the server's keys; the application's bytes both
            Dir::C2s if end <= MSG1_LEN as u64 => true,
            Dir::C2s if end <= CLIENT_PREAMBLE_LEN as u64 => self.server_keys.is_some(),
            Dir::C2s => self.keyed(),
            // our message 2 needs the client's message 1; the rest both
            Dir::S2c if end <= SERVER_PREAMBLE_LEN as u64 => self.msg2_out.is_some(),
            Dir::S2c => self.keyed(),
        };
        if need {
            Ok(())
        } else {
            Err(NotYet::Handshake)
        }
    }

    /// Our own preamble bytes in place of an end's (`ready()` said they
    /// exist).
    fn preamble_out(&self, dir: Dir, at: usize, out: &mut [u8]) {
        const _: () = assert!(CLIENT_PREAMBLE_LEN == MSG2_LEN && SERVER_PREAMBLE_LEN == MSG2_LEN);
        let mut ours = [0u8; MSG2_LEN];
        match dir {
            Dir::C2s => {
                ours[..MSG1_LEN].copy_from_slice(&self.msg1_out);
                if let Some(k) = &self.server_keys {
                    ours[MSG1_LEN..].copy_from_slice(&k.confirm);
                }
            }
            Dir::S2c => {
                if let Some(m) = &self.msg2_out {
                    ours = *m;
                }
            }
        }
        out.copy_from_slice(&ours[at..at + out.len()]);
    }

    /// Application bytes at `offset`: decrypt with the sender's keys,
    /// keep them, encrypt with the receiver's.
    fn rekey(&mut self, dir: Dir, offset: u64, data: &mut [u8]) {
        let (Some(c), Some(s)) = (&self.client_keys, &self.server_keys) else {
            return;
        };
        let (from, to, plain) = match dir {
            Dir::C2s => (&c.stream_c2s, &s.stream_c2s, &mut self.plain_c2s),
            Dir::S2c => (&s.stream_s2c, &c.stream_s2c, &mut self.plain_s2c),
        };
        Keystream::new(&RustCrypto, from).apply(offset, data);
        plain.put(offset, data);
        Keystream::new(&RustCrypto, to).apply(offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardened::Session;

    const OFFER: [u8; 4] = [0x1e, 0x04, 0xf1, 0x02];

    #[test]
    fn plain_fills_gaps_when_the_missing_piece_comes() {
        let text: Vec<u8> = (0..100u8).collect();
        let mut p = Plain::new(90);
        p.put(0, &text[..10]);
        p.put(30, &text[30..40]); // past a gap
        p.put(20, &text[20..30]); // past it still
        assert_eq!(p.bytes(), &text[..10]);
        p.put(10, &text[10..25]); // fills it, overlapping what waited
        assert_eq!(p.bytes(), &text[..40]);
        p.put(5, &text[5..15]); // a retransmission of what is kept
        p.put(40, &text[40..100]); // up to the cap
        assert_eq!(p.bytes(), &text[..90]);
        assert_eq!(
            p.map.runs().count(),
            1,
            "nothing left waiting past the prefix"
        );
    }

    /// Carries `bytes` from one end's stream through the relay, in pieces
    /// of `step`, each piece offered until the relay takes it.
    fn relay(r: &mut Relay, dir: Dir, offset: u64, bytes: &[u8], step: usize) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (i, chunk) in out.chunks_mut(step).enumerate() {
            r.rewrite(dir, offset + (i * step) as u64, chunk)
                .expect("relayed");
        }
        out
    }

    #[test]
    fn both_ends_open_and_it_reads_both_directions() {
        let prologue = hardened::prologue(0x0102030405060708, 0x1112131415161718, &OFFER, &OFFER);
        let mut r = Relay::new(prologue, 1 << 20);
        let (mut client, msg1) = Session::client(&RustCrypto, &prologue, &keypair());
        let mut server = Session::server(&prologue);

        let msg1 = relay(&mut r, Dir::C2s, 0, &msg1, 7);
        let mut at_server = msg1.clone();
        let out = server
            .rx(&RustCrypto, &mut at_server, || Some(keypair()))
            .expect("server takes msg1");
        assert_eq!(out.owned, MSG1_LEN);
        let mut server_tx = out.sender.expect("server keyed");
        let msg2 = out.send[..out.send_len].to_vec();

        let msg2 = relay(&mut r, Dir::S2c, 0, &msg2, 5);
        let mut at_client = msg2.clone();
        let out = client
            .rx(&RustCrypto, &mut at_client, || None)
            .expect("client takes msg2");
        let mut client_tx = out.sender.expect("client keyed");
        let confirm = out.send[..out.send_len].to_vec();
        assert!(r.keyed());

        let confirm = relay(&mut r, Dir::C2s, MSG1_LEN as u64, &confirm, 16);
        let mut at_server = confirm.clone();
        server
            .rx(&RustCrypto, &mut at_server, || None)
            .expect("server takes the confirmation");
        assert!(server.open() && client.open());

        let secret = b"GET /secret HTTP/1.1\r\n\r\n".repeat(100);
        let mut wire = secret.clone();
        client_tx.tx(&RustCrypto, &mut wire);
        let mut relayed = relay(&mut r, Dir::C2s, CLIENT_PREAMBLE_LEN as u64, &wire, 333);
        server
            .rx(&RustCrypto, &mut relayed, || None)
            .expect("server decrypts");
        assert_eq!(relayed, secret);
        assert_eq!(r.plain_c2s.bytes(), &secret[..]);

        let answer = b"HTTP/1.1 200 OK\r\n\r\nhello".to_vec();
        let mut wire = answer.clone();
        server_tx.tx(&RustCrypto, &mut wire);
        let mut relayed = relay(&mut r, Dir::S2c, SERVER_PREAMBLE_LEN as u64, &wire, 4);
        client
            .rx(&RustCrypto, &mut relayed, || None)
            .expect("client decrypts");
        assert_eq!(relayed, answer);
        assert_eq!(r.plain_s2c.bytes(), &answer[..]);

        // what the second-path check rests on
        let (c, s) = r.join_keys().expect("keyed");
        assert_ne!(c, s);
        assert_eq!(client.join_keys(), Some(c));
        assert_eq!(server.join_keys().map(|(l, rem)| (rem, l)), Some(s));
    }

    #[test]
    fn bytes_before_their_keys_wait_and_retransmissions_repeat() {
        let prologue = hardened::prologue(1, 2, &OFFER, &OFFER);
        let mut r = Relay::new(prologue, 16);
        let mut early = [0u8; 10];
        assert_eq!(r.rewrite(Dir::S2c, 0, &mut early), Err(NotYet::Handshake));
        assert_eq!(r.rewrite(Dir::C2s, 48, &mut early), Err(NotYet::Handshake));
        let (_, msg1) = Session::client(&RustCrypto, &prologue, &keypair());
        let mut a = msg1;
        let mut b = msg1;
        r.rewrite(Dir::C2s, 0, &mut a).expect("msg1");
        r.rewrite(Dir::C2s, 0, &mut b).expect("msg1 again");
        assert_eq!(a, b);
        assert_ne!(a, msg1);
    }
}
