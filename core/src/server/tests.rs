//! Whole-protocol tests of the rooms server, in memory: a test harness plays the
//! shell, moving outputs into records and advancing a fake clock.

use super::*;
use crate::client::{port_bytes, ChatSession, Handshake, Incoming};
use crate::wire::notice::Notice;
use crate::wire::room_datagram::RoomDatagram;
use crate::wire::tcrp::{encode_frame, Status};
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;

const SEED: [u8; 32] = [42; 32];

/// What one TCP connection saw from the server.
#[derive(Default, Debug)]
struct TcpRecord {
    received: Vec<u8>,
    shut_down: bool,
    closed: bool,
}

/// A server, a clock and everything the server sent.
struct Harness {
    server: Server,
    now: Instant,
    next_conn: u64,
    tcp: HashMap<ConnId, TcpRecord>,
    datagrams: Vec<(SocketAddr, Bytes)>,
    events: Vec<Event>,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

impl Harness {
    fn new() -> Harness {
        Harness::with(Config::default())
    }

    fn with(config: Config) -> Harness {
        Harness {
            server: Server::new(config, SEED).unwrap(),
            now: Instant::now(),
            next_conn: 0,
            tcp: HashMap::new(),
            datagrams: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Drains outputs, then checks the server's own invariants.
    fn pump(&mut self) {
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::TcpSend { conn, data } => {
                    let record = self.tcp.entry(conn).or_default();
                    assert!(!record.shut_down && !record.closed, "write after shutdown");
                    record.received.extend_from_slice(&data);
                }
                Output::TcpShutdownWrite { conn } => {
                    self.tcp.entry(conn).or_default().shut_down = true
                }
                Output::TcpClose { conn } => self.tcp.entry(conn).or_default().closed = true,
                Output::Datagram { to, payload } => {
                    assert!(payload.len() <= 4094);
                    self.datagrams.push((to, payload));
                }
                Output::Event(event) => self.events.push(event),
            }
        }
        self.server.check_invariants().unwrap();
    }

    fn connect(&mut self, peer: &str) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.tcp.insert(conn, TcpRecord::default());
        self.server.handle_tcp_accept(self.now, conn, addr(peer));
        self.pump();
        conn
    }

    fn tcp_send(&mut self, conn: ConnId, bytes: &[u8]) {
        self.server.handle_tcp_data(self.now, conn, bytes);
        self.pump();
    }

    fn tcp_eof(&mut self, conn: ConnId) {
        self.server.handle_tcp_closed(self.now, conn);
        self.pump();
    }

    /// Sends a raw request and returns what came back and whether the server closed.
    fn raw_request(&mut self, peer: &str, bytes: &[u8]) -> (Vec<u8>, bool) {
        let conn = self.connect(peer);
        self.tcp_send(conn, bytes);
        let record = &self.tcp[&conn];
        (record.received.clone(), record.closed)
    }

    /// Runs a full create/join through the client state machine; closes the connection.
    fn handshake(
        &mut self,
        peer: &str,
        create: bool,
        room: &str,
        user: &str,
        password: Option<&str>,
    ) -> Result<Bytes, Status> {
        let mut hs = if create {
            Handshake::create(room, user, password).unwrap()
        } else {
            Handshake::join(room, user, password).unwrap()
        };
        let conn = self.connect(peer);
        self.tcp_send(conn, hs.request());
        let received = self.tcp[&conn].received.clone();
        let result = match hs.handle_data(&received) {
            Ok(Some(token)) => Ok(token),
            Err(crate::client::HandshakeError::Refused(status)) => Err(status),
            other => panic!("unexpected handshake result {other:?}"),
        };
        if result.is_ok() {
            assert!(self.tcp[&conn].shut_down, "write side shut after the token");
            self.tcp_eof(conn);
        } else {
            assert!(self.tcp[&conn].closed, "closed after a refusal");
        }
        result
    }

    fn create(&mut self, peer: &str, room: &str, user: &str) -> Bytes {
        self.handshake(peer, true, room, user, None).unwrap()
    }

    fn join(&mut self, peer: &str, room: &str, user: &str) -> Bytes {
        self.handshake(peer, false, room, user, None).unwrap()
    }

    fn datagram(&mut self, from: &str, bytes: &[u8]) {
        self.server.handle_datagram(self.now, addr(from), bytes);
        self.pump();
    }

    fn say(&mut self, from: &str, room: &str, token: &[u8], message: &str) {
        let d = RoomDatagram {
            room: room.as_bytes(),
            token,
            message: message.as_bytes(),
        };
        self.datagram(from, &d.encode().unwrap());
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.server.handle_timeout(self.now);
        self.pump();
    }

    /// Datagrams sent since the last call, as (destination, text).
    fn take(&mut self) -> Vec<(SocketAddr, String)> {
        self.datagrams
            .drain(..)
            .map(|(to, p)| (to, String::from_utf8(p.to_vec()).unwrap()))
            .collect()
    }

    fn received_by(&mut self, who: &str) -> Vec<String> {
        let who = addr(who);
        self.take()
            .into_iter()
            .filter(|(to, _)| *to == who)
            .map(|(_, t)| t)
            .collect()
    }

