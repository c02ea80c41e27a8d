//! What each schedule operation does to the world: actors' moves and the attacker's.
//!
//! The attacker lives at [`ATTACKER`], an IP no member ever used. It replays datagrams
//! captured on the wire, sends junk, uses live tokens stolen from members, opens
//! connections it never finishes (slowloris) and sends malformed TCRP requests:
//!
//! | `BadRequest` kind | request | expected status |
//! |---|---|---|
//! | 0 | operation 3 | INVALID_REQUEST |
//! | 1 | state 1 (a response) | INVALID_REQUEST |
//! | 2 | payload size over the limit | PAYLOAD_TOO_LARGE, before the payload |
//! | 3 | empty room name | INVALID_REQUEST |
//! | 4 | username starting with `*` | INVALID_REQUEST |
//! | 5 | room name with a control character | INVALID_REQUEST |
//! | 6 | payload not UTF-8 | INVALID_REQUEST |
//! | 7 | 29-byte size with its top byte set | PAYLOAD_TOO_LARGE |
//!
//! `Hoard` announces the largest payload and stops short of it, holding request bytes
//! until the handshake deadline or the request budget closes it.
//!
//! `Flood` sends such requests one after another, 50 ms apart, each closed by the
//! attacker right after its request, so closed connections leave many stale timer
//! entries behind (the timer table must still be swept). A single `BadRequest` keeps
//! its connection open: the server's close after the answer lingers until `linger`.

use crate::host::Actor;
use crate::model::tcp_frame;
use crate::net::below;
use crate::schedule::{text, Op, PASSWORD, ROOMS, USERS};
use crate::world::{Failure, Input, Owner, World, ATTACKER, SERVER};
use bytes::{Bytes, BytesMut};
use ocm_core::client::Handshake;
use ocm_core::wire::room_datagram::RoomDatagram;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

fn pick<T: Copy>(pool: &[T], index: u8) -> T {
    pool[usize::from(index) % pool.len()]
}

impl World {
    /// The `index`-th actor (modulo) among those `fit` accepts, if any.
    fn choose(&self, index: u8, fit: impl Fn(&Actor) -> bool) -> Option<usize> {
        let fitting: Vec<usize> = (0..self.actors.len())
            .filter(|i| fit(&self.actors[*i]))
            .collect();
        (!fitting.is_empty()).then(|| fitting[usize::from(index) % fitting.len()])
    }

