//! The cluster world: several core `RoomServer`s in cluster mode, each with its own
//! clock (an offset and a rate against the one simulated time), the simulated Redis and
//! its links ([`super::bus`]), six clients built on core's client state machines
//! ([`crate::host`]) over the simulator's network ([`crate::net`], perfect here: the
//! faults under test are the cluster's), and the event loop that drives them.
//!
//! Every input reaches a node through [`ClusterWorld::feed`], which logs it, runs the
//! node, checks the node's own invariants and the cluster's ([`super::invariants`]),
//! and only then routes the outputs. Every datagram that reaches a client is checked
//! on arrival (membership, room incarnation, duplicates, order).

use super::bus::Bus;
use super::coverage::ClusterCoverage;
use super::invariants::{self, Delivery};
use super::schedule::{cluster_config, config, ClusterSchedule};
use crate::host::{Actor, State, Wire};
use crate::net::{below, Faults, Net, Packet, Segment};
use crate::trace::Trace;
use crate::world::Failure;
use bytes::Bytes;
use ocm_core::cluster::node::{ClusterInput, ClusterOutput};
use ocm_core::cluster::Epoch;
use ocm_core::output::{ConnId, Event, Output};
use ocm_core::{Input, Machine, RoomServer};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Node `i`'s address (UDP and TCP).
pub fn node_addr(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + i as u8)), 9000)
}

/// One node: its server (none while crashed) and its clock.
pub struct Node {
    /// The server; `None` while crashed.
    pub server: Option<RoomServer>,
    /// What its clock read at simulated time zero.
    base: Instant,
    /// Its clock's rate, per mille of simulated time.
    pub rate: u16,
    /// Cut off from Redis since (while cut).
    pub cut_since: Option<Duration>,
    /// Last time a partition of this node ended.
    pub cut_ended: Option<Duration>,
}

impl Node {
    /// The node's clock at simulated time `t`.
    pub fn clock(&self, t: Duration) -> Instant {
        let nanos = t.as_nanos() * u128::from(self.rate) / 1000;
        self.base + Duration::from_nanos(nanos as u64)
    }

    /// The first simulated time at which the node's clock reads `at` or later.
    pub fn when(&self, at: Instant) -> Duration {
        let d = at.saturating_duration_since(self.base).as_nanos();
        let rate = u128::from(self.rate);
        Duration::from_nanos(d.saturating_mul(1000).div_ceil(rate) as u64)
    }

    /// A span of the node's clock, in simulated time (the longest it can take).
    pub fn span(&self, d: Duration) -> Duration {
        Duration::from_nanos((d.as_nanos() * 1000).div_ceil(u128::from(self.rate)) as u64)
    }
}

/// A chat session of an actor, as the world knows it.
#[derive(Clone, Debug)]
pub struct Session {
    /// The node it joined through.
    pub node: usize,
    /// Its room.
    pub room: String,
    /// The room's incarnation on that node when the member was admitted.
    pub epoch: Epoch,
    /// Created the room.
    pub host: bool,
    /// Lines sent so far.
    pub sent: u64,
    /// Ended by a notice from its node (room closed, evicted): nothing may follow.
    pub ended_by_server: bool,
}

/// A crash: which node, when, and the room epochs it hosted then.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The node.
    pub node: usize,
    /// When.
    pub at: Duration,
    /// By when what it had sent left it (later than `at` if it died cut off from
    /// Redis behind connections that hold: its last renewal lands after the heal).
    pub flushed: Duration,
    /// Epochs of the rooms it hosted.
    pub epochs: BTreeSet<Epoch>,
}

