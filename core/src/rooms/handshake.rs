//! The TCP side of the rooms server: one TCRP request per connection, answered with a
//! status and, on success, a token; then the optional 2-byte UDP port; then close.
//!
//! Checks run in the order of `docs/PROTOCOL.md`, and the first failure wins:
//! operation/state, payload size, room name, payload, then the room's own checks.

use super::membership::MemberId;
use super::{canonical_ip, RoomServer, TimerKey};
use crate::names;
use crate::output::{ConnId, Event};
use crate::wire::request::parse_payload;
use crate::wire::tcrp::{
    encode_complete, encode_response, DecodeError, Frame, FrameDecoder, Header, Operation, State,
    Status,
};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Instant;

/// One open TCP connection.
#[derive(Debug)]
pub(crate) struct Conn {
    peer: SocketAddr,
    deadline: Instant,
    phase: Phase,
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
}

impl RoomServer {
    /// A TCP connection was accepted from `peer`. Over a connection limit it is closed at
    /// once, without a response. An id that is still open is a shell bug: ignored.
    pub fn handle_tcp_accept(&mut self, now: Instant, conn: ConnId, peer: SocketAddr) {
        if self.conns.contains_key(&conn) {
            return;
        }
        let ip = canonical_ip(peer.ip());
        let from_ip = self.conns_per_ip.get(&ip).copied().unwrap_or(0);
        if self.conns.len() >= self.config.max_handshakes
            || from_ip >= self.config.max_handshakes_per_ip
        {
            self.out.stats.connections_refused += 1;
            self.out.tcp_close(conn);
            self.out.emit(Event::ConnectionRefused { peer });
            return;
        }
        *self.conns_per_ip.entry(ip).or_insert(0) += 1;
        let deadline = now + self.config.handshake_timeout;
        self.conns.insert(
            conn,
            Conn {
                peer,
                deadline,
                phase: Phase::Request(FrameDecoder::new(self.config.max_payload)),
            },
        );
        self.timers.schedule(deadline, TimerKey::Conn(conn));
    }

    /// Bytes arrived on a connection.
    pub fn handle_tcp_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        let mut input = data;
        let decoded = match self.conns.get_mut(&conn) {
            Some(Conn {
                phase: Phase::Request(decoder),
                ..
            }) => decoder.decode(&mut input),
            Some(_) => Ok(None),
            None => return,
        };
        match decoded {
            Ok(None) => {}
            Ok(Some(frame)) => self.answer(now, conn, frame),
            Err(DecodeError::PayloadTooLarge { header, room }) => {
                self.answer_too_large(conn, header, room)
            }
        }
        if !input.is_empty() {
            self.port_bytes(conn, input);
        }
    }

    /// The peer closed its side, or the connection failed. The server forgets it; a
    /// port step of exactly 2 bytes takes effect now.
    pub fn handle_tcp_closed(&mut self, _now: Instant, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            self.finish_port_step(conn);
            self.close_conn(conn);
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
        if let Phase::Request(_) = c.phase {
            self.out.stats.handshake_timeouts += 1;
            let peer = c.peer;
            self.out.emit(Event::HandshakeTimedOut { peer });
        }
        self.finish_port_step(conn);
        self.close_conn(conn);
    }

    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let ip = canonical_ip(c.peer.ip());
        if let Some(n) = self.conns_per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.conns_per_ip.remove(&ip);
            }
        }
        self.out.tcp_close(conn);
        self.sweep_timers();
    }

    fn answer(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        let peer = self.conns[&conn].peer;
        let operation = Operation::from_code(frame.operation);
        let admitted = self.admit(now, peer, operation, &frame);
        let status = admitted.as_ref().err().copied().unwrap_or(Status::Ok);
        self.record_answer(conn, peer, operation, &frame.room, frame.operation, status);
        let Ok((member, token, requested)) = admitted else {
            self.close_conn(conn);
            return;
        };
        let data = encode_complete(&frame.room, frame.operation, &token);
        self.out.tcp_send(conn, data);
        self.out.tcp_shutdown_write(conn);
        let deadline = now + self.config.port_wait;
        let c = self.conns.get_mut(&conn).expect("connection is open");
        c.deadline = deadline;
        c.phase = Phase::AwaitPort {
            member,
            port: [0; 2],
            filled: 0,
            requested,
        };
        self.timers.schedule(deadline, TimerKey::Conn(conn));
    }

    /// Runs every check in order; on success the member exists and holds a token.
    fn admit(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        operation: Option<Operation>,
        frame: &Frame,
    ) -> Result<(MemberId, crate::token::Token, Option<u16>), Status> {
        let operation = match (operation, State::from_code(frame.state)) {
            (Some(op), Some(State::Request)) => op,
            _ => return Err(Status::InvalidRequest),
        };
        let room = names::room_name(&frame.room).map_err(|_| Status::InvalidRequest)?;
        let credentials = parse_payload(&frame.payload).map_err(|_| Status::InvalidRequest)?;
        let ip = canonical_ip(peer.ip());
        let requested = credentials.port;
        let (member, token) = match operation {
            Operation::Create => self.create_room(now, room, credentials, ip)?,
            Operation::Join => self.join_room(now, room, credentials, ip)?,
        };
        Ok((member, token, requested))
    }

    fn answer_too_large(&mut self, conn: ConnId, header: Header, room: Bytes) {
        let peer = self.conns[&conn].peer;
        let operation = Operation::from_code(header.operation);
        let request = State::from_code(header.state) == Some(State::Request);
        let status = if operation.is_some() && request {
            Status::PayloadTooLarge
        } else {
            Status::InvalidRequest
        };
        self.record_answer(conn, peer, operation, &room, header.operation, status);
        self.close_conn(conn);
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
    fn port_bytes(&mut self, conn: ConnId, data: &[u8]) {
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
            self.close_conn(conn);
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
