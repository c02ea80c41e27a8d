//! What each cluster schedule operation does to the world: clients' moves through a
//! node, and the faults (crash, restart, Redis outage, partition).

use super::schedule::{ClusterOp, LEASE, ROOMS, USERS};
use super::world::{node_addr, span, start, ClusterWorld, Crash, NodeInput};
use crate::host::{Actor, State};
use crate::world::Failure;
use ocm_core::client::Handshake;
use ocm_core::output::ConnId;
use ocm_core::Input;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

impl ClusterWorld {
    fn choose(&self, index: u8, fit: impl Fn(usize, &Actor) -> bool) -> Option<usize> {
        let fitting: Vec<usize> = (0..self.actors.len())
            .filter(|a| fit(*a, &self.actors[*a]))
            .collect();
        (!fitting.is_empty()).then(|| fitting[usize::from(index) % fitting.len()])
    }

    fn is_host(&self, a: usize) -> bool {
        match self.actors[a].state {
            State::Chatting { log, .. } => self.sessions.get(&(a, log)).is_some_and(|s| s.host),
            _ => false,
        }
    }

    /// Applies one operation at the current time (only `Advance` moves the clock).
    pub fn apply(&mut self, op: ClusterOp) -> Result<(), Failure> {
        let n = self.nodes.len();
        match op {
            ClusterOp::Create {
                actor,
                node,
                room,
                user,
            } => {
                let room = ROOMS[usize::from(room) % ROOMS.len()];
                self.handshake(actor, usize::from(node) % n, room, user, true)
            }
            ClusterOp::Join {
                actor,
                node,
                room,
                user,
            } => {
                let held: Vec<&'static str> = ROOMS
                    .iter()
                    .copied()
                    .filter(|r| self.bus.registry.holder(self.now, r).is_some())
                    .collect();
                let room = if held.is_empty() || room % 4 == 3 {
                    ROOMS[usize::from(room / 4) % ROOMS.len()]
                } else {
                    held[usize::from(room) % held.len()]
                };
                self.handshake(actor, usize::from(node) % n, room, user, false)
            }
            ClusterOp::Send { actor } => {
                if let Some(a) = self.choose(actor, |_, a| a.is_talking()) {
                    let State::Chatting { log, .. } = self.actors[a].state else {
                        unreachable!("talking")
                    };
                    let Some(session) = self.sessions.get_mut(&(a, log)) else {
                        return Ok(());
                    };
                    session.sent += 1;
                    let text = format!("m{a}.{log}.{}", session.sent);
                    let server = self.actor_server(a);
                    let (mut wire, actors) = self.wire(server);
                    actors[a].send(&mut wire, |_| text);
                }
                Ok(())
            }
            ClusterOp::Leave { actor } => {
                if let Some(a) = self.choose(actor, |_, a| a.is_talking()) {
                    self.leave(a);
                }
                Ok(())
            }
            ClusterOp::HostLeave { actor } => {
                if let Some(a) =
                    self.choose(actor, |a, actor| actor.is_talking() && self.is_host(a))
                {
                    self.coverage.host_leaves += 1;
                    self.leave(a);
                }
                Ok(())
            }
            ClusterOp::Vanish { actor } => {
                if let Some(a) = self.choose(actor, |_, a| a.is_busy()) {
                    self.vanish(a)?;
                }
                Ok(())
            }
            ClusterOp::Advance { ms } => {
                self.run_until(self.now + Duration::from_millis(u64::from(ms)))
            }
            ClusterOp::Crash { node } => self.crash(usize::from(node) % n),
            ClusterOp::Restart { node } => {
                let i = usize::from(node) % n;
                if self.nodes[i].server.is_none() {
                    self.coverage.restarts += 1;
                    let clock = self.nodes[i].clock(self.now);
                    self.nodes[i].server = Some(start(&mut self.rng, i, clock));
                    self.bus.restart(i);
                    let _ = writeln!(self.trace, "{:?} node {i} restarts", self.now);
                }
                Ok(())
            }
            ClusterOp::Outage { ms, lose_data } => {
                let until = self.now + Duration::from_millis(u64::from(ms));
                self.coverage.outages += 1;
                self.coverage.data_losses += u64::from(lose_data);
                if self.down_since.is_none() {
                    self.down_since = Some(self.now);
                }
                if lose_data {
                    let slowest = self.slowest_rate();
                    let fence = span(LEASE / 2, slowest);
                    self.loss_grace_until = self.loss_grace_until.max(until + fence + LEASE);
                }
                let _ = writeln!(
                    self.trace,
                    "{:?} redis down until {until:?} (lose data: {lose_data})",
                    self.now
                );
                self.bus.outage(&mut self.rng, self.now, until, lose_data);
                Ok(())
            }
            ClusterOp::Partition { node, ms, hold } => {
                let i = usize::from(node) % n;
                if self.nodes[i].server.is_none() {
                    return Ok(()); // a dead node has no connections left to cut
                }
                let until = self.now + Duration::from_millis(u64::from(ms));
                self.coverage.partitions += 1;
                if self.nodes[i].cut_since.is_none() {
                    self.nodes[i].cut_since = Some(self.now);
                }
                let _ = writeln!(
                    self.trace,
                    "{:?} node {i} cut off until {until:?}",
                    self.now
                );
                self.bus.partition(&mut self.rng, i, until, hold);
                Ok(())
            }
        }
    }

