//! [`ClusterHarness`]: several rooms servers in cluster mode, in memory, with one fake
//! clock, a [`MemoryRegistry`] and a bus that carries each publish to every other node
//! subscribed to the room. Registry requests of a node are answered in the order sent
//! (as `ocm-cluster`'s link does); the registry can be taken down, answers held back,
//! and nodes killed (a dead node neither receives nor sends, and its timers stop).
//!
//! After every step each live node's own invariants are checked, and every datagram a
//! node sends must go to an address one of its members had before or after the step.

use crate::harness::addr;
use bytes::Bytes;
use ocm_core::client::{Handshake, HandshakeError};
use ocm_core::cluster::memory::MemoryRegistry;
use ocm_core::cluster::node::{ClusterConfig, ClusterInput, ClusterOutput};
use ocm_core::cluster::registry::{RegistryRequest, RequestId, Unavailable};
use ocm_core::cluster::NodeId;
use ocm_core::wire::room_datagram::RoomDatagram;
use ocm_core::{Config, ConnId, Input, Machine, Output, RoomServer, Status};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One node.
#[derive(Debug)]
pub struct ClusterNode {
    /// The server.
    pub server: RoomServer,
    /// The rooms it last asked to receive.
    pub subscribed: Vec<Arc<str>>,
    /// False once killed.
    pub alive: bool,
    /// TCP bytes received per connection.
    tcp: BTreeMap<ConnId, Vec<u8>>,
    closed: HashSet<ConnId>,
    shut: HashSet<ConnId>,
}

/// Nodes, registry, bus and clock.
#[derive(Debug)]
pub struct ClusterHarness {
    /// The nodes, by index.
    pub nodes: Vec<ClusterNode>,
    /// The registry they share.
    pub registry: MemoryRegistry,
    /// While false, every registry request is answered `Down`.
    pub registry_up: bool,
    /// While true, registry requests wait in [`ClusterHarness::held`] unanswered.
    pub hold_answers: bool,
    /// Requests held back: (node, id, request).
    pub held: VecDeque<(usize, RequestId, RegistryRequest)>,
    /// Publishes not yet carried: (origin node, room, envelope).
    published: Vec<(usize, Arc<str>, Bytes)>,
    /// Every publish carried so far, in order: (origin node, room, envelope).
    pub bus_log: Vec<(usize, Arc<str>, Bytes)>,
    /// The fake clock.
    pub now: Instant,
    /// Datagrams sent and not yet taken, per destination.
    pub datagrams: BTreeMap<SocketAddr, Vec<String>>,
    next_conn: u64,
}

/// The cluster defaults for tests: a 4 s lease and a 1 s registry timeout.
pub fn test_cluster_config(node: &str) -> ClusterConfig {
    ClusterConfig {
        node: NodeId::new(node).expect("a node id"),
        lease: Duration::from_secs(4),
        registry_timeout: Duration::from_secs(1),
    }
}

impl ClusterHarness {
    /// `n` nodes named `node-0`, `node-1`, ... with `config`, registered (their first
    /// renewal answered).
    pub fn new(n: usize, config: Config) -> ClusterHarness {
        let now = Instant::now();
        let nodes = (0..n)
            .map(|i| ClusterNode {
                server: RoomServer::new_clustered(
                    config.clone(),
                    [i as u8 + 1; 32],
                    test_cluster_config(&format!("node-{i}")),
                    now,
                )
                .expect("a valid config"),
                subscribed: Vec::new(),
                alive: true,
                tcp: BTreeMap::new(),
                closed: HashSet::new(),
                shut: HashSet::new(),
            })
            .collect();
        let mut harness = ClusterHarness {
            nodes,
            registry: MemoryRegistry::default(),
            registry_up: true,
            hold_answers: false,
            held: VecDeque::new(),
            published: Vec::new(),
            bus_log: Vec::new(),
            now,
            datagrams: BTreeMap::new(),
            next_conn: 0,
        };
        // Each node's first renewal is due at once: it registers the node.
        for i in 0..n {
            harness.feed(i, Input::Timeout);
        }
        harness
    }

    /// Feeds an input to node `i` and carries everything it causes everywhere.
    pub fn feed(&mut self, i: usize, input: Input<&[u8]>) {
        if !self.nodes[i].alive {
            return;
        }
        self.step(i, |server, now| server.handle(now, input));
        self.pump();
    }

