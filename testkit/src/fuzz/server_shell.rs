//! The shell around the server under `server_ops`: it feeds each [`ServerOp`] to the
//! [`RoomServer`] as core [`Input`]s through [`invariants::step`] (which checks what
//! holds for every server), plays the TCP peer and checks what is particular to rooms:
//! TCRP answers, refusals, dropped datagrams (see [`super::server_ops`] for the list).

use super::config::advance_far;
use super::pools::{address, message, request_frame, room_name, send_failure};
use super::server_ops::ServerOp;
use bytes::Bytes;
use ocm_core::output::{ConnId, Event, Output};
use ocm_core::rooms::{canonical_ip, MemberInfo, RoomServer};
use ocm_core::token::Token;
use ocm_core::wire::room_datagram::MAX_RELAYED_LEN;
use ocm_core::wire::tcrp::{FrameDecoder, State, Status};
use ocm_core::{invariants, Config, Input, Machine, Source};
use std::collections::HashMap;
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
    server: RoomServer,
    config: Config,
    now: Instant,
    /// Every connection id used, oldest first; ids are never reused.
    conns: Vec<ConnId>,
    open: HashMap<ConnId, ConnView>,
    /// Connections the server closed after answering while the peer had not closed:
    /// their sockets linger, and count against the limits, until the peer's close or
    /// the linger deadline (the peer's source and the deadline).
    lingering: HashMap<ConnId, (Source, Instant)>,
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
            server: RoomServer::new(config.clone(), [7; 32]).expect("fuzz configs are valid"),
            config,
            now: Instant::now(),
            conns: Vec::new(),
            open: HashMap::new(),
            lingering: HashMap::new(),
            issued: Vec::new(),
            recorded: record.then(Vec::new),
        }
    }

    /// Every output so far, when recording.
    pub(super) fn recorded(self) -> Vec<Output> {
        self.recorded.unwrap_or_default()
    }

    /// Feeds one core input with every check of [`invariants::step`]; its outputs are
    /// added to `outputs`.
    fn feed(&mut self, op: &ServerOp, input: Input<&[u8]>, outputs: &mut Vec<Output>) {
        let mut step = Vec::new();
        if let Err(violation) = invariants::step(&mut self.server, self.now, input, &mut step) {
            panic!("{violation} after {op:?}");
        }
        outputs.append(&mut step);
    }

    /// Applies one fuzz input (one or a few core inputs) and checks everything that came
    /// out of it.
    pub(super) fn step(&mut self, op: &ServerOp) {
        let before = self.members();
        let mut must_drop = false;
        let mut is_datagram = false;
        // A liveness probe: (its source, its size, true when it carries the token of
        // the member at that IP).
        let mut probe = None;
        let mut accepted = None;
        let mut peer_closed = None;
        let mut outputs = Vec::new();
        match op {
            ServerOp::Accept { peer } => {
                let conn = ConnId(self.conns.len() as u64);
                let peer = address(*peer);
                self.conns.push(conn);
                let source = self.source(peer);
                let from_source = self
                    .open
                    .values()
                    .map(|c| self.source(c.peer))
                    .chain(self.lingering.values().map(|(s, _)| *s))
                    .filter(|other| *other == source)
                    .count();
                let held = self.open.len() + self.lingering.len();
                // At the total limit the oldest connection without an answer yet makes
                // way; only with none is the new one refused.
                let unfinished = self.open.values().any(|c| c.response.is_none());
                let full = (held >= self.config.max_handshakes && !unfinished)
                    || from_source >= self.config.max_handshakes_per_ip;
                accepted = Some((conn, full));
                self.open.insert(conn, ConnView::new(peer));
                self.feed(op, Input::TcpAccepted { conn, peer }, &mut outputs);
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
                    for data in frame.chunks(size) {
                        self.feed(op, Input::TcpData { conn, data }, &mut outputs);
                    }
                }
            }
            ServerOp::TcpBytes { conn, data } => {
                if let Some(&conn) = newest(&self.conns, *conn) {
                    let data = &data.0[..];
                    self.feed(op, Input::TcpData { conn, data }, &mut outputs);
                }
            }
            ServerOp::Port { conn, port } => {
                // The 2 bytes, then EOF, as clients do: the step counts at EOF.
                if let Some(&conn) = newest(&self.conns, *conn) {
                    let data = &port.to_be_bytes()[..];
                    self.feed(op, Input::TcpData { conn, data }, &mut outputs);
                    self.feed(op, Input::TcpClosed { conn }, &mut outputs);
                    peer_closed = Some(conn);
                }
            }
            ServerOp::TcpClosed { conn } => {
                if let Some(&conn) = newest(&self.conns, *conn) {
                    self.feed(op, Input::TcpClosed { conn }, &mut outputs);
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
                let message = self::message(*message);
                let same_ip = ip == canonical_ip(from.ip());
                if room.is_empty() && message == ocm_core::probe::PROBE {
                    let from = ocm_core::rooms::canonical_addr(from);
                    probe = Some((from, 2 + token.len() + message.len(), same_ip));
                } else {
                    must_drop = room != token_room || !same_ip;
                    is_datagram = true;
                }
                let mut datagram = vec![room.len() as u8, token.len() as u8];
                for part in [&room[..], &token, &message] {
                    datagram.extend_from_slice(part);
                }
                let data = &datagram[..];
                self.feed(op, Input::Datagram { from, data }, &mut outputs);
            }
            ServerOp::RawDatagram { from, data } => {
                is_datagram = true;
                let (from, data) = (address(*from), &data.0[..]);
                self.feed(op, Input::Datagram { from, data }, &mut outputs);
            }
            ServerOp::Advance { millis } => self.now += Duration::from_millis(u64::from(*millis)),
            ServerOp::Timeout => self.feed(op, Input::Timeout, &mut outputs),
            ServerOp::FireNext => {
                if let Some(at) = self.server.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.feed(op, Input::Timeout, &mut outputs);
            }
            ServerOp::SendFailed { to } => {
                let (to, cause) = send_failure(*to);
                self.feed(op, Input::SendFailed { to, cause }, &mut outputs);
            }
            ServerOp::AdvanceFar => {
                self.now += advance_far(&self.config);
                self.feed(op, Input::Timeout, &mut outputs);
                // What that closed after an answer lingers: wait for it too.
                self.now += self.config.linger;
                self.feed(op, Input::Timeout, &mut outputs);
            }
            ServerOp::Shutdown => self.feed(op, Input::Shutdown, &mut outputs),
        }
        let timed_out = matches!(
            op,
            ServerOp::Timeout | ServerOp::FireNext | ServerOp::AdvanceFar
        );
        let refused =
            accepted.is_some_and(|(conn, _)| outputs.first() == Some(&Output::TcpClose { conn }));
        if let Some((_, full)) = accepted {
            assert_eq!(refused, full, "accept refused ≠ limit reached ({op:?})");
        }
        self.check_outputs(op, &outputs, peer_closed);
        if let Some(conn) = peer_closed {
            // The server may or may not confirm with a close; either way it is gone,
            // and so is a socket that was lingering.
            self.open.remove(&conn);
            self.lingering.remove(&conn);
        }
        if timed_out {
            let now = self.now;
            self.lingering.retain(|_, (_, deadline)| *deadline > now);
        }
        if matches!(op, ServerOp::Shutdown | ServerOp::AdvanceFar) {
            // Shutdown forgets every connection; AdvanceFar waited out every linger,
            // those of the connections its first timeout closed included.
            self.lingering.clear();
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
        if let Some((from, len, same_ip)) = probe {
            let sent: Vec<&[u8]> = outputs
                .iter()
                .filter_map(|o| match o {
                    Output::Datagram { to, payload } => {
                        assert_eq!(*to, from, "a probe was answered elsewhere ({op:?})");
                        Some(&payload[..])
                    }
                    _ => None,
                })
                .collect();
            assert!(
                sent.len() <= 1,
                "a probe got {} answers ({op:?})",
                sent.len()
            );
            match sent.first() {
                Some(answer) if answer.starts_with(b"* alive: ") => {
                    assert!(
                        same_ip,
                        "a probe from another IP was answered alive ({op:?})"
                    );
                }
                answer => {
                    if let Some(answer) = answer {
                        assert_eq!(*answer, b"* not a member", "({op:?})");
                        assert!(answer.len() <= len, "the answer outgrew the probe");
                    }
                    assert_eq!(
                        self.members(),
                        before,
                        "a stranger's probe changed a member"
                    );
                }
            }
        }
        self.check_state(op);
    }

    /// The source a peer counts under.
    fn source(&self, peer: SocketAddr) -> Source {
        Source::of(peer.ip(), self.config.ipv6_source_prefix)
    }

    /// Every member of every room, in a stable order.
    fn members(&self) -> Vec<MemberInfo> {
        let rooms = self.server.room_names();
        rooms
            .iter()
            .flat_map(|r| self.server.members_of(r).unwrap_or_default())
            .collect()
    }

    /// What only a rooms server must do, beyond [`invariants::check_step`]: datagrams
    /// are UTF-8 of at most 4094 bytes, TCRP answers are well formed and a refusal
    /// closes its connection.
    fn check_outputs(&mut self, op: &ServerOp, outputs: &[Output], peer_closed: Option<ConnId>) {
        let mut refusals = Vec::new();
        for output in outputs {
            match output {
                Output::Datagram { payload, .. } => {
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
                    let view = self.open.remove(conn);
                    let Some(view) = view else {
                        panic!("close of closed {conn:?} ({op:?})");
                    };
                    if view.response.is_some() && peer_closed != Some(*conn) {
                        let deadline = self.now + self.config.linger;
                        let source = self.source(view.peer);
                        self.lingering.insert(*conn, (source, deadline));
                    }
                }
                Output::Event(_) => {}
                Output::Cluster(output) => {
                    panic!("cluster output outside cluster mode: {output:?}")
                }
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

    /// The shell's view agrees with the server's, and nothing outlives every timeout.
    fn check_state(&self, op: &ServerOp) {
        let counts = self.server.counts();
        assert_eq!(counts.queued_outputs, 0);
        assert_eq!(
            counts.connections,
            self.open.len() + self.lingering.len(),
            "shell and server disagree on open and lingering connections after {op:?}"
        );
        if matches!(op, ServerOp::AdvanceFar) {
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
    use crate::fuzz::FuzzConfig;

    fn harness() -> Harness {
        Harness::new(FuzzConfig::ROOMY.config(), false)
    }

    #[test]
    #[should_panic(expected = "send on closed")]
    fn a_send_on_a_closed_connection_is_caught() {
        let send = Output::TcpSend {
            conn: ConnId(9),
            data: Bytes::from_static(b"x"),
        };
        harness().check_outputs(&ServerOp::Timeout, &[send], None);
    }

    #[test]
    #[should_panic(expected = "left open after a refusal")]
    fn a_refusal_without_a_close_is_caught() {
        let mut harness = harness();
        harness.open.insert(ConnId(0), ConnView::new(address(0)));
        let data = ocm_core::wire::tcrp::encode_response(b"lobby", 1, Status::RoomExists);
        let send = Output::TcpSend {
            conn: ConnId(0),
            data,
        };
        harness.check_outputs(&ServerOp::Timeout, &[send], None);
    }
}
