//! What a cluster run does: a seed, the nodes and their clocks, the links to Redis, and
//! a list of operations, generated and shrunk by proptest in the style of
//! [`crate::schedule`]: operations name actors, nodes, rooms and users by small indices
//! taken modulo their pools, so any list runs and shrinking never breaks one. The
//! `Debug` form is Rust syntax: paste a failing schedule into
//! `sim/tests/cluster_regressions.rs`.
//!
//! ```
//! use ocm_sim::cluster::schedule::{ClusterOp, ClusterSchedule};
//! use ocm_sim::cluster::bus::BusProfile;
//! let s = ClusterSchedule {
//!     seed: 1,
//!     nodes: 2,
//!     clocks: vec![1000, 1000],
//!     bus: BusProfile::perfect(),
//!     ops: vec![ClusterOp::Create { actor: 0, node: 0, room: 0, user: 0 }],
//! };
//! assert!(ocm_sim::cluster::run(&s).is_ok());
//! ```

use super::bus::BusProfile;
use ocm_core::cluster::node::ClusterConfig;
use ocm_core::cluster::NodeId;
use ocm_core::Config;
use proptest::prelude::*;
use std::time::Duration;

/// Room names.
pub const ROOMS: [&str; 3] = ["lobby", "r1", "ルーム"];
/// Usernames.
pub const USERS: [&str; 4] = ["ann", "bob", "zoë", "dan"];
/// The lease of every run (the tests' 4 s: renew every second, fence after two).
pub const LEASE: Duration = Duration::from_secs(4);
/// How long a create or join waits for the registry.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(1);

/// Each node's limits: the simulator's, with room for the members of three nodes.
pub fn config() -> Config {
    Config {
        max_rooms: 3,
        max_members_per_room: 4,
        max_members: 6,
        member_messages_per_sec: 20,
        member_message_burst: 20,
        source_messages_per_sec: 40,
        source_message_burst: 40,
        room_fanout_per_sec: 200,
        room_fanout_burst: 200,
        // the single-node limits made for one attacker's connections would refuse the
        // creates these schedules are made of
        max_rooms_per_source: 3,
        request_budget: Config::default().request_budget,
        max_handshakes: 32,
        max_handshakes_per_ip: 16,
        ..crate::schedule::config()
    }
}

/// Node `i`'s cluster configuration.
pub fn cluster_config(i: usize) -> ClusterConfig {
    ClusterConfig {
        node: NodeId::new(&format!("node-{i}")).expect("a node id"),
        lease: LEASE,
        registry_timeout: REGISTRY_TIMEOUT,
    }
}

/// One step of a cluster schedule. Indices are taken modulo their pool; an operation
/// that fits no actor or node does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterOp {
    /// An idle actor creates a room through a node.
    Create {
        /// Among idle actors.
        actor: u8,
        /// Which node.
        node: u8,
        /// Index into [`ROOMS`].
        room: u8,
        /// Index into [`USERS`].
        user: u8,
    },
    /// An idle actor joins a room (3 times in 4 one the registry holds) through a node.
    Join {
        /// Among idle actors.
        actor: u8,
        /// Which node.
        node: u8,
        /// Index into the rooms held, or into [`ROOMS`].
        room: u8,
        /// Index into [`USERS`].
        user: u8,
    },
    /// A talking actor sends a numbered line.
    Send {
        /// Among talking actors.
        actor: u8,
    },
    /// A talking actor sends `/exit`.
    Leave {
        /// Among talking actors.
        actor: u8,
    },
    /// A talking host sends `/exit`: its room closes on every node.
    HostLeave {
        /// Among talking hosts.
        actor: u8,
    },
    /// An actor's process dies without a word.
    Vanish {
        /// Among busy actors.
        actor: u8,
    },
    /// Time passes.
    Advance {
        /// Milliseconds.
        ms: u32,
    },
    /// A node is killed (`kill -9`); its clients give up on it.
    Crash {
        /// Which node.
        node: u8,
    },
    /// A crashed node starts again, empty, under the same id.
    Restart {
        /// Which node.
        node: u8,
    },
    /// Redis is down for a while; with `lose_data` it comes back empty.
    Outage {
        /// Milliseconds.
        ms: u32,
        /// Restarted without persistence.
        lose_data: bool,
    },
    /// A live node is cut off from Redis (registry and bus) for a while; its clients
    /// still reach it.
    Partition {
        /// Which node.
        node: u8,
        /// Milliseconds.
        ms: u32,
        /// The connections survive (TCP retransmits): what is in flight arrives late
        /// instead of never.
        hold: bool,
    },
}

