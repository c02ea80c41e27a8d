//! The model's TCP half: connection limits, the TCRP request read from a byte stream,
//! the admission rules (create, join, in the documented check order), the port step
//! and the connection deadlines.
//!
//! A connection the server closes after an answer, while the peer has not closed,
//! lingers: it keeps its slot (total and per IP) until the peer's close reaches the
//! server (the shell's report that the socket is gone) or `linger` has passed, and
//! nothing it sends matters any more.

use super::{canonical, source, Expected, Member, Model, Room, TcpOut};
use bytes::{BufMut, Bytes, BytesMut};
use ocm_core::output::{ConnId, Event, ShedReason};
use ocm_core::{Operation, Status};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

const HEADER: usize = 32;

#[derive(Clone, Debug)]
pub(super) struct Conn {
    peer: SocketAddr,
    accepted: Duration,
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
    /// Closed by the server after an answer; the socket may linger.
    Lingering,
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
    /// The source (IPv4 address or IPv6 prefix) an IP counts under.
    fn source_of(&self, ip: IpAddr) -> IpAddr {
        source(ip, self.cfg.ipv6_source_prefix)
    }

    /// A connection was accepted from `peer`. Its source over its limit: refused. At the
    /// total limit: the oldest connection still sending its request (by accept time,
    /// then id) is closed unanswered to make way; with none, refused.
    pub fn tcp_accept(&mut self, now: Duration, conn: ConnId, peer: SocketAddr) -> Expected {
        let mut out = Expected::default();
        let src = self.source_of(peer.ip());
        let from_source = self
            .conns
            .values()
            .filter(|c| self.source_of(c.peer.ip()) == src)
            .count();
        let full = self.conns.len() >= self.cfg.max_handshakes;
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Request(_)))
            .min_by_key(|(id, c)| (c.accepted, **id))
            .map(|(id, _)| *id);
        if from_source >= self.cfg.max_handshakes_per_ip
            || (full && oldest.is_none())
            || self.conns.contains_key(&conn)
        {
            self.stats.connections_refused += 1;
            out.tcp.entry(conn).or_default().push(TcpOut::Close);
            out.events.push(Event::ConnectionRefused { peer });
            return out;
        }
        if let (true, Some(victim)) = (full, oldest) {
            self.stats.connections_displaced += 1;
            let peer = self.conns[&victim].peer;
            out.events.push(Event::ConnectionShed {
                peer,
                reason: ShedReason::Displaced,
            });
            self.close_now(&mut out, victim);
        }
        self.conns.insert(
            conn,
            Conn {
                peer,
                accepted: now,
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
            Some(Conn {
                phase: Phase::AwaitPort { .. },
                ..
            }) => Read::More,
            Some(_) | None => return out,
        };
        match read {
            Read::More => self.keep_to_budget(&mut out),
            Read::TooLarge { op, state, room } => {
                let status = if operation(op).is_some() && state == 0 {
                    Status::PayloadTooLarge
                } else {
                    Status::InvalidRequest
                };
                self.refuse(&mut out, now, conn, op, &room, status);
            }
            Read::Frame {
                op,
                state,
                room,
                payload,
            } => self.answer(&mut out, now, conn, op, state, &room, &payload),
        }
        if !input.is_empty() {
            self.port_bytes(&mut out, now, conn, input);
        }
        out
    }

    /// While the unfinished requests together hold more than `request_budget` bytes, the
    /// one holding the most (the oldest among equals) is closed unanswered.
    fn keep_to_budget(&mut self, out: &mut Expected) {
        loop {
            let holding = |c: &Conn| match &c.phase {
                Phase::Request(buf) => buf.len(),
                _ => 0,
            };
            let total: usize = self.conns.values().map(holding).sum();
            if total <= self.cfg.request_budget {
                return;
            }
            let (victim, peer) = self
                .conns
                .iter()
                .max_by_key(|(id, c)| (holding(c), std::cmp::Reverse((c.accepted, **id))))
                .map(|(id, c)| (*id, c.peer))
                .expect("bytes are held by some connection");
            self.stats.connections_over_budget += 1;
            out.events.push(Event::ConnectionShed {
                peer,
                reason: ShedReason::RequestBudget,
            });
            self.close_now(out, victim);
        }
    }

    /// The peer closed the connection: a port step of exactly 2 bytes counts now. On a
    /// connection the server closed already, the socket is gone: its slot is free.
    pub fn tcp_closed(&mut self, conn: ConnId) -> Expected {
        let mut out = Expected::default();
        match self.conns.get(&conn).map(|c| &c.phase) {
            Some(Phase::Lingering) => {
                self.lingers.1 += 1;
                self.release(conn);
            }
            Some(_) => {
                self.finish_port_step(&mut out, conn);
                self.close_now(&mut out, conn);
            }
            None => {}
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
            match c.phase {
                Phase::Request(_) => {
                    self.stats.handshake_timeouts += 1;
                    out.events.push(Event::HandshakeTimedOut { peer: c.peer });
                    self.close_now(out, conn);
                }
                Phase::AwaitPort { .. } => {
                    self.finish_port_step(out, conn);
                    self.close_lingering(out, now, conn);
                }
                Phase::Lingering => {
                    self.lingers.0 += 1;
                    self.release(conn);
                }
            }
        }
    }

    /// Closes every connection, in id order (the lingering ones were closed already).
    pub(super) fn close_all_conns(&mut self, out: &mut Expected) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            if !matches!(self.conns[&conn].phase, Phase::Lingering) {
                out.tcp.entry(conn).or_default().push(TcpOut::Close);
            }
            self.release(conn);
        }
    }

    /// Deadlines of the open connections.
    pub(super) fn conn_deadlines(&self) -> impl Iterator<Item = Duration> + '_ {
        self.conns.values().map(|c| c.deadline)
    }

    /// The server closes `conn` with nothing to protect (no answer, or the peer closed
    /// first): the slot is free at once.
    fn close_now(&mut self, out: &mut Expected, conn: ConnId) {
        out.tcp.entry(conn).or_default().push(TcpOut::Close);
        self.release(conn);
    }

    /// The server closes `conn` after answering it: the socket lingers, and keeps its
    /// slot, for at most `linger`.
    fn close_lingering(&mut self, out: &mut Expected, now: Duration, conn: ConnId) {
        out.tcp.entry(conn).or_default().push(TcpOut::Close);
        let c = self.conns.get_mut(&conn).expect("connection is open");
        c.phase = Phase::Lingering;
        c.deadline = now + self.cfg.linger;
    }

    /// Forgets `conn` and frees its slot.
    fn release(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    fn refuse(
        &mut self,
        out: &mut Expected,
        now: Duration,
        conn: ConnId,
        op: u8,
        room: &[u8],
        status: Status,
    ) {
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
        self.close_lingering(out, now, conn);
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
            Err(status) => return self.refuse(out, now, conn, op, room, status),
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
                let src = self.source_of(ip);
                let hosted = self
                    .rooms
                    .values()
                    .filter(|r| self.source_of(self.members[&r.host].ip) == src)
                    .count();
                let others_ok = self.rooms.len() < cfg.max_rooms && self.has_seat_for(ip);
                if !others_ok || hosted >= cfg.max_rooms_per_source {
                    if others_ok {
                        self.rooms_per_source_refusals += 1;
                    }
                    return Err(Status::ServerFull);
                }
                let id = self.add_member(now, room, &creds.username, ip);
                self.rooms.insert(
                    room.to_owned(),
                    Room {
                        host: id,
                        password: creds.password,
                        members: vec![id],
                        fanout: super::rates::Allowance::new(
                            self.cfg.room_fanout_per_sec,
                            self.cfg.room_fanout_burst,
                        ),
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
                    let src = self.source_of(ip);
                    if must_wait(self.wrong_by_ip.get(&src), per_ip, now)
                        || must_wait(self.wrong_by_room.get(room), per_room, now)
                    {
                        return Err(Status::TryLater);
                    }
                    if creds.password.as_deref().unwrap_or("") != stored {
                        let wrong = self.wrong_by_ip.entry(src).or_insert((0, now));
                        *wrong = count_wrong(*wrong, now);
                        let wrong = self
                            .wrong_by_room
                            .entry(room.to_owned())
                            .or_insert((0, now));
                        *wrong = count_wrong(*wrong, now);
                        return Err(Status::InvalidPassword);
                    }
                    self.wrong_by_ip.remove(&src);
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

    /// Room for one more member in all, and for one more whose token came from `ip`'s
    /// source. A refusal for the per-source limit alone is counted for coverage.
    fn has_seat_for(&self, ip: std::net::IpAddr) -> bool {
        let src = self.source_of(ip);
        let from_ip = self
            .members
            .values()
            .filter(|m| self.source_of(m.ip) == src)
            .count();
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
                messages: super::rates::Allowance::new(
                    self.cfg.member_messages_per_sec,
                    self.cfg.member_message_burst,
                ),
                bytes: super::rates::Allowance::new(
                    self.cfg.member_bytes_per_sec,
                    self.cfg.member_byte_burst,
                ),
                unproven: None,
            },
        );
        id
    }

    /// The optional port step: the bytes are kept until EOF or the deadline; a third byte
    /// voids the step and closes the connection at once.
    fn port_bytes(&mut self, out: &mut Expected, now: Duration, conn: ConnId, data: &[u8]) {
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
            return self.close_lingering(out, now, conn);
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
            let left = self.cfg.unproven_datagrams;
            self.members.get_mut(&member).expect("a member").unproven = Some(left);
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
