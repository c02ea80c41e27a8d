//! The rooms server: TCRP over TCP hands out tokens, UDP datagrams carry the chat.
//!
//! [`Server`] is a sans-IO state machine. The shell feeds it what happened, each with
//! the current time, and carries out what it asks:
//!
//! ```
//! use ocm_core::{Config, ConnId, Output, Server};
//! use std::time::Instant;
//!
//! let mut server = Server::new(Config::default(), [0; 32]).unwrap();
//! let now = Instant::now();
//! server.handle_tcp_accept(now, ConnId(1), "127.0.0.1:5000".parse().unwrap());
//! let request = ocm_core::client::Handshake::create("lobby", "alice", None).unwrap();
//! server.handle_tcp_data(now, ConnId(1), request.request());
//! while let Some(output) = server.poll_output() {
//!     match output {
//!         Output::TcpSend { .. } => { /* write it */ }
//!         Output::TcpShutdownWrite { .. } | Output::TcpClose { .. } => { /* ... */ }
//!         Output::Datagram { .. } => { /* send_to */ }
//!         Output::Event(_) => { /* log */ }
//!     }
//! }
//! // then sleep until server.poll_timeout() or the next input
//! ```
//!
//! The TCP side lives in `handshake.rs`, rooms and the UDP side in `membership.rs`.

mod handshake;
mod invariants;
mod membership;

pub use invariants::InvariantViolation;

use crate::config::{Config, ConfigError};
use crate::hash::{keyed_map, KeyedMap, KeyedState};
use crate::output::{ConnId, DropReason, Event, Output};
use crate::stats::Stats;
use crate::timers::TimerQueue;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use handshake::Conn;
use membership::{Member, MemberId, Room};

/// What a timer entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    Conn(ConnId),
    Member(MemberId),
}

/// How much the server holds right now; every figure is bounded by [`Config`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rooms alive.
    pub rooms: usize,
    /// Members in all rooms.
    pub members: usize,
    /// TCP connections open (in handshake or waiting for the port).
    pub connections: usize,
    /// Outputs queued and not yet polled.
    pub queued_outputs: usize,
    /// Timer entries held (live and stale).
    pub timers: usize,
}

/// One member as seen from outside (tests, simulators, admin views).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Username.
    pub username: Arc<str>,
    /// True for the room's host.
    pub is_host: bool,
    /// The IP that obtained the token.
    pub ip: IpAddr,
    /// Where the member receives, once known.
    pub udp: Option<SocketAddr>,
}

/// The rooms server state machine.
#[derive(Debug)]
pub struct Server {
    config: Config,
    rng: ChaCha20Rng,
    conns: KeyedMap<ConnId, Conn>,
    conns_per_ip: KeyedMap<IpAddr, usize>,
    rooms: KeyedMap<Arc<str>, Room>,
    members: KeyedMap<MemberId, Member>,
    tokens: KeyedMap<crate::token::Token, MemberId>,
    by_addr: KeyedMap<SocketAddr, Vec<MemberId>>,
    members_per_ip: KeyedMap<IpAddr, usize>,
    next_member: u64,
    timers: TimerQueue<TimerKey>,
    outputs: VecDeque<Output>,
    stats: Stats,
}

impl Server {
    /// A server with these limits, drawing tokens, salts and hash keys from a ChaCha20
    /// generator seeded with `seed` (OS entropy in a real server, fixed in tests).
    pub fn new(config: Config, seed: [u8; 32]) -> Result<Server, ConfigError> {
        config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let state = KeyedState::new(&mut rng);
        Ok(Server {
            config,
            rng,
            conns: keyed_map(state),
            conns_per_ip: keyed_map(state),
            rooms: keyed_map(state),
            members: keyed_map(state),
            tokens: keyed_map(state),
            by_addr: keyed_map(state),
            members_per_ip: keyed_map(state),
            next_member: 0,
            timers: TimerQueue::default(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Server::handle_timeout`] should next be called. It may be called earlier
    /// or later; an early call does nothing.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Fires every timer due at `now`: handshake and port deadlines, idle evictions.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Conn(conn) => self.conn_timer(now, conn),
                TimerKey::Member(member) => self.member_timer(now, member),
            }
        }
        let live = self.conns.len() + self.members.len();
        if self.timers.len() > 2 * live + 64 {
            let (conns, members) = (&self.conns, &self.members);
            self.timers.compact(|key| match key {
                TimerKey::Conn(c) => conns.contains_key(c),
                TimerKey::Member(m) => members.contains_key(m),
            });
        }
    }

    /// The shell could not send to `to` (an error from `send_to`, or an ICMP error
    /// read from the socket's error queue). Members at that address count a failure;
    /// at `max_send_failures` in a row they are evicted. A valid datagram from a
    /// member resets its count.
    pub fn handle_send_failed(&mut self, _now: Instant, to: SocketAddr) {
        self.stats.send_failures += 1;
        let Some(ids) = self.by_addr.get(&canonical_addr(to)) else {
            return;
        };
        let mut evict = Vec::new();
        for id in ids {
            if let Some(member) = self.members.get_mut(id) {
                member.failures += 1;
                if member.failures >= self.config.max_send_failures {
                    evict.push(*id);
                }
            }
        }
        for id in evict {
            let reason =
                crate::wire::notice::EvictReason::SendFailures(self.config.max_send_failures);
            self.remove_member(id, membership::Removal::Evicted(reason));
        }
    }

    /// Closes every room (members get `* room closed: server shutting down`) and every
    /// connection. The server is empty afterwards and can be dropped once drained.
    pub fn shutdown(&mut self, _now: Instant) {
        let mut names: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        names.sort();
        for name in names {
            self.close_room(&name, crate::wire::notice::CloseReason::ServerShutdown);
        }
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        for conn in conns {
            self.close_conn(conn);
        }
        self.timers = TimerQueue::default();
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// What the server holds now.
    pub fn counts(&self) -> Counts {
        Counts {
            rooms: self.rooms.len(),
            members: self.members.len(),
            connections: self.conns.len(),
            queued_outputs: self.outputs.len(),
            timers: self.timers.len(),
        }
    }

    /// Names of the rooms alive, sorted.
    pub fn room_names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<_> = self.rooms.keys().cloned().collect();
        names.sort();
        names
    }

    /// The members of a room in join order (host first), or `None` if there is no such room.
    pub fn members_of(&self, room: &str) -> Option<Vec<MemberInfo>> {
        let room = self.rooms.get(room)?;
        Some(
            room.members
                .iter()
                .filter_map(|id| self.members.get(id).map(|m| (id, m)))
                .map(|(id, m)| MemberInfo {
                    username: m.username.clone(),
                    is_host: *id == room.host,
                    ip: m.ip,
                    udp: m.udp,
                })
                .collect(),
        )
    }

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    fn drop_datagram(&mut self, from: SocketAddr, reason: DropReason) {
        self.stats.dropped[reason.index()] += 1;
        self.emit(Event::DatagramDropped { from, reason });
    }

    fn send_datagram(&mut self, to: SocketAddr, payload: bytes::Bytes) {
        self.stats.datagrams_sent += 1;
        self.outputs.push_back(Output::Datagram { to, payload });
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become plain IPv4, so a token obtained
/// over one socket family is honoured over the other.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// [`canonical_ip`] for a socket address: one member, one key, whichever socket family
/// the datagram came through. Outputs use this form; a shell with an IPv6 socket maps
/// IPv4 destinations back to `::ffff:a.b.c.d`.
pub fn canonical_addr(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

#[cfg(test)]
mod tests;
