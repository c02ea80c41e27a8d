//! The shell around the server under `server_ops`: it feeds each [`ServerOp`] to the
//! [`Server`], drains the outputs, plays the TCP peer and checks every output and the
//! server's state against the protocol (see [`super::server_ops`] for the list).

use super::config::advance_far;
use super::pools::{address, message, request_frame, room_name};
use super::server_ops::ServerOp;
use crate::output::{ConnId, Event, Output};
use crate::server::{canonical_ip, MemberInfo, Server};
use crate::token::Token;
use crate::wire::room_datagram::MAX_RELAYED_LEN;
use crate::wire::tcrp::{FrameDecoder, State, Status};
use crate::Config;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// A token as the server issued it.
#[derive(Debug)]
struct Issued {
    room: Bytes,
    token: Bytes,
    ip: IpAddr,
}

/// A connection as the shell sees it.
#[derive(Debug)]
struct ConnView {
    peer: SocketAddr,
    answers: FrameDecoder,
    /// The response: room echoed, operation echoed, status.
    response: Option<(Bytes, u8, Status)>,
    complete: bool,
    shut: bool,
}

/// The shell around the server under test.
pub(super) struct Harness {
    server: Server,
    config: Config,
    now: Instant,
    /// Every connection id used, oldest first; ids are never reused.
    conns: Vec<ConnId>,
    open: HashMap<ConnId, ConnView>,
    issued: Vec<Issued>,
    /// Every output, when recording.
    recorded: Option<Vec<Output>>,
}

/// Picks from `items` counting back from the newest.
fn newest<T>(items: &[T], index: u8) -> Option<&T> {
    let len = items.len();
    (len > 0).then(|| &items[len - 1 - usize::from(index) % len])
}

impl Harness {
    pub(super) fn new(config: Config, record: bool) -> Harness {
        Harness {
            server: Server::new(config.clone(), [7; 32]).expect("fuzz configs are valid"),
            config,
            now: Instant::now(),
            conns: Vec::new(),
            open: HashMap::new(),
            issued: Vec::new(),
            recorded: record.then(Vec::new),
        }
    }

    /// Every output so far, when recording.
    pub(super) fn recorded(self) -> Vec<Output> {
        self.recorded.unwrap_or_default()
    }

