//! [`Harness`]: a server, a fake clock and everything the server sent, in memory; the
//! quinn-proto `Pair` of ocm.
//!
//! The harness plays the shell: every input goes through [`Harness::feed`], which steps
//! the server with [`ocm_core::invariants::step`] (so every property of
//! [`ocm_core::invariants::check_step`] is asserted after every input of every test),
//! then moves the outputs into records: bytes per TCP connection, datagrams sent,
//! events. Helpers speak the protocol through the real client state machines
//! ([`Handshake`], [`ChatSession`]), so a test reads as a conversation:
//!
//! ```
//! use ocm_testkit::Harness;
//! let mut h = Harness::rooms(ocm_core::Config::default());
//! let alice = h.create("10.0.0.1:50000", "lobby", "alice");
//! h.say("10.0.0.1:4000", "lobby", &alice, "");
//! let bob = h.join("10.0.0.2:50000", "lobby", "bob");
//! h.say("10.0.0.2:4000", "lobby", &bob, "hi");
//! assert_eq!(h.received_by("10.0.0.1:4000"), ["* bob joined", "bob: hi"]);
//! ```

use bytes::Bytes;
use ocm_core::client::{ChatSession, Handshake, HandshakeError};
use ocm_core::wire::relay_datagram::RelayDatagram;
use ocm_core::wire::room_datagram::RoomDatagram;
use ocm_core::{
    invariants, AnyServer, Config, ConnId, DropReason, Event, Input, Output, Protocol, RelayServer,
    RoomServer, SendFailure, Status,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The seed of every harness unless a test asks for another.
pub const SEED: [u8; 32] = [42; 32];

/// What one TCP connection saw from the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpRecord {
    /// Every byte written to it, in order.
    pub received: Vec<u8>,
    /// The server shut its write side.
    pub shut_down: bool,
    /// The server closed it.
    pub closed: bool,
}

/// A server, a clock and everything the server sent.
#[derive(Debug)]
pub struct Harness {
    /// The server under test.
    pub server: AnyServer,
    /// The fake clock: the time of every input.
    pub now: Instant,
    next_conn: u64,
    /// What each connection received.
    pub tcp: HashMap<ConnId, TcpRecord>,
    /// Datagrams sent and not yet taken.
    pub datagrams: Vec<(SocketAddr, Bytes)>,
    /// Every event, in order.
    pub events: Vec<Event>,
    outputs: Vec<Output>,
}

/// A socket address from text (tests name addresses as strings).
pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

impl Harness {
    /// A server for `protocol` with these limits and seed.
    pub fn new(protocol: Protocol, config: Config, seed: [u8; 32]) -> Harness {
        Harness {
            server: AnyServer::new(protocol, config, seed).expect("a valid config"),
            now: Instant::now(),
            next_conn: 0,
            tcp: HashMap::new(),
            datagrams: Vec::new(),
            events: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// A rooms server.
    pub fn rooms(config: Config) -> Harness {
        Harness::new(Protocol::Rooms, config, SEED)
    }

    /// A relay-mode server.
    pub fn relay(config: Config) -> Harness {
        Harness::new(Protocol::Relay, config, SEED)
    }

    /// The rooms server (panics in relay mode).
    pub fn room_server(&self) -> &RoomServer {
        self.server.rooms().expect("a rooms server")
    }

    /// The relay server (panics in rooms mode).
    pub fn relay_server(&self) -> &RelayServer {
        self.server.relay().expect("a relay server")
    }

    /// Feeds one input at [`Harness::now`], checks every property, records the outputs.
    pub fn feed(&mut self, input: Input<&[u8]>) {
        let described = format!("{input:?}");
        if let Err(violation) =
            invariants::step(&mut self.server, self.now, input, &mut self.outputs)
        {
            panic!("{violation} after {described}");
        }
        for output in self.outputs.drain(..) {
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
                Output::Datagram { to, payload } => self.datagrams.push((to, payload)),
                Output::Event(event) => self.events.push(event),
                Output::Cluster(output) => {
                    panic!("cluster output outside cluster mode: {output:?}")
                }
            }
        }
    }

    /// A new connection from `peer` (fresh id).
    pub fn connect(&mut self, peer: &str) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.tcp.insert(conn, TcpRecord::default());
        self.feed(Input::TcpAccepted {
            conn,
            peer: addr(peer),
        });
        conn
    }

    /// Bytes from the client on `conn`.
    pub fn tcp_send(&mut self, conn: ConnId, bytes: &[u8]) {
        self.feed(Input::TcpData { conn, data: bytes });
    }

    /// The client closes `conn`.
    pub fn tcp_eof(&mut self, conn: ConnId) {
        self.feed(Input::TcpClosed { conn });
    }

