//! The hardened session state machine ([`hardened::Session`]) end to end,
//! with both streams cut at random as TCP and MPTCP may deliver them: the
//! application's bytes arrive intact, the wire never carries them in
//! clear, the preamble is never delivered, and a man in the middle is
//! left with MP_JOIN keys that differ between the ends.

use hardened::*;
use proptest::prelude::*;

const C: RustCrypto = RustCrypto;

fn keypair(seed: u8) -> Keypair {
    let e = [seed; 32];
    let p = C.x25519(&e, &BASE_POINT).expect("not zero");
    (e, p)
}

/// What [`deliver`] gives back: application bytes, preamble to send, the
/// send side.
type Delivered = (Vec<u8>, Vec<u8>, Option<Sender>);

/// Feed `wire` to `end` in pieces of the given sizes; returns the
/// application bytes delivered, the preamble `end` must send back, and
/// its send side if it got it.
fn deliver(
    end: &mut Session,
    wire: &[u8],
    cuts: &[usize],
    kp: Option<Keypair>,
) -> Result<Delivered, SessionError> {
    let mut app = Vec::new();
    let mut send = Vec::new();
    let mut released = None;
    let mut kp = kp;
    let mut at = 0;
    let mut cuts = cuts.iter().cycle();
    while at < wire.len() {
        let n = (*cuts.next().unwrap_or(&1)).clamp(1, wire.len() - at);
        let mut chunk = wire[at..at + n].to_vec();
        let out = end.rx(&C, &mut chunk, || kp.take())?;
        app.extend_from_slice(&chunk[out.owned..]);
        send.extend_from_slice(&out.send[..out.send_len]);
        if out.sender.is_some() {
            assert!(released.is_none(), "a second send side");
            released = out.sender;
        }
        at += n;
    }
    Ok((app, send, released))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn both_directions_arrive_intact(
        prologue in any::<[u8; PROLOGUE_LEN]>(),
        up in proptest::collection::vec(any::<u8>(), 0..3000),
        down in proptest::collection::vec(any::<u8>(), 0..3000),
        cuts_up in proptest::collection::vec(1usize..200, 1..10),
        cuts_down in proptest::collection::vec(1usize..200, 1..10),
    ) {
        let (mut client, msg1) = Session::client(&C, &prologue, &keypair(1));
        let mut server = Session::server(&prologue);

        // The server takes message 1 and answers with message 2.
        let (app, msg2, server_tx) = deliver(&mut server, &msg1, &cuts_up, Some(keypair(2))).unwrap();
        prop_assert!(app.is_empty() && !server.open());
        let mut server_tx = server_tx.expect("the server's send side");
        prop_assert_eq!(msg2.len(), MSG2_LEN);

        // The server may send at once; its stream is message 2 then data.
        let mut s2c = msg2.clone();
        let mut data = down.clone();
        server_tx.tx(&C, &mut data);
        if down.len() >= 16 { prop_assert_ne!(&data, &down); }
        s2c.extend_from_slice(&data);

        // The client takes it all: message 2, then the server's data.
        let (got_down, confirm, client_tx) = deliver(&mut client, &s2c, &cuts_down, None).unwrap();
        prop_assert_eq!(&got_down, &down);
        let mut client_tx = client_tx.expect("the client's send side");
        prop_assert!(client.open());
        prop_assert_eq!(confirm.len(), CONFIRM_LEN);

        // The client's stream: message 1, confirmation, then data.
        let mut data = up.clone();
        client_tx.tx(&C, &mut data);
        if up.len() >= 16 { prop_assert_ne!(&data, &up); }
        let mut rest = confirm;
        rest.extend_from_slice(&data);
        let (got_up, more, again) = deliver(&mut server, &rest, &cuts_up, None).unwrap();
        prop_assert_eq!(&got_up, &up);
        prop_assert!(more.is_empty() && again.is_none() && server.open());

        let (cj, sj) = (client.join_keys().unwrap(), server.join_keys().unwrap());
        prop_assert_eq!(cj, (sj.1, sj.0));
    }
}

#[test]
fn no_send_side_before_the_keys() {
    let (mut client, _) = Session::client(&C, &[0; PROLOGUE_LEN], &keypair(1));
    let out = client
        .rx(&C, &mut [0u8; 10], || None)
        .expect("part of message 2");
    assert!(out.sender.is_none() && out.owned == 10 && out.send_len == 0);
}

#[test]
fn server_without_a_keypair_fails() {
    let (_, msg1) = Session::client(&C, &[0; PROLOGUE_LEN], &keypair(1));
    let mut server = Session::server(&[0; PROLOGUE_LEN]);
    let r = deliver(&mut server, &msg1, &[32], None);
    assert_eq!(r.err(), Some(SessionError::NoKeypair));
    assert!(server.failed());
}

#[test]
fn wrong_confirmation_fails_before_any_delivery() {
    let p = [4; PROLOGUE_LEN];
    let (_, msg1) = Session::client(&C, &p, &keypair(1));
    let mut server = Session::server(&p);
    deliver(&mut server, &msg1, &[7], Some(keypair(2))).unwrap();
    let mut bad = vec![0u8; CONFIRM_LEN];
    bad.extend_from_slice(b"application bytes");
    let r = deliver(&mut server, &bad, &[100], None);
    assert_eq!(r.err(), Some(SessionError::Handshake(Error::BadConfirm)));
    assert!(server.failed());
}

/// The attacker on path 1 runs a session with each end and relays: each
/// end completes a handshake, but with him, so the ends' MP_JOIN keys
/// differ, and the first join over another path fails its HMAC.
#[test]
fn man_in_the_middle_is_left_with_mismatched_join_keys() {
    let p = [5; PROLOGUE_LEN];
    let (mut client, msg1) = Session::client(&C, &p, &keypair(1));
    let mut server = Session::server(&p);
    let mut m_server = Session::server(&p); // faces the client
    let (mut m_client, m_msg1) = Session::client(&C, &p, &keypair(9)); // faces the server
    let (_, m_msg2, _) = deliver(&mut m_server, &msg1, &[32], Some(keypair(8))).unwrap();
    let (_, msg2, _) = deliver(&mut server, &m_msg1, &[32], Some(keypair(2))).unwrap();
    let (_, confirm, _) = deliver(&mut client, &m_msg2, &[48], None).unwrap();
    let (_, m_confirm, _) = deliver(&mut m_client, &msg2, &[48], None).unwrap();
    deliver(&mut m_server, &confirm, &[16], None).unwrap();
    deliver(&mut server, &m_confirm, &[16], None).unwrap();
    let (c, s) = (client.join_keys().unwrap(), server.join_keys().unwrap());
    assert_ne!(c, (s.1, s.0));
}