/// A whole cluster run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSchedule {
    /// Seeds every random choice (and, derived, each node's generator).
    pub seed: u64,
    /// How many nodes (2 or 3).
    pub nodes: u8,
    /// Each node's clock rate, per mille of simulated time (900..=1100).
    pub clocks: Vec<u16>,
    /// The links to Redis.
    pub bus: BusProfile,
    /// The operations, in order.
    pub ops: Vec<ClusterOp>,
}

fn op() -> impl Strategy<Value = ClusterOp> {
    let (actor, node) = (0..6u8, 0..3u8);
    prop_oneof![
        4 => (actor.clone(), node.clone(), 0..3u8, 0..4u8)
            .prop_map(|(actor, node, room, user)| ClusterOp::Create { actor, node, room, user }),
        10 => (actor.clone(), node.clone(), 0..3u8, 0..4u8)
            .prop_map(|(actor, node, room, user)| ClusterOp::Join { actor, node, room, user }),
        24 => actor.clone().prop_map(|actor| ClusterOp::Send { actor }),
        2 => actor.clone().prop_map(|actor| ClusterOp::Leave { actor }),
        1 => actor.clone().prop_map(|actor| ClusterOp::HostLeave { actor }),
        1 => actor.prop_map(|actor| ClusterOp::Vanish { actor }),
        6 => prop_oneof![3 => 0..300u32, 2 => 300..2_000u32, 1 => 2_000..9_000u32].prop_map(|ms| ClusterOp::Advance { ms }),
        1 => node.clone().prop_map(|node| ClusterOp::Crash { node }),
        1 => node.clone().prop_map(|node| ClusterOp::Restart { node }),
        1 => (prop_oneof![100..1_500u32, 1_500..6_000u32], prop_oneof![4 => Just(false), 1 => Just(true)])
            .prop_map(|(ms, lose_data)| ClusterOp::Outage { ms, lose_data }),
        2 => (node, prop_oneof![100..1_500u32, 1_500..6_000u32], any::<bool>())
            .prop_map(|(node, ms, hold)| ClusterOp::Partition { node, ms, hold }),
    ]
}

fn bus() -> impl Strategy<Value = BusProfile> {
    prop_oneof![
        1 => Just(BusProfile::perfect()),
        3 => (1..20u16, 0..150u16, 0..150u16, 0..60u16).prop_map(|(min, spread, loss, duplicate)| BusProfile {
            min_delay_ms: min,
            max_delay_ms: min + spread,
            loss,
            duplicate,
        }),
    ]
}

/// Cluster schedules of up to `max_ops` operations over 2 or 3 nodes.
pub fn cluster_schedule(max_ops: usize) -> impl Strategy<Value = ClusterSchedule> {
    (
        any::<u64>(),
        2..=3u8,
        proptest::collection::vec(900..=1100u16, 3),
        bus(),
        proptest::collection::vec(op(), 1..=max_ops),
    )
        .prop_map(|(seed, nodes, mut clocks, bus, ops)| {
            clocks.truncate(usize::from(nodes));
            ClusterSchedule {
                seed,
                nodes,
                clocks,
                bus,
                ops,
            }
        })
}
