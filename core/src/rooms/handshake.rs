//! The TCP side of the rooms server: one TCRP request per connection, answered with a
//! status and, on success, a token; then the optional 2-byte UDP port; then close.
//!
//! Checks run in the order of `docs/PROTOCOL.md`, and the first failure wins:
//! operation/state, payload size, room name, payload, then the room's own checks.
//!
//! In cluster mode a request that passed the local checks waits for the registry
//! (`AwaitRegistry`) and is answered when the registry has decided ([`super::cluster`]);
//! port bytes and an EOF that come meanwhile are kept for the port step.
//!
//! A connection counts against the connection limits for as long as its socket can be
//! open, not only while the protocol needs it: one the server closes after answering,
//! while the peer has not closed its side, lingers in the shell (read and discarded so
//! that a reset cannot destroy the answer) for up to `Config::linger`. It stays here as
//! [`Phase::Lingering`] until the shell reports the socket gone
//! ([`crate::Input::TcpClosed`]) or the linger deadline passes, whichever is first. A
//! connection closed without an answer, or after the peer closed, is closed at once.

use super::cluster::{Admission, Admitted};
use super::membership::MemberId;
use super::{canonical_ip, RoomServer, TimerKey};
use crate::cluster::registry::RequestId;
use crate::names;
use crate::output::{ConnId, Event, ShedReason};
use crate::source::Source;
use crate::wire::request::parse_payload;
use crate::wire::tcrp::{
    encode_complete, encode_response, DecodeError, Frame, FrameDecoder, Header, Operation, State,
    Status,
};
use bytes::Bytes;
use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Instant;

/// One open TCP connection.
#[derive(Debug)]
pub(crate) struct Conn {
    peer: SocketAddr,
    /// What its per-source limit counts it under.
    pub(crate) source: Source,
    accepted: Instant,
    deadline: Instant,
    /// Bytes of its unfinished request the decoder holds (0 once answered).
    pub(crate) held: usize,
    phase: Phase,
}

impl Conn {
    /// Whether it is still reading its request (what `incomplete` and the request
    /// budget track).
    pub(crate) fn reads_request(&self) -> bool {
        matches!(self.phase, Phase::Request(_))
    }

    /// When it was accepted (its age in `incomplete` and `holders`).
    pub(crate) fn accepted(&self) -> Instant {
        self.accepted
    }
}

#[derive(Debug)]
enum Phase {
    /// Reading the request frame.
    Request(FrameDecoder),
    /// Token sent and write side shut; waiting for 2 bytes of UDP port or EOF.
    AwaitPort {
        member: MemberId,
        port: [u8; 2],
        filled: usize,
        /// The `port` of the JSON request, used when no 2-byte step sets one.
        requested: Option<u16>,
    },
    /// Cluster mode: the request passed the local checks and waits for the registry.
    /// Port bytes are kept (`filled` 3: more than 2 came), and so is an EOF.
    AwaitRegistry {
        request: RequestId,
        port: [u8; 2],
        filled: usize,
        eof: bool,
    },
    /// Closed by the server after an answer; the shell's socket may still be open (it
    /// lingers). Nothing it reads reaches the protocol; it only holds its slot.
    Lingering,
}

/// How a connection the server closes goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    /// Nothing was answered, or the peer closed first: the shell closes the socket at
    /// once, and the slot is free now.
    AtOnce,
    /// The server answered and the peer may still be sending: the shell lingers, and
    /// the slot stays taken until it reports the socket gone or the linger ends.
    Linger,
}

impl RoomServer {
    /// A TCP connection was accepted from `peer`. Over its source's connection limit it
    /// is closed at once, without a response. At the total limit, the oldest connection
    /// still sending its request is closed (without a response) to make way for it; with
    /// none, it is refused. An id that is still open is a shell bug: ignored.
    pub fn handle_tcp_accept(&mut self, now: Instant, conn: ConnId, peer: SocketAddr) {
        if self.conns.contains_key(&conn) {
            return;
        }
        let source = self.source(peer.ip());
        let full = self.conns.len() >= self.config.max_handshakes;
        let oldest = self.incomplete.first().map(|(_, c)| *c);
        let displace = match oldest {
            Some(oldest) if full => Some(oldest),
            _ => None,
        };
        if self.conns_per_source.get(source) >= self.config.max_handshakes_per_ip
            || (full && displace.is_none())
        {
            self.out.stats.connections_refused += 1;
            self.out.tcp_close(conn);
            self.out.emit(Event::ConnectionRefused { peer });
            return;
        }
        if let Some(victim) = displace {
            self.shed(now, victim, ShedReason::Displaced);
        }
        self.conns_per_source.add(source);
        self.incomplete.insert((now, conn));
        let deadline = now + self.config.handshake_timeout;
        self.conns.insert(
            conn,
            Conn {
                peer,
                source,
                accepted: now,
                deadline,
                held: 0,
                phase: Phase::Request(FrameDecoder::new(self.config.max_payload)),
            },
        );
        self.timers.schedule(deadline, TimerKey::Conn(conn));
    }

