//! Cluster mode of the rooms server: creates and joins decided by the registry, each
//! room's traffic fanned out to the other nodes through the bus, leases renewed, and
//! the node fencing itself when it cannot renew. `docs/CLUSTER.md` is the specification;
//! the vocabulary is in [`crate::cluster`].
//!
//! Outside cluster mode (`RoomServer::new`) nothing here runs: `cluster` is `None` and
//! every hook below returns at once.
//!
//! - A create or join runs its local checks, then asks the registry (create; lookup and
//!   join) and the TCRP connection waits ([`super::handshake`]'s `AwaitRegistry`). The
//!   answer finishes it; no answer in `registry_timeout` is TRY_LATER (8). A request
//!   that timed out, or whose client went, is undone (release, leave): the backend runs
//!   one node's requests in order, so the undo always runs after it.
//! - A room whose host is here is *owned* (this node renews its lease and releases it);
//!   a room whose host is elsewhere is a *mirror*: it holds only the members served here
//!   and goes when the last of them does.
//! - What a member says or causes (lines, joined / left / was disconnected) goes to the
//!   members here and, in one envelope, to every other node in the room; an envelope
//!   from another node goes to the members here, at most once and in its sender's order
//!   ([`crate::cluster::sequence`]).

use super::membership::{MemberId, Room};
use super::{RoomServer, TimerKey};
use crate::cluster::envelope::{Body, ClosedBy, Envelope};
use crate::cluster::node::{ClusterConfig, ClusterInput, ClusterOutput};
use crate::cluster::registry::{
    LeaseState, RegistryAnswer, RegistryRequest, RequestId, Unavailable,
};
use crate::cluster::sequence::{Sequences, Verdict};
use crate::cluster::{Claim, Epoch};
use crate::output::{ConnId, Event, Output};
use crate::password::PasswordHash;
use crate::token::Token;
use crate::wire::notice::{CloseReason, Notice};
use crate::wire::request::Credentials;
use crate::wire::tcrp::{Frame, Operation, Status};
use bytes::Bytes;
use rand_core::RngCore;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

/// Counters of cluster mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Envelopes published.
    pub published: u64,
    /// Envelopes from other nodes delivered to the members here.
    pub received: u64,
    /// Envelopes dropped: malformed, another version, or for no room or epoch here.
    pub dropped: u64,
    /// Envelopes dropped as duplicates or late arrivals.
    pub stale: u64,
    /// Envelopes from other nodes known lost (skipped sequence numbers).
    pub missed: u64,
    /// Creates and joins answered TRY_LATER.
    pub try_later: u64,
    /// Times this node fenced itself (closed its rooms for want of renewals).
    pub fenced: u64,
    /// Rooms closed because their lease was found lost or their host's server gone.
    pub rooms_lost: u64,
}

/// What cluster mode keeps besides the rooms.
#[derive(Debug)]
pub(crate) struct ClusterState {
    pub(crate) config: ClusterConfig,
    next_id: u64,
    pending: BTreeMap<RequestId, Pending>,
    renew_at: Instant,
    fence_at: Instant,
    /// A renewal has succeeded since start or the last fence: creates and joins may go.
    ready: bool,
    seqs: Sequences,
    subscriptions_dirty: bool,
    pub(crate) stats: ClusterStats,
}

/// A room's place in the cluster.
#[derive(Debug)]
pub(crate) struct RoomCluster {
    pub(crate) claim: Claim,
    /// The host is served here.
    pub(crate) owned: bool,
    /// Last sequence number published for this room.
    last_seq: u64,
    /// The registry lost this room's members from here, and they are not back yet.
    needs_restore: bool,
}

/// A TCRP request waiting for the registry.
#[derive(Debug)]
struct Waiting {
    conn: ConnId,
    frame_room: Bytes,
    op_code: u8,
    room: Arc<str>,
    username: Arc<str>,
    password: Option<String>,
    /// The UDP port the request named (its JSON `port`).
    port: Option<u16>,
    ip: IpAddr,
}

