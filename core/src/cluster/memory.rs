//! [`MemoryRegistry`]: the registry of [`super::registry`] in memory, with leases that
//! expire on a clock passed in. It is the reference the Redis scripts of `ocm-cluster`
//! implement, and what the tests and the simulator run nodes against.
//!
//! ```
//! use ocm_core::cluster::memory::MemoryRegistry;
//! use ocm_core::cluster::registry::{RegistryAnswer, RegistryRequest};
//! use ocm_core::cluster::{Claim, Epoch, NodeId};
//! use std::time::{Duration, Instant};
//!
//! let mut registry = MemoryRegistry::default();
//! let now = Instant::now();
//! let claim = Claim { node: NodeId::new("a").unwrap(), epoch: Epoch(1) };
//! let create = RegistryRequest::Create {
//!     room: "lobby".into(), claim: claim.clone(), lease: Duration::from_secs(10),
//!     record: Default::default(), host: "alice".into(),
//! };
//! assert_eq!(registry.execute(now, &create), RegistryAnswer::Created);
//! assert_eq!(registry.execute(now, &create), RegistryAnswer::Exists(claim));
//! ```

use super::registry::{LeaseState, RegistryAnswer, RegistryRequest};
use super::{Claim, NodeId};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
struct Entry {
    claim: Claim,
    expires: Instant,
    record: Bytes,
    members: BTreeMap<Arc<str>, NodeId>,
}

/// Rooms, their members and the nodes' leases.
#[derive(Clone, Debug, Default)]
pub struct MemoryRegistry {
    rooms: BTreeMap<Arc<str>, Entry>,
    nodes: BTreeMap<NodeId, Instant>,
}

impl MemoryRegistry {
    /// Forgets everything, as a Redis restarted without persistence does.
    pub fn lose_data(&mut self) {
        self.rooms.clear();
        self.nodes.clear();
    }

    /// Who holds `room` at `now`.
    pub fn holder(&mut self, now: Instant, room: &str) -> Option<Claim> {
        self.live(now, room).map(|e| e.claim.clone())
    }

    /// The members of `room` at `now`, with their nodes.
    pub fn members(&mut self, now: Instant, room: &str) -> Vec<(Arc<str>, NodeId)> {
        self.live(now, room)
            .map(|e| {
                e.members
                    .iter()
                    .map(|(u, n)| (u.clone(), n.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn live(&mut self, now: Instant, room: &str) -> Option<&mut Entry> {
        if self.rooms.get(room).is_some_and(|e| e.expires <= now) {
            self.rooms.remove(room);
        }
        self.rooms.get_mut(room)
    }

    fn held_by(&mut self, now: Instant, room: &str, claim: &Claim) -> Option<&mut Entry> {
        self.live(now, room).filter(|e| e.claim == *claim)
    }

    fn node_alive(nodes: &BTreeMap<NodeId, Instant>, now: Instant, node: &NodeId) -> bool {
        nodes.get(node).is_some_and(|until| *until > now)
    }

    /// Carries out one request at `now`, atomically.
    pub fn execute(&mut self, now: Instant, request: &RegistryRequest) -> RegistryAnswer {
        match request {
            RegistryRequest::Create {
                room,
                claim,
                lease,
                record,
                host,
            } => {
                if let Some(e) = self.live(now, room) {
                    return RegistryAnswer::Exists(e.claim.clone());
                }
                let entry = Entry {
                    claim: claim.clone(),
                    expires: now + *lease,
                    record: record.clone(),
                    members: BTreeMap::from([(host.clone(), claim.node.clone())]),
                };
                self.rooms.insert(room.clone(), entry);
                RegistryAnswer::Created
            }
            RegistryRequest::Lookup { room } => match self.live(now, room) {
                Some(e) => RegistryAnswer::Found {
                    claim: e.claim.clone(),
                    record: e.record.clone(),
                },
                None => RegistryAnswer::NotFound,
            },
            RegistryRequest::Join {
                room,
                claim,
                node,
                username,
                max_members,
            } => {
                let nodes = self.nodes.clone();
                let alive = |n: &NodeId| n == node || Self::node_alive(&nodes, now, n);
                let Some(e) = self.held_by(now, room, claim) else {
                    return RegistryAnswer::RoomGone;
                };
                if let Some(holder) = e.members.get(username) {
                    if alive(holder) {
                        return RegistryAnswer::UsernameTaken;
                    }
                    e.members.remove(username);
                }
                if e.members.len() >= *max_members {
                    e.members.retain(|_, n| alive(n));
                    if e.members.len() >= *max_members {
                        return RegistryAnswer::RoomFull;
                    }
                }
                e.members.insert(username.clone(), node.clone());
                RegistryAnswer::Joined
            }
            RegistryRequest::Leave {
                room,
                claim,
                node,
                username,
            } => {
                let Some(e) = self.held_by(now, room, claim) else {
                    return RegistryAnswer::Left(false);
                };
                let ours = e.members.get(username) == Some(node);
                if ours {
                    e.members.remove(username);
                }
                RegistryAnswer::Left(ours)
            }
            RegistryRequest::Release { room, claim } => {
                let held = self.held_by(now, room, claim).is_some();
                if held {
                    self.rooms.remove(room);
                }
                RegistryAnswer::Released(held)
            }
            RegistryRequest::Renew {
                node,
                lease,
                owned,
                mirrored,
            } => {
                let node_was_missing = !Self::node_alive(&self.nodes, now, node);
                self.nodes.insert(node.clone(), now + *lease);
                let owned = owned
                    .iter()
                    .map(|(room, claim)| match self.live(now, room) {
                        Some(e) if e.claim == *claim => {
                            e.expires = now + *lease;
                            LeaseState::Held
                        }
                        Some(_) => LeaseState::Lost,
                        None => LeaseState::Missing,
                    })
                    .collect();
                let mirrored = mirrored
                    .iter()
                    .map(|(room, claim)| self.held_by(now, room, claim).is_some())
                    .collect();
                RegistryAnswer::Renewed {
                    node_was_missing,
                    owned,
                    mirrored,
                }
            }
            RegistryRequest::Restore {
                room,
                claim,
                lease,
                record,
                node,
                usernames,
            } => {
                if let Some(record) = record {
                    if self.live(now, room).is_none() {
                        let entry = Entry {
                            claim: claim.clone(),
                            expires: now + *lease,
                            record: record.clone(),
                            members: BTreeMap::new(),
                        };
                        self.rooms.insert(room.clone(), entry);
                    }
                }
                let nodes = self.nodes.clone();
                let Some(e) = self.held_by(now, room, claim) else {
                    return RegistryAnswer::Restored {
                        held: false,
                        taken: Vec::new(),
                    };
                };
                let mut taken = Vec::new();
                for name in usernames {
                    match e.members.get(name) {
                        Some(h) if h != node && Self::node_alive(&nodes, now, h) => {
                            taken.push(name.clone())
                        }
                        _ => {
                            e.members.insert(name.clone(), node.clone());
                        }
                    }
                }
                RegistryAnswer::Restored { held: true, taken }
            }
        }
    }
}