    /// Applies one input and checks everything that came out of it.
    pub(super) fn step(&mut self, op: &ServerOp) {
        let before = self.members();
        let addrs: HashSet<SocketAddr> = before.iter().filter_map(|m| m.udp).collect();
        let mut must_drop = false;
        let mut is_datagram = false;
        let mut accepted = None;
        let mut peer_closed = None;
        let now = self.now;
        match op {
            ServerOp::Accept { peer } => {
                let conn = ConnId(self.conns.len() as u64);
                let peer = address(*peer);
                self.conns.push(conn);
                let ip = canonical_ip(peer.ip());
                let from_ip = self
                    .open
                    .values()
                    .filter(|c| canonical_ip(c.peer.ip()) == ip)
                    .count();
                let full = self.open.len() >= self.config.max_handshakes
                    || from_ip >= self.config.max_handshakes_per_ip;
                accepted = Some((conn, full));
                self.open.insert(conn, ConnView::new(peer));
                self.server.handle_tcp_accept(now, conn, peer);
            }
            ServerOp::Request {
                conn,
                kind,
                room,
                user,
                password,
                chunk,
            } => {
                if let Some(&conn) = newest(&self.conns, *conn) {
                    let frame = request_frame(*kind, *room, *user, *password);
                    let size = if *chunk == 0 {
                        frame.len()
                    } else {
                        usize::from(*chunk)
                    };
                    for piece in frame.chunks(size) {
                        self.server.handle_tcp_data(now, conn, piece);
                    }
                }
            }
            ServerOp::TcpBytes { conn, data } => {
                if let Some(&conn) = newest(&self.conns, *conn) {
                    self.server.handle_tcp_data(now, conn, data);
                }
            }
            ServerOp::Port { conn, port } => {
                // The 2 bytes, then EOF, as clients do: the step counts at EOF.
                if let Some(&conn) = newest(&self.conns, *conn) {
                    self.server.handle_tcp_data(now, conn, &port.to_be_bytes());
                    self.server.handle_tcp_closed(now, conn);
                    peer_closed = Some(conn);
                }
            }
            ServerOp::TcpClosed { conn } => {
                if let Some(&conn) = newest(&self.conns, *conn) {
                    self.server.handle_tcp_closed(now, conn);
                    peer_closed = Some(conn);
                }
            }
            ServerOp::Datagram {
                from,
                token,
                room,
                message,
            } => {
                let from = address(*from);
                let (token_room, token, ip) = match newest(&self.issued, *token) {
                    Some(i) => (i.room.to_vec(), i.token.to_vec(), i.ip),
                    None => (b"lobby".to_vec(), vec![b'0'; 32], canonical_ip(from.ip())),
                };
                let room = if *room == 0 {
                    token_room.clone()
                } else {
                    room_name(room - 1)
                };
                must_drop = room != token_room || ip != canonical_ip(from.ip());
                is_datagram = true;
                let message = self::message(*message);
                let mut datagram = vec![room.len() as u8, token.len() as u8];
                for part in [&room[..], &token, &message] {
                    datagram.extend_from_slice(part);
                }
                self.server.handle_datagram(now, from, &datagram);
            }
            ServerOp::RawDatagram { from, data } => {
                is_datagram = true;
                self.server.handle_datagram(now, address(*from), data);
            }
            ServerOp::Advance { millis } => self.now += Duration::from_millis(u64::from(*millis)),
            ServerOp::Timeout => self.server.handle_timeout(now),
            ServerOp::FireNext => {
                if let Some(at) = self.server.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.server.handle_timeout(self.now);
            }
            ServerOp::SendFailed { to } => self.server.handle_send_failed(now, address(*to)),
            ServerOp::AdvanceFar => {
                self.now += advance_far(&self.config);
                self.server.handle_timeout(self.now);
            }
            ServerOp::Shutdown => self.server.shutdown(now),
        }
        let outputs: Vec<Output> = std::iter::from_fn(|| self.server.poll_output()).collect();
        let refused =
            accepted.is_some_and(|(conn, _)| outputs.first() == Some(&Output::TcpClose { conn }));
        if let Some((_, full)) = accepted {
            assert_eq!(refused, full, "accept refused ≠ limit reached ({op:?})");
        }
        self.check_outputs(op, &outputs, &addrs);
        if let Some(conn) = peer_closed {
            // The server may or may not confirm with a close; either way it is gone.
            self.open.remove(&conn);
        }
        let dropped = outputs
            .iter()
            .any(|o| matches!(o, Output::Event(Event::DatagramDropped { .. })));
        if is_datagram && (dropped || must_drop) {
            assert!(
                dropped,
                "datagram with a foreign token or room accepted ({op:?})"
            );
            let sent = outputs.iter().any(|o| matches!(o, Output::Datagram { .. }));
            assert!(!sent, "a dropped datagram made the server send ({op:?})");
            assert_eq!(
                self.members(),
                before,
                "a dropped datagram changed a member ({op:?})"
            );
        }
        self.check_state(op);
    }

    /// Every member of every room, in a stable order.
    fn members(&self) -> Vec<MemberInfo> {
        let rooms = self.server.room_names();
        rooms
            .iter()
            .flat_map(|r| self.server.members_of(r).unwrap_or_default())
            .collect()
    }

    fn check_outputs(&mut self, op: &ServerOp, outputs: &[Output], addrs: &HashSet<SocketAddr>) {
        let mut refusals = Vec::new();
        // An address that becomes known during this input (a port step at its deadline,
        // say) may be told something in the same input, e.g. of its own idle eviction.
        let mut addrs = addrs.clone();
        for output in outputs {
            match output {
                Output::Event(Event::MemberAddress { addr, .. }) => {
                    addrs.insert(*addr);
                }
                Output::Datagram { to, payload } => {
                    assert!(
                        addrs.contains(to),
                        "datagram to {to}, not a member address ({op:?})"
                    );
                    assert!(payload.len() <= MAX_RELAYED_LEN, "datagram over 4094 bytes");
                    assert!(!payload.is_empty(), "empty datagram sent");
                    assert!(std::str::from_utf8(payload).is_ok(), "datagram not UTF-8");
                }
                Output::TcpSend { conn, data } => {
                    let view = self
                        .open
                        .get_mut(conn)
                        .unwrap_or_else(|| panic!("send on closed {conn:?}"));
                    if let Some(token) = view.read_answer(data) {
                        self.issued.push(token);
                    }
                    if view.response.as_ref().is_some_and(|r| r.2 != Status::Ok) {
                        refusals.push(*conn);
                    }
                }
                Output::TcpShutdownWrite { conn } => {
                    let view = self
                        .open
                        .get_mut(conn)
                        .unwrap_or_else(|| panic!("shutdown of closed {conn:?}"));
                    assert!(
                        view.complete && !view.shut,
                        "shutdown before the token or twice"
                    );
                    view.shut = true;
                }
                Output::TcpClose { conn } => {
                    assert!(
                        self.open.remove(conn).is_some(),
                        "close of closed {conn:?} ({op:?})"
                    );
                }
                Output::Event(_) => {}
            }
        }
        if let Some(recorded) = &mut self.recorded {
            recorded.extend_from_slice(outputs);
        }
        for conn in refusals {
            assert!(
                !self.open.contains_key(&conn),
                "{conn:?} left open after a refusal"
            );
        }
    }