#[derive(Debug)]
enum Pending {
    Create {
        waiting: Waiting,
        claim: Claim,
        password: Option<PasswordHash>,
    },
    Lookup {
        waiting: Waiting,
    },
    Join {
        waiting: Waiting,
        claim: Claim,
        password: Option<PasswordHash>,
    },
    Renew {
        sent: Instant,
        owned: Vec<(Arc<str>, Epoch)>,
        mirrored: Vec<(Arc<str>, Epoch)>,
    },
    Restore {
        room: Arc<str>,
        epoch: Epoch,
        /// The host is here (a mirror's restore failing proves nothing: the host's
        /// node may restore the room after it; the next renewal decides).
        owned: bool,
    },
}

/// An admitted member, its token, and the UDP port its request named (if any).
pub(crate) type Admitted = (MemberId, Token, Option<u16>);

/// What `admit` decided for a TCRP request.
pub(crate) enum Admission {
    /// Answered now: admitted, or refused.
    Done(Result<Admitted, Status>),
    /// Cluster mode: the registry was asked; the connection waits for this request.
    Asked(RequestId),
}

/// A room's record in the registry: version 1, then the 48-byte password hash or
/// nothing.
fn encode_record(password: Option<&PasswordHash>) -> Bytes {
    let mut out = vec![1u8];
    if let Some(hash) = password {
        out.extend_from_slice(&hash.to_bytes());
    }
    Bytes::from(out)
}

/// `None`: not a record this node can read.
fn decode_record(record: &[u8]) -> Option<Option<PasswordHash>> {
    match record {
        [1] => Some(None),
        [1, hash @ ..] => Some(Some(PasswordHash::from_bytes(hash.try_into().ok()?))),
        _ => None,
    }
}

impl ClusterState {
    pub(crate) fn new(config: ClusterConfig, now: Instant) -> ClusterState {
        ClusterState {
            fence_at: now + config.lease / 2,
            config,
            next_id: 0,
            pending: BTreeMap::new(),
            renew_at: now,
            ready: false,
            seqs: Sequences::default(),
            subscriptions_dirty: false,
            stats: ClusterStats::default(),
        }
    }

    pub(crate) fn is_pending(&self, id: &RequestId) -> bool {
        self.pending.contains_key(id)
    }
}

impl RoomServer {
    /// Starts the cluster's timers (renewal now, fence at half a lease).
    pub(crate) fn start_cluster(&mut self) {
        let Some(c) = &self.cluster else { return };
        let (renew_at, fence_at) = (c.renew_at, c.fence_at);
        self.timers.schedule(renew_at, TimerKey::Renew);
        self.timers.schedule(fence_at, TimerKey::Fence);
    }