    fn dropped(&self) -> Vec<DropReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::DatagramDropped { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}

const A: &str = "10.0.0.1:4000";
const B: &str = "10.0.0.2:4000";
const C: &str = "10.0.0.3:4000";
const A_TCP: &str = "10.0.0.1:50000";
const B_TCP: &str = "10.0.0.2:50000";
const C_TCP: &str = "10.0.0.3:50000";

/// A room "lobby" with host alice at A and member bob at B, both registered over UDP.
fn lobby() -> (Harness, Bytes, Bytes) {
    let mut h = Harness::new();
    let ta = h.create(A_TCP, "lobby", "alice");
    h.say(A, "lobby", &ta, "");
    let tb = h.join(B_TCP, "lobby", "bob");
    h.say(B, "lobby", &tb, "");
    h.take();
    (h, ta, tb)
}

fn response(room: &[u8], op: u8, status: Status) -> Vec<u8> {
    crate::wire::tcrp::encode_response(room, op, status).to_vec()
}

// ---- TCRP: statuses, exact bytes ----

#[test]
fn create_answers_ok_then_a_hex_token_then_shuts_its_write_side() {
    let mut h = Harness::new();
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &encode_frame(b"lobby", 1, 0, b"alice"));
    let got = h.tcp[&conn].received.clone();
    let ok = response(b"lobby", 1, Status::Ok);
    assert_eq!(&got[..ok.len()], &ok[..]);
    let complete = &got[ok.len()..];
    assert_eq!(&complete[..3], &[5, 1, 2]);
    assert_eq!(&complete[30..32], &[0, 32]);
    assert_eq!(&complete[32..37], b"lobby");
    let token = &complete[37..];
    assert_eq!(token.len(), 32);
    assert!(token
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
    assert!(h.tcp[&conn].shut_down && !h.tcp[&conn].closed);
    assert_eq!(
        h.server.members_of("lobby").unwrap()[0].username.as_ref(),
        "alice"
    );
    assert!(h.server.members_of("lobby").unwrap()[0].is_host);
    h.tcp_eof(conn);
    assert!(h.tcp[&conn].closed);
    assert_eq!(h.server.counts().connections, 0);
}

#[test]
fn duplicate_room_is_room_exists() {
    let mut h = Harness::new();
    h.create(A_TCP, "lobby", "alice");
    let (got, closed) = h.raw_request(B_TCP, &encode_frame(b"lobby", 1, 0, b"bob"));
    assert_eq!(got, response(b"lobby", 1, Status::RoomExists));
    assert!(closed);
    assert_eq!(h.server.stats().handshakes(Status::RoomExists), 1);
}

#[test]
fn join_of_missing_room_is_room_not_found() {
    let mut h = Harness::new();
    let (got, closed) = h.raw_request(B_TCP, &encode_frame(b"nowhere", 2, 0, b"bob"));
    assert_eq!(got, response(b"nowhere", 2, Status::RoomNotFound));
    assert!(closed);
}

#[test]
fn passwords_protect_rooms_and_are_ignored_by_open_ones() {
    let mut h = Harness::new();
    h.handshake(A_TCP, true, "vault", "alice", Some("s3cret"))
        .unwrap();
    assert_eq!(
        h.handshake(B_TCP, false, "vault", "bob", Some("nope")),
        Err(Status::InvalidPassword)
    );
    assert_eq!(
        h.handshake(B_TCP, false, "vault", "bob", None),
        Err(Status::InvalidPassword)
    );
    assert!(h
        .handshake(B_TCP, false, "vault", "bob", Some("s3cret"))
        .is_ok());
    h.create(A_TCP, "open", "alice");
    assert!(h
        .handshake(C_TCP, false, "open", "carol", Some("anything"))
        .is_ok());
    let (got, _) = h.raw_request(
        C_TCP,
        &encode_frame(b"vault", 2, 0, br#"{"username":"c","password":"x"}"#),
    );
    assert_eq!(got, response(b"vault", 2, Status::InvalidPassword));
}

#[test]
fn username_taken_only_within_one_room() {
    let mut h = Harness::new();
    h.create(A_TCP, "one", "alice");
    assert_eq!(
        h.handshake(B_TCP, false, "one", "alice", None),
        Err(Status::UsernameTaken)
    );
    h.create(B_TCP, "two", "alice");
    // byte-exact comparison: a different case is a different name
    assert!(h.handshake(C_TCP, false, "one", "Alice", None).is_ok());
}

#[test]
fn invalid_requests_get_status_5() {
    let cases: Vec<(Vec<u8>, &[u8], u8)> = vec![
        (encode_frame(b"r", 3, 0, b"bob").to_vec(), b"r", 3), // unknown operation
        (encode_frame(b"r", 1, 1, b"bob").to_vec(), b"r", 1), // not a request state
        (encode_frame(b"", 1, 0, b"bob").to_vec(), b"", 1),   // empty room name
        (encode_frame(b"\xff", 1, 0, b"bob").to_vec(), b"\xff", 1), // room not UTF-8
        (encode_frame(b"a\tb", 1, 0, b"bob").to_vec(), b"a\tb", 1), // control character
        (encode_frame(b"r", 1, 0, b"\xc3").to_vec(), b"r", 1), // payload not UTF-8
        (
            encode_frame(b"r", 1, 0, br#"{"user":"x"}"#).to_vec(),
            b"r",
            1,
        ), // JSON without username
        (encode_frame(b"r", 1, 0, b"*admin").to_vec(), b"r", 1), // username starts with *
        (encode_frame(b"r", 1, 0, b"").to_vec(), b"r", 1),    // empty username
    ];
    for (request, room, op) in cases {
        let mut h = Harness::new();
        let (got, closed) = h.raw_request(A_TCP, &request);
        assert_eq!(
            got,
            response(room, op, Status::InvalidRequest),
            "request {request:?}"
        );
        assert!(closed);
        assert_eq!(h.server.counts().rooms, 0);
    }
}

#[test]
fn oversize_payload_is_refused_after_the_room_name_without_reading_it() {
    let mut h = Harness::new();
    let conn = h.connect(A_TCP);
    let mut header = encode_frame(b"big", 1, 0, &[]).to_vec();
    header[28..32].copy_from_slice(&4097u32.to_be_bytes());
    h.tcp_send(conn, &header[..34]);
    assert!(
        h.tcp[&conn].received.is_empty(),
        "no answer before the whole room name"
    );
    h.tcp_send(conn, &header[34..]);
    assert_eq!(
        h.tcp[&conn].received,
        response(b"big", 1, Status::PayloadTooLarge)
    );
    assert!(h.tcp[&conn].closed);
    // a 29-byte size with its top byte set
    let mut huge = encode_frame(b"big", 2, 0, &[]).to_vec();
    huge[3] = 0x80;
    let (got, closed) = h.raw_request(B_TCP, &huge);
    assert_eq!(got, response(b"big", 2, Status::PayloadTooLarge));
    assert!(closed);
}

#[test]
fn payload_limit_is_configurable_and_inclusive() {
    let mut h = Harness::with(Config {
        max_payload: 10,
        ..Config::default()
    });
    let (got, _) = h.raw_request(A_TCP, &encode_frame(b"r", 1, 0, b"0123456789"));
    assert_eq!(&got[..34], &response(b"r", 1, Status::Ok)[..]);
    let (got, _) = h.raw_request(A_TCP, &encode_frame(b"s", 1, 0, b"0123456789a"));
    assert_eq!(got, response(b"s", 1, Status::PayloadTooLarge));
}

#[test]
fn room_and_member_limits_are_server_full() {
    let mut h = Harness::with(Config {
        max_rooms: 1,
        max_members_per_room: 2,
        ..Config::default()
    });
    h.create(A_TCP, "one", "alice");
    assert_eq!(
        h.handshake(B_TCP, true, "two", "bob", None),
        Err(Status::ServerFull)
    );
    h.join(B_TCP, "one", "bob");
    assert_eq!(
        h.handshake(C_TCP, false, "one", "carol", None),
        Err(Status::ServerFull)
    );
    let mut h = Harness::with(Config {
        max_members: 2,
        ..Config::default()
    });
    h.create(A_TCP, "one", "alice");
    h.create(B_TCP, "two", "bob");
    assert_eq!(
        h.handshake(C_TCP, false, "one", "carol", None),
        Err(Status::ServerFull)
    );
    assert_eq!(
        h.handshake(C_TCP, true, "three", "carol", None),
        Err(Status::ServerFull)
    );
}

#[test]
fn one_ip_holds_at_most_max_members_per_ip_seats() {
    let mut h = Harness::with(Config {
        max_members_per_ip: 2,
        ..Config::default()
    });
    h.create(A_TCP, "one", "alice");
    let two = h.create("10.0.0.1:50001", "two", "alice");
    assert_eq!(
        h.handshake("10.0.0.1:50002", true, "three", "alice", None),
        Err(Status::ServerFull)
    );
    assert_eq!(
        h.handshake("10.0.0.1:50003", false, "one", "al", None),
        Err(Status::ServerFull)
    );
    // another IP is not affected
    h.join(B_TCP, "one", "bob");
    h.create(B_TCP, "three", "bob");
    // a seat given back can be taken again
    h.say("10.0.0.1:4001", "two", &two, "/exit");
    assert!(h
        .handshake("10.0.0.1:50004", true, "four", "alice", None)
        .is_ok());
    assert_eq!(h.server.counts().members, 4);
}

#[test]
fn checks_run_in_the_documented_order() {
    let mut h = Harness::with(Config {
        max_members_per_room: 2,
        ..Config::default()
    });
    h.handshake(A_TCP, true, "vault", "alice", Some("pw"))
        .unwrap();
    h.handshake(B_TCP, false, "vault", "bob", Some("pw"))
        .unwrap();
    let order =
        |h: &mut Harness, frame: Bytes| h.raw_request(C_TCP, &frame).0[32 + frame[0] as usize];
    // bad state beats too large
    let mut big = encode_frame(b"vault", 2, 1, &[]).to_vec();
    big[31] = 255;
    big[30] = 255;
    assert_eq!(
        order(&mut h, Bytes::from(big.clone())),
        Status::InvalidRequest.code()
    );
    // too large beats a bad room name
    let mut big_bad_room = encode_frame(b"\xff", 2, 0, &[]).to_vec();
    big_bad_room[30] = 255;
    assert_eq!(
        order(&mut h, Bytes::from(big_bad_room)),
        Status::PayloadTooLarge.code()
    );
    // bad payload beats "room exists"
    assert_eq!(
        order(&mut h, encode_frame(b"vault", 1, 0, b"*x")),
        Status::InvalidRequest.code()
    );
    // join: missing room beats everything after it
    assert_eq!(
        order(&mut h, encode_frame(b"none", 2, 0, b"bob")),
        Status::RoomNotFound.code()
    );
    // wrong password beats username taken and room full
    assert_eq!(
        order(&mut h, encode_frame(b"vault", 2, 0, b"bob")),
        Status::InvalidPassword.code()
    );
    // username taken beats room full
    let taken = encode_frame(b"vault", 2, 0, br#"{"username":"bob","password":"pw"}"#);
    assert_eq!(order(&mut h, taken), Status::UsernameTaken.code());
    let full = encode_frame(b"vault", 2, 0, br#"{"username":"carol","password":"pw"}"#);
    assert_eq!(order(&mut h, full), Status::ServerFull.code());
}

#[test]
fn request_split_into_single_bytes_is_answered_once_whole() {
    let mut h = Harness::new();
    let conn = h.connect(A_TCP);
    let request = encode_frame(b"lobby", 1, 0, br#"{"username":"alice"}"#);
    for (i, byte) in request.iter().enumerate() {
        assert!(
            h.tcp[&conn].received.is_empty() || i == request.len(),
            "answered early at {i}"
        );
        h.tcp_send(conn, &[*byte]);
    }
    let ok = response(b"lobby", 1, Status::Ok);
    assert_eq!(&h.tcp[&conn].received[..ok.len()], &ok[..]);
}

// ---- TCP connection lifecycle ----

#[test]
fn slow_connections_are_closed_at_the_handshake_deadline() {
    let mut h = Harness::new();
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &[5, 1]);
    assert_eq!(
        h.server.poll_timeout(),
        Some(h.now + Duration::from_secs(10))
    );
    h.advance(Duration::from_millis(9_999));
    assert!(!h.tcp[&conn].closed);
    h.advance(Duration::from_millis(1));
    assert!(h.tcp[&conn].closed);
    assert!(h.tcp[&conn].received.is_empty());
    assert_eq!(h.server.stats().handshake_timeouts, 1);
    assert_eq!(h.server.counts().connections, 0);
}

#[test]
fn connection_limits_close_at_once_without_a_response() {
    let mut h = Harness::with(Config {
        max_handshakes: 3,
        max_handshakes_per_ip: 2,
        ..Config::default()
    });
    let a1 = h.connect("10.0.0.1:1");
    h.connect("10.0.0.1:2");
    let a3 = h.connect("10.0.0.1:3");
    assert!(h.tcp[&a3].closed && h.tcp[&a3].received.is_empty());
    assert!(!h.tcp.get(&a1).is_some_and(|r| r.closed));
    // IPv4-mapped IPv6 counts as the same IP
    let mapped = h.connect("[::ffff:10.0.0.1]:4");
    assert!(h.tcp[&mapped].closed);
    h.connect("10.0.0.2:1");
    let over_total = h.connect("10.0.0.3:1");
    assert!(h.tcp[&over_total].closed);
    assert_eq!(h.server.stats().connections_refused, 3);
    // a closed connection frees its slot
    h.tcp_eof(a1);
    let again = h.connect("10.0.0.1:5");
    assert!(!h.tcp.get(&again).is_some_and(|r| r.closed));
}

#[test]
fn port_step_registers_the_udp_address_before_the_member_speaks() {
    let (mut h, _, _) = lobby();
    let mut hs = Handshake::join("lobby", "carol", None).unwrap();
    let conn = h.connect(C_TCP);
    h.tcp_send(conn, hs.request());
    let received = h.tcp[&conn].received.clone();
    hs.handle_data(&received).unwrap().unwrap();
    h.tcp_send(conn, &port_bytes(6000));
    assert!(
        !h.tcp[&conn].closed,
        "2 bytes so far: a third would void the step"
    );
    h.tcp_eof(conn);
    assert!(h.tcp[&conn].closed);
    let carol = h.server.members_of("lobby").unwrap()[2].clone();
    assert_eq!(carol.udp, Some(addr("10.0.0.3:6000")));
    h.take();
    h.say(
        A,
        "lobby",
        &h.server.members_of("lobby").map(|_| Bytes::new()).unwrap(),
        "x",
    );
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
}

#[test]
fn member_with_port_step_receives_messages_before_speaking() {
    let (mut h, ta, _) = lobby();
    let mut hs = Handshake::join("lobby", "carol", None).unwrap();
    let conn = h.connect(C_TCP);
    // request and port pipelined in one write
    let mut bytes = hs.request().to_vec();
    bytes.extend_from_slice(&port_bytes(6000));
    h.tcp_send(conn, &bytes);
    let received = h.tcp[&conn].received.clone();
    assert!(hs.handle_data(&received).unwrap().is_some());
    h.tcp_eof(conn);
    h.take();
    h.say(A, "lobby", &ta, "hello carol");
    assert_eq!(h.received_by("10.0.0.3:6000"), vec!["alice: hello carol"]);
}

#[test]
fn port_step_ignores_wrong_lengths_and_port_zero() {
    for (bytes, eof) in [
        (&[0u8, 0][..], true),
        (&[1, 2, 3][..], false),
        (&[1][..], true),
    ] {
        let mut h = Harness::new();
        let mut hs = Handshake::create("r", "alice", None).unwrap();
        let conn = h.connect(A_TCP);
        h.tcp_send(conn, hs.request());
        let received = h.tcp[&conn].received.clone();
        hs.handle_data(&received).unwrap().unwrap();
        h.tcp_send(conn, bytes);
        if eof {
            h.tcp_eof(conn);
        }
        assert!(h.tcp[&conn].closed, "{bytes:?}");
        assert_eq!(h.server.members_of("r").unwrap()[0].udp, None, "{bytes:?}");
    }
}

#[test]
fn port_step_outcome_does_not_depend_on_how_tcp_splits_it() {
    // the same bytes, whole or split: 2 bytes count (at EOF or at the deadline), 3 never
    let cases: [(Vec<&[u8]>, bool, bool); 6] = [
        (vec![&[0x17, 0x70]], true, true),
        (vec![&[0x17], &[0x70]], true, true),
        (vec![&[0x17, 0x70]], false, true),
        (vec![&[0x17, 0x70, 1]], true, false),
        (vec![&[0x17, 0x70], &[1]], true, false),
        (vec![&[0x17], &[0x70], &[1]], false, false),
    ];
    for (chunks, eof, applied) in cases {
        let mut h = Harness::new();
        let conn = h.connect(A_TCP);
        h.tcp_send(conn, &encode_frame(b"r", 1, 0, b"alice"));
        for chunk in &chunks {
            h.tcp_send(conn, chunk);
        }
        if eof {
            h.tcp_eof(conn);
        } else {
            h.advance(Duration::from_secs(1));
        }
        assert!(h.tcp[&conn].closed);
        let udp = h.server.members_of("r").unwrap()[0].udp;
        assert_eq!(udp, applied.then(|| addr("10.0.0.1:6000")), "{chunks:?}");
    }
}

#[test]
fn port_wait_is_bounded() {
    let mut h = Harness::new();
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &encode_frame(b"r", 1, 0, b"alice"));
    h.advance(Duration::from_millis(999));
    assert!(!h.tcp[&conn].closed);
    h.advance(Duration::from_millis(1));
    assert!(h.tcp[&conn].closed);
    assert_eq!(
        h.server.stats().handshake_timeouts,
        0,
        "not a handshake timeout"
    );
    assert_eq!(h.server.counts().members, 1, "the member stays");
}

// ---- UDP chat ----

#[test]
fn three_members_see_each_others_messages_once_and_never_their_own() {
    let (mut h, ta, tb) = lobby();
    let tc = h.join(C_TCP, "lobby", "carol");
    h.say(C, "lobby", &tc, "");
    h.take();
    h.say(A, "lobby", &ta, "hi from a");
    h.say(B, "lobby", &tb, "hi from b");
    h.say(C, "lobby", &tc, "hi from c");
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), "bob: hi from b".to_string()),
            (addr(A), "carol: hi from c".to_string()),
            (addr(B), "alice: hi from a".to_string()),
            (addr(B), "carol: hi from c".to_string()),
            (addr(C), "alice: hi from a".to_string()),
            (addr(C), "bob: hi from b".to_string()),
        ]
    );
    assert_eq!(h.server.stats().messages_relayed, 3);
}

