//! The rooms server: TCRP over TCP hands out tokens, UDP datagrams carry the chat.
//!
//! [`RoomServer`] is a sans-IO state machine. The shell feeds it what happened, each
//! with the current time, and carries out what it asks:
//!
//! ```
//! use ocm_core::{Config, ConnId, Input, Machine, Output, RoomServer};
//! use std::time::Instant;
//!
//! let mut server = RoomServer::new(Config::default(), [0; 32]).unwrap();
//! let now = Instant::now();
//! let conn = ConnId(1);
//! server.handle(now, Input::TcpAccepted { conn, peer: "127.0.0.1:5000".parse().unwrap() });
//! let request = ocm_core::client::Handshake::create("lobby", "alice", None).unwrap();
//! server.handle(now, Input::TcpData { conn, data: request.request() });
//! while let Some(output) = server.poll_output() {
//!     match output {
//!         Output::TcpSend { .. } => { /* write it */ }
//!         Output::TcpShutdownWrite { .. } | Output::TcpClose { .. } => { /* ... */ }
//!         Output::Datagram { .. } => { /* send_to */ }
//!         Output::Event(_) => { /* log */ }
//!         Output::Cluster(_) => { /* cluster mode only: to the registry or bus */ }
//!     }
//! }
//! // then sleep until server.poll_timeout() or the next input
//! ```
//!
//! The TCP side lives in `handshake.rs`, rooms and the UDP side in `membership.rs`; the
//! bookkeeping checks in [`crate::invariants`].

mod addresses;
pub(crate) mod cluster;
mod handshake;
mod member_table;
pub(crate) mod membership;
mod rates;
pub(crate) mod table;

pub use cluster::ClusterStats;

use crate::arena::PayloadArena;
use crate::config::{Config, ConfigError};
use crate::hash::{keyed_map, IdMap, KeyedMap, KeyedState};
use crate::input::{Input, SendFailure};
use crate::invariants::InvariantViolation;
use crate::liveness::Failed;
use crate::machine::Machine;
use crate::outbox::Outbox;
use crate::output::{ConnId, Output};
use crate::source::{Source, SourceCounts};
use crate::stats::Stats;
use crate::throttle::Throttle;
use crate::timers::TimerQueue;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use handshake::Conn;
use membership::{Member, MemberId, Removal};

/// What a timer entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimerKey {
    Conn(ConnId),
    Member(MemberId),
    /// Cluster mode: a registry request's deadline.
    Registry(crate::cluster::registry::RequestId),
    /// Cluster mode: time to renew the leases.
    Renew,
    /// Cluster mode: half a lease since the last successful renewal was sent.
    Fence,
}

/// How much a server holds right now; every figure is bounded by [`Config`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rooms alive (relay mode: 1 while it has clients).
    pub rooms: usize,
    /// Members in all rooms (relay mode: its clients).
    pub members: usize,
    /// TCP connections whose socket may be open: in handshake, waiting for the port,
    /// or closed after an answer and still lingering in the shell.
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
pub struct RoomServer {
    pub(crate) config: Config,
    rng: ChaCha20Rng,
    pub(crate) conns: KeyedMap<ConnId, Conn>,
    pub(crate) conns_per_source: SourceCounts,
    /// Connections still sending their request, oldest first (by accept time).
    pub(crate) incomplete: BTreeSet<(Instant, ConnId)>,
    /// Connections whose decoder holds request bytes, by bytes held and then age (the
    /// last is the one that holds the most, the oldest among equals).
    pub(crate) holders: BTreeSet<(usize, Reverse<(Instant, ConnId)>)>,
    /// Bytes held by every unfinished request together (at most `request_budget`).
    pub(crate) request_bytes: usize,
    pub(crate) rooms: table::Rooms,
    pub(crate) members: member_table::MemberTable<Member>,
    /// Keyed by tokens the server drew itself from its secret stream: random, never
    /// chosen by a peer, so hashed like ids ([`IdMap`]). In their wire form, so that a
    /// datagram's token is looked up as it came ([`crate::token::TokenText`]).
    pub(crate) tokens: IdMap<crate::token::TokenText, MemberId>,
    pub(crate) by_addr: addresses::AddressIndex,
    /// Members per source, with their shared message bucket (see `rates.rs`).
    pub(crate) members_per_source: crate::source_members::SourceMembers,
    /// Rooms alive by their host's source.
    pub(crate) rooms_per_source: SourceCounts,
    /// Wrong passwords per source and per room (see [`crate::throttle`]).
    pub(crate) password_sources: Throttle<Source>,
    pub(crate) password_rooms: Throttle<Arc<str>>,
    timers: TimerQueue<TimerKey>,
    out: Outbox,
    /// Where a single node writes relayed lines ([`PayloadArena`]).
    lines: PayloadArena,
    /// Answers to probes from sources that are no member's (see [`crate::probe`]).
    pub(crate) unverified_answers: crate::rate::TokenBucket,
    /// Every member's message and byte rates (of `config`).
    pub(crate) member_limits: crate::rate::MemberLimits,
    /// Cluster mode only (`docs/CLUSTER.md`).
    pub(crate) cluster: Option<cluster::ClusterState>,
}

