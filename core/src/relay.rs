//! Relay mode, the spec's first stage: one global room over UDP, no TCP, no tokens.
//!
//! A client's first valid datagram `usernamelen | username | message` registers its
//! address (a later one with another name renames it). Non-empty messages are relayed
//! unchanged to every other registered client; an empty one is a keepalive; `/exit`
//! unregisters. Notices go out as `0x00 | text`. Idle and failing clients are evicted
//! as in rooms, and come back with their next datagram.

use crate::config::{Config, ConfigError};
use crate::hash::{keyed_map, KeyedMap, KeyedState};
use crate::names;
use crate::output::{DropReason, Event, Output};
use crate::server::canonical_addr;
use crate::stats::Stats;
use crate::timers::TimerQueue;
use crate::wire::notice::{CloseReason, EvictReason, Notice};
use crate::wire::relay_datagram::RelayDatagram;
use bytes::Bytes;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug)]
struct Client {
    /// Distinguishes this registration from an earlier one at the same address.
    id: u64,
    username: Arc<str>,
    last_seen: Instant,
    failures: u32,
}

/// The relay-mode server state machine. Same driving pattern as [`crate::Server`],
/// without the TCP inputs.
#[derive(Debug)]
pub struct RelayServer {
    config: Config,
    clients: KeyedMap<SocketAddr, Client>,
    /// Registration order, for a deterministic fan-out.
    order: Vec<SocketAddr>,
    next_id: u64,
    timers: TimerQueue<(u64, SocketAddr)>,
    outputs: VecDeque<Output>,
    stats: Stats,
}

impl RelayServer {
    /// A relay with these limits (`idle_timeout`, `max_send_failures`, and `max_members`
    /// as the client limit); the seed keys its hash maps.
    pub fn new(config: Config, seed: [u8; 32]) -> Result<RelayServer, ConfigError> {
        config.validate()?;
        let state = KeyedState::new(&mut ChaCha20Rng::from_seed(seed));
        Ok(RelayServer {
            config,
            clients: keyed_map(state),
            order: Vec::new(),
            next_id: 0,
            timers: TimerQueue::default(),
            outputs: VecDeque::new(),
            stats: Stats::default(),
        })
    }