#[test]
fn rooms_are_separate() {
    let (mut h, ta, _) = lobby();
    let tc = h.create(C_TCP, "other", "carol");
    h.say(C, "other", &tc, "");
    h.take();
    h.say(A, "lobby", &ta, "only lobby");
    assert!(h.take().iter().all(|(to, _)| *to != addr(C)));
}

#[test]
fn joined_notice_goes_to_members_with_a_known_address_only() {
    let mut h = Harness::new();
    let ta = h.create(A_TCP, "lobby", "alice");
    h.say(A, "lobby", &ta, "");
    h.join(B_TCP, "lobby", "bob"); // bob has no address yet
    assert_eq!(h.take(), vec![(addr(A), "* bob joined".to_string())]);
    h.join(C_TCP, "lobby", "carol");
    assert_eq!(h.take(), vec![(addr(A), "* carol joined".to_string())]);
}

#[test]
fn unauthorized_datagrams_are_dropped_counted_and_change_nothing() {
    let (mut h, ta, tb) = lobby();
    let before = h.server.members_of("lobby").unwrap();
    let cases: Vec<(&str, Vec<u8>, DropReason)> = vec![
        (
            "10.9.9.9:1",
            RoomDatagram {
                room: b"lobby",
                token: &ta,
                message: b"stolen",
            }
            .encode()
            .unwrap()
            .to_vec(),
            DropReason::WrongAddress,
        ),
        (
            "10.0.0.1:9",
            RoomDatagram {
                room: b"lobby",
                token: &tb,
                message: b"bob's token",
            }
            .encode()
            .unwrap()
            .to_vec(),
            DropReason::WrongAddress,
        ),
        (
            A,
            RoomDatagram {
                room: b"nope",
                token: &ta,
                message: b"x",
            }
            .encode()
            .unwrap()
            .to_vec(),
            DropReason::UnknownRoom,
        ),
        (
            A,
            RoomDatagram {
                room: b"lobby",
                token: &[b'0'; 32],
                message: b"x",
            }
            .encode()
            .unwrap()
            .to_vec(),
            DropReason::UnknownToken,
        ),
        (
            A,
            RoomDatagram {
                room: b"lobby",
                token: b"short",
                message: b"x",
            }
            .encode()
            .unwrap()
            .to_vec(),
            DropReason::UnknownToken,
        ),
        (
            A,
            RoomDatagram {
                room: b"lobby",
                token: &ta,
                message: b"\xff\xfe",
            }
            .encode()
            .unwrap()
            .to_vec(),
            DropReason::NotUtf8,
        ),
        (A, vec![5, 32, b'l'], DropReason::Truncated),
        (A, vec![], DropReason::Truncated),
        (A, vec![0; 4097], DropReason::TooLarge),
    ];
    for (from, bytes, reason) in cases {
        h.events.clear();
        h.datagram(from, &bytes);
        assert_eq!(h.dropped(), vec![reason], "from {from}");
        assert!(
            h.take().is_empty(),
            "nothing is sent for a dropped datagram"
        );
    }
    assert_eq!(h.server.members_of("lobby").unwrap(), before);
    assert_eq!(h.server.stats().dropped_total(), 9);
    assert_eq!(h.server.stats().dropped(DropReason::WrongAddress), 2);
}