    fn check_state(&self, op: &ServerOp) {
        if let Err(violation) = self.server.check_invariants() {
            panic!("{violation} after {op:?}");
        }
        let counts = self.server.counts();
        assert_eq!(counts.queued_outputs, 0);
        assert_eq!(
            counts.connections,
            self.open.len(),
            "shell and server disagree on open connections"
        );
        if matches!(
            op,
            ServerOp::Timeout | ServerOp::FireNext | ServerOp::AdvanceFar
        ) {
            let next = self.server.poll_timeout();
            if let Some(at) = next {
                assert!(at > self.now, "a due timer was left after handle_timeout");
            }
            let live = counts.connections + counts.members;
            assert!(
                counts.timers <= 2 * live + 64,
                "{} timers for {live} live entries",
                counts.timers
            );
        }
        if counts.connections + counts.members > 0 {
            assert!(
                self.server.poll_timeout().is_some(),
                "live entries without a deadline"
            );
        }
        if matches!(op, ServerOp::AdvanceFar | ServerOp::Shutdown) {
            assert_eq!(
                (counts.rooms, counts.members, counts.connections),
                (0, 0, 0),
                "left after {op:?}"
            );
        }
    }
}

impl ConnView {
    fn new(peer: SocketAddr) -> ConnView {
        ConnView {
            peer,
            answers: FrameDecoder::new(64),
            response: None,
            complete: false,
            shut: false,
        }
    }

    /// Checks what the server wrote; returns the token of a complete frame.
    fn read_answer(&mut self, mut data: &[u8]) -> Option<Issued> {
        let mut issued = None;
        while let Some(frame) = self
            .answers
            .decode(&mut data)
            .expect("server answer within 64 bytes")
        {
            match (State::from_code(frame.state), &self.response) {
                (Some(State::Response), None) => {
                    let [code] = frame.payload[..] else {
                        panic!("status is not one byte")
                    };
                    let status = Status::from_code(code).expect("known status");
                    self.response = Some((frame.room, frame.operation, status));
                }
                (Some(State::Complete), Some((room, operation, Status::Ok))) if !self.complete => {
                    assert_eq!(
                        (&frame.room, frame.operation),
                        (room, *operation),
                        "complete echo differs"
                    );
                    assert!(
                        Token::parse(&frame.payload).is_some(),
                        "token is not 32 lowercase hex"
                    );
                    self.complete = true;
                    issued = Some(Issued {
                        room: frame.room,
                        token: frame.payload,
                        ip: canonical_ip(self.peer.ip()),
                    });
                }
                (state, response) => panic!("unexpected {state:?} frame after {response:?}"),
            }
        }
        assert!(
            data.is_empty() && self.answers.is_idle(),
            "partial answer frame"
        );
        issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::FuzzConfig;

    fn harness() -> Harness {
        Harness::new(FuzzConfig::ROOMY.config(), false)
    }

    #[test]
    #[should_panic(expected = "not a member address")]
    fn a_datagram_to_a_stranger_is_caught() {
        let datagram = Output::Datagram {
            to: address(0),
            payload: Bytes::from_static(b"bob: hi"),
        };
        harness().check_outputs(&ServerOp::Timeout, &[datagram], &HashSet::new());
    }

    #[test]
    #[should_panic(expected = "send on closed")]
    fn a_send_on_a_closed_connection_is_caught() {
        let send = Output::TcpSend {
            conn: ConnId(9),
            data: Bytes::from_static(b"x"),
        };
        harness().check_outputs(&ServerOp::Timeout, &[send], &HashSet::new());
    }

    #[test]
    #[should_panic(expected = "left open after a refusal")]
    fn a_refusal_without_a_close_is_caught() {
        let mut harness = harness();
        harness.open.insert(ConnId(0), ConnView::new(address(0)));
        let data = crate::wire::tcrp::encode_response(b"lobby", 1, Status::RoomExists);
        let send = Output::TcpSend {
            conn: ConnId(0),
            data,
        };
        harness.check_outputs(&ServerOp::Timeout, &[send], &HashSet::new());
    }
}
