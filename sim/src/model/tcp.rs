//! The model's TCP half: connection limits, the TCRP request read from a byte stream,
//! the admission rules (create, join, in the documented check order), the port step
//! and the connection deadlines.

use super::{canonical, Expected, Member, Model, Room, TcpOut};
use bytes::{BufMut, Bytes, BytesMut};
use ocm_core::output::{ConnId, Event};
use ocm_core::{Operation, Status};
use std::net::SocketAddr;
use std::time::Duration;

const HEADER: usize = 32;

#[derive(Clone, Debug)]
pub(super) struct Conn {
    peer: SocketAddr,
    deadline: Duration,
    phase: Phase,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Bytes of the request so far (never more than the frame needs).
    Request(Vec<u8>),
    /// Token sent; the port bytes so far, and the `port` the JSON request named.
    AwaitPort {
        member: u64,
        got: Vec<u8>,
        requested: Option<u16>,
    },
}

/// A TCRP frame as the model encodes it (header, room, payload).
pub fn frame(room: &[u8], operation: u8, state: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER + room.len() + payload.len());
    out.put_u8(room.len() as u8);
    out.put_u8(operation);
    out.put_u8(state);
    out.put_bytes(0, 29 - 8);
    out.put_u64(payload.len() as u64);
    out.put_slice(room);
    out.put_slice(payload);
    out.freeze()
}

fn operation(code: u8) -> Option<Operation> {
    match code {
        1 => Some(Operation::Create),
        2 => Some(Operation::Join),
        _ => None,
    }
}

/// What a finished read of the request stream gave.
enum Read {
    More,
    TooLarge {
        op: u8,
        state: u8,
        room: Vec<u8>,
    },
    Frame {
        op: u8,
        state: u8,
        room: Vec<u8>,
        payload: Vec<u8>,
    },
}

/// Takes what the frame still needs from `input` into `buf`.
fn read_request(buf: &mut Vec<u8>, input: &mut &[u8], limit: u32) -> Read {
    let mut take = |buf: &mut Vec<u8>, want: usize| {
        let n = want.saturating_sub(buf.len()).min(input.len());
        buf.extend_from_slice(&input[..n]);
        *input = &input[n..];
        buf.len() >= want
    };
    if !take(buf, HEADER) {
        return Read::More;
    }
    let room_len = usize::from(buf[0]);
    let (op, state) = (buf[1], buf[2]);
    let size = &buf[3..HEADER];
    let high_zero = size[..29 - 8].iter().all(|b| *b == 0);
    let low = u64::from_be_bytes(size[29 - 8..].try_into().expect("8 bytes"));
    let too_large = !high_zero || low > u64::from(limit);
    if !take(buf, HEADER + room_len) {
        return Read::More;
    }
    let room = buf[HEADER..HEADER + room_len].to_vec();
    if too_large {
        return Read::TooLarge { op, state, room };
    }
    let end = HEADER + room_len + low as usize;
    if !take(buf, end) {
        return Read::More;
    }
    Read::Frame {
        op,
        state,
        room,
        payload: buf[HEADER + room_len..end].to_vec(),
    }
}

impl Model {
    /// A connection was accepted from `peer`.
    pub fn tcp_accept(&mut self, now: Duration, conn: ConnId, peer: SocketAddr) -> Expected {
        let mut out = Expected::default();
        let ip = canonical(peer.ip());
        let from_ip = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.conns.len() >= self.cfg.max_handshakes
            || from_ip >= self.cfg.max_handshakes_per_ip
            || self.conns.contains_key(&conn)
        {
            self.stats.connections_refused += 1;
            out.tcp.entry(conn).or_default().push(TcpOut::Close);
            out.events.push(Event::ConnectionRefused { peer });
            return out;
        }
        *self.per_ip.entry(ip).or_default() += 1;
        self.conns.insert(
            conn,
            Conn {
                peer,
                deadline: now + self.cfg.handshake_timeout,
                phase: Phase::Request(Vec::new()),
            },
        );
        out
    }

    /// Bytes arrived on a connection.
    pub fn tcp_data(&mut self, now: Duration, conn: ConnId, data: &[u8]) -> Expected {
        let mut out = Expected::default();
        let mut input = data;
        let limit = self.cfg.max_payload;
        let read = match self.conns.get_mut(&conn) {
            Some(Conn {
                phase: Phase::Request(buf),
                ..
            }) => read_request(buf, &mut input, limit),
            Some(_) => Read::More,
            None => return out,
        };
        match read {
            Read::More => {}
            Read::TooLarge { op, state, room } => {
                let status = if operation(op).is_some() && state == 0 {
                    Status::PayloadTooLarge
                } else {
                    Status::InvalidRequest
                };
                self.refuse(&mut out, conn, op, &room, status);
            }
            Read::Frame {
                op,
                state,
                room,
                payload,
            } => self.answer(&mut out, now, conn, op, state, &room, &payload),
        }
        if !input.is_empty() {
            self.port_bytes(&mut out, conn, input);
        }
        out
    }