#[test]
fn token_of_another_room_is_refused() {
    let (mut h, ta, _) = lobby();
    h.create(C_TCP, "other", "carol");
    h.say(A, "other", &ta, "wrong room");
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
}

#[test]
fn token_obtained_over_ipv4_works_from_the_mapped_ipv6_form() {
    let (mut h, ta, _) = lobby();
    h.say("[::ffff:10.0.0.1]:5000", "lobby", &ta, "via v6");
    assert_eq!(h.received_by(B), vec!["alice: via v6"]);
    assert!(h.dropped().is_empty());
    // one member, one canonical address, whichever form a datagram or failure uses
    assert_eq!(
        h.server.members_of("lobby").unwrap()[0].udp,
        Some(addr("10.0.0.1:5000"))
    );
    assert!(h.events.contains(&Event::MemberAddress {
        room: "lobby".into(),
        username: "alice".into(),
        addr: addr("10.0.0.1:5000"),
    }));
    for to in [
        "[::ffff:10.0.0.1]:5000",
        "10.0.0.1:5000",
        "[::ffff:10.0.0.1]:5000",
    ] {
        h.server.handle_send_failed(h.now, addr(to));
    }
    h.pump();
    assert_eq!(
        h.server.counts().rooms,
        0,
        "the host failed 3 times: evicted, room closed"
    );
}

