//! The simulated Redis process and the links to it: the registry ([`Registry`]) and
//! pub/sub, with delays, loss, duplication, partitions of single nodes, node crashes and
//! Redis outages, all in simulated time and all drawn from the run's generator.
//!
//! Each node has, as `ocm-cluster` does, a registry connection (requests executed in
//! the order sent, answers back in order), a publisher connection (envelopes in order)
//! and a subscriber connection (Redis delivers what it fans out to one subscriber in
//! publish order). Every link is FIFO with a delay drawn between the profile's bounds.
//!
//! - **Loss and duplication** apply to pub/sub only (a publish dropped on the way, a
//!   fan-out delivered twice); the registry links are reliable while they are up.
//! - **Partition** of a node: nothing passes between it and Redis either way. Either
//!   the connections break (requests and answers in flight are black-holed, the node's
//!   own timers must cope, and Redis forgets its subscriptions; when it heals, the
//!   subscriber reconnects after up to a second, like the real one's PING interval,
//!   and subscribes the latest set), or they *hold* (TCP retransmits: everything in
//!   flight either way waits and arrives, in order, when the partition heals, so late
//!   answers, late requests and old envelopes reach a node that has moved on).
//! - **Outage** (Redis down): requests that reach it are answered `Down` at once;
//!   publishes are lost; every subscription is dropped and comes back after it. With
//!   `lose_data`, Redis restarts empty (no persistence).
//! - **Crash** of a node: it stops; what is in flight to it is lost; requests it had
//!   sent still run (their bytes were on the wire). A restarted node is a new
//!   generation: nothing meant for the old one reaches it.

use super::registry::Registry;
use crate::net::{below, chance};
use bytes::Bytes;
use ocm_core::cluster::node::{ClusterInput, ClusterOutput};
use ocm_core::cluster::registry::{RegistryAnswer, RegistryRequest, RequestId, Unavailable};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How the links to Redis behave. Probabilities are per mille.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusProfile {
    /// Shortest one-way delay, ms.
    pub min_delay_ms: u16,
    /// Longest one-way delay, ms.
    pub max_delay_ms: u16,
    /// A publish lost on the way to Redis, or a fan-out lost on the way to a node.
    pub loss: u16,
    /// A fan-out delivered twice.
    pub duplicate: u16,
}

impl BusProfile {
    /// 1 ms links, nothing lost.
    pub fn perfect() -> BusProfile {
        BusProfile {
            min_delay_ms: 1,
            max_delay_ms: 1,
            loss: 0,
            duplicate: 0,
        }
    }

    /// The longest one-way delay.
    pub fn max_delay(&self) -> Duration {
        Duration::from_millis(u64::from(self.max_delay_ms.max(self.min_delay_ms)))
    }
}

#[derive(Clone, Debug)]
enum Flight {
    Request(usize, u32, RequestId, RegistryRequest),
    Answer(usize, u32, RequestId, Result<RegistryAnswer, Unavailable>),
    Publish(usize, Arc<str>, Bytes),
    Message(usize, u32, Bytes),
    Subscribe(usize, u32, Vec<Arc<str>>),
    Resubscribe(usize, u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Link {
    RequestUp(usize),
    AnswerDown(usize),
    PublishUp(usize),
    SubscriberUp(usize),
    SubscriberDown(usize),
}

/// What the links and Redis did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Registry requests executed.
    pub executed: u64,
    /// Requests or answers black-holed by a partition.
    pub black_holed: u64,
    /// Requests answered `Down` (Redis was down).
    pub answered_down: u64,
    /// Publishes that reached Redis.
    pub published: u64,
    /// Flights held by a partition whose connections hold, delivered when it healed.
    pub held: u64,
    /// Publishes or fan-outs lost (faults, partitions, outages, crashes).
    pub lost: u64,
    /// Fan-outs delivered twice.
    pub duplicated: u64,
    /// Fan-outs handed to a node.
    pub delivered: u64,
    /// Subscriptions restored after a partition or an outage.
    pub resubscribed: u64,
}

/// Redis and the links to it.
#[derive(Debug)]
pub struct Bus {
    profile: BusProfile,
    /// The registry inside Redis.
    pub registry: Registry,
    queue: BTreeMap<(Duration, u64), Flight>,
    seq: u64,
    last: BTreeMap<Link, Duration>,
    generation: Vec<u32>,
    alive: Vec<bool>,
    cut_until: Vec<Duration>,
    hold: Vec<bool>,
    down_until: Duration,
    wanted: Vec<Vec<Arc<str>>>,
    subscribed: Vec<BTreeSet<Arc<str>>>,
    /// What happened.
    pub stats: BusStats,
}

impl Bus {
    /// Redis up and empty, `nodes` nodes alive (generation 0), nothing subscribed.
    pub fn new(profile: BusProfile, nodes: usize) -> Bus {
        Bus {
            profile,
            registry: Registry::default(),
            queue: BTreeMap::new(),
            seq: 0,
            last: BTreeMap::new(),
            generation: vec![0; nodes],
            alive: vec![true; nodes],
            cut_until: vec![Duration::ZERO; nodes],
            hold: vec![false; nodes],
            down_until: Duration::ZERO,
            wanted: vec![Vec::new(); nodes],
            subscribed: vec![BTreeSet::new(); nodes],
            stats: BusStats::default(),
        }
    }

