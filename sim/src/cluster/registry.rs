//! The simulated registry: a tiny Redis (strings and hashes, each key with an optional
//! expiry in simulated milliseconds) running `ocm-cluster`'s Lua scripts, translated
//! one by one (`io-cluster/src/redis/scripts.rs`). It is written from the scripts, not
//! from core's `MemoryRegistry`, so the simulator checks the nodes against what Redis
//! does: three keys per room (lease, record, members) that expire separately, a hash
//! that vanishes with its last field, `SET NX PX`, `PEXPIRE`, lazy expiry.
//!
//! Besides the keys it keeps the life of every claim it ever held ([`Lives`]): when a
//! room epoch was taken and when the registry stopped holding it (expired, released,
//! lost with the data), which is the ground truth the cluster invariants need.
//!
//! ```
//! use ocm_sim::cluster::registry::{Registry, Held};
//! use ocm_core::cluster::registry::{RegistryAnswer, RegistryRequest};
//! use ocm_core::cluster::{Claim, Epoch, NodeId};
//! use std::time::Duration;
//!
//! let mut redis = Registry::default();
//! let claim = Claim { node: NodeId::new("a").unwrap(), epoch: Epoch(1) };
//! let create = RegistryRequest::Create {
//!     room: "lobby".into(), claim: claim.clone(), lease: Duration::from_secs(4),
//!     record: bytes::Bytes::from_static(&[1]), host: "ann".into(),
//! };
//! assert_eq!(redis.execute(Duration::ZERO, &create), RegistryAnswer::Created);
//! assert_eq!(redis.held(Duration::from_secs(4), Epoch(1)), Held::Yes);
//! assert_eq!(redis.held(Duration::from_millis(4_001), Epoch(1)), Held::Ended(Duration::from_secs(4)));
//! ```

use bytes::Bytes;
use ocm_core::cluster::registry::{LeaseState, RegistryAnswer, RegistryRequest};
use ocm_core::cluster::{Claim, Epoch};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Data {
    Str(Vec<u8>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
}

#[derive(Clone, Debug)]
struct Value {
    data: Data,
    /// Expires once the time (ms) is past this.
    expires: Option<u64>,
}

/// Whether the registry holds a room epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Its lease key holds its claim now.
    Yes,
    /// It did, until this time.
    Ended(Duration),
    /// Never.
    Never,
}

/// The life of each claim: held now (`None`) or ended at a time.
pub type Lives = BTreeMap<Epoch, Option<Duration>>;

/// Keys, values, expiries, and the life of every claim.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    keys: BTreeMap<String, Value>,
    lives: Lives,
    /// Requests executed.
    pub executed: u64,
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn lease_key(room: &str) -> String {
    format!("ocm:room:{room}")
}
fn record_key(room: &str) -> String {
    format!("ocm:record:{room}")
}
fn members_key(room: &str) -> String {
    format!("ocm:members:{room}")
}
const NODE_PREFIX: &str = "ocm:node:";

impl Registry {
    /// Forgets everything, as a Redis restarted without persistence does.
    pub fn lose_data(&mut self, now: Duration) {
        self.expire(now);
        self.keys.clear();
        for end in self.lives.values_mut() {
            end.get_or_insert(now);
        }
    }

    /// Whether `epoch` is held at `now`.
    pub fn held(&mut self, now: Duration, epoch: Epoch) -> Held {
        self.expire(now);
        match self.lives.get(&epoch) {
            None => Held::Never,
            Some(None) => Held::Yes,
            Some(Some(at)) => Held::Ended(*at),
        }
    }

    /// Who holds `room` at `now`.
    pub fn holder(&mut self, now: Duration, room: &str) -> Option<Claim> {
        self.expire(now);
        self.get(&lease_key(room)).and_then(|v| Claim::parse(&v))
    }