#[test]
fn empty_message_is_a_keepalive_and_sets_the_address() {
    let (mut h, ta, tb) = lobby();
    h.say("10.0.0.2:7777", "lobby", &tb, "");
    assert!(h.take().is_empty());
    h.say(A, "lobby", &ta, "moved?");
    assert_eq!(
        h.take(),
        vec![(addr("10.0.0.2:7777"), "alice: moved?".to_string())]
    );
    assert_eq!(h.server.stats().keepalives, 3);
}

#[test]
fn long_messages_are_cut_at_a_character_boundary() {
    let mut h = Harness::new();
    let long_name = "n".repeat(255);
    let ta = h.create(A_TCP, "r", &long_name);
    let tb = h.join(B_TCP, "r", "bob");
    h.say(B, "r", &tb, "");
    // the longest message that fits: 4096 - 2 - 1 (room) - 32 (token) = 4061 bytes
    let text = format!("{}{}", "x".repeat(2), "あ".repeat(1353));
    assert_eq!(text.len(), 4061);
    h.say(A, "r", &ta, &text);
    let got = h.received_by(B);
    // 255 + 2 + 2 = 259 bytes, then whole "あ" (3 bytes) up to 4094: 1278 of them = 4093
    assert_eq!(got[0].len(), 4093);
    assert!(got[0].starts_with(&format!("{long_name}: xxあ")));
}