/// Everything in a cluster run.
pub struct ClusterWorld {
    pub(crate) now: Duration,
    pub(crate) rng: ChaCha20Rng,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Redis and its links.
    pub bus: Bus,
    pub(crate) net: Net,
    pub(crate) actors: Vec<Actor>,
    /// Node of each actor's current handshake or session.
    pub(crate) actor_node: Vec<Option<usize>>,
    /// Room, user and create/join of each actor's current handshake.
    pub(crate) pending: Vec<Option<(String, &'static str, bool)>>,
    pub(crate) conns: BTreeMap<ConnId, (usize, usize)>,
    pub(crate) closed_by_node: BTreeSet<ConnId>,
    pub(crate) next_conn: u64,
    pub(crate) captured: Vec<Bytes>,
    /// Epoch of each member a node admitted: (node, room, username) → epoch.
    pub(crate) admitted: BTreeMap<(usize, String, String), Epoch>,
    /// Sessions by (actor, session index).
    pub sessions: BTreeMap<(usize, usize), Session>,
    /// What each session received, for the delivery checks.
    pub(crate) deliveries: BTreeMap<(usize, usize), Delivery>,
    /// Addresses of sessions their node ended.
    pub(crate) ended_addrs: BTreeMap<SocketAddr, (usize, usize)>,
    /// Crashes so far.
    pub crashes: Vec<Crash>,
    /// Redis down since (while down), and when the last outage ended.
    pub down_since: Option<Duration>,
    /// When the last outage ended.
    pub down_ended: Option<Duration>,
    /// Until when two nodes may host one name: Redis lost its data, and a node that
    /// still serves a room may not have restored it yet.
    pub loss_grace_until: Duration,
    /// The event log.
    pub trace: Trace,
    /// What the run exercised.
    pub coverage: ClusterCoverage,
}

impl ClusterWorld {
    /// The world of `schedule`: its nodes started at time zero, nothing else.
    pub fn new(schedule: &ClusterSchedule, trace: Trace) -> ClusterWorld {
        let mut rng = ChaCha20Rng::seed_from_u64(schedule.seed);
        let n = usize::from(schedule.nodes.clamp(1, 8));
        let origin = Instant::now();
        let nodes = (0..n)
            .map(|i| {
                let rate = schedule
                    .clocks
                    .get(i)
                    .copied()
                    .unwrap_or(1000)
                    .clamp(500, 2000);
                let base = origin + Duration::from_secs(1_000 * i as u64 + below(&mut rng, 100));
                let mut node = Node {
                    server: None,
                    base,
                    rate,
                    cut_since: None,
                    cut_ended: None,
                };
                node.server = Some(start(&mut rng, i, node.clock(Duration::ZERO)));
                node
            })
            .collect();
        let actors = (0..6u8)
            .map(|i| {
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i / 2));
                Actor::new(ip, ip, 40_000 + u16::from(i) * 1_000)
            })
            .collect();
        let faults = Faults {
            max_delay: Duration::from_millis(20),
            ..Faults::perfect()
        };
        ClusterWorld {
            now: Duration::ZERO,
            rng,
            nodes,
            bus: Bus::new(schedule.bus, n),
            net: Net::new(faults),
            actors,
            actor_node: vec![None; 6],
            pending: vec![None; 6],
            conns: BTreeMap::new(),
            closed_by_node: BTreeSet::new(),
            next_conn: 1,
            captured: Vec::new(),
            admitted: BTreeMap::new(),
            sessions: BTreeMap::new(),
            deliveries: BTreeMap::new(),
            ended_addrs: BTreeMap::new(),
            crashes: Vec::new(),
            down_since: None,
            down_ended: None,
            loss_grace_until: Duration::ZERO,
            trace,
            coverage: ClusterCoverage::default(),
        }
    }

    /// The simulated time.
    pub fn now(&self) -> Duration {
        self.now
    }

    pub(crate) fn fail(&self, what: impl Into<String>) -> Failure {
        Failure {
            at: self.now,
            what: what.into(),
            trace_tail: self.trace.tail(),
        }
    }

    /// The slowest clock's rate, per mille.
    pub fn slowest_rate(&self) -> u16 {
        self.nodes.iter().map(|n| n.rate).min().unwrap_or(1000)
    }

    /// The node's input, run and checked, then its outputs routed.
    pub fn feed(&mut self, i: usize, input: NodeInput) -> Result<(), Failure> {
        let now = self.now;
        let at = self.nodes[i].clock(now);
        let Some(server) = self.nodes[i].server.as_mut() else {
            return Ok(());
        };
        self.coverage.steps += 1;
        let _ = writeln!(self.trace, "{now:?} node {i} {input:?}");
        let before: HashSet<SocketAddr> = server.member_addrs().into_iter().collect();
        let mut outputs = Vec::new();
        let checked = match &input {
            NodeInput::Core(core) => {
                let core = core.as_slice();
                ocm_core::invariants::step(server, at, core, &mut outputs)
            }
            NodeInput::Cluster(cluster) => {
                server.handle_cluster(at, cluster.clone());
                outputs.extend(std::iter::from_fn(|| server.poll_output()));
                invariants::cluster_step(server, &before, &outputs)
            }
        };
        for output in &outputs {
            let _ = writeln!(self.trace, "  {output:?}");
        }
        checked.map_err(|e| self.fail(format!("node {i}: {e}")))?;
        for output in &outputs {
            if let Output::Event(event) = output {
                self.admitted_by(i, event);
                self.coverage.count(event);
            }
        }
        for output in outputs {
            self.route(i, output);
        }
        invariants::cluster(self).map_err(|e| self.fail(e))
    }

    /// Remembers the epoch a member was admitted to.
    fn admitted_by(&mut self, i: usize, event: &Event) {
        let (room, username) = match event {
            Event::RoomCreated { room, host } => (room.clone(), host.clone()),
            Event::MemberJoined {
                room: Some(room),
                username,
            } => (room.clone(), username.clone()),
            _ => return,
        };
        let server = self.nodes[i].server.as_ref().expect("a live node");
        if let Some((claim, _)) = server.room_claim(&room) {
            self.admitted
                .insert((i, room.to_string(), username.to_string()), claim.epoch);
        }
    }

    fn route(&mut self, i: usize, output: Output) {
        let now = self.now;
        match output {
            Output::TcpSend { conn, data } => {
                self.net.send_tcp(&mut self.rng, now, conn, false, &data)
            }
            Output::TcpShutdownWrite { conn } => self.net.send_fin(&mut self.rng, now, conn, false),
            Output::TcpClose { conn } => {
                self.closed_by_node.insert(conn);
                self.net.send_fin(&mut self.rng, now, conn, false);
            }
            Output::Datagram { to, payload } => {
                self.net
                    .send_udp(&mut self.rng, now, node_addr(i), to, payload)
            }
            Output::Event(_) => {}
            Output::Cluster(output) => {
                if let ClusterOutput::Publish { .. } = output {
                    self.coverage.published += 1;
                }
                self.bus.send(&mut self.rng, now, i, output)
            }
        }
    }

    pub(crate) fn wire(&mut self, server: SocketAddr) -> (Wire<'_>, &mut Vec<Actor>) {
        (
            Wire {
                net: &mut self.net,
                rng: &mut self.rng,
                now: self.now,
                base: self.nodes[0].base,
                server,
                captured: &mut self.captured,
            },
            &mut self.actors,
        )
    }

    pub(crate) fn actor_server(&self, a: usize) -> SocketAddr {
        node_addr(self.actor_node[a].unwrap_or(0))
    }

    fn deliver(&mut self, packet: Packet) -> Result<(), Failure> {
        let _ = writeln!(self.trace, "{:?} deliver {packet:?}", self.now);
        match packet {
            Packet::Udp {
                from, to, payload, ..
            } => {
                if let Some(i) = (0..self.nodes.len()).find(|i| node_addr(*i) == to) {
                    return self.feed(
                        i,
                        NodeInput::Core(Input::Datagram {
                            from,
                            data: payload,
                        }),
                    );
                }
                let Some(sender) = (0..self.nodes.len()).find(|i| node_addr(*i) == from) else {
                    return Ok(());
                };
                self.datagram_to_client(sender, to, payload)
            }
            Packet::Tcp {
                conn,
                to_server: true,
                segment,
            } => {
                let Some(&(_, node)) = self.conns.get(&conn) else {
                    return Ok(());
                };
                if self.closed_by_node.contains(&conn) {
                    return Ok(());
                }
                let input = match segment {
                    Segment::Data(data) => Input::TcpData { conn, data },
                    Segment::Fin => Input::TcpClosed { conn },
                };
                self.feed(node, NodeInput::Core(input))
            }
            Packet::Tcp {
                conn,
                to_server: false,
                segment,
            } => {
                let Some(&(a, _)) = self.conns.get(&conn) else {
                    return Ok(());
                };
                let was_handshaking = matches!(self.actors[a].state, State::Handshaking { .. });
                let server = self.actor_server(a);
                let (mut wire, actors) = self.wire(server);
                actors[a]
                    .on_tcp(&mut wire, conn, segment)
                    .map_err(|e| self.fail(e))?;
                if was_handshaking {
                    if let State::Chatting { log, .. } = self.actors[a].state {
                        self.session_began(a, log)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn session_began(&mut self, a: usize, log: usize) -> Result<(), Failure> {
        let node = self.actor_node[a].expect("a handshake has a node");
        let (room, user, create) = self.pending[a].take().expect("a handshake was started");
        let Some(epoch) = self.admitted.get(&(node, room.clone(), user.to_owned())) else {
            return Err(self.fail(format!("actor {a} got a token from node {node} for {room} as {user}, but the node admitted no such member")));
        };
        let session = Session {
            node,
            room,
            epoch: *epoch,
            host: create,
            sent: 0,
            ended_by_server: false,
        };
        self.sessions.insert((a, log), session);
        self.deliveries.insert((a, log), Delivery::default());
        Ok(())
    }

    /// A datagram from node `sender` reaches `to`.
    fn datagram_to_client(
        &mut self,
        sender: usize,
        to: SocketAddr,
        payload: Bytes,
    ) -> Result<(), Failure> {
        if let Some(&(a, log)) = self.ended_addrs.get(&to) {
            return Err(self.fail(format!(
                "node {sender} sent {:?} to actor {a} (session {log}) after its room closed or it was evicted there",
                String::from_utf8_lossy(&payload)
            )));
        }
        let owner = (0..self.actors.len()).find_map(|a| match &self.actors[a].state {
            State::Chatting { addr, log, .. } if *addr == to => Some((a, *log)),
            _ => None,
        });
        if let Some(key) = owner {
            invariants::delivery(self, key, sender, &payload).map_err(|e| self.fail(e))?;
        }
        let taken = self.actors.iter_mut().any(|a| a.on_udp(to, &payload));
        if let Some((a, log)) = owner {
            if self.actors[a].is_idle() {
                self.ended_addrs.insert(to, (a, log));
                if let Some(s) = self.sessions.get_mut(&(a, log)) {
                    s.ended_by_server = true;
                }
                self.coverage.ended_by_notice(&payload);
            }
        }
        if !taken {
            let cause = ocm_core::SendFailure::Icmp;
            return self.feed(sender, NodeInput::Core(Input::SendFailed { to, cause }));
        }
        Ok(())
    }

    fn node_deadline(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .filter_map(|n| Some(n.when(n.server.as_ref()?.poll_timeout()?)))
            .min()
    }

    /// Runs every event due up to `until`, then sets the clock to `until`.
    pub fn run_until(&mut self, until: Duration) -> Result<(), Failure> {
        loop {
            let base = self.nodes[0].base;
            let actors = self.actors.iter().filter_map(|a| a.poll_timeout(base));
            let next = [
                self.node_deadline(),
                self.net.next_due(),
                self.bus.next_due(),
            ]
            .into_iter()
            .flatten()
            .chain(actors)
            .min();
            match next {
                Some(at) if at <= until => self.now = self.now.max(at),
                _ => break,
            }
            for i in 0..self.nodes.len() {
                let node = &self.nodes[i];
                let due = node.server.as_ref().and_then(|s| s.poll_timeout());
                if due.is_some_and(|at| node.when(at) <= self.now) {
                    self.feed(i, NodeInput::Core(Input::Timeout))?;
                }
            }
            while let Some((i, input)) = self.bus.pop_due(&mut self.rng, self.now) {
                self.feed(i, NodeInput::Cluster(input))?;
            }
            while let Some(packet) = self.net.pop_due(self.now) {
                self.deliver(packet)?;
            }
            for a in 0..self.actors.len() {
                if self.actors[a]
                    .poll_timeout(base)
                    .is_some_and(|at| at <= self.now)
                {
                    let server = self.actor_server(a);
                    let (mut wire, actors) = self.wire(server);
                    actors[a].handle_timeout(&mut wire);
                }
            }
            self.track_windows();
        }
        self.now = self.now.max(until);
        self.track_windows();
        invariants::cluster(self).map_err(|e| self.fail(e))
    }

    /// Notes partitions and outages that have ended.
    fn track_windows(&mut self) {
        let now = self.now;
        for i in 0..self.nodes.len() {
            if self.nodes[i].cut_since.is_some() && !self.bus.is_cut(i, now) {
                self.nodes[i].cut_since = None;
                self.nodes[i].cut_ended = Some(now);
            }
        }
        if self.down_since.is_some() && !self.bus.is_down(now) {
            self.down_since = None;
            self.down_ended = Some(now);
        }
    }

    /// The end of a run: the live nodes' counters go into the coverage.
    pub fn finish(&mut self) {
        for node in &self.nodes {
            if let Some(stats) = node.server.as_ref().and_then(|s| s.cluster_stats()) {
                self.coverage.harvest(stats);
            }
        }
    }

    /// Lets up to 250 ms pass (drawn from the seed), so handshakes can finish.
    pub fn think(&mut self) -> Result<(), Failure> {
        let gap = Duration::from_micros(below(&mut self.rng, 250_000));
        self.run_until(self.now + gap)
    }
}

/// What a node is told.
#[derive(Clone, Debug)]
pub enum NodeInput {
    /// A network input or a timeout.
    Core(Input<Bytes>),
    /// From the registry or the bus.
    Cluster(ClusterInput),
}

pub(crate) fn start(rng: &mut ChaCha20Rng, i: usize, now: Instant) -> RoomServer {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    RoomServer::new_clustered(config(), seed, cluster_config(i), now).expect("a valid config")
}

/// `d` of a clock running at `rate` per mille, in simulated time (rounded up).
pub fn span(d: Duration, rate: u16) -> Duration {
    Duration::from_nanos((d.as_nanos() * 1000).div_ceil(u128::from(rate.max(1))) as u64)
}