    /// A room to join: usually one that exists, sometimes any name from the pool.
    fn join_target(&self, index: u8) -> &'static str {
        let live: Vec<&'static str> = ROOMS
            .iter()
            .copied()
            .filter(|r| self.model.rooms.contains_key(*r))
            .collect();
        if live.is_empty() || index % 4 == 3 {
            pick(&ROOMS, index / 4)
        } else {
            live[usize::from(index) % live.len()]
        }
    }

    /// Applies one operation at the current time (only `Advance` moves the clock).
    /// Operations name actors among those they fit: a create or join picks among idle
    /// actors, a send among talking ones, and so on; with none, the operation does nothing.
    pub fn apply(&mut self, op: Op) -> Result<(), Failure> {
        match op {
            Op::Create {
                actor,
                room,
                user,
                password,
            } => {
                let Some(i) = self.choose(actor, Actor::is_idle) else {
                    return Ok(());
                };
                let pw = password.then_some(PASSWORD);
                let handshake = Handshake::create(pick(&ROOMS, room), pick(&USERS, user), pw);
                self.handshake(
                    i,
                    handshake.expect("pool names are valid"),
                    pick(&ROOMS, room),
                )
            }
            Op::Join {
                actor,
                room,
                user,
                password,
            } => {
                let Some(i) = self.choose(actor, Actor::is_idle) else {
                    return Ok(());
                };
                let room = self.join_target(room);
                let pw = [None, Some(PASSWORD), Some("wrong")][usize::from(password) % 3];
                let handshake = Handshake::join(room, pick(&USERS, user), pw);
                self.handshake(i, handshake.expect("pool names are valid"), room)
            }
            Op::Send { actor, text: t } => {
                if let Some(i) = self.choose(actor, Actor::is_talking) {
                    let (mut wire, actors) = self.wire();
                    actors[i].send(&mut wire, |max| text(t, max));
                }
                Ok(())
            }
            Op::Spam { actor, count } => {
                if let Some(i) = self.choose(actor, Actor::is_talking) {
                    let (mut wire, actors) = self.wire();
                    for n in 0..count {
                        actors[i].send(&mut wire, |_| format!("spam {n}"));
                    }
                }
                Ok(())
            }
            Op::Leave { actor } => {
                if let Some(i) = self.choose(actor, Actor::is_talking) {
                    let (mut wire, actors) = self.wire();
                    actors[i].leave(&mut wire);
                }
                Ok(())
            }
            Op::Silent { actor } => {
                if let Some(i) = self.choose(actor, Actor::is_talking) {
                    self.actors[i].go_silent();
                }
                Ok(())
            }
            Op::Vanish { actor } => match self.choose(actor, Actor::is_busy) {
                Some(i) => match self.actors[i].vanish() {
                    Some(conn) => self.reset_conn(conn),
                    None => Ok(()),
                },
                None => Ok(()),
            },
            Op::DropTcp { actor } => match self.choose(actor, |a| a.handshake_conn().is_some()) {
                Some(i) => match self.actors[i].drop_tcp() {
                    Some(conn) => self.reset_conn(conn),
                    None => Ok(()),
                },
                None => Ok(()),
            },
            Op::Rebind { actor } => {
                if let Some(i) = self.choose(actor, Actor::is_talking) {
                    let (mut wire, actors) = self.wire();
                    actors[i].rebind(&mut wire);
                }
                Ok(())
            }
            Op::Stale { actor } => {
                let i = usize::from(actor) % self.actors.len();
                let (mut wire, actors) = self.wire();
                actors[i].resend_last(&mut wire);
                Ok(())
            }
            Op::Advance { ms } => self.run_until(self.now + Duration::from_millis(u64::from(ms))),
            Op::Partition { actor, ms } => {
                let ip = self.actors[usize::from(actor) % self.actors.len()].udp_ip;
                let until = self.now + Duration::from_millis(u64::from(ms));
                self.net.partition(ip, until);
                Ok(())
            }
            Op::Replay { index } => {
                if !self.captured.is_empty() {
                    let datagram = self.captured[usize::from(index) % self.captured.len()].clone();
                    self.attacker_send(datagram);
                }
                Ok(())
            }
            Op::Garbage { kind, salt } => {
                let (from, datagram) = self.garbage(kind, salt);
                self.net
                    .send_udp(&mut self.rng, self.now, from, SERVER, datagram);
                Ok(())
            }
            Op::StolenToken { victim, same_room } => {
                let victim = self.choose(victim, |a| a.session().is_some());
                if let Some((room, token)) = victim.and_then(|i| self.actors[i].session()) {
                    let other = ROOMS.iter().find(|r| **r != room).copied().unwrap_or("x");
                    let room = if same_room { room } else { other };
                    let datagram = RoomDatagram {
                        room: room.as_bytes(),
                        token,
                        message: b"let me in",
                    }
                    .encode()
                    .expect("small datagram");
                    // And a liveness probe with it: answered `not a member`, nothing more.
                    let probe = RoomDatagram {
                        room: b"",
                        token,
                        message: b"ping",
                    }
                    .encode()
                    .expect("small datagram");
                    self.attacker_send(datagram);
                    self.attacker_send(probe);
                }
                Ok(())
            }
            Op::Shutdown => self.feed(Input::Shutdown),
            Op::Slowloris => {
                let conn = self.open_conn(Owner::Attacker);
                self.feed(Input::TcpAccepted {
                    conn,
                    peer: attacker_peer(conn.0),
                })?;
                let partial = tcp_frame(b"lobby", 2, 0, b"ann").slice(..10);
                self.net
                    .send_tcp(&mut self.rng, self.now, conn, true, &partial);
                Ok(())
            }
            Op::BadRequest { kind } => self.bad_request(kind, false),
            Op::Hoard { fill } => {
                let conn = self.open_conn(Owner::Attacker);
                self.feed(Input::TcpAccepted {
                    conn,
                    peer: attacker_peer(conn.0),
                })?;
                let limit = self.model.cfg.max_payload as usize;
                let payload = vec![b'x'; limit];
                let frame = tcp_frame(b"lobby", 1, 0, &payload);
                let sent = frame.slice(..frame.len() - 1 - usize::from(fill) % 64);
                self.net
                    .send_tcp(&mut self.rng, self.now, conn, true, &sent);
                Ok(())
            }
            Op::Flood { conns } => {
                for i in 0..conns % 128 {
                    self.bad_request(i, true)?;
                    self.run_until(self.now + Duration::from_millis(50))?;
                }
                Ok(())
            }
        }
    }

    /// The attacker opens a connection and sends a malformed request of this kind;
    /// with `close`, it closes its side right after (so the server's socket does not
    /// linger), else it keeps the connection open and lets the server's close linger.
    fn bad_request(&mut self, kind: u8, close: bool) -> Result<(), Failure> {
        let conn = self.open_conn(Owner::Attacker);
        self.feed(Input::TcpAccepted {
            conn,
            peer: attacker_peer(conn.0),
        })?;
        let request = bad_request(kind);
        self.net
            .send_tcp(&mut self.rng, self.now, conn, true, &request);
        if close {
            self.net.send_fin(&mut self.rng, self.now, conn, true);
        }
        Ok(())
    }

    fn handshake(&mut self, index: usize, handshake: Handshake, room: &str) -> Result<(), Failure> {
        if !self.actors[index].is_idle() {
            return Ok(());
        }
        let conn = self.open_conn(Owner::Actor(index));
        let peer = SocketAddr::new(self.actors[index].tcp_ip, 1024 + (conn.0 % 60_000) as u16);
        self.feed(Input::TcpAccepted { conn, peer })?;
        let (mut wire, actors) = self.wire();
        actors[index].start(&mut wire, conn, handshake, room);
        Ok(())
    }

    fn attacker_send(&mut self, datagram: Bytes) {
        self.net
            .send_udp(&mut self.rng, self.now, ATTACKER, SERVER, datagram);
    }

    /// Junk for the server, and where it comes from.
    fn garbage(&mut self, kind: u8, salt: u16) -> (SocketAddr, Bytes) {
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(salt));
        let mut random = |len: usize| {
            let mut bytes = vec![0u8; len];
            rng.fill_bytes(&mut bytes);
            bytes
        };
        match kind % 4 {
            0 => {
                let len = below(&mut self.rng, 80) as usize;
                (ATTACKER, Bytes::from(random(len)))
            }
            1 => {
                let room = self
                    .model
                    .rooms
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| "lobby".into());
                let token: Vec<u8> = random(16)
                    .iter()
                    .flat_map(|b| format!("{b:02x}").into_bytes())
                    .collect();
                let message = b"guess";
                let datagram = RoomDatagram {
                    room: room.as_bytes(),
                    token: &token,
                    message,
                }
                .encode()
                .expect("small datagram");
                (ATTACKER, datagram)
            }
            2 => (ATTACKER, Bytes::from(random(4097))),
            _ => {
                // A member's buggy or hostile client: its own token and address, a message
                // that is not UTF-8 or that holds a terminal escape or a carriage return
                // faking a notice. Sent from the member's address, so it reaches those checks.
                let Some(i) = self.choose(salt as u8, |a| a.session().is_some()) else {
                    return (ATTACKER, Bytes::from_static(b"\x00"));
                };
                let (room, token) = self.actors[i].session().expect("chosen for its session");
                let messages: [&[u8]; 3] = [
                    &[0xff, 0xfe, 0x80],
                    b"\x1b[2J\x1b[H",
                    b"x\r* room closed: host left",
                ];
                let datagram = RoomDatagram {
                    room: room.as_bytes(),
                    token,
                    message: messages[usize::from(salt as u8 / 4) % 3],
                }
                .encode()
                .expect("small datagram");
                (self.actors[i].udp_addr().unwrap_or(ATTACKER), datagram)
            }
        }
    }
}