#[test]
fn member_exit_tells_the_others_and_kills_the_token() {
    let (mut h, ta, tb) = lobby();
    h.say(B, "lobby", &tb, "/exit");
    assert_eq!(h.take(), vec![(addr(A), "* bob left".to_string())]);
    h.say(B, "lobby", &tb, "still here?");
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
    h.say(A, "lobby", &ta, "anyone?");
    assert!(h.take().is_empty());
    assert_eq!(h.server.counts().members, 1);
}

#[test]
fn host_exit_closes_the_room_and_all_its_tokens() {
    let (mut h, ta, tb) = lobby();
    let tc = h.join(C_TCP, "lobby", "carol");
    h.say(C, "lobby", &tc, "");
    h.take();
    h.say(A, "lobby", &ta, "/exit");
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(B), "* room closed: host left".to_string()),
            (addr(C), "* room closed: host left".to_string()),
        ]
    );
    assert!(h.server.room_names().is_empty());
    assert_eq!(h.server.counts().members, 0);
    h.say(B, "lobby", &tb, "hello?");
    assert_eq!(h.dropped(), vec![DropReason::UnknownRoom]);
    // the name is free again, and an old token does not work in the new room
    h.create(C_TCP, "lobby", "carol");
    h.events.clear();
    h.say(B, "lobby", &tb, "hello?");
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
}

#[test]
fn idle_members_are_evicted_and_told() {
    let (mut h, ta, _) = lobby();
    let tc = h.join(C_TCP, "lobby", "carol");
    h.say(C, "lobby", &tc, "");
    h.advance(Duration::from_secs(200));
    h.say(A, "lobby", &ta, ""); // alice keeps alive
    h.say(C, "lobby", &tc, ""); // carol keeps alive
    h.take();
    h.advance(Duration::from_secs(100)); // bob silent for 300 s
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), "* bob was disconnected".to_string()),
            (
                addr(B),
                "* disconnected: idle for 300 s, join again".to_string()
            ),
            (addr(C), "* bob was disconnected".to_string()),
        ]
    );
    assert_eq!(h.server.stats().evictions, 1);
    assert!(
        matches!(h.events.last(), Some(Event::MemberEvicted { username, .. }) if &**username == "bob")
    );
    // alice and carol fall due together; the host goes first and closes the room
    h.advance(Duration::from_secs(200));
    assert_eq!(
        h.take(),
        vec![
            (
                addr(A),
                "* disconnected: idle for 300 s, join again".to_string()
            ),
            (addr(C), "* room closed: host left".to_string()),
        ]
    );
    assert!(h.server.room_names().is_empty());
}

