//! Cluster mode, the pure parts: who a node is, which incarnation of a room a message
//! belongs to, and the bytes nodes send each other.
//!
//! In cluster mode several `ocm server` processes (nodes) serve the same rooms. A shared
//! registry (Redis, in `ocm-cluster`) keeps room names unique with leases, and a bus
//! (Redis pub/sub) carries each room's traffic between the nodes that have members in
//! it. Nothing here does I/O: the registry and the bus are reached through requests and
//! answers that a shell carries, exactly like sockets. The design, the keys and every
//! failure mode are in `docs/CLUSTER.md`.
//!
//! - [`NodeId`]: a node's name, given with `--node-id` or drawn at start.
//! - [`Epoch`] and [`Claim`]: one incarnation of a room name, and who holds it. A room
//!   re-created under the same name gets a new epoch, so it never receives the old
//!   room's traffic.
//! - [`envelope`]: the versioned inter-node message, with its origin, epoch and sequence.
//! - [`sequence`]: at most once and in order per sender, with the gaps counted.
//! - [`registry`]: what a node asks the registry, and what it hears back.
//! - [`node`]: a rooms server's cluster configuration, inputs and outputs.
//! - [`memory`]: the registry in memory, the reference for the Redis scripts and the simulator.

pub mod envelope;
pub mod memory;
pub mod node;
pub mod registry;
pub mod sequence;

use std::fmt;
use std::sync::Arc;

/// Longest node id, in bytes.
pub const MAX_NODE_ID_LEN: usize = 64;

/// A node's name: 1..=64 bytes of ASCII letters, digits, `.`, `_` and `-`.
///
/// The character set keeps ids printable in logs and unambiguous inside registry keys
/// and claims (a claim is `NODE/EPOCH`, see [`Claim`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(Arc<str>);

/// Why a node id was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeIdError {
    /// Empty, or longer than [`MAX_NODE_ID_LEN`] bytes.
    Length,
    /// A byte other than ASCII letters, digits, `.`, `_` and `-`.
    Character,
}

impl fmt::Display for NodeIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeIdError::Length => "a node id has 1 to 64 characters",
            NodeIdError::Character => "a node id has only ASCII letters, digits, '.', '_' and '-'",
        })
    }
}

impl std::error::Error for NodeIdError {}

impl NodeId {
    /// Checks and wraps `id`.
    pub fn new(id: &str) -> Result<NodeId, NodeIdError> {
        NodeId::from_bytes(id.as_bytes())
    }

    /// Checks and wraps the bytes of an id (as read from an envelope or the registry).
    pub fn from_bytes(id: &[u8]) -> Result<NodeId, NodeIdError> {
        if id.is_empty() || id.len() > MAX_NODE_ID_LEN {
            return Err(NodeIdError::Length);
        }
        if !id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(NodeIdError::Character);
        }
        let text = std::str::from_utf8(id).expect("ASCII is UTF-8");
        Ok(NodeId(text.into()))
    }

    /// A fresh id from 8 random bytes: 16 lowercase hex characters. The shell passes OS
    /// entropy when `--node-id` is not given.
    pub fn random(bytes: [u8; 8]) -> NodeId {
        NodeId(format!("{:016x}", u64::from_be_bytes(bytes)).into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// One incarnation of a room name: 64 bits drawn by the creating node from its seeded
/// generator. Random rather than counted, so that it needs no round trip and survives a
/// registry that lost its data (a counter kept there would start again and repeat).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Who holds a room name: the node serving the room's host, and the room's epoch.
///
/// Stored in the registry as the lease's value, `NODE/EPOCH` with the epoch as 16
/// lowercase hex digits (`node-a/00000000000000ff`); renewing or releasing a lease is
/// allowed only to a request carrying the same claim.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Claim {
    /// The node serving the host.
    pub node: NodeId,
    /// The room's incarnation.
    pub epoch: Epoch,
}

impl Claim {
    /// The registry form, `NODE/EPOCH`.
    pub fn to_value(&self) -> String {
        self.to_string()
    }

    /// Parses the registry form; anything else is `None`.
    pub fn parse(value: &[u8]) -> Option<Claim> {
        let slash = value.iter().position(|b| *b == b'/')?;
        let (node, epoch) = (&value[..slash], &value[slash + 1..]);
        if epoch.len() != 16
            || !epoch
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return None;
        }
        let epoch = u64::from_str_radix(std::str::from_utf8(epoch).ok()?, 16).ok()?;
        Some(Claim {
            node: NodeId::from_bytes(node).ok()?,
            epoch: Epoch(epoch),
        })
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn node_ids_are_short_printable_and_free_of_the_claim_separator() {
        assert!(NodeId::new("node-a").is_ok());
        assert!(NodeId::new("eu.west_1-B").is_ok());
        assert!(NodeId::new(&"x".repeat(64)).is_ok());
        assert_eq!(NodeId::new(""), Err(NodeIdError::Length));
        assert_eq!(NodeId::new(&"x".repeat(65)), Err(NodeIdError::Length));
        for bad in ["a/b", "a b", "a:b", "é", "a\n", "a*"] {
            assert_eq!(NodeId::new(bad), Err(NodeIdError::Character), "{bad:?}");
        }
    }

    #[test]
    fn a_random_node_id_is_16_hex_digits() {
        let id = NodeId::random([0, 0, 0, 0, 0, 0, 1, 0xab]);
        assert_eq!(id.as_str(), "00000000000001ab");
        assert_eq!(NodeId::new(id.as_str()), Ok(id));
    }

    #[test]
    fn a_claim_reads_back_only_from_its_exact_form() {
        let claim = Claim {
            node: NodeId::new("node-a").unwrap(),
            epoch: Epoch(255),
        };
        assert_eq!(claim.to_value(), "node-a/00000000000000ff");
        assert_eq!(Claim::parse(claim.to_value().as_bytes()), Some(claim));
        for bad in [
            &b"node-a/ff"[..],
            b"node-a/00000000000000FF",
            b"node-a00000000000000ff",
            b"/00000000000000ff",
            b"a/b/00000000000000ff",
            b"node-a/00000000000000ff ",
            b"node-a/+0000000000000ff",
        ] {
            assert_eq!(
                Claim::parse(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn every_claim_round_trips(node in "[A-Za-z0-9._-]{1,64}", epoch: u64) {
            let claim = Claim { node: NodeId::new(&node).unwrap(), epoch: Epoch(epoch) };
            prop_assert_eq!(Claim::parse(claim.to_value().as_bytes()), Some(claim));
        }
    }
}