    /// The longest one-way delay of the links.
    pub fn profile_max_delay(&self) -> Duration {
        self.profile.max_delay()
    }

    /// True while Redis is down.
    pub fn is_down(&self, now: Duration) -> bool {
        now < self.down_until
    }

    /// True while `node` is cut off from Redis.
    pub fn is_cut(&self, node: usize, now: Duration) -> bool {
        now < self.cut_until[node]
    }

    /// The rooms Redis delivers to `node` now.
    pub fn subscriptions(&self, node: usize) -> &BTreeSet<Arc<str>> {
        &self.subscribed[node]
    }

    fn push(&mut self, rng: &mut ChaCha20Rng, now: Duration, link: Link, flight: Flight) {
        let (lo, hi) = (
            u64::from(self.profile.min_delay_ms),
            u64::from(self.profile.max_delay_ms.max(self.profile.min_delay_ms)),
        );
        let delay = Duration::from_micros(1_000 * lo + below(rng, 1_000 * (hi - lo) + 1));
        let last = self.last.entry(link).or_default();
        let at = (now + delay).max(*last);
        *last = at;
        self.seq += 1;
        self.queue.insert((at, self.seq), flight);
    }

    /// A node's cluster output, at `now`.
    pub fn send(
        &mut self,
        rng: &mut ChaCha20Rng,
        now: Duration,
        node: usize,
        output: ClusterOutput,
    ) {
        let generation = self.generation[node];
        if let ClusterOutput::Subscribe { rooms } = &output {
            self.wanted[node] = rooms.clone();
        }
        let held = self.is_cut(node, now) && self.hold[node];
        if self.is_cut(node, now) && !held {
            self.stats.black_holed += u64::from(matches!(output, ClusterOutput::Registry { .. }));
            self.stats.lost += u64::from(matches!(output, ClusterOutput::Publish { .. }));
            return;
        }
        let (link, flight) = match output {
            ClusterOutput::Registry { id, request } => (
                Link::RequestUp(node),
                Flight::Request(node, generation, id, *request),
            ),
            ClusterOutput::Publish { room, payload } => {
                if chance(rng, self.profile.loss) {
                    self.stats.lost += 1;
                    return;
                }
                (Link::PublishUp(node), Flight::Publish(node, room, payload))
            }
            ClusterOutput::Subscribe { rooms } => (
                Link::SubscriberUp(node),
                Flight::Subscribe(node, generation, rooms),
            ),
        };
        self.stats.held += u64::from(held);
        let from = if held { self.cut_until[node] } else { now };
        self.push(rng, from, link, flight);
    }

    /// Cuts `node` off Redis until `until`; with `hold` its connections survive and
    /// what is in flight waits for the end instead of being lost.
    pub fn partition(&mut self, rng: &mut ChaCha20Rng, node: usize, until: Duration, hold: bool) {
        self.cut_until[node] = self.cut_until[node].max(until);
        self.hold[node] = hold;
        if !hold {
            self.subscribed[node].clear();
            let at = self.cut_until[node];
            let generation = self.generation[node];
            self.reconnect_later(rng, at, node, generation);
        }
    }

    /// A flight landed while its node is cut off and the connections hold: it lands
    /// again when the partition ends, after anything that landed before it (the links
    /// stay FIFO: whatever was sent later lands after the end, or is held too).
    fn hold_back(&mut self, node: usize, flight: Flight) {
        self.stats.held += 1;
        self.seq += 1;
        self.queue.insert((self.cut_until[node], self.seq), flight);
    }

    fn holds(&self, node: usize, at: Duration) -> bool {
        self.is_cut(node, at) && self.hold[node]
    }

    /// Redis is down until `until`; with `lose_data` it comes back empty.
    pub fn outage(
        &mut self,
        rng: &mut ChaCha20Rng,
        now: Duration,
        until: Duration,
        lose_data: bool,
    ) {
        self.down_until = self.down_until.max(until);
        if lose_data {
            self.registry.lose_data(now);
        }
        let at = self.down_until;
        for node in 0..self.subscribed.len() {
            self.subscribed[node].clear();
            let generation = self.generation[node];
            self.reconnect_later(rng, at, node, generation);
        }
    }