#[test]
fn evicted_host_closes_the_room_for_the_others() {
    let (mut h, _, tb) = lobby();
    h.advance(Duration::from_secs(299));
    h.say(B, "lobby", &tb, "");
    h.advance(Duration::from_secs(1));
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                addr(A),
                "* disconnected: idle for 300 s, join again".to_string()
            ),
            (addr(B), "* room closed: host left".to_string()),
        ]
    );
}

#[test]
fn invalid_datagrams_do_not_refresh_idle_time() {
    let (mut h, _, tb) = lobby();
    h.advance(Duration::from_secs(299));
    h.say("10.9.9.9:1", "lobby", &tb, ""); // stolen token: no effect
    h.say(B, "lobby", &tb, "\u{0}ok"); // valid: refreshes bob
    h.advance(Duration::from_secs(1));
    assert!(
        h.server.members_of("lobby").is_none(),
        "alice idle: room closed"
    );
}

#[test]
fn send_failures_evict_after_n_in_a_row_and_a_datagram_resets_the_count() {
    let (mut h, ta, tb) = lobby();
    h.server.handle_send_failed(h.now, addr(B));
    h.server.handle_send_failed(h.now, addr(B));
    h.pump();
    h.say(B, "lobby", &tb, ""); // proof of life resets
    h.server.handle_send_failed(h.now, addr(B));
    h.server.handle_send_failed(h.now, addr(B));
    h.pump();
    assert_eq!(h.server.counts().members, 2);
    h.server.handle_send_failed(h.now, addr(B));
    h.pump();
    assert_eq!(h.server.counts().members, 1);
    assert_eq!(
        h.take(),
        vec![
            (
                addr(B),
                "* disconnected: 3 failed sends, join again".to_string()
            ),
            (addr(A), "* bob was disconnected".to_string()),
        ]
    );
    // failures for addresses nobody uses change nothing
    h.server.handle_send_failed(h.now, addr("10.9.9.9:9"));
    h.pump();
    h.say(A, "lobby", &ta, "");
    assert_eq!(h.server.stats().send_failures, 6);
}

#[test]
fn evicted_member_can_join_again_with_a_new_token() {
    let (mut h, ta, tb) = lobby();
    for _ in 0..3 {
        h.server.handle_send_failed(h.now, addr(B));
    }
    h.pump();
    h.say(B, "lobby", &tb, "old token");
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
    h.take();
    let tb2 = h.join(B_TCP, "lobby", "bob");
    assert_ne!(tb, tb2);
    assert_eq!(h.received_by(A), vec!["* bob joined"]);
    h.say(B, "lobby", &tb2, "back");
    assert_eq!(h.received_by(A), vec!["bob: back"]);
    h.say(A, "lobby", &ta, "welcome");
    assert_eq!(h.received_by(B), vec!["alice: welcome"]);
}

#[test]
fn poll_timeout_tracks_the_earliest_idle_deadline() {
    let (mut h, _, tb) = lobby();
    let start = h.now;
    h.advance(Duration::from_secs(100));
    h.say(B, "lobby", &tb, "");
    // alice's deadline is the earliest; an early wake-up fires nothing
    h.server.handle_timeout(start + Duration::from_secs(299));
    h.pump();
    assert_eq!(h.server.counts().members, 2);
    assert_eq!(
        h.server.poll_timeout(),
        Some(start + Duration::from_secs(300))
    );
}

#[test]
fn shutdown_tells_every_member_and_empties_the_server() {
    let (mut h, _, _) = lobby();
    let conn = h.connect(C_TCP);
    h.server.shutdown(h.now);
    h.pump();
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), "* room closed: server shutting down".to_string()),
            (addr(B), "* room closed: server shutting down".to_string()),
        ]
    );
    assert!(h.tcp[&conn].closed);
    assert_eq!(h.server.counts(), Counts::default());
}

#[test]
fn the_same_seed_gives_the_same_tokens() {
    let mut a = Harness::new();
    let mut b = Harness::new();
    assert_eq!(a.create(A_TCP, "r", "x"), b.create(A_TCP, "r", "x"));
    let mut c = Harness {
        server: Server::new(Config::default(), [1; 32]).unwrap(),
        ..Harness::new()
    };
    assert_ne!(a.join(B_TCP, "r", "y"), c.create(A_TCP, "r", "x"));
}

#[test]
fn stale_timer_entries_are_compacted() {
    let mut h = Harness::new();
    for i in 0..500 {
        let conn = h.connect(&format!("10.1.{}.{}:1", i / 200, i % 200));
        h.tcp_eof(conn);
    }
    assert!(h.server.counts().timers >= 500);
    h.advance(Duration::from_millis(1));
    assert!(
        h.server.counts().timers <= 64,
        "{}",
        h.server.counts().timers
    );
}