    fn step(&mut self, i: usize, f: impl FnOnce(&mut RoomServer, Instant)) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let before: HashSet<SocketAddr> = node.server.member_addrs().into_iter().collect();
        f(&mut node.server, now);
        let outputs: Vec<Output> = std::iter::from_fn(|| node.server.poll_output()).collect();
        node.server
            .check_invariants()
            .unwrap_or_else(|v| panic!("node {i}: {v}"));
        let after: HashSet<SocketAddr> = node.server.member_addrs().into_iter().collect();
        let mut inbox = Vec::new();
        for output in outputs {
            match output {
                Output::Datagram { to, payload } => {
                    assert!(
                        before.contains(&to) || after.contains(&to),
                        "node {i} sent to {to}, not a member address"
                    );
                    let text = String::from_utf8(payload.to_vec()).expect("UTF-8 to members");
                    self.datagrams.entry(to).or_default().push(text);
                }
                Output::TcpSend { conn, data } => {
                    node.tcp.entry(conn).or_default().extend_from_slice(&data)
                }
                Output::TcpShutdownWrite { conn } => {
                    node.shut.insert(conn);
                }
                Output::TcpClose { conn } => {
                    node.closed.insert(conn);
                }
                Output::Event(_) => {}
                Output::Cluster(ClusterOutput::Subscribe { rooms }) => node.subscribed = rooms,
                Output::Cluster(ClusterOutput::Registry { id, request }) => {
                    inbox.push((i, id, *request));
                }
                Output::Cluster(ClusterOutput::Publish { room, payload }) => {
                    self.published.push((i, room, payload));
                }
            }
        }
        self.held.extend(inbox);
    }

    /// Carries registry requests and publishes until nothing moves.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while !self.hold_answers {
                let Some((i, id, request)) = self.held.pop_front() else {
                    break;
                };
                moved = true;
                let answer = if self.registry_up {
                    Ok(self.registry.execute(self.now, &request))
                } else {
                    Err(Unavailable::Down)
                };
                self.cluster_input(i, ClusterInput::Answer { id, answer });
            }
            let published = std::mem::take(&mut self.published);
            for (origin, room, payload) in published {
                moved = true;
                for j in 0..self.nodes.len() {
                    let node = &self.nodes[j];
                    if node.alive && j != origin && node.subscribed.contains(&room) {
                        self.cluster_input(
                            j,
                            ClusterInput::Message {
                                payload: payload.clone(),
                            },
                        );
                    }
                }
                self.bus_log.push((origin, room, payload));
            }
            if !moved {
                return;
            }
        }
    }

    /// Hands node `i` a cluster input (answers held back or a message replayed).
    pub fn cluster_input(&mut self, i: usize, input: ClusterInput) {
        if !self.nodes[i].alive {
            return;
        }
        self.step(i, |server, now| server.handle_cluster(now, input));
    }

    /// Answers every held request now (in order) and carries what follows.
    pub fn release_held(&mut self) {
        self.hold_answers = false;
        self.pump();
    }

    /// Moves the clock by `by` in steps of at most 100 ms, firing every live node's
    /// timers on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + Duration::from_millis(100)).min(end);
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .server
                    .poll_timeout()
                    .is_some_and(|at| at <= self.now);
                if due {
                    self.feed(i, Input::Timeout);
                }
            }
        }
    }

    /// Kills node `i` (`kill -9`): it never sends or receives again.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.held.retain(|(n, ..)| *n != i);
    }

    /// A create or join through node `i` from `peer`; the token or the refusal. With
    /// answers held, `None` while the request waits.
    pub fn handshake(
        &mut self,
        i: usize,
        peer: &str,
        create: bool,
        room: &str,
        user: &str,
        password: Option<&str>,
    ) -> Option<Result<Bytes, Status>> {
        let conn = self.start_handshake(i, peer, create, room, user, password);
        self.finish_handshake(i, conn, create, room, user, password)
    }

    /// Sends the request; returns the connection to finish later.
    pub fn start_handshake(
        &mut self,
        i: usize,
        peer: &str,
        create: bool,
        room: &str,
        user: &str,
        password: Option<&str>,
    ) -> ConnId {
        let hs = handshake(create, room, user, password);
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.feed(
            i,
            Input::TcpAccepted {
                conn,
                peer: addr(peer),
            },
        );
        self.feed(
            i,
            Input::TcpData {
                conn,
                data: hs.request(),
            },
        );
        conn
    }

    /// What came back on `conn` so far: `None` if no answer yet.
    pub fn finish_handshake(
        &mut self,
        i: usize,
        conn: ConnId,
        create: bool,
        room: &str,
        user: &str,
        password: Option<&str>,
    ) -> Option<Result<Bytes, Status>> {
        let mut hs = handshake(create, room, user, password);
        let received = self.nodes[i].tcp.get(&conn).cloned().unwrap_or_default();
        let result = match hs.handle_data(&received) {
            Ok(Some(token)) => Ok(token),
            Ok(None) => return None,
            Err(HandshakeError::Refused(status)) => Err(status),
            Err(other) => panic!("unexpected handshake result {other:?}"),
        };
        match &result {
            Ok(_) => {
                assert!(
                    self.nodes[i].shut.contains(&conn),
                    "write side shut after the token"
                );
                self.feed(i, Input::TcpClosed { conn });
            }
            Err(_) => assert!(
                self.nodes[i].closed.contains(&conn),
                "closed after a refusal"
            ),
        }
        Some(result)
    }

    /// Creates `room` through node `i`; the token.
    pub fn create(&mut self, i: usize, peer: &str, room: &str, user: &str) -> Bytes {
        self.handshake(i, peer, true, room, user, None)
            .expect("answered")
            .expect("create accepted")
    }

    /// Joins `room` through node `i`; the token.
    pub fn join(&mut self, i: usize, peer: &str, room: &str, user: &str) -> Bytes {
        self.handshake(i, peer, false, room, user, None)
            .expect("answered")
            .expect("join accepted")
    }

    /// A room datagram from `from` to node `i`.
    pub fn say(&mut self, i: usize, from: &str, room: &str, token: &[u8], message: &str) {
        let datagram = RoomDatagram {
            room: room.as_bytes(),
            token,
            message: message.as_bytes(),
        }
        .encode()
        .expect("a valid datagram");
        self.feed(
            i,
            Input::Datagram {
                from: addr(from),
                data: &datagram,
            },
        );
    }

    /// The texts `who` received since last asked.
    pub fn received_by(&mut self, who: &str) -> Vec<String> {
        self.datagrams.remove(&addr(who)).unwrap_or_default()
    }

    /// Everything still untaken, all destinations.
    pub fn take_all(&mut self) -> BTreeMap<SocketAddr, Vec<String>> {
        std::mem::take(&mut self.datagrams)
    }
}

fn handshake(create: bool, room: &str, user: &str, password: Option<&str>) -> Handshake {
    if create {
        Handshake::create(room, user, password)
    } else {
        Handshake::join(room, user, password)
    }
    .expect("valid names")
}
