//! The cluster's safety rules, checked after every step of every node and on every
//! datagram a client receives. They look at the nodes from outside (their outputs and
//! public accessors) and at the simulated Redis, which knows when each room epoch was
//! held ([`super::registry::Held`]).
//!
//! | rule | checked |
//! |---|---|
//! | (a) at most one node hosts a name (after Redis lost its data: once the nodes had time to restore or fence) | after every step |
//! | (a) a room served anywhere is an epoch the registry holds, or held at most a lease ago (a mirror hears at its next renewal, or fences) | after every step |
//! | (b) datagrams only to the node's members; none after the room closed for, or evicted, that member | every node step; every client datagram |
//! | (b) a chat line only to members of the sender's room incarnation, and only from the node the receiver joined through | every client datagram |
//! | (c) a crashed host's rooms closed on every node within lease + lease/4 + lease/20 and the links' delays (lease + lease/2 when an outage or partition came in between), counted from the crash, or from the end of the partition it died behind if its connections held (its last renewal lands then) | after every step |
//! | (c) self-fencing: a node cut off from Redis, or all of them while Redis is down, serves no room half a lease (its clock) after it lost contact | after every step |
//! | (d) no duplicate: each line at most once per receiver | every client datagram |
//! | (e) each sender's lines in the order sent, per receiver | every client datagram |

use super::registry::Held;
use super::schedule::LEASE;
use super::world::{span, ClusterWorld};
use ocm_core::wire::MAX_DATAGRAM_LEN;
use ocm_core::{Event, Machine, Output, RoomServer};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What one session received: the lines seen, and the last number per sender.
#[derive(Clone, Debug, Default)]
pub struct Delivery {
    seen: BTreeSet<(usize, usize, u64)>,
    last: BTreeMap<(usize, usize), u64>,
}

/// A node's own rules after a cluster input: its invariants, and datagrams only to
/// addresses of its members (before the step, or learnt in it).
pub fn cluster_step(
    server: &RoomServer,
    before: &HashSet<SocketAddr>,
    outputs: &[Output],
) -> Result<(), String> {
    server.check_invariants().map_err(|e| e.to_string())?;
    let mut learnt = Vec::new();
    for output in outputs {
        match output {
            Output::Event(Event::MemberAddress { addr, .. }) => learnt.push(*addr),
            Output::Datagram { to, payload } => {
                if !before.contains(to) && !learnt.contains(to) {
                    return Err(format!(
                        "a cluster input made it send to {to}, not a member address"
                    ));
                }
                if payload.is_empty() || payload.len() > MAX_DATAGRAM_LEN {
                    return Err(format!("datagram of {} bytes to {to}", payload.len()));
                }
            }
            _ => {}
        }
    }
    let counts = server.counts();
    if counts.connections + counts.members > 0 && server.poll_timeout().is_none() {
        return Err("live entries without a deadline".into());
    }
    Ok(())
}

/// `m{actor}.{session}.{n}` at the end of a relayed line.
fn line_id(payload: &[u8]) -> Option<(usize, usize, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (_, body) = text.rsplit_once(": m")?;
    let mut parts = body.split('.');
    let id = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    parts.next().is_none().then_some(id)
}

/// A datagram from node `from` reached session `key`: rules (b), (d), (e).
pub fn delivery(
    world: &mut ClusterWorld,
    key: (usize, usize),
    from: usize,
    payload: &[u8],
) -> Result<(), String> {
    let Some(receiver) = world.sessions.get(&key).cloned() else {
        return Ok(()); // its token has not reached it yet: nothing was owed
    };
    if receiver.node != from {
        return Err(format!(
            "actor {} (on node {}) got {:?} from node {from}",
            key.0,
            receiver.node,
            String::from_utf8_lossy(payload)
        ));
    }
    if payload.starts_with(b"* ") {
        return Ok(());
    }
    let Some((a, l, n)) = line_id(payload) else {
        return Err(format!(
            "actor {} got a chat line nobody sent: {:?}",
            key.0,
            String::from_utf8_lossy(payload)
        ));
    };
    let Some(sender) = world.sessions.get(&(a, l)).cloned() else {
        return Err(format!("line from unknown session ({a}, {l})"));
    };
    if sender.epoch != receiver.epoch || sender.room != receiver.room {
        return Err(format!(
            "actor {} in {} (epoch {}) got {:?}, sent in {} (epoch {})",
            key.0,
            receiver.room,
            receiver.epoch,
            String::from_utf8_lossy(payload),
            sender.room,
            sender.epoch
        ));
    }
    if sender.node == receiver.node {
        world.coverage.local_deliveries += 1;
    } else {
        world.coverage.cross_node_deliveries += 1;
    }
    let d = world.deliveries.entry(key).or_default();
    if !d.seen.insert((a, l, n)) {
        return Err(format!(
            "actor {} got line {n} of session ({a}, {l}) twice",
            key.0
        ));
    }
    let last = d.last.entry((a, l)).or_default();
    if n <= *last {
        return Err(format!(
            "actor {} got line {n} of session ({a}, {l}) after line {last}",
            key.0
        ));
    }
    *last = n;
    Ok(())
}