impl RoomServer {
    /// A server with these limits, drawing tokens, salts and hash keys from a ChaCha20
    /// generator seeded with `seed` (OS entropy in a real server, fixed in tests).
    pub fn new(config: Config, seed: [u8; 32]) -> Result<RoomServer, ConfigError> {
        config.validate()?;
        let mut rng = ChaCha20Rng::from_seed(seed);
        let state = KeyedState::new(&mut rng);
        Ok(RoomServer {
            rng,
            conns: keyed_map(state),
            conns_per_source: SourceCounts::new(state),
            incomplete: BTreeSet::new(),
            holders: BTreeSet::new(),
            request_bytes: 0,
            rooms: table::Rooms::new(state),
            members: member_table::MemberTable::default(),
            tokens: IdMap::default(),
            by_addr: addresses::AddressIndex::new(state),
            members_per_source: crate::source_members::SourceMembers::new(state),
            rooms_per_source: SourceCounts::new(state),
            password_sources: Throttle::new(config.password_failures_per_source, state),
            password_rooms: Throttle::new(config.password_failures_per_room, state),
            timers: TimerQueue::default(),
            out: Outbox::default(),
            lines: PayloadArena::new(),
            unverified_answers: crate::rate::TokenBucket::new(
                crate::probe::UNVERIFIED_ANSWERS_PER_SEC,
                crate::probe::UNVERIFIED_ANSWERS_PER_SEC,
            ),
            member_limits: crate::rate::MemberLimits::new(&config),
            config,
            cluster: None,
        })
    }

    /// A server in cluster mode (`docs/CLUSTER.md`): names and members are decided by
    /// the registry, traffic goes to the other nodes through the bus, both through
    /// [`Output::Cluster`] and [`RoomServer::handle_cluster`]. It starts by renewing
    /// (registering) this node at `now`; creates and joins answer TRY_LATER until that
    /// has succeeded.
    pub fn new_clustered(
        config: Config,
        seed: [u8; 32],
        cluster: crate::cluster::node::ClusterConfig,
        now: Instant,
    ) -> Result<RoomServer, ConfigError> {
        cluster
            .validate(config.handshake_timeout)
            .map_err(ConfigError::Cluster)?;
        let mut server = RoomServer::new(config, seed)?;
        server.cluster = Some(cluster::ClusterState::new(cluster, now));
        server.start_cluster();
        Ok(server)
    }

    /// Whether a dropped datagram is reported as an [`Event::DatagramDropped`](crate::Event::DatagramDropped) output
    /// (`true`, the default) or only counted in [`Stats::dropped`](crate::Stats). A shell
    /// that would throw the event away (nothing logs it, nothing records it) turns it
    /// off, so a flood of junk costs no queued output per datagram.
    pub fn report_drops(&mut self, report: bool) {
        self.out.report_drops = report;
    }

    /// The source `ip` counts under for the per-source limits.
    pub(crate) fn source(&self, ip: IpAddr) -> Source {
        source_of(ip, &self.config)
    }