    /// Sends a raw request and returns what came back and whether the server closed.
    pub fn raw_request(&mut self, peer: &str, bytes: &[u8]) -> (Vec<u8>, bool) {
        let conn = self.connect(peer);
        self.tcp_send(conn, bytes);
        let record = &self.tcp[&conn];
        (record.received.clone(), record.closed)
    }

    /// Runs a full create or join through the client state machine and closes the
    /// connection; the token, or the status of the refusal.
    pub fn handshake(
        &mut self,
        peer: &str,
        create: bool,
        room: &str,
        user: &str,
        password: Option<&str>,
    ) -> Result<Bytes, Status> {
        let mut hs = if create {
            Handshake::create(room, user, password)
        } else {
            Handshake::join(room, user, password)
        }
        .expect("valid names");
        let conn = self.connect(peer);
        self.tcp_send(conn, hs.request());
        let received = self.tcp[&conn].received.clone();
        let result = match hs.handle_data(&received) {
            Ok(Some(token)) => Ok(token),
            Err(HandshakeError::Refused(status)) => Err(status),
            other => panic!("unexpected handshake result {other:?}"),
        };
        if result.is_ok() {
            assert!(self.tcp[&conn].shut_down, "write side shut after the token");
        } else {
            assert!(self.tcp[&conn].closed, "closed after a refusal");
        }
        // The client closes, as real ones do: after a refusal this ends the server's
        // linger (the shell reports the socket gone), so the slot is free at once.
        self.tcp_eof(conn);
        result
    }

    /// Creates `room` as `user`; the token.
    pub fn create(&mut self, peer: &str, room: &str, user: &str) -> Bytes {
        self.handshake(peer, true, room, user, None)
            .expect("create accepted")
    }

    /// Joins `room` as `user`; the token.
    pub fn join(&mut self, peer: &str, room: &str, user: &str) -> Bytes {
        self.handshake(peer, false, room, user, None)
            .expect("join accepted")
    }

    /// Any bytes as a datagram from `from`.
    pub fn datagram(&mut self, from: &str, bytes: &[u8]) {
        self.feed(Input::Datagram {
            from: addr(from),
            data: bytes,
        });
    }

    /// A room datagram from `from` with this token.
    pub fn say(&mut self, from: &str, room: &str, token: &[u8], message: &str) {
        let d = RoomDatagram {
            room: room.as_bytes(),
            token,
            message: message.as_bytes(),
        };
        self.datagram(from, &d.encode().expect("fits a datagram"));
    }

    /// A relay datagram `usernamelen | username | message` from `from`.
    pub fn relay_say(&mut self, from: &str, username: &str, message: &str) {
        let d = RelayDatagram::Message {
            username: username.as_bytes(),
            message: message.as_bytes(),
        };
        self.datagram(from, &d.encode().expect("fits a datagram"));
    }

    /// Sends everything a client session has queued, from `from`.
    pub fn flush(&mut self, from: &str, session: &mut ChatSession) {
        while let Some(d) = session.poll_transmit() {
            self.datagram(from, &d);
        }
    }

    /// A send to `to` failed: `send_to` refused it.
    pub fn send_failed(&mut self, to: &str) {
        let cause = SendFailure::Refused;
        self.feed(Input::SendFailed {
            to: addr(to),
            cause,
        });
    }

    /// An ICMP error quoting `to` came back (anyone could have forged it).
    pub fn icmp_error(&mut self, to: &str) {
        let cause = SendFailure::Icmp;
        self.feed(Input::SendFailed {
            to: addr(to),
            cause,
        });
    }

    /// The clock moves on by `by` and the timers run.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.feed(Input::Timeout);
    }

    /// The server shuts down.
    pub fn shutdown(&mut self) {
        self.feed(Input::Shutdown);
    }

    /// Datagrams sent since the last take, as (destination, bytes).
    pub fn take_bytes(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.datagrams
            .drain(..)
            .map(|(to, p)| (to, p.to_vec()))
            .collect()
    }

    /// Datagrams sent since the last take, as (destination, text).
    pub fn take(&mut self) -> Vec<(SocketAddr, String)> {
        self.take_bytes()
            .into_iter()
            .map(|(to, p)| (to, String::from_utf8(p).expect("UTF-8 datagram")))
            .collect()
    }

    /// The texts sent to `who` since the last take (the others are discarded).
    pub fn received_by(&mut self, who: &str) -> Vec<String> {
        let who = addr(who);
        self.take()
            .into_iter()
            .filter(|(to, _)| *to == who)
            .map(|(_, t)| t)
            .collect()
    }

    /// Every drop reported so far, in order.
    pub fn dropped(&self) -> Vec<DropReason> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::DatagramDropped { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }
}