    fn handshake(
        &mut self,
        actor: u8,
        node: usize,
        room: &str,
        user: u8,
        create: bool,
    ) -> Result<(), Failure> {
        let Some(a) = self.choose(actor, |_, a| a.is_idle()) else {
            return Ok(());
        };
        if self.nodes[node].server.is_none() {
            return Ok(()); // connection refused
        }
        let user = USERS[usize::from(user) % USERS.len()];
        let handshake = if create {
            Handshake::create(room, user, None)
        } else {
            Handshake::join(room, user, None)
        }
        .expect("pool names are valid");
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(conn, (a, node));
        self.actor_node[a] = Some(node);
        self.pending[a] = Some((room.to_owned(), user, create));
        let peer = SocketAddr::new(self.actors[a].tcp_ip, 1024 + (conn.0 % 60_000) as u16);
        self.feed(node, NodeInput::Core(Input::TcpAccepted { conn, peer }))?;
        let (mut wire, actors) = self.wire(node_addr(node));
        actors[a].start(&mut wire, conn, handshake, room);
        Ok(())
    }

    fn leave(&mut self, a: usize) {
        let server = self.actor_server(a);
        let (mut wire, actors) = self.wire(server);
        actors[a].leave(&mut wire);
    }

    fn vanish(&mut self, a: usize) -> Result<(), Failure> {
        if let Some(conn) = self.actors[a].vanish() {
            self.net.reset(conn);
            if !self.closed_by_node.contains(&conn) {
                let node = self.conns[&conn].1;
                return self.feed(node, NodeInput::Core(Input::TcpClosed { conn }));
            }
        }
        Ok(())
    }

    fn crash(&mut self, i: usize) -> Result<(), Failure> {
        let Some(server) = self.nodes[i].server.take() else {
            return Ok(());
        };
        self.coverage.crashes += 1;
        if let Some(stats) = server.cluster_stats() {
            self.coverage.harvest(stats);
        }
        let epochs = server
            .room_names()
            .iter()
            .filter_map(|r| server.room_claim(r))
            .filter(|(_, owned)| *owned)
            .map(|(claim, _)| claim.epoch)
            .collect();
        self.crashes.push(Crash {
            node: i,
            at: self.now,
            flushed: self.bus.flushed_by(i, self.now),
            epochs,
        });
        let _ = writeln!(self.trace, "{:?} node {i} crashes", self.now);
        self.bus.crash(i);
        for a in 0..self.actors.len() {
            if self.actor_node[a] == Some(i) && self.actors[a].is_busy() {
                if let Some(conn) = self.actors[a].vanish() {
                    self.net.reset(conn);
                }
            }
        }
        Ok(())
    }
}