    /// Fires every timer due at `now`: handshake and port deadlines, idle evictions.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, key)) = self.timers.pop_due(now) {
            match key {
                TimerKey::Conn(conn) => self.conn_timer(now, conn),
                TimerKey::Member(member) => self.member_timer(now, member),
                TimerKey::Registry(id) => self.registry_timer(now, id),
                TimerKey::Renew => self.renew_timer(now),
                TimerKey::Fence => self.fence_timer(now),
            }
        }
        self.sweep_timers();
    }

    /// Drops stale timer entries once they outnumber what is alive (see
    /// [`TimerQueue::sweep`]); called wherever an entry can go stale, so the table stays
    /// bounded however rarely timers fire.
    fn sweep_timers(&mut self) {
        let (conns, members, cluster) = (&self.conns, &self.members, &self.cluster);
        self.timers
            .sweep(conns.len() + members.len(), |key| match key {
                TimerKey::Conn(c) => conns.contains_key(c),
                TimerKey::Member(m) => members.contains_key(m),
                TimerKey::Registry(id) => cluster.as_ref().is_some_and(|c| c.is_pending(id)),
                TimerKey::Renew | TimerKey::Fence => true,
            });
    }

    /// The shell could not send to `to`. Members at that address count a failure (an
    /// ICMP error only if they have been silent for `icmp_grace`); at
    /// `max_send_failures` in a row they are evicted. A valid datagram from a member
    /// resets its count.
    pub fn handle_send_failed(&mut self, now: Instant, to: SocketAddr, cause: SendFailure) {
        self.out.stats.send_failures += 1;
        let ids = self.by_addr.get(canonical_addr(to));
        let mut evict = Vec::new();
        for id in ids {
            if let Some(member) = self.members.get_mut(id) {
                match member.liveness.send_failed(now, cause, &self.config) {
                    Failed::Evict => evict.push(*id),
                    Failed::Ignored => self.out.stats.icmp_ignored += 1,
                    Failed::Counted => {}
                }
            }
        }
        let max = self.config.max_send_failures;
        for id in evict {
            let reason = crate::wire::notice::EvictReason::SendFailures(max);
            self.remove_member(id, Removal::Evicted(reason));
        }
    }

    /// Closes every room (members get `* room closed: server shutting down`) and every
    /// connection. The server is empty afterwards and can be dropped once drained.
    pub fn shutdown(&mut self, _now: Instant) {
        self.cluster_shutdown();
        let mut names: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        names.sort();
        for name in names {
            self.close_room(&name, crate::wire::notice::CloseReason::ServerShutdown);
        }
        self.close_all_conns();
        self.timers = TimerQueue::default();
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
                    is_host: room.is_host(*id),
                    ip: m.ip,
                    udp: m.udp,
                })
                .collect(),
        )
    }
}

impl Machine for RoomServer {
    fn handle(&mut self, now: Instant, input: Input<&[u8]>) {
        match input {
            Input::TcpAccepted { conn, peer } => self.handle_tcp_accept(now, conn, peer),
            Input::TcpData { conn, data } => self.handle_tcp_data(now, conn, data),
            Input::TcpClosed { conn } => self.handle_tcp_closed(now, conn),
            Input::Datagram { from, data } => self.handle_datagram(now, from, data),
            Input::SendFailed { to, cause } => self.handle_send_failed(now, to, cause),
            Input::Timeout => self.handle_timeout(now),
            Input::Shutdown => self.shutdown(now),
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.pop_output()
    }

    fn front_datagrams(&self, max: usize) -> &[(SocketAddr, bytes::Bytes)] {
        self.out.front_datagrams(max)
    }

    fn datagrams_sent(&mut self, n: usize) {
        self.out.datagrams_sent(n)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn stats(&self) -> &Stats {
        &self.out.stats
    }

    fn counts(&self) -> Counts {
        Counts {
            rooms: self.rooms.len(),
            members: self.members.len(),
            connections: self.conns.len(),
            queued_outputs: self.out.len(),
            timers: self.timers.len(),
        }
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        crate::invariants::rooms(self)
    }

    fn member_addrs(&self) -> Vec<SocketAddr> {
        self.by_addr.addrs().collect()
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

/// The source `ip` counts under for the per-source limits, with `config`'s IPv6 prefix:
/// the one rule for every table keyed by source (see [`crate::source`]).
pub(crate) fn source_of(ip: IpAddr, config: &Config) -> Source {
    Source::of(ip, config.ipv6_source_prefix)
}