    /// The peer closed the connection: a port step of exactly 2 bytes counts now.
    pub fn tcp_closed(&mut self, conn: ConnId) -> Expected {
        let mut out = Expected::default();
        if self.conns.contains_key(&conn) {
            self.finish_port_step(&mut out, conn);
            self.close_conn(&mut out, conn);
        }
        out
    }

    /// Closes every connection whose deadline has come; a request never finished is a
    /// handshake timeout.
    pub(super) fn expire_conns(&mut self, out: &mut Expected, now: Duration) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for conn in due {
            let c = &self.conns[&conn];
            if let Phase::Request(_) = c.phase {
                self.stats.handshake_timeouts += 1;
                out.events.push(Event::HandshakeTimedOut { peer: c.peer });
            }
            self.finish_port_step(out, conn);
            self.close_conn(out, conn);
        }
    }

    /// Closes every connection, in id order.
    pub(super) fn close_all_conns(&mut self, out: &mut Expected) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close_conn(out, conn);
        }
    }

    /// Deadlines of the open connections.
    pub(super) fn conn_deadlines(&self) -> impl Iterator<Item = Duration> + '_ {
        self.conns.values().map(|c| c.deadline)
    }

    fn close_conn(&mut self, out: &mut Expected, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        let ip = canonical(c.peer.ip());
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
        out.tcp.entry(conn).or_default().push(TcpOut::Close);
    }

    fn refuse(&mut self, out: &mut Expected, conn: ConnId, op: u8, room: &[u8], status: Status) {
        let peer = self.conns[&conn].peer;
        self.stats.handshakes[usize::from(status.code())] += 1;
        out.tcp
            .entry(conn)
            .or_default()
            .push(TcpOut::Send(frame(room, op, 1, &[status.code()])));
        out.events.push(Event::Handshake {
            peer,
            operation: operation(op),
            status,
        });
        self.close_conn(out, conn);
    }

    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        out: &mut Expected,
        now: Duration,
        conn: ConnId,
        op: u8,
        state: u8,
        room: &[u8],
        payload: &[u8],
    ) {
        let peer = self.conns[&conn].peer;
        let admitted = self.admit(out, now, peer, op, state, room, payload);
        let member = match admitted {
            Ok(member) => member,
            Err(status) => return self.refuse(out, conn, op, room, status),
        };
        self.stats.handshakes[usize::from(Status::Ok.code())] += 1;
        let tcp = out.tcp.entry(conn).or_default();
        tcp.push(TcpOut::Send(frame(room, op, 1, &[0])));
        tcp.push(TcpOut::SendComplete(
            frame(room, op, 2, &[0; 32]).slice(..HEADER + room.len()),
        ));
        tcp.push(TcpOut::ShutdownWrite);
        out.events.push(Event::Handshake {
            peer,
            operation: operation(op),
            status: Status::Ok,
        });
        out.admitted = Some(member);
        let c = self.conns.get_mut(&conn).expect("connection is open");
        c.deadline = now + self.cfg.port_wait;
        c.phase = Phase::AwaitPort {
            member,
            got: Vec::new(),
            requested: requested_port(payload),
        };
    }

    #[allow(clippy::too_many_arguments)]
    fn admit(
        &mut self,
        out: &mut Expected,
        now: Duration,
        peer: SocketAddr,
        op: u8,
        state: u8,
        room: &[u8],
        payload: &[u8],
    ) -> Result<u64, Status> {
        let op = match (operation(op), state) {
            (Some(op), 0) => op,
            _ => return Err(Status::InvalidRequest),
        };
        let room = ocm_core::names::room_name(room).map_err(|_| Status::InvalidRequest)?;
        let creds =
            ocm_core::wire::request::parse_payload(payload).map_err(|_| Status::InvalidRequest)?;
        let ip = canonical(peer.ip());
        let cfg = &self.cfg;
        match op {
            Operation::Create => {
                if self.rooms.contains_key(room) {
                    return Err(Status::RoomExists);
                }
                if self.rooms.len() >= cfg.max_rooms || !self.has_seat_for(ip) {
                    return Err(Status::ServerFull);
                }
                let id = self.add_member(now, room, &creds.username, ip);
                self.rooms.insert(
                    room.to_owned(),
                    Room {
                        host: id,
                        password: creds.password,
                        members: vec![id],
                    },
                );
                self.closed_rooms.remove(room);
                out.events.push(Event::RoomCreated {
                    room: room.into(),
                    host: creds.username.as_str().into(),
                });
                Ok(id)
            }
            Operation::Join => {
                let entry = self.rooms.get(room).ok_or(Status::RoomNotFound)?;
                if let Some(stored) = &entry.password {
                    // docs/PROTOCOL.md: while the source or the room waits, TRY_LATER.
                    let (per_ip, per_room) = (
                        cfg.password_failures_per_source,
                        cfg.password_failures_per_room,
                    );
                    if must_wait(self.wrong_by_ip.get(&ip), per_ip, now)
                        || must_wait(self.wrong_by_room.get(room), per_room, now)
                    {
                        return Err(Status::TryLater);
                    }
                    if creds.password.as_deref().unwrap_or("") != stored {
                        let wrong = self.wrong_by_ip.entry(ip).or_insert((0, now));
                        *wrong = count_wrong(*wrong, now);
                        let wrong = self
                            .wrong_by_room
                            .entry(room.to_owned())
                            .or_insert((0, now));
                        *wrong = count_wrong(*wrong, now);
                        return Err(Status::InvalidPassword);
                    }
                    self.wrong_by_ip.remove(&ip);
                }
                if entry
                    .members
                    .iter()
                    .any(|id| self.members[id].username == creds.username)
                {
                    return Err(Status::UsernameTaken);
                }
                if entry.members.len() >= cfg.max_members_per_room || !self.has_seat_for(ip) {
                    return Err(Status::ServerFull);
                }
                let id = self.add_member(now, room, &creds.username, ip);
                self.rooms
                    .get_mut(room)
                    .expect("room exists")
                    .members
                    .push(id);
                let notice = Bytes::from(format!("* {} joined", creds.username));
                self.notify_room(out, room, Some(id), &notice);
                out.events.push(Event::MemberJoined {
                    room: Some(room.into()),
                    username: creds.username.as_str().into(),
                });
                Ok(id)
            }
        }
    }

    /// Room for one more member in all, and for one more whose token came from `ip`.
    /// A refusal for the per-IP limit alone is counted for coverage.
    fn has_seat_for(&self, ip: std::net::IpAddr) -> bool {
        let from_ip = self.members.values().filter(|m| m.ip == ip).count();
        let total_ok = self.members.len() < self.cfg.max_members;
        let ip_ok = from_ip < self.cfg.max_members_per_ip;
        if total_ok && !ip_ok {
            self.per_ip_refusals.set(self.per_ip_refusals.get() + 1);
        }
        total_ok && ip_ok
    }

    fn add_member(
        &mut self,
        now: Duration,
        room: &str,
        username: &str,
        ip: std::net::IpAddr,
    ) -> u64 {
        let id = self.next_member;
        self.next_member += 1;
        self.members.insert(
            id,
            Member {
                room: room.to_owned(),
                username: username.to_owned(),
                token: None,
                ip,
                udp: None,
                last_seen: now,
                failures: 0,
            },
        );
        id
    }

    /// The optional port step: the bytes are kept until EOF or the deadline; a third byte
    /// voids the step and closes the connection at once.
    fn port_bytes(&mut self, out: &mut Expected, conn: ConnId, data: &[u8]) {
        let Some(Conn {
            phase: Phase::AwaitPort { got, .. },
            ..
        }) = self.conns.get_mut(&conn)
        else {
            return;
        };
        if got.len() + data.len() > 2 {
            got.clear();
            got.push(0); // never a step now: the JSON port, if any, decides
            self.finish_port_step(out, conn);
            return self.close_conn(out, conn);
        }
        got.extend_from_slice(data);
    }

    /// The port step ends (EOF, deadline, or a third byte): exactly two bytes, a
    /// non-zero port, set the address of a member that has none yet; failing that, the
    /// `port` of the JSON request does.
    fn finish_port_step(&mut self, out: &mut Expected, conn: ConnId) {
        let Some(Conn {
            peer,
            phase:
                Phase::AwaitPort {
                    member,
                    got,
                    requested,
                },
            ..
        }) = self.conns.get(&conn)
        else {
            return;
        };
        let stepped = match got[..] {
            [0, 0] => None,
            [high, low] => Some(u16::from_be_bytes([high, low])),
            _ => None,
        };
        let Some(port) = stepped.or(*requested) else {
            return;
        };
        let (member, ip) = (*member, canonical(peer.ip()));
        if self.members.get(&member).is_some_and(|m| m.udp.is_none()) {
            self.set_udp(out, member, SocketAddr::new(ip, port));
        }
    }
}

/// The `port` of a JSON request payload, as docs/PROTOCOL.md ("Compatibility") states
/// it: an integer from 1 to 65535; anything else names no port.
fn requested_port(payload: &[u8]) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let port = value.as_object()?.get("port")?.as_u64()?;
    (1..=65535).contains(&port).then_some(port as u16)
}

/// A wrong password at `now` after `(count, last)`: forgotten after 600 s of quiet.
fn count_wrong((count, last): (u32, Duration), now: Duration) -> (u32, Duration) {
    let count = if now >= last + Duration::from_secs(600) {
        0
    } else {
        count
    };
    (count + 1, now)
}

/// Whether a source or room with these wrong passwords must wait at `now`: after
/// `free` of them, 1 s, 2 s, 4 s, ... at most 60 s since the last.
fn must_wait(wrong: Option<&(u32, Duration)>, free: u32, now: Duration) -> bool {
    let Some(&(count, last)) = wrong else {
        return false;
    };
    if count < free {
        return false;
    }
    let wait = Duration::from_secs(1u64 << (count - free).min(6)).min(Duration::from_secs(60));
    now < last + wait
}
