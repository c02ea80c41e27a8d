//! What a rooms server in cluster mode is given ([`ClusterConfig`]), what it is told
//! ([`ClusterInput`], through `RoomServer::handle_cluster`) and what it asks for
//! ([`ClusterOutput`], inside [`crate::Output::Cluster`]).
//!
//! The shell carries registry requests and publishes to its backend (`ocm-cluster`),
//! and brings back answers and bus messages, each with the time it happened. The
//! simulator plays the backend instead.

use super::registry::{RegistryAnswer, RegistryRequest, RequestId, Unavailable};
use super::NodeId;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Default lease of a room name and of a node (`--lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// Default wait for the registry before a create or join is answered TRY_LATER.
pub const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(2);

/// A node's place in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node.
    pub node: NodeId,
    /// How long the registry holds a name (and this node's liveness) without renewal.
    /// The node renews every quarter lease and fences itself after half a lease.
    pub lease: Duration,
    /// Longest wait for a registry answer while a TCRP client waits.
    pub registry_timeout: Duration,
}

impl ClusterConfig {
    /// The defaults for `node`.
    pub fn new(node: NodeId) -> ClusterConfig {
        ClusterConfig {
            node,
            lease: DEFAULT_LEASE,
            registry_timeout: DEFAULT_REGISTRY_TIMEOUT,
        }
    }

    /// Checks the figures against the rooms server's `handshake_timeout`.
    pub fn validate(&self, handshake_timeout: Duration) -> Result<(), &'static str> {
        if self.lease < Duration::from_millis(40) {
            return Err("the lease must be at least 40 ms");
        }
        if self.registry_timeout.is_zero() || self.registry_timeout >= handshake_timeout {
            return Err("the registry timeout must be above 0 and below the handshake timeout");
        }
        Ok(())
    }
}

/// Something the cluster backend reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterInput {
    /// The answer to a registry request (or why there is none).
    Answer {
        /// The request.
        id: RequestId,
        /// What the registry did.
        answer: Result<RegistryAnswer, Unavailable>,
    },
    /// An envelope arrived on a room's channel.
    Message {
        /// Its bytes.
        payload: Bytes,
    },
}

/// Something for the cluster backend to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterOutput {
    /// Send this request to the registry; answer with [`ClusterInput::Answer`].
    Registry {
        /// Names the answer.
        id: RequestId,
        /// The request (boxed: it is the largest output by far, and every output,
        /// datagrams above all, is moved through the queue at the size of the largest).
        request: Box<RegistryRequest>,
    },
    /// Publish this envelope on `room`'s channel.
    Publish {
        /// The room.
        room: Arc<str>,
        /// The envelope's bytes.
        payload: Bytes,
    },
    /// From now on receive exactly the channels of these rooms (sorted).
    Subscribe {
        /// The rooms this node serves.
        rooms: Vec<Arc<str>>,
    },
}