    /// Drops every key whose time is past, recording when leases ended.
    fn expire(&mut self, now: Duration) {
        let now_ms = ms(now);
        let dead: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, v)| v.expires.is_some_and(|at| now_ms > at))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            let value = self.keys.remove(&key).expect("listed");
            if key.starts_with("ocm:room:") {
                if let (Data::Str(claim), Some(at)) = (&value.data, value.expires) {
                    self.ended(claim, Duration::from_millis(at));
                }
            }
        }
    }

    fn ended(&mut self, claim: &[u8], at: Duration) {
        if let Some(claim) = Claim::parse(claim) {
            if let Some(end) = self.lives.get_mut(&claim.epoch) {
                end.get_or_insert(at);
            }
        }
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        match self.keys.get(key) {
            Some(Value {
                data: Data::Str(s), ..
            }) => Some(s.clone()),
            _ => None,
        }
    }

    fn exists(&self, key: &str) -> bool {
        self.keys.contains_key(key)
    }

    /// `SET key value [NX] PX ms`; false if NX and the key exists.
    fn set(&mut self, now: Duration, key: &str, value: &[u8], nx: bool, px: u64) -> bool {
        if nx && self.exists(key) {
            return false;
        }
        if key.starts_with("ocm:room:") {
            if let Some(old) = self.get(key) {
                self.ended(&old, now);
            }
            if let Some(claim) = Claim::parse(value) {
                self.lives.insert(claim.epoch, None);
            }
        }
        let expires = Some(ms(now) + px);
        self.keys.insert(
            key.to_owned(),
            Value {
                data: Data::Str(value.to_vec()),
                expires,
            },
        );
        true
    }

    fn del(&mut self, now: Duration, key: &str) {
        if key.starts_with("ocm:room:") {
            if let Some(old) = self.get(key) {
                self.ended(&old, now);
            }
        }
        self.keys.remove(key);
    }

    fn pexpire(&mut self, now: Duration, key: &str, px: u64) {
        if let Some(v) = self.keys.get_mut(key) {
            v.expires = Some(ms(now) + px);
        }
    }

    fn hash(&self, key: &str) -> Option<&BTreeMap<Vec<u8>, Vec<u8>>> {
        match self.keys.get(key) {
            Some(Value {
                data: Data::Hash(h),
                ..
            }) => Some(h),
            _ => None,
        }
    }

    fn hget(&self, key: &str, field: &[u8]) -> Option<Vec<u8>> {
        self.hash(key)?.get(field).cloned()
    }

    fn hlen(&self, key: &str) -> usize {
        self.hash(key).map_or(0, BTreeMap::len)
    }

    /// `HSET`: creates the hash (with no expiry) if it is missing.
    fn hset(&mut self, key: &str, field: &[u8], value: &[u8]) {
        let entry = self.keys.entry(key.to_owned()).or_insert(Value {
            data: Data::Hash(BTreeMap::new()),
            expires: None,
        });
        if let Data::Hash(h) = &mut entry.data {
            h.insert(field.to_vec(), value.to_vec());
        }
    }

    /// `HDEL`: a hash left empty is deleted, as Redis does.
    fn hdel(&mut self, key: &str, field: &[u8]) -> bool {
        let Some(Value {
            data: Data::Hash(h),
            ..
        }) = self.keys.get_mut(key)
        else {
            return false;
        };
        let removed = h.remove(field).is_some();
        if h.is_empty() {
            self.keys.remove(key);
        }
        removed
    }

    fn pttl(&self, now: Duration, key: &str) -> i64 {
        match self.keys.get(key) {
            None => -2,
            Some(Value { expires: None, .. }) => -1,
            Some(Value {
                expires: Some(at), ..
            }) => *at as i64 - ms(now) as i64,
        }
    }

    fn node_alive(&self, node: &[u8], this: &[u8]) -> bool {
        node == this || self.exists(&format!("{NODE_PREFIX}{}", String::from_utf8_lossy(node)))
    }

    /// Runs one request at `now`, atomically (a script runs alone in Redis).
    pub fn execute(&mut self, now: Duration, request: &RegistryRequest) -> RegistryAnswer {
        self.expire(now);
        self.executed += 1;
        match request {
            RegistryRequest::Create {
                room,
                claim,
                lease,
                record,
                host,
            } => {
                let (lk, rk, mk) = (lease_key(room), record_key(room), members_key(room));
                let value = claim.to_value();
                if !self.set(now, &lk, value.as_bytes(), true, ms(*lease)) {
                    let holder = self.get(&lk).and_then(|v| Claim::parse(&v));
                    return RegistryAnswer::Exists(holder.expect("ocm writes claims"));
                }
                self.del(now, &mk);
                self.set(now, &rk, record, false, ms(*lease));
                self.hset(&mk, host.as_bytes(), claim.node.as_str().as_bytes());
                self.pexpire(now, &mk, ms(*lease));
                RegistryAnswer::Created
            }
            RegistryRequest::Lookup { room } => match self.get(&lease_key(room)) {
                None => RegistryAnswer::NotFound,
                Some(claim) => RegistryAnswer::Found {
                    claim: Claim::parse(&claim).expect("ocm writes claims"),
                    record: Bytes::from(self.get(&record_key(room)).unwrap_or_default()),
                },
            },
            RegistryRequest::Join {
                room,
                claim,
                node,
                username,
                max_members,
            } => {
                let (lk, mk) = (lease_key(room), members_key(room));
                if self.get(&lk) != Some(claim.to_value().into_bytes()) {
                    return RegistryAnswer::RoomGone;
                }
                let this = node.as_str().as_bytes();
                if let Some(holder) = self.hget(&mk, username.as_bytes()) {
                    if self.node_alive(&holder, this) {
                        return RegistryAnswer::UsernameTaken;
                    }
                    self.hdel(&mk, username.as_bytes());
                }
                if self.hlen(&mk) >= *max_members {
                    let fields: Vec<(Vec<u8>, Vec<u8>)> = self
                        .hash(&mk)
                        .map(|h| h.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    for (name, holder) in fields {
                        if !self.node_alive(&holder, this) {
                            self.hdel(&mk, &name);
                        }
                    }
                    if self.hlen(&mk) >= *max_members {
                        return RegistryAnswer::RoomFull;
                    }
                }
                self.hset(&mk, username.as_bytes(), this);
                RegistryAnswer::Joined
            }
            RegistryRequest::Leave {
                room,
                claim,
                node,
                username,
            } => {
                let (lk, mk) = (lease_key(room), members_key(room));
                let ours = self.get(&lk) == Some(claim.to_value().into_bytes())
                    && self.hget(&mk, username.as_bytes())
                        == Some(node.as_str().as_bytes().to_vec());
                RegistryAnswer::Left(ours && self.hdel(&mk, username.as_bytes()))
            }
            RegistryRequest::Release { room, claim } => {
                let lk = lease_key(room);
                if self.get(&lk) != Some(claim.to_value().into_bytes()) {
                    return RegistryAnswer::Released(false);
                }
                self.del(now, &lk);
                self.del(now, &record_key(room));
                self.del(now, &members_key(room));
                RegistryAnswer::Released(true)
            }
            RegistryRequest::Renew {
                node,
                lease,
                owned,
                mirrored,
            } => {
                let nk = format!("{NODE_PREFIX}{node}");
                let existed = self.exists(&nk);
                self.set(now, &nk, node.as_str().as_bytes(), false, ms(*lease));
                let owned = owned
                    .iter()
                    .map(|(room, claim)| {
                        let lk = lease_key(room);
                        match self.get(&lk) {
                            Some(v) if v == claim.to_value().into_bytes() => {
                                for key in [lk, record_key(room), members_key(room)] {
                                    self.pexpire(now, &key, ms(*lease));
                                }
                                LeaseState::Held
                            }
                            Some(_) => LeaseState::Lost,
                            None => LeaseState::Missing,
                        }
                    })
                    .collect();
                let mirrored = mirrored
                    .iter()
                    .map(|(room, claim)| {
                        self.get(&lease_key(room)) == Some(claim.to_value().into_bytes())
                    })
                    .collect();
                RegistryAnswer::Renewed {
                    node_was_missing: !existed,
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
                let (lk, rk, mk) = (lease_key(room), record_key(room), members_key(room));
                let value = claim.to_value().into_bytes();
                if let Some(record) = record {
                    if self.set(now, &lk, &value, true, ms(*lease)) {
                        self.set(now, &rk, record, false, ms(*lease));
                    }
                }
                if self.get(&lk) != Some(value) {
                    return RegistryAnswer::Restored {
                        held: false,
                        taken: Vec::new(),
                    };
                }
                let this = node.as_str().as_bytes();
                let mut taken: Vec<Arc<str>> = Vec::new();
                for name in usernames {
                    match self.hget(&mk, name.as_bytes()) {
                        Some(holder) if holder != this && self.node_alive(&holder, b"") => {
                            taken.push(name.clone())
                        }
                        _ => self.hset(&mk, name.as_bytes(), this),
                    }
                }
                let ttl = self.pttl(now, &lk);
                if ttl > 0 {
                    self.pexpire(now, &mk, ttl as u64);
                }
                RegistryAnswer::Restored { held: true, taken }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocm_core::cluster::memory::MemoryRegistry;
    use ocm_core::cluster::NodeId;
    use proptest::prelude::*;
    use std::time::Instant;

    fn claim(node: u8, epoch: u8) -> Claim {
        Claim {
            node: NodeId::new(&format!("n{node}")).unwrap(),
            epoch: Epoch(u64::from(epoch)),
        }
    }

    /// A request over 2 rooms, 3 nodes, 3 users and 4 epochs; leases end 5 ms off the
    /// 10 ms grid the clock moves on, so the two registries never disagree about an
    /// instant that is exactly a lease's end (Redis keeps a key through its last
    /// millisecond, the memory registry drops it at that instant).
    fn request() -> impl Strategy<Value = RegistryRequest> {
        let room = prop_oneof![Just("a"), Just("b")].prop_map(Arc::<str>::from);
        let who = (0..3u8, 0..4u8).prop_map(|(n, e)| claim(n, e));
        let node = (0..3u8).prop_map(|n| NodeId::new(&format!("n{n}")).unwrap());
        let user = prop_oneof![Just("u0"), Just("u1"), Just("u2")].prop_map(Arc::<str>::from);
        let lease = (1..40u64).prop_map(|l| Duration::from_millis(l * 10 + 5));
        prop_oneof![
            (room.clone(), who.clone(), lease.clone(), user.clone()).prop_map(
                |(room, claim, lease, host)| {
                    RegistryRequest::Create {
                        room,
                        claim,
                        lease,
                        record: Bytes::from_static(&[1]),
                        host,
                    }
                }
            ),
            room.clone()
                .prop_map(|room| RegistryRequest::Lookup { room }),
            (
                room.clone(),
                who.clone(),
                node.clone(),
                user.clone(),
                1..4usize
            )
                .prop_map(|(room, claim, node, username, max_members)| {
                    RegistryRequest::Join {
                        room,
                        claim,
                        node,
                        username,
                        max_members,
                    }
                }),
            (room.clone(), who.clone(), node.clone(), user.clone()).prop_map(
                |(room, claim, node, username)| RegistryRequest::Leave {
                    room,
                    claim,
                    node,
                    username
                }
            ),
            (room.clone(), who.clone())
                .prop_map(|(room, claim)| RegistryRequest::Release { room, claim }),
            (
                node.clone(),
                lease.clone(),
                proptest::collection::vec((room.clone(), who.clone()), 0..3),
                proptest::collection::vec((room.clone(), who.clone()), 0..3)
            )
                .prop_map(|(node, lease, owned, mirrored)| RegistryRequest::Renew {
                    node,
                    lease,
                    owned,
                    mirrored
                }),
            (
                room,
                who,
                lease,
                any::<bool>(),
                node,
                proptest::collection::vec(user, 0..3)
            )
                .prop_map(|(room, claim, lease, record, node, usernames)| {
                    RegistryRequest::Restore {
                        room,
                        claim,
                        lease,
                        record: record.then(|| Bytes::from_static(&[1])),
                        node,
                        usernames,
                    }
                }),
        ]
    }

    proptest! {
        /// The scripts as this registry runs them and core's memory registry (the
        /// reference the harness tests use) answer every request alike.
        #[test]
        fn the_redis_scripts_and_the_memory_registry_agree(
            steps in proptest::collection::vec((0..30u64, request()), 1..60),
        ) {
            let mut redis = Registry::default();
            let mut memory = MemoryRegistry::default();
            let origin = Instant::now();
            let mut now = Duration::ZERO;
            for (wait, request) in steps {
                now += Duration::from_millis(wait * 10);
                let a = redis.execute(now, &request);
                let b = memory.execute(origin + now, &request);
                prop_assert_eq!(a, b, "at {:?}: {:?}", now, request);
            }
        }
    }
}