#[test]
fn client_session_speaks_to_the_server() {
    let mut h = Harness::new();
    let ta = h.create(A_TCP, "lobby", "alice");
    let tb = h.join(B_TCP, "lobby", "bob");
    let keep = Duration::from_secs(60);
    let mut alice = ChatSession::room(h.now, "lobby", &ta, keep).unwrap();
    let mut bob = ChatSession::room(h.now, "lobby", &tb, keep).unwrap();
    let flush = |h: &mut Harness, from: &str, s: &mut ChatSession| {
        while let Some(d) = s.poll_transmit() {
            h.datagram(from, &d);
        }
    };
    flush(&mut h, A, &mut alice);
    flush(&mut h, B, &mut bob);
    h.take();
    bob.send(h.now, "hi alice").unwrap();
    flush(&mut h, B, &mut bob);
    let got = h.received_by(A);
    assert_eq!(
        alice.handle_datagram(got[0].as_bytes()),
        Some(Incoming::Line("bob: hi alice".into()))
    );
    bob.leave(h.now);
    flush(&mut h, B, &mut bob);
    let got = h.received_by(A);
    assert_eq!(
        alice.handle_datagram(got[0].as_bytes()),
        Some(Incoming::Notice(Notice::Left("bob".into())))
    );
    assert!(!alice.is_ended());
}

mod properties {
    //! Arbitrary input sequences: no panic, invariants after every input, and nothing
    //! is ever sent to an address that is not a member's.

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Input {
        Accept(u8, u8),
        Tcp(u8, Vec<u8>),
        Request(u8, u8, u8, u8), // conn, op, room, user
        Closed(u8),
        Datagram(u8, Vec<u8>),
        Chat(u8, u8, String), // from host, member index, text
        SendFailed(u8),
        Advance(u16),
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            (0u8..6, 0u8..3).prop_map(|(c, ip)| Input::Accept(c, ip)),
            (0u8..6, proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(c, b)| Input::Tcp(c, b)),
            (0u8..6, 0u8..4, 0u8..3, 0u8..4).prop_map(|(c, o, r, u)| Input::Request(c, o, r, u)),
            (0u8..6).prop_map(Input::Closed),
            (0u8..3, proptest::collection::vec(any::<u8>(), 0..60))
                .prop_map(|(f, b)| Input::Datagram(f, b)),
            (0u8..3, 0u8..8, "[a-z/]{0,6}").prop_map(|(f, m, t)| Input::Chat(f, m, t)),
            (0u8..3).prop_map(Input::SendFailed),
            (0u16..400).prop_map(Input::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn arbitrary_inputs_keep_the_server_consistent(inputs in proptest::collection::vec(input(), 0..60)) {
            let mut h = Harness::with(Config {
                max_rooms: 2,
                max_members_per_room: 3,
                max_handshakes: 4,
                max_handshakes_per_ip: 2,
                idle_timeout: Duration::from_secs(60),
                ..Config::default()
            });
            let udp = |i: u8| addr(&format!("10.0.0.{}:4000", i + 1));
            let mut conns = HashMap::new();
            let member_addresses = |server: &Server| -> Vec<SocketAddr> {
                server.room_names().iter()
                    .flat_map(|r| server.members_of(r).unwrap())
                    .filter_map(|m| m.udp)
                    .collect()
            };
            for input in inputs {
                let before = member_addresses(&h.server);
                match input {
                    Input::Accept(c, ip) => {
                        let peer = addr(&format!("10.0.0.{}:5000", ip + 1));
                        h.tcp.remove(&ConnId(u64::from(c)));
                        h.server.handle_tcp_accept(h.now, ConnId(u64::from(c)), peer);
                        conns.insert(c, ip);
                    }
                    Input::Tcp(c, b) => h.server.handle_tcp_data(h.now, ConnId(u64::from(c)), &b),
                    Input::Request(c, o, r, u) => {
                        let frame = encode_frame(&[b'r', b'0' + r], o, 0, &[b'u', b'0' + u]);
                        h.server.handle_tcp_data(h.now, ConnId(u64::from(c)), &frame);
                    }
                    Input::Closed(c) => h.server.handle_tcp_closed(h.now, ConnId(u64::from(c))),
                    Input::Datagram(f, b) => h.server.handle_datagram(h.now, udp(f), &b),
                    Input::Chat(f, m, text) => {
                        // speak with a real token when one was handed out
                        let tokens: Vec<Vec<u8>> = h.tcp.values()
                            .filter(|r| r.received.len() > 70)
                            .map(|r| r.received[r.received.len() - 32..].to_vec())
                            .collect();
                        if let Some(token) = tokens.get(usize::from(m) % tokens.len().max(1)) {
                            for room in [&b"r0"[..], b"r1", b"r2"] {
                                let d = RoomDatagram { room, token, message: text.as_bytes() };
                                h.server.handle_datagram(h.now, udp(f), &d.encode().unwrap());
                            }
                        }
                    }
                    Input::SendFailed(f) => h.server.handle_send_failed(h.now, udp(f)),
                    Input::Advance(secs) => {
                        h.now += Duration::from_secs(u64::from(secs));
                        h.server.handle_timeout(h.now);
                    }
                }
                // every datagram goes to an address that was a member's before or after
                // this input (evicted members and closed rooms are told on their way out)
                let after = member_addresses(&h.server);
                h.pump();
                for (to, _) in h.datagrams.drain(..) {
                    prop_assert!(before.contains(&to) || after.contains(&to), "sent to {to}");
                }
                let counts = h.server.counts();
                prop_assert!(counts.rooms <= 2 && counts.connections <= 4);
            }
        }
    }
}