    fn reconnect_later(
        &mut self,
        rng: &mut ChaCha20Rng,
        at: Duration,
        node: usize,
        generation: u32,
    ) {
        let at = at + Duration::from_millis(below(rng, 1_000));
        self.seq += 1;
        self.queue
            .insert((at, self.seq), Flight::Resubscribe(node, generation));
    }

    /// By when everything `node` has sent until `now` has left it: now, or the end of
    /// a partition whose connections hold (the kernel still delivers what a killed
    /// process had written once the route is back).
    pub fn flushed_by(&self, node: usize, now: Duration) -> Duration {
        if self.holds(node, now) {
            self.cut_until[node]
        } else {
            now
        }
    }

    /// `node` crashed: nothing reaches it any more, Redis drops its connections.
    pub fn crash(&mut self, node: usize) {
        self.alive[node] = false;
        self.subscribed[node].clear();
        self.wanted[node].clear();
    }

    /// `node` starts again, as a new generation.
    pub fn restart(&mut self, node: usize) {
        self.alive[node] = true;
        self.generation[node] += 1;
    }

    /// When the next flight lands.
    pub fn next_due(&self) -> Option<Duration> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    fn current(&self, node: usize, generation: u32) -> bool {
        self.alive[node] && self.generation[node] == generation
    }

    /// The next input for a node due at or before `now`, after carrying out whatever
    /// lands in Redis on the way.
    pub fn pop_due(
        &mut self,
        rng: &mut ChaCha20Rng,
        now: Duration,
    ) -> Option<(usize, ClusterInput)> {
        loop {
            let (&key, _) = self.queue.iter().next().filter(|((at, _), _)| *at <= now)?;
            let flight = self.queue.remove(&key).expect("key just seen");
            let at = key.0;
            match flight {
                Flight::Request(node, generation, id, request) => {
                    if self.holds(node, at) {
                        self.hold_back(node, Flight::Request(node, generation, id, request));
                        continue;
                    }
                    if self.is_cut(node, at) {
                        self.stats.black_holed += 1;
                        continue;
                    }
                    let answer = if self.is_down(at) {
                        self.stats.answered_down += 1;
                        Err(Unavailable::Down)
                    } else {
                        self.stats.executed += 1;
                        Ok(self.registry.execute(at, &request))
                    };
                    let flight = Flight::Answer(node, generation, id, answer);
                    self.push(rng, at, Link::AnswerDown(node), flight);
                }
                Flight::Answer(node, generation, id, answer) => {
                    if !self.current(node, generation) {
                        continue;
                    }
                    if self.holds(node, at) {
                        self.hold_back(node, Flight::Answer(node, generation, id, answer));
                        continue;
                    }
                    if self.is_cut(node, at) {
                        self.stats.black_holed += 1;
                        continue;
                    }
                    return Some((node, ClusterInput::Answer { id, answer }));
                }
                Flight::Publish(node, room, payload) => {
                    if self.holds(node, at) {
                        self.hold_back(node, Flight::Publish(node, room, payload));
                        continue;
                    }
                    if self.is_cut(node, at) || self.is_down(at) {
                        self.stats.lost += 1;
                        continue;
                    }
                    self.stats.published += 1;
                    for to in 0..self.subscribed.len() {
                        if !self.subscribed[to].contains(&room) {
                            continue;
                        }
                        if chance(rng, self.profile.loss) {
                            self.stats.lost += 1;
                            continue;
                        }
                        let copies = if chance(rng, self.profile.duplicate) {
                            2
                        } else {
                            1
                        };
                        self.stats.duplicated += copies - 1;
                        for _ in 0..copies {
                            let flight = Flight::Message(to, self.generation[to], payload.clone());
                            self.push(rng, at, Link::SubscriberDown(to), flight);
                        }
                    }
                }
                Flight::Message(node, generation, payload) => {
                    if self.current(node, generation) && self.holds(node, at) {
                        self.hold_back(node, Flight::Message(node, generation, payload));
                        continue;
                    }
                    if !self.current(node, generation) || self.is_cut(node, at) {
                        self.stats.lost += 1;
                        continue;
                    }
                    self.stats.delivered += 1;
                    return Some((node, ClusterInput::Message { payload }));
                }
                Flight::Subscribe(node, generation, rooms) => {
                    if self.current(node, generation) && self.holds(node, at) {
                        self.hold_back(node, Flight::Subscribe(node, generation, rooms));
                        continue;
                    }
                    if self.current(node, generation) && !self.is_cut(node, at) && !self.is_down(at)
                    {
                        self.subscribed[node] = rooms.into_iter().collect();
                    }
                }
                Flight::Resubscribe(node, generation) => {
                    if self.current(node, generation) && !self.is_cut(node, at) && !self.is_down(at)
                    {
                        self.stats.resubscribed += 1;
                        self.subscribed[node] = self.wanted[node].iter().cloned().collect();
                    }
                }
            }
        }
    }
}