/// Rules (a) and (c), over every live node, at the world's time.
pub fn cluster(world: &mut ClusterWorld) -> Result<(), String> {
    let now = world.now();
    let slowest = world.slowest_rate();
    let delay = world.bus.profile_max_delay();
    let slack = delay * 4 + Duration::from_millis(100);
    let mut hosts: BTreeMap<Arc<str>, usize> = BTreeMap::new();
    for i in 0..world.nodes.len() {
        let Some(server) = world.nodes[i].server.as_ref() else {
            continue;
        };
        let rooms: Vec<(Arc<str>, ocm_core::cluster::Claim, bool)> = server
            .room_names()
            .into_iter()
            .filter_map(|r| server.room_claim(&r).map(|(c, owned)| (r, c, owned)))
            .collect();
        // (c) self-fencing.
        let node = &world.nodes[i];
        let lost_contact = [node.cut_since, world.down_since]
            .into_iter()
            .flatten()
            .min();
        if let Some(since) = lost_contact {
            let fence = since + node.span(LEASE / 2) + Duration::from_millis(10);
            if now >= fence && !rooms.is_empty() {
                return Err(format!(
                    "node {i} lost Redis at {since:?} and still serves {:?} at {now:?} (fence due by {fence:?})",
                    rooms.iter().map(|r| &r.0).collect::<Vec<_>>()
                ));
            }
        }
        for (room, claim, owned) in rooms {
            // (a) one host per name.
            if owned {
                if let Some(other) = hosts.insert(room.clone(), i) {
                    if now >= world.loss_grace_until {
                        return Err(format!("{room} is hosted on nodes {other} and {i}"));
                    }
                    world.coverage.double_hosts_in_grace += 1;
                }
            }
            // (a) only an epoch the registry holds, or held a lease ago at most.
            match world.bus.registry.held(now, claim.epoch) {
                Held::Yes => {}
                Held::Never => {
                    return Err(format!(
                        "node {i} serves {room} as {claim}, which the registry never held"
                    ))
                }
                Held::Ended(at) => {
                    world.coverage.stale_epochs_seen += 1;
                    if now > at + span(LEASE, slowest) + slack {
                        return Err(format!(
                            "node {i} still serves {room} as {claim} at {now:?}; the registry stopped holding it at {at:?}"
                        ));
                    }
                }
            }
            // (c) a crashed host's rooms close everywhere.
            for crash in &world.crashes {
                if !crash.epochs.contains(&claim.epoch) {
                    continue;
                }
                let node = &world.nodes[i];
                let disturbed = world.down_since.is_some()
                    || world.down_ended.is_some_and(|t| t >= crash.at)
                    || node.cut_since.is_some()
                    || node.cut_ended.is_some_and(|t| t >= crash.at);
                let learn = if disturbed {
                    LEASE
                } else {
                    LEASE / 4 + LEASE / 20
                };
                let bound = crash.flushed + delay + LEASE + span(learn, slowest) + slack;
                if now > bound {
                    return Err(format!(
                        "node {i} still serves {room} ({claim}) of node {} crashed at {:?}; due closed by {bound:?}",
                        crash.node, crash.at
                    ));
                }
            }
        }
    }
    Ok(())
}
