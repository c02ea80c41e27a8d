//! What a node asks the cluster registry, and what it hears back.
//!
//! The registry is the one truth for room names and room membership across nodes. A
//! node sends a [`RegistryRequest`] (an output of the core, carried by the shell to
//! Redis or to the simulator's registry) and later gets the [`RegistryAnswer`] for the
//! same [`RequestId`], or [`Unavailable`] when the registry could not be reached in
//! time. Every request is one atomic step in the registry; what each one checks and
//! changes is specified here, and `ocm-cluster`'s Redis backend and the simulator's
//! registry both implement exactly this (`docs/CLUSTER.md` has the Redis keys).
//!
//! Leases: a room name is held by a [`Claim`] for `lease`; only a request carrying the
//! same claim renews or releases it. A node renews everything it holds with one
//! [`RegistryRequest::Renew`] every quarter lease, and stops serving (self-fences) what
//! it could not renew for half a lease, measured from when the last successful renewal
//! was *sent*: the registry extended the lease after that instant, so the node always
//! stops before the name can be given to anyone else.
//!
//! Room records are opaque bytes the creating node stores for joins through other nodes
//! (the salted password hash); the registry never reads them.

use super::{Claim, NodeId};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Names a request so its answer can be matched to it; chosen by the node, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// One atomic step in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryRequest {
    /// If nobody holds `room`: hold it for `claim` for `lease`, store `record`, and make
    /// `host` (served by `claim.node`) its first member. Answers
    /// [`RegistryAnswer::Created`] or [`RegistryAnswer::Exists`].
    Create {
        /// The room name.
        room: Arc<str>,
        /// The new room's holder and epoch.
        claim: Claim,
        /// How long the name is held without renewal.
        lease: Duration,
        /// Opaque bytes for joins through other nodes.
        record: Bytes,
        /// The host's username.
        host: Arc<str>,
    },
    /// Who holds `room`, and its record. Answers [`RegistryAnswer::Found`] or
    /// [`RegistryAnswer::NotFound`].
    Lookup {
        /// The room name.
        room: Arc<str>,
    },
    /// If `room` is still held by `claim`: make `username`, served by `node`, a member,
    /// unless the name is used by a member of a live node (a node whose lease is gone
    /// holds no names) or the room has `max_members` members of live nodes already.
    /// Answers [`RegistryAnswer::Joined`], [`RegistryAnswer::UsernameTaken`],
    /// [`RegistryAnswer::RoomFull`] or [`RegistryAnswer::RoomGone`].
    Join {
        /// The room name.
        room: Arc<str>,
        /// The holder the joining node looked up.
        claim: Claim,
        /// The node that will serve the member.
        node: NodeId,
        /// The member's username.
        username: Arc<str>,
        /// Members per room, host included (a cluster-wide limit).
        max_members: usize,
    },
    /// If `room` is still held by `claim` and `username` is served by `node`: remove
    /// the member. Answers [`RegistryAnswer::Left`].
    Leave {
        /// The room name.
        room: Arc<str>,
        /// The room's holder.
        claim: Claim,
        /// The node serving the member.
        node: NodeId,
        /// The member's username.
        username: Arc<str>,
    },
    /// If `room` is held by `claim`: forget the room (lease, record, members); the name
    /// is free. Answers [`RegistryAnswer::Released`].
    Release {
        /// The room name.
        room: Arc<str>,
        /// The holder releasing it.
        claim: Claim,
    },
    /// `node` is alive for another `lease`; so is every room of `owned` still held by
    /// its claim (its record and members with it). For `mirrored`, rooms served here
    /// whose host is on another node, only reports whether each is still held by its
    /// claim. Answers [`RegistryAnswer::Renewed`], in the order of the lists.
    Renew {
        /// The renewing node.
        node: NodeId,
        /// How long from now.
        lease: Duration,
        /// Rooms whose host this node serves.
        owned: Vec<(Arc<str>, Claim)>,
        /// Rooms this node serves members of, hosted elsewhere.
        mirrored: Vec<(Arc<str>, Claim)>,
    },
    /// After the registry lost its data (a renewal found the node's own lease missing):
    /// puts back what this node knows. With a `record` (the node holds the room), holds
    /// `room` for `claim` again if nobody holds it; then, if `room` is held by `claim`,
    /// adds each of `usernames` served by `node` whose name is free. Answers
    /// [`RegistryAnswer::Restored`].
    Restore {
        /// The room name.
        room: Arc<str>,
        /// The room's holder.
        claim: Claim,
        /// How long the name is held, when it is taken again.
        lease: Duration,
        /// The room's record, when this node holds the room.
        record: Option<Bytes>,
        /// The node serving the members.
        node: NodeId,
        /// This node's members of the room.
        usernames: Vec<Arc<str>>,
    },
}

/// What the registry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryAnswer {
    /// Create: the room is held by the claim asked for.
    Created,
    /// Create: `room` is held by someone (this claim).
    Exists(Claim),
    /// Lookup: the room's holder and record.
    Found {
        /// Who holds the room.
        claim: Claim,
        /// What its creator stored.
        record: Bytes,
    },
    /// Lookup: nobody holds the name.
    NotFound,
    /// Join: the member is in.
    Joined,
    /// Join: a member of a live node has that username.
    UsernameTaken,
    /// Join: the room has its members-per-room limit of members of live nodes.
    RoomFull,
    /// Join: the room is no longer held by the claim (closed, or created anew).
    RoomGone,
    /// Leave: whether a member was removed.
    Left(bool),
    /// Release: whether the room was released (false: not held by that claim).
    Released(bool),
    /// Renew.
    Renewed {
        /// The node's own lease had expired or was lost with the registry's data: the
        /// registry forgot this node's members, so the node should
        /// [`RegistryRequest::Restore`] them.
        node_was_missing: bool,
        /// For each owned room, in order.
        owned: Vec<LeaseState>,
        /// For each mirrored room, in order: still held by its claim.
        mirrored: Vec<bool>,
    },
    /// Restore: whether the room is held by the claim now, and the usernames that could
    /// not be put back because a member of a live node has them.
    Restored {
        /// The room is held by the claim.
        held: bool,
        /// Names refused.
        taken: Vec<Arc<str>>,
    },
}

/// What a renewal found for one owned room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseState {
    /// Held by the claim, and extended.
    Held,
    /// Held by nobody (expired, or lost with the registry's data).
    Missing,
    /// Held by another claim: the name was given out again.
    Lost,
}

/// Why a request has no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// No answer within the node's registry timeout.
    Timeout,
    /// The registry cannot be reached (connection refused or lost).
    Down,
    /// The request was dropped on a full queue between the node and its adapter.
    Overloaded,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unavailable::Timeout => "registry did not answer in time",
            Unavailable::Down => "registry unreachable",
            Unavailable::Overloaded => "registry queue full",
        })
    }
}

impl std::error::Error for Unavailable {}