    /// Bytes the unfinished requests of all connections hold now (at most
    /// `Config::request_budget`).
    pub fn request_bytes(&self) -> usize {
        self.request_bytes
    }

    /// Closes an unfinished connection without an answer to protect the others.
    fn shed(&mut self, now: Instant, conn: ConnId, reason: ShedReason) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let peer = c.peer;
        match reason {
            ShedReason::Displaced => self.out.stats.connections_displaced += 1,
            ShedReason::RequestBudget => self.out.stats.connections_over_budget += 1,
        }
        self.out.emit(Event::ConnectionShed { peer, reason });
        self.close_conn(now, conn, Close::AtOnce);
    }

    /// The decoder of `conn` took `taken` more bytes of a request it has not finished.
    /// Over the global budget, the connections holding the most (the oldest first among
    /// equals) are closed without an answer until the rest fits.
    fn hold(&mut self, now: Instant, conn: ConnId, taken: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let order = Reverse((c.accepted, conn));
        self.holders.remove(&(c.held, order));
        c.held += taken;
        self.holders.insert((c.held, order));
        self.request_bytes += taken;
        while self.request_bytes > self.config.request_budget {
            let Some(&(_, Reverse((_, victim)))) = self.holders.last() else {
                break;
            };
            self.shed(now, victim, ShedReason::RequestBudget);
        }
    }

    /// `conn` has stopped sending its request (answered, closed or gone): it is no longer
    /// unfinished, and what its decoder held is given back to the budget.
    fn end_request(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        self.incomplete.remove(&(c.accepted, conn));
        self.holders.remove(&(c.held, Reverse((c.accepted, conn))));
        self.request_bytes -= std::mem::take(&mut c.held);
    }

    /// Bytes arrived on a connection.
    pub fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let mut input = data;
        let decoded = match self.conns.get_mut(&conn) {
            Some(Conn {
                phase: Phase::Request(decoder),
                ..
            }) => decoder.decode(&mut input),
            // after the answer, or before it while the registry decides: port bytes
            Some(Conn {
                phase: Phase::AwaitPort { .. } | Phase::AwaitRegistry { .. },
                ..
            }) => Ok(None),
            // Lingering: the shell reads only to discard; what was in flight is ignored.
            Some(_) | None => return,
        };
        let taken = data.len() - input.len();
        match decoded {
            Ok(None) if taken > 0 => self.hold(now, conn, taken),
            Ok(None) => {}
            Ok(Some(frame)) => self.answer(now, conn, frame),
            Err(DecodeError::PayloadTooLarge { header, room }) => {
                self.answer_too_large(now, conn, header, room)
            }
        }
        if !input.is_empty() {
            self.port_bytes(now, conn, input);
        }
    }

    /// The peer closed its side, or the connection failed; for a connection the server
    /// already closed, the shell's socket is gone. The server forgets it; a port step
    /// of exactly 2 bytes takes effect now. A connection waiting for the registry only
    /// notes the EOF: the peer may only have shut its write side, and still gets its
    /// answer.
    pub fn handle_tcp_closed(&mut self, now: Instant, conn: ConnId) {
        match self.conns.get_mut(&conn).map(|c| &mut c.phase) {
            Some(Phase::AwaitRegistry { eof, .. }) => *eof = true,
            Some(Phase::Lingering) => self.release_conn(conn),
            Some(_) => {
                self.finish_port_step(conn);
                self.close_conn(now, conn, Close::AtOnce);
            }
            None => {}
        }
    }

    pub(crate) fn conn_timer(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.deadline > now {
            self.timers.schedule(c.deadline, TimerKey::Conn(conn));
            return;
        }
        match c.phase {
            Phase::AwaitRegistry { request, .. } => self.registry_abandoned(now, request),
            Phase::Request(_) => {
                self.out.stats.handshake_timeouts += 1;
                let peer = c.peer;
                self.out.emit(Event::HandshakeTimedOut { peer });
                self.close_conn(now, conn, Close::AtOnce);
            }
            Phase::AwaitPort { .. } => {
                self.finish_port_step(conn);
                self.close_conn(now, conn, Close::Linger);
            }
            Phase::Lingering => self.release_conn(conn),
        }
    }

    /// Closes a connection the server is done with: the shell is told to close it, and
    /// its slot is freed now or held for the linger (see the module doc).
    fn close_conn(&mut self, now: Instant, conn: ConnId, how: Close) {
        match self.conns.get(&conn) {
            None
            | Some(Conn {
                phase: Phase::Lingering,
                ..
            }) => return,
            Some(_) => {}
        }
        self.end_request(conn);
        self.out.tcp_close(conn);
        match how {
            Close::AtOnce => self.release_conn(conn),
            Close::Linger => {
                let c = self.conns.get_mut(&conn).expect("connection is open");
                c.phase = Phase::Lingering;
                c.deadline = now + self.config.linger;
                self.timers.schedule(c.deadline, TimerKey::Conn(conn));
            }
        }
    }

    /// Forgets a connection whose socket is gone (or is closing at once): its slot is
    /// free. Nothing is sent.
    pub(crate) fn release_conn(&mut self, conn: ConnId) {
        self.end_request(conn);
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.conns_per_source.remove(c.source);
        self.sweep_timers();
    }

    /// Shutdown: every connection is closed (those lingering already were) and forgotten.
    pub(crate) fn close_all_conns(&mut self) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            if !matches!(self.conns[&conn].phase, Phase::Lingering) {
                self.out.tcp_close(conn);
            }
            self.release_conn(conn);
        }
    }

    fn answer(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let peer = self.conns[&conn].peer;
        match self.admit(now, conn, peer, &frame) {
            Admission::Asked(request) => self.set_awaiting(conn, request),
            Admission::Done(admitted) => {
                self.finish_answer(now, conn, &frame.room, frame.operation, admitted)
            }
        }
    }

    /// Answers the request on `conn` (if it is still open and not answered): the
    /// status, then on success the token and the port step.
    pub(crate) fn finish_answer(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame_room: &[u8],
        op_code: u8,
        admitted: Result<Admitted, Status>,
    ) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let (early, early_filled, eof) = match c.phase {
            Phase::Request(_) => ([0; 2], 0, false),
            Phase::AwaitRegistry {
                port, filled, eof, ..
            } => (port, filled, eof),
            Phase::AwaitPort { .. } | Phase::Lingering => return,
        };
        let peer = c.peer;
        let status = admitted.as_ref().err().copied().unwrap_or(Status::Ok);
        let operation = Operation::from_code(op_code);
        self.record_answer(conn, peer, operation, frame_room, op_code, status);
        let Ok((member, token, requested)) = admitted else {
            // A peer that closed while the registry decided is gone from the shell
            // already (it reports a socket once): nothing to linger for.
            let how = if eof { Close::AtOnce } else { Close::Linger };
            self.close_conn(now, conn, how);
            return;
        };
        let data = encode_complete(frame_room, op_code, &token);
        self.out.tcp_send(conn, data);
        self.out.tcp_shutdown_write(conn);
        let deadline = now + self.config.port_wait;
        self.end_request(conn);
        let c = self.conns.get_mut(&conn).expect("connection is open");
        c.deadline = deadline;
        c.phase = Phase::AwaitPort {
            member,
            port: early,
            filled: early_filled,
            requested,
        };
        if eof || early_filled > 2 {
            self.finish_port_step(conn);
            let how = if eof { Close::AtOnce } else { Close::Linger };
            self.close_conn(now, conn, how);
            return;
        }
        self.timers.schedule(deadline, TimerKey::Conn(conn));
    }

    /// Whether `conn` waits for the registry.
    pub(crate) fn awaits_registry(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn),
            Some(Conn {
                phase: Phase::AwaitRegistry { .. },
                ..
            })
        )
    }

    /// `conn` now waits for `request` (keeping port bytes and EOF seen so far).
    pub(crate) fn set_awaiting(&mut self, conn: ConnId, request: RequestId) {
        // the request is read: no longer unfinished, its bytes back in the budget
        self.end_request(conn);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.phase = match c.phase {
            Phase::AwaitRegistry {
                port, filled, eof, ..
            } => Phase::AwaitRegistry {
                request,
                port,
                filled,
                eof,
            },
            _ => Phase::AwaitRegistry {
                request,
                port: [0; 2],
                filled: 0,
                eof: false,
            },
        };
    }

    /// Runs every check in order. Outside cluster mode it is `Done`: on success the
    /// member exists and holds a token. In cluster mode a request that passed the local
    /// checks is `Asked` of the registry.
    fn admit(&mut self, now: Instant, conn: ConnId, peer: SocketAddr, frame: &Frame) -> Admission {
        let refused = |status| Admission::Done(Err(status));
        let operation = match (
            Operation::from_code(frame.operation),
            State::from_code(frame.state),
        ) {
            (Some(op), Some(State::Request)) => op,
            _ => return refused(Status::InvalidRequest),
        };
        let Ok(room) = names::room_name(&frame.room) else {
            return refused(Status::InvalidRequest);
        };
        let Ok(credentials) = parse_payload(&frame.payload) else {
            return refused(Status::InvalidRequest);
        };
        let ip = canonical_ip(peer.ip());
        let create = operation == Operation::Create;
        if self.cluster.is_some() {
            if let Err(status) = self.local_checks(now, room, &credentials, ip, create) {
                return refused(status);
            }
            return self.cluster_admit(now, conn, frame, room, credentials, ip);
        }
        let requested = credentials.port;
        let admitted = if create {
            self.create_room(now, room, credentials, ip)
        } else {
            self.join_room(now, room, credentials, ip)
        };
        Admission::Done(admitted.map(|(member, token)| (member, token, requested)))
    }

    fn answer_too_large(&mut self, now: Instant, conn: ConnId, header: Header, room: Bytes) {
        let peer = self.conns[&conn].peer;
        let operation = Operation::from_code(header.operation);
        let request = State::from_code(header.state) == Some(State::Request);
        let status = if operation.is_some() && request {
            Status::PayloadTooLarge
        } else {
            Status::InvalidRequest
        };
        self.record_answer(conn, peer, operation, &room, header.operation, status);
        self.close_conn(now, conn, Close::Linger);
    }

    fn record_answer(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        operation: Option<Operation>,
        room: &[u8],
        operation_code: u8,
        status: Status,
    ) {
        self.out.stats.handshakes[usize::from(status.code())] += 1;
        let data = encode_response(room, operation_code, status);
        self.out.tcp_send(conn, data);
        self.out.emit(Event::Handshake {
            peer,
            operation,
            status,
        });
    }

    /// Bytes after the token. More than 2 in all: ignored, and the connection closed at
    /// once. Otherwise they are kept until EOF or the port-wait deadline, where
    /// [`RoomServer::finish_port_step`] decides, so how TCP split them changes nothing.
    fn port_bytes(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if let Some(Conn {
            phase: Phase::AwaitRegistry { port, filled, .. },
            ..
        }) = self.conns.get_mut(&conn)
        {
            if *filled + data.len() > 2 {
                *filled = 3;
            } else {
                port[*filled..*filled + data.len()].copy_from_slice(data);
                *filled += data.len();
            }
            return;
        }
        let Some(Conn {
            phase: Phase::AwaitPort { port, filled, .. },
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        if *filled + data.len() > 2 {
            *filled = 3; // too long, whatever comes next
            self.finish_port_step(conn);
            self.close_conn(now, conn, Close::Linger);
            return;
        }
        port[*filled..*filled + data.len()].copy_from_slice(data);
        *filled += data.len();
    }

    /// The port step ends (EOF, deadline, or too many bytes): exactly 2 bytes with a
    /// non-zero big-endian port set the member's UDP address to (TCP peer IP, port);
    /// without such a step, the `port` of the JSON request does, if it had one.
    fn finish_port_step(&mut self, conn: ConnId) {
        let Some(Conn {
            peer,
            phase:
                Phase::AwaitPort {
                    member,
                    port,
                    filled,
                    requested,
                },
            ..
        }) = self.conns.get(&conn)
        else {
            return;
        };
        let stepped = Some(u16::from_be_bytes(*port)).filter(|p| *filled == 2 && *p != 0);
        let (member, ip) = (*member, canonical_ip(peer.ip()));
        if let Some(port) = stepped.or(*requested) {
            self.set_udp_from_port_step(member, SocketAddr::new(ip, port));
        }
    }
}