    /// A datagram arrived.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.stats.datagrams_received += 1;
        let from = canonical_addr(from);
        let (username, message) = match parse(data) {
            Ok(parts) => parts,
            Err(reason) => return self.drop_datagram(from, reason),
        };
        if !self.clients.contains_key(&from) {
            if message == "/exit" {
                return;
            }
            if self.clients.len() >= self.config.max_members {
                return self.drop_datagram(from, DropReason::ServerFull);
            }
            self.register(now, from, username);
        }
        let client = self.clients.get_mut(&from).expect("registered above");
        client.last_seen = now;
        client.failures = 0;
        if *client.username != *username {
            client.username = username.into();
        }
        match message {
            "" => self.stats.keepalives += 1,
            "/exit" => self.unregister(from, None),
            _ => {
                self.stats.messages_relayed += 1;
                let payload = Bytes::copy_from_slice(data);
                self.fan_out(Some(from), &payload);
            }
        }
    }

    /// A send to `to` failed; at `max_send_failures` in a row the client is evicted.
    pub fn handle_send_failed(&mut self, _now: Instant, to: SocketAddr) {
        self.stats.send_failures += 1;
        let to = canonical_addr(to);
        let Some(client) = self.clients.get_mut(&to) else {
            return;
        };
        client.failures += 1;
        if client.failures >= self.config.max_send_failures {
            let reason = EvictReason::SendFailures(self.config.max_send_failures);
            self.unregister(to, Some(reason));
        }
    }

    /// Fires idle evictions due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((_, (id, addr))) = self.timers.pop_due(now) {
            let Some(client) = self.clients.get(&addr).filter(|c| c.id == id) else {
                continue;
            };
            let due = client.last_seen + self.config.idle_timeout;
            if due > now {
                self.timers.schedule(due, (id, addr));
            } else {
                self.unregister(addr, Some(EvictReason::Idle(self.config.idle_timeout)));
            }
        }
        if self.timers.len() > 2 * self.clients.len() + 64 {
            let clients = &self.clients;
            self.timers
                .compact(|(id, addr)| clients.get(addr).is_some_and(|c| c.id == *id));
        }
    }

    /// Tells every client `server shutting down` and forgets them all.
    pub fn shutdown(&mut self, _now: Instant) {
        let notice = notice_datagram(&Notice::RoomClosed(CloseReason::ServerShutdown.to_string()));
        self.fan_out(None, &notice);
        self.clients.clear();
        self.order.clear();
        self.timers = TimerQueue::default();
    }

    /// The next thing to do, until `None`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`RelayServer::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Registered clients in registration order, with their usernames.
    pub fn clients(&self) -> Vec<(SocketAddr, Arc<str>)> {
        self.order
            .iter()
            .map(|addr| (*addr, self.clients[addr].username.clone()))
            .collect()
    }

    /// Outputs queued and not yet polled.
    pub fn queued_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// What the relay holds now, in the rooms server's terms: its clients are the members
    /// of one room; there are no connections.
    pub fn counts(&self) -> crate::Counts {
        crate::Counts {
            rooms: usize::from(!self.clients.is_empty()),
            members: self.clients.len(),
            connections: 0,
            queued_outputs: self.outputs.len(),
            timers: self.timers.len(),
        }
    }

    /// Checks the client limit and that the fan-out order lists each client once.
    pub fn check_invariants(&self) -> Result<(), crate::InvariantViolation> {
        use crate::InvariantViolation as V;
        if self.clients.len() > self.config.max_members {
            return Err(V("more relay clients than max_members"));
        }
        if self.order.len() != self.clients.len()
            || !self.order.iter().all(|a| self.clients.contains_key(a))
        {
            return Err(V("fan-out order disagrees with the client table"));
        }
        if self
            .clients
            .values()
            .any(|c| c.failures >= self.config.max_send_failures)
        {
            return Err(V("client kept after max_send_failures"));
        }
        Ok(())
    }

    fn register(&mut self, now: Instant, from: SocketAddr, username: &str) {
        let id = self.next_id;
        self.next_id += 1;
        let username: Arc<str> = username.into();
        self.clients.insert(
            from,
            Client {
                id,
                username: username.clone(),
                last_seen: now,
                failures: 0,
            },
        );
        self.order.push(from);
        self.timers
            .schedule(now + self.config.idle_timeout, (id, from));
        self.fan_out(
            Some(from),
            &notice_datagram(&Notice::Joined(username.to_string())),
        );
        self.outputs.push_back(Output::Event(Event::MemberJoined {
            room: "".into(),
            username,
        }));
    }

    /// Removes a client: `/exit` when `evicted` is `None`.
    fn unregister(&mut self, addr: SocketAddr, evicted: Option<EvictReason>) {
        let Some(client) = self.clients.remove(&addr) else {
            return;
        };
        self.order.retain(|a| *a != addr);
        let name = client.username.to_string();
        let (to_others, event) = match evicted {
            None => (
                Notice::Left(name),
                Event::MemberLeft {
                    room: "".into(),
                    username: client.username,
                },
            ),
            Some(reason) => {
                self.stats.evictions += 1;
                let notice = notice_datagram(&Notice::Disconnected(reason.to_string()));
                self.send(addr, notice);
                (
                    Notice::WasDisconnected(name),
                    Event::MemberEvicted {
                        room: "".into(),
                        username: client.username,
                        reason,
                    },
                )
            }
        };
        self.fan_out(None, &notice_datagram(&to_others));
        self.outputs.push_back(Output::Event(event));
    }

    fn fan_out(&mut self, skip: Option<SocketAddr>, payload: &Bytes) {
        for i in 0..self.order.len() {
            let to = self.order[i];
            if Some(to) != skip {
                self.send(to, payload.clone());
            }
        }
    }

    fn send(&mut self, to: SocketAddr, payload: Bytes) {
        self.stats.datagrams_sent += 1;
        self.outputs.push_back(Output::Datagram { to, payload });
    }

    fn drop_datagram(&mut self, from: SocketAddr, reason: DropReason) {
        self.stats.dropped[reason.index()] += 1;
        self.outputs
            .push_back(Output::Event(Event::DatagramDropped { from, reason }));
    }
}

/// Splits and checks a client datagram.
fn parse(data: &[u8]) -> Result<(&str, &str), DropReason> {
    let datagram = RelayDatagram::decode(data)?;
    let RelayDatagram::Message { username, message } = datagram else {
        return Err(DropReason::BadUsername);
    };
    let username = names::username(username).map_err(|_| DropReason::BadUsername)?;
    let message = std::str::from_utf8(message).map_err(|_| DropReason::NotUtf8)?;
    Ok((username, message))
}

/// A notice in relay framing: a zero length byte, then the body.
pub fn notice_datagram(notice: &Notice) -> Bytes {
    let body = notice.body();
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(0);
    out.extend_from_slice(body.as_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