/// Where the attacker's `n`-th connection comes from: its IPv4 address, or (every other
/// one) another address of its IPv6 /64, which must count as the same source.
fn attacker_peer(n: u64) -> SocketAddr {
    let port = 20_000 + (n % 40_000) as u16;
    if n & 1 == 0 {
        return SocketAddr::new(ATTACKER.ip(), port);
    }
    let interface = (n % 0xffff) as u16;
    let ip = Ipv6Addr::new(0x2001, 0xdb8, 0xbad, 0x64, 0, 0, 0x66, interface);
    SocketAddr::new(IpAddr::V6(ip), port)
}

fn bad_request(kind: u8) -> Bytes {
    let name = br#"{"username":"mallory"}"#;
    match kind % 8 {
        0 => tcp_frame(b"lobby", 3, 0, name),
        1 => tcp_frame(b"lobby", 2, 1, name),
        2 => {
            let mut frame = BytesMut::from(&tcp_frame(b"lobby", 1, 0, b"")[..]);
            frame[24..32].copy_from_slice(&(1u64 << 28).to_be_bytes());
            frame.freeze()
        }
        3 => tcp_frame(b"", 1, 0, name),
        4 => tcp_frame(b"lobby", 2, 0, br#"{"username":"*root"}"#),
        5 => tcp_frame(b"lob\nby", 1, 0, name),
        6 => tcp_frame(b"lobby", 2, 0, &[0xc3, 0x28]),
        _ => {
            let mut frame = BytesMut::from(&tcp_frame(b"lobby", 2, 0, b"")[..]);
            frame[3] = 0x80;
            frame.freeze()
        }
    }
}