    /// Cluster mode: whether this node is registered (a renewal has succeeded since
    /// start or its last fence), so that creates and joins are put to the registry.
    pub fn cluster_ready(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.ready)
    }

    /// Cluster mode's counters (`None` outside it).
    pub fn cluster_stats(&self) -> Option<&ClusterStats> {
        self.cluster.as_ref().map(|c| &c.stats)
    }

    /// The claim of a room served here, in cluster mode.
    pub fn room_claim(&self, room: &str) -> Option<(Claim, bool)> {
        let c = self.rooms.get(room)?.cluster.as_ref()?;
        Some((c.claim.clone(), c.owned))
    }

    /// Sends a request whose answer is awaited until the registry timeout.
    fn request(&mut self, now: Instant, request: RegistryRequest, pending: Pending) -> RequestId {
        let id = self.fire(request);
        let c = self.cluster.as_mut().expect("cluster mode");
        // A client waits at most the registry timeout; a renewal or restore is worth
        // its answer until the fence (half a lease), however late it comes.
        let wait = match pending {
            Pending::Renew { .. } | Pending::Restore { .. } => c.config.lease / 2,
            _ => c.config.registry_timeout,
        };
        c.pending.insert(id, pending);
        self.timers.schedule(now + wait, TimerKey::Registry(id));
        id
    }

    /// Sends a request whose answer does not matter (leave, release).
    fn fire(&mut self, request: RegistryRequest) -> RequestId {
        let c = self.cluster.as_mut().expect("cluster mode");
        let id = RequestId(c.next_id);
        c.next_id += 1;
        let request = Box::new(request);
        self.out.cluster(ClusterOutput::Registry { id, request });
        id
    }

    /// The local checks of a create or join passed: ask the registry.
    pub(crate) fn cluster_admit(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame: &Frame,
        room: &str,
        credentials: Credentials,
        ip: IpAddr,
    ) -> Admission {
        let c = self.cluster.as_ref().expect("cluster mode");
        if !c.ready {
            self.cluster.as_mut().expect("cluster mode").stats.try_later += 1;
            return Admission::Done(Err(Status::TryLater));
        }
        let node = c.config.node.clone();
        let lease = c.config.lease;
        let create = frame.operation == Operation::Create.code();
        let waiting = Waiting {
            conn,
            frame_room: frame.room.clone(),
            op_code: frame.operation,
            room: room.into(),
            username: credentials.username.into(),
            password: credentials.password,
            port: credentials.port,
            ip,
        };
        if create {
            let claim = Claim {
                node,
                epoch: Epoch(self.rng.next_u64()),
            };
            let password = waiting
                .password
                .as_deref()
                .map(|pw| PasswordHash::new(pw, &mut self.rng));
            let request = RegistryRequest::Create {
                room: waiting.room.clone(),
                claim: claim.clone(),
                lease,
                record: encode_record(password.as_ref()),
                host: waiting.username.clone(),
            };
            let pending = Pending::Create {
                waiting,
                claim,
                password,
            };
            return Admission::Asked(self.request(now, request, pending));
        }
        // A join of a room served here needs no lookup: its claim and password are known.
        if let Some(entry) = self.rooms.get(room) {
            let claim = entry
                .cluster
                .as_ref()
                .expect("cluster rooms have a claim")
                .claim
                .clone();
            let password = entry.password.as_deref().cloned();
            return Admission::Asked(self.ask_join(now, waiting, claim, password));
        }
        let request = RegistryRequest::Lookup {
            room: waiting.room.clone(),
        };
        Admission::Asked(self.request(now, request, Pending::Lookup { waiting }))
    }

    fn ask_join(
        &mut self,
        now: Instant,
        waiting: Waiting,
        claim: Claim,
        password: Option<PasswordHash>,
    ) -> RequestId {
        let c = self.cluster.as_ref().expect("cluster mode");
        let request = RegistryRequest::Join {
            room: waiting.room.clone(),
            claim: claim.clone(),
            node: c.config.node.clone(),
            username: waiting.username.clone(),
            max_members: self.config.max_members_per_room,
        };
        let pending = Pending::Join {
            waiting,
            claim,
            password,
        };
        self.request(now, request, pending)
    }

    /// What the backend reports, at `now`.
    pub fn handle_cluster(&mut self, now: Instant, input: ClusterInput) {
        if self.cluster.is_none() {
            return;
        }
        match input {
            ClusterInput::Answer { id, answer } => self.registry_answer(now, id, answer),
            ClusterInput::Message { payload } => self.envelope(&payload),
        }
        self.sweep_timers();
    }

    fn registry_answer(
        &mut self,
        now: Instant,
        id: RequestId,
        answer: Result<RegistryAnswer, Unavailable>,
    ) {
        let c = self.cluster.as_mut().expect("cluster mode");
        // No entry: a fire-and-forget request (leave, release), or one that timed out
        // and was undone then.
        let Some(pending) = c.pending.remove(&id) else {
            return;
        };
        match (pending, answer) {
            (
                Pending::Create {
                    waiting,
                    claim,
                    password,
                },
                Ok(RegistryAnswer::Created),
            ) => self.created(now, waiting, claim, password),
            // Our own claim: the create went through, its first answer was lost and
            // the backend asked again (epochs are random: nobody else has this one).
            (
                Pending::Create {
                    waiting,
                    claim,
                    password,
                },
                Ok(RegistryAnswer::Exists(holder)),
            ) if holder == claim => self.created(now, waiting, claim, password),
            (Pending::Create { waiting, .. }, Ok(RegistryAnswer::Exists(_))) => {
                self.finish_waiting(now, waiting, Err(Status::RoomExists))
            }
            (Pending::Lookup { waiting }, Ok(RegistryAnswer::Found { claim, record })) => {
                self.found(now, waiting, claim, &record)
            }
            (Pending::Lookup { waiting }, Ok(RegistryAnswer::NotFound)) => {
                self.finish_waiting(now, waiting, Err(Status::RoomNotFound))
            }
            (
                Pending::Join {
                    waiting,
                    claim,
                    password,
                },
                Ok(RegistryAnswer::Joined),
            ) => self.joined(now, waiting, claim, password),
            (Pending::Join { waiting, claim, .. }, Ok(refused)) => {
                // Gone from the registry but alive here: the registry lost its data and
                // the next renewal restores the room (or closes it here).
                let here = self
                    .rooms
                    .get(&waiting.room)
                    .and_then(|r| r.cluster.as_ref());
                let alive_here = here.is_some_and(|rc| rc.claim == claim);
                let status = match refused {
                    RegistryAnswer::UsernameTaken => Status::UsernameTaken,
                    RegistryAnswer::RoomFull => Status::ServerFull,
                    _ if alive_here => Status::TryLater,
                    _ => Status::RoomNotFound,
                };
                self.finish_waiting(now, waiting, Err(status))
            }
            (
                Pending::Renew {
                    sent,
                    owned,
                    mirrored,
                },
                Ok(RegistryAnswer::Renewed {
                    node_was_missing,
                    owned: owned_states,
                    mirrored: alive,
                }),
            ) => self.renewed(
                now,
                sent,
                owned,
                owned_states,
                mirrored,
                alive,
                node_was_missing,
            ),
            (
                Pending::Restore { room, epoch, owned },
                Ok(RegistryAnswer::Restored { held, .. }),
            ) => {
                if self.epoch_of(&room) == Some(epoch) {
                    if owned && !held {
                        self.lose_room(&room, CloseReason::ClusterUnreachable);
                    } else if let Some(rc) =
                        self.rooms.get_mut(&room).and_then(|r| r.cluster.as_mut())
                    {
                        // A mirror tries again once its host's node has restored the room.
                        rc.needs_restore = !held;
                    }
                }
            }
            (pending, _) => self.registry_failed(now, pending),
        }
    }

    /// A request had no (usable) answer: its client is told TRY_LATER, and what it may
    /// have done in the registry is undone.
    fn registry_failed(&mut self, now: Instant, pending: Pending) {
        match pending {
            Pending::Create { waiting, claim, .. } => {
                let room = waiting.room.clone();
                self.fire(RegistryRequest::Release { room, claim });
                self.finish_waiting(now, waiting, Err(Status::TryLater));
            }
            Pending::Join { waiting, claim, .. } => {
                self.undo_join(&waiting, claim);
                self.finish_waiting(now, waiting, Err(Status::TryLater));
            }
            Pending::Lookup { waiting } => self.finish_waiting(now, waiting, Err(Status::TryLater)),
            Pending::Renew { .. } => {
                // Retry soon rather than a quarter lease later: one failed renewal (a
                // connection Redis dropped) must not bring the fence near.
                let c = self.cluster.as_mut().expect("cluster mode");
                let retry = now + c.config.lease / 20;
                if retry < c.renew_at {
                    c.renew_at = retry;
                    self.timers.schedule(retry, TimerKey::Renew);
                }
            }
            Pending::Restore { .. } => {}
        }
    }

    fn undo_join(&mut self, waiting: &Waiting, claim: Claim) {
        let node = self
            .cluster
            .as_ref()
            .expect("cluster mode")
            .config
            .node
            .clone();
        let leave = RegistryRequest::Leave {
            room: waiting.room.clone(),
            claim,
            node,
            username: waiting.username.clone(),
        };
        self.fire(leave);
    }

    /// A registry request's deadline.
    pub(crate) fn registry_timer(&mut self, now: Instant, id: RequestId) {
        let Some(pending) = self.cluster.as_mut().and_then(|c| c.pending.remove(&id)) else {
            return;
        };
        self.registry_failed(now, pending);
    }

    /// The connection's own deadline came while it waited for the registry.
    pub(crate) fn registry_abandoned(&mut self, now: Instant, id: RequestId) {
        self.registry_timer(now, id);
    }

    /// Answers a waiting connection, if it still waits for this; otherwise undoes a
    /// success.
    fn finish_waiting(
        &mut self,
        now: Instant,
        waiting: Waiting,
        result: Result<(MemberId, Token), Status>,
    ) {
        if result == Err(Status::TryLater) {
            self.cluster.as_mut().expect("cluster mode").stats.try_later += 1;
        }
        let result = result.map(|(member, token)| (member, token, waiting.port));
        let (conn, op_code) = (waiting.conn, waiting.op_code);
        self.finish_answer(now, conn, &waiting.frame_room, op_code, result);
    }

    fn still_waiting(&self, waiting: &Waiting) -> bool {
        self.awaits_registry(waiting.conn)
    }

    fn created(
        &mut self,
        now: Instant,
        waiting: Waiting,
        claim: Claim,
        password: Option<PasswordHash>,
    ) {
        let room = waiting.room.clone();
        let refused = if !self.still_waiting(&waiting) {
            Some(None)
        } else if self.rooms.contains_key(&room) {
            Some(Some(Status::RoomExists))
        } else if self.rooms.len() >= self.config.max_rooms || !self.may_host(waiting.ip) {
            Some(Some(Status::ServerFull))
        } else {
            None
        };
        if let Some(status) = refused {
            let release = RegistryRequest::Release { room, claim };
            self.fire(release);
            if let Some(status) = status {
                self.finish_waiting(now, waiting, Err(status));
            }
            return;
        }
        let source = self.source(waiting.ip);
        self.rooms_per_source.add(source);
        let inserted = self.rooms.insert(
            room.clone(),
            Room {
                password: password.map(Box::new),
                source: Some(source),
                members: Vec::new(),
                addressed: 0,
                fanout: crate::rate::room_bucket(&self.config),
                cluster: Some(Box::new(RoomCluster {
                    claim: claim.clone(),
                    owned: true,
                    last_seq: 0,
                    needs_restore: false,
                })),
            },
        );
        let Some(key) = inserted else {
            // checked above: not reached
            self.rooms_per_source.remove(source);
            self.fire(RegistryRequest::Release { room, claim });
            return self.finish_waiting(now, waiting, Err(Status::RoomExists));
        };
        let (id, token) = self.add_member(now, key, waiting.username.clone(), waiting.ip);
        self.subscriptions_changed();
        self.out.emit(Event::RoomCreated {
            room,
            host: waiting.username.clone(),
        });
        self.finish_waiting(now, waiting, Ok((id, token)));
    }

    fn found(&mut self, now: Instant, waiting: Waiting, claim: Claim, record: &[u8]) {
        if !self.still_waiting(&waiting) {
            return;
        }
        // A record this node cannot read (a newer node's): refused for now.
        let Some(password) = decode_record(record) else {
            return self.finish_waiting(now, waiting, Err(Status::TryLater));
        };
        if let Some(stored) = &password {
            let given = waiting.password.as_deref();
            if let Err(status) = self.check_password(now, &waiting.room, stored, given, waiting.ip)
            {
                return self.finish_waiting(now, waiting, Err(status));
            }
        }
        let conn = waiting.conn;
        let id = self.ask_join(now, waiting, claim, password);
        self.set_awaiting(conn, id);
    }

    fn joined(
        &mut self,
        now: Instant,
        waiting: Waiting,
        claim: Claim,
        password: Option<PasswordHash>,
    ) {
        let room = waiting.room.clone();
        let here = self.rooms.get(&room).map(|r| {
            let c = r.cluster.as_ref().expect("cluster rooms have a claim");
            (
                c.claim == claim,
                r.members
                    .iter()
                    .any(|id| self.members[id].username == waiting.username),
            )
        });
        let refused = if !self.still_waiting(&waiting) {
            Some(None)
        } else {
            match here {
                Some((false, _)) => Some(Some(Status::RoomNotFound)),
                Some((true, true)) => Some(Some(Status::UsernameTaken)),
                None if self.rooms.len() >= self.config.max_rooms => Some(Some(Status::ServerFull)),
                _ if !self.has_seat_for(waiting.ip) => Some(Some(Status::ServerFull)),
                _ => None,
            }
        };
        if let Some(status) = refused {
            self.undo_join(&waiting, claim);
            if let Some(status) = status {
                self.finish_waiting(now, waiting, Err(status));
            }
            return;
        }
        if here.is_none() {
            self.rooms.insert(
                room.clone(),
                Room {
                    password: password.map(Box::new),
                    source: None,
                    members: Vec::new(),
                    addressed: 0,
                    fanout: crate::rate::room_bucket(&self.config),
                    cluster: Some(Box::new(RoomCluster {
                        claim,
                        owned: false,
                        last_seq: 0,
                        needs_restore: false,
                    })),
                },
            );
            self.subscriptions_changed();
        }
        let key = self.rooms.key_of(&room).expect("room exists");
        let (id, token) = self.add_member(now, key, waiting.username.clone(), waiting.ip);
        let notice = Bytes::from(Notice::Joined(waiting.username.to_string()).room_text());
        self.notify_room(&room, Some(id), notice.clone());
        self.publish(&room, Body::Deliver(notice));
        self.out.emit(Event::MemberJoined {
            room: Some(room),
            username: waiting.username.clone(),
        });
        self.finish_waiting(now, waiting, Ok((id, token)));
    }

    /// Publishes `body` for `room` to the other nodes (cluster mode, cluster rooms only).
    pub(crate) fn publish(&mut self, room: &str, body: Body) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        let Some(name) = self.rooms.get_key_value(room).map(|(name, _)| name.clone()) else {
            return;
        };
        let Some(rc) = self.rooms.get_mut(room).and_then(|r| r.cluster.as_mut()) else {
            return;
        };
        rc.last_seq += 1;
        let envelope = Envelope {
            origin: c.config.node.clone(),
            epoch: rc.claim.epoch,
            seq: rc.last_seq,
            room: name.clone(),
            body,
        };
        c.stats.published += 1;
        self.out.cluster(ClusterOutput::Publish {
            room: name,
            payload: envelope.encode(),
        });
    }

    /// A member of `room` served here is gone (left, evicted): the registry forgets it,
    /// and a mirror with no member left goes.
    pub(crate) fn cluster_member_gone(&mut self, room: &str, username: &Arc<str>) {
        let Some(c) = self.cluster.as_ref() else {
            return;
        };
        let Some(entry) = self.rooms.get(room) else {
            return;
        };
        let Some(rc) = entry.cluster.as_ref() else {
            return;
        };
        let leave = RegistryRequest::Leave {
            room: room.into(),
            claim: rc.claim.clone(),
            node: c.config.node.clone(),
            username: username.clone(),
        };
        let empty_mirror = !rc.owned && entry.members.is_empty();
        self.fire(leave);
        if empty_mirror {
            self.drop_room_entry(room);
        }
    }

    /// The host left or was evicted (or its server is shutting down): the room closes on
    /// every node, and its name is released.
    pub(crate) fn cluster_host_gone(&mut self, room: &str, by: ClosedBy) {
        let Some(rc) = self.rooms.get(room).and_then(|r| r.cluster.as_ref()) else {
            return;
        };
        if !rc.owned {
            return;
        }
        let claim = rc.claim.clone();
        self.publish(room, Body::Closed(by));
        self.fire(RegistryRequest::Release {
            room: room.into(),
            claim,
        });
    }

    /// Forgets a room whose members are all gone already.
    fn drop_room_entry(&mut self, room: &str) {
        if let Some(entry) = self.rooms.remove(room) {
            debug_assert!(entry.members.is_empty());
            if let (Some(c), Some(rc)) = (self.cluster.as_mut(), entry.cluster) {
                c.seqs.forget(rc.claim.epoch);
            }
            self.subscriptions_changed();
        }
    }

    /// A room closes here for a cluster reason (lease lost, host's server gone, fenced,
    /// closed by its host's node): its members here are told, nothing is published.
    fn lose_room(&mut self, room: &str, reason: CloseReason) {
        if let Some(c) = self.cluster.as_mut() {
            c.stats.rooms_lost += u64::from(reason != CloseReason::HostLeft);
        }
        self.close_room(room, reason);
    }

    /// Called by `close_room`: the room's sequences go, and the subscriptions change.
    pub(crate) fn cluster_room_closed(&mut self, entry: &Room) {
        if let (Some(c), Some(rc)) = (self.cluster.as_mut(), entry.cluster.as_ref()) {
            c.seqs.forget(rc.claim.epoch);
            c.subscriptions_dirty = true;
        }
    }

    fn subscriptions_changed(&mut self) {
        if let Some(c) = self.cluster.as_mut() {
            c.subscriptions_dirty = true;
        }
    }

    /// The next output; when the queue is empty and the rooms served here changed, the
    /// new subscription set.
    pub(crate) fn pop_output(&mut self) -> Option<Output> {
        if let Some(output) = self.out.pop() {
            return Some(output);
        }
        let c = self.cluster.as_mut()?;
        if !std::mem::take(&mut c.subscriptions_dirty) {
            return None;
        }
        let mut rooms: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        rooms.sort();
        Some(Output::Cluster(ClusterOutput::Subscribe { rooms }))
    }

    fn epoch_of(&self, room: &str) -> Option<Epoch> {
        Some(self.rooms.get(room)?.cluster.as_ref()?.claim.epoch)
    }

    /// An envelope from the bus.
    fn envelope(&mut self, payload: &Bytes) {
        let c = self.cluster.as_mut().expect("cluster mode");
        let Ok(envelope) = Envelope::decode(payload) else {
            c.stats.dropped += 1;
            return;
        };
        if envelope.origin == c.config.node {
            return; // our own publish, back from the bus
        }
        let here = self
            .rooms
            .get(&envelope.room)
            .and_then(|r| r.cluster.as_ref());
        if here.map(|rc| rc.claim.epoch) != Some(envelope.epoch) {
            c.stats.dropped += 1;
            return;
        }
        match c.seqs.check(envelope.epoch, &envelope.origin, envelope.seq) {
            Verdict::Stale => {
                c.stats.stale += 1;
                return;
            }
            Verdict::Accept { missed } => {
                c.stats.missed += missed;
                c.stats.received += 1;
            }
        }
        match envelope.body {
            Body::Deliver(text) => self.notify_room(&envelope.room, None, text),
            Body::Closed(by) => {
                let reason = match by {
                    ClosedBy::HostLeft => CloseReason::HostLeft,
                    ClosedBy::HostServerShutdown => CloseReason::HostServerShutdown,
                };
                self.lose_room(&envelope.room, reason);
            }
        }
    }

    /// Time to renew: one request for everything this node holds.
    pub(crate) fn renew_timer(&mut self, now: Instant) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        // Every change of `renew_at` schedules an entry at it, so an entry firing
        // before it is a stale one (a retry moved the renewal earlier): drop it.
        // Rescheduling it instead kept one more entry alive per failed renewal, a pile
        // that grew for as long as the registry was down (the cluster simulator found
        // the timer table over its bound).
        if now < c.renew_at {
            return;
        }
        c.renew_at = now + c.config.lease / 4;
        let (node, lease, at) = (c.config.node.clone(), c.config.lease, c.renew_at);
        self.timers.schedule(at, TimerKey::Renew);
        let (mut owned, mut mirrored) = (Vec::new(), Vec::new());
        for (name, room) in self.rooms.iter() {
            if let Some(rc) = &room.cluster {
                let list = if rc.owned { &mut owned } else { &mut mirrored };
                list.push((name.clone(), rc.claim.clone()));
            }
        }
        owned.sort();
        mirrored.sort();
        let epochs =
            |list: &[(Arc<str>, Claim)]| list.iter().map(|(n, c)| (n.clone(), c.epoch)).collect();
        let pending = Pending::Renew {
            sent: now,
            owned: epochs(&owned),
            mirrored: epochs(&mirrored),
        };
        let request = RegistryRequest::Renew {
            node,
            lease,
            owned,
            mirrored,
        };
        self.request(now, request, pending);
    }

    #[allow(clippy::too_many_arguments)]
    fn renewed(
        &mut self,
        now: Instant,
        sent: Instant,
        owned: Vec<(Arc<str>, Epoch)>,
        owned_states: Vec<LeaseState>,
        mirrored: Vec<(Arc<str>, Epoch)>,
        alive: Vec<bool>,
        node_was_missing: bool,
    ) {
        let c = self.cluster.as_mut().expect("cluster mode");
        let fence_at = sent + c.config.lease / 2;
        if fence_at > c.fence_at {
            c.fence_at = fence_at;
        }
        let first_renewal = !c.ready;
        c.ready = true;
        for ((room, epoch), state) in owned.into_iter().zip(owned_states) {
            if self.epoch_of(&room) != Some(epoch) {
                continue; // closed (or re-created) since the renewal was sent
            }
            match state {
                LeaseState::Held => {}
                LeaseState::Lost => self.lose_room(&room, CloseReason::ClusterUnreachable),
                LeaseState::Missing => self.restore(now, &room, true),
            }
        }
        for ((room, epoch), alive) in mirrored.into_iter().zip(alive) {
            if self.epoch_of(&room) != Some(epoch) {
                continue;
            }
            if node_was_missing && !first_renewal {
                // Redis lost its data: the host's node restores the lease within a
                // renewal; put our members back, and look again next time.
                self.restore(now, &room, false);
            } else if !alive {
                self.lose_room(&room, CloseReason::HostServerGone);
            } else if self
                .rooms
                .get(&room)
                .and_then(|r| r.cluster.as_ref())
                .is_some_and(|rc| rc.needs_restore)
            {
                self.restore(now, &room, false);
            }
        }
        if node_was_missing && !first_renewal {
            let owned: Vec<Arc<str>> = self
                .rooms
                .iter()
                .filter(|(_, r)| r.cluster.as_ref().is_some_and(|rc| rc.owned))
                .map(|(n, _)| n.clone())
                .collect();
            for room in owned {
                self.restore(now, &room, true);
            }
        }
    }

    /// Puts a room and its members here back into a registry that lost them.
    fn restore(&mut self, now: Instant, room: &str, with_record: bool) {
        let Some(entry) = self.rooms.get(room) else {
            return;
        };
        let Some(rc) = entry.cluster.as_ref() else {
            return;
        };
        let c = self.cluster.as_ref().expect("cluster mode");
        let usernames = entry
            .members
            .iter()
            .map(|id| self.members[id].username.clone())
            .collect();
        let record = (with_record && rc.owned).then(|| encode_record(entry.password.as_deref()));
        let request = RegistryRequest::Restore {
            room: room.into(),
            claim: rc.claim.clone(),
            lease: c.config.lease,
            record,
            node: c.config.node.clone(),
            usernames,
        };
        let pending = Pending::Restore {
            room: room.into(),
            epoch: rc.claim.epoch,
            owned: rc.owned,
        };
        self.request(now, request, pending);
    }

    /// Half a lease without a successful renewal: every room here closes.
    pub(crate) fn fence_timer(&mut self, now: Instant) {
        let Some(c) = self.cluster.as_mut() else {
            return;
        };
        if now < c.fence_at {
            let at = c.fence_at;
            self.timers.schedule(at, TimerKey::Fence);
            return;
        }
        // Nothing may be served until a renewal succeeds again.
        c.ready = false;
        c.fence_at = now + c.config.lease / 2;
        let at = c.fence_at;
        self.timers.schedule(at, TimerKey::Fence);
        if self.rooms.is_empty() {
            return;
        }
        c.stats.fenced += 1;
        let mut names: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        names.sort();
        for room in names {
            self.lose_room(&room, CloseReason::ClusterUnreachable);
        }
    }

    /// Shutdown in cluster mode: rooms hosted here close everywhere and are released;
    /// members of rooms hosted elsewhere leave.
    pub(crate) fn cluster_shutdown(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        let mut names: Vec<Arc<str>> = self.rooms.keys().cloned().collect();
        names.sort();
        for room in names {
            let Some(entry) = self.rooms.get(&room) else {
                continue;
            };
            let owned = entry.cluster.as_ref().is_some_and(|rc| rc.owned);
            if owned {
                self.cluster_host_gone(&room, ClosedBy::HostServerShutdown);
            } else {
                let gone: Vec<Arc<str>> = entry
                    .members
                    .iter()
                    .map(|id| self.members[id].username.clone())
                    .collect();
                for username in gone {
                    let notice = Bytes::from(Notice::Left(username.to_string()).room_text());
                    self.publish(&room, Body::Deliver(notice));
                    let Some(c) = self.cluster.as_ref() else {
                        return;
                    };
                    let claim = self.rooms[&room]
                        .cluster
                        .as_ref()
                        .expect("cluster room")
                        .claim
                        .clone();
                    let leave = RegistryRequest::Leave {
                        room: room.clone(),
                        claim,
                        node: c.config.node.clone(),
                        username,
                    };
                    self.fire(leave);
                }
            }
        }
        if let Some(c) = self.cluster.as_mut() {
            c.pending.clear();
        }
    }
}
