//! The cluster simulator: several core rooms servers in cluster mode, a simulated Redis
//! (registry with leases that expire in simulated time, pub/sub) and the links to it
//! with delay, loss, duplication, partitions of single nodes, node crashes and Redis
//! outages, all under one seed and one simulated time (each node reads it through its
//! own clock, with an offset and a rate between 0.9 and 1.1).
//!
//! A [`schedule::ClusterSchedule`] (generated and shrunk by proptest) runs in a
//! [`world::ClusterWorld`]: clients create, join, chat and leave through any node, hosts
//! leave, nodes crash and restart, Redis goes down (and may lose its data), nodes are
//! cut off. After every step of every node the rules of [`invariants`] must hold; a
//! failure reports the rule, the simulated time and the trace's tail, and the schedule
//! (its `Debug` form is Rust) becomes a test in `sim/tests/cluster_regressions.rs`.
//!
//! - [`registry`]: the registry as Redis runs it (the `ocm-cluster` scripts, translated).
//! - [`bus`]: Redis's process, pub/sub and the faulty links.
//! - [`world`]: the nodes, their clocks, the clients and the event loop.
//! - [`invariants`]: what must hold. [`coverage`]: what a run exercised.
//!
//! ```
//! use ocm_sim::cluster::schedule::{ClusterOp::*, ClusterSchedule};
//! use ocm_sim::cluster::bus::BusProfile;
//! let s = ClusterSchedule {
//!     seed: 3,
//!     nodes: 2,
//!     clocks: vec![1000, 950],
//!     bus: BusProfile::perfect(),
//!     ops: vec![
//!         Create { actor: 0, node: 0, room: 0, user: 0 },
//!         Join { actor: 0, node: 1, room: 0, user: 1 },
//!         Send { actor: 0 },
//!         Send { actor: 1 },
//!     ],
//! };
//! let outcome = ocm_sim::cluster::run(&s).unwrap();
//! assert_eq!(outcome.coverage.cross_node_deliveries, 2);
//! ```

pub mod bus;
pub mod coverage;
pub mod invariants;
mod ops;
pub mod registry;
pub mod schedule;
pub mod world;

use crate::trace::Trace;
use crate::world::Failure;
use coverage::ClusterCoverage;
use schedule::{ClusterSchedule, LEASE};
use std::time::Duration;
use world::ClusterWorld;

/// What a passing cluster run did.
#[derive(Clone, Debug)]
pub struct ClusterOutcome {
    /// What it exercised.
    pub coverage: ClusterCoverage,
    /// What Redis and its links did.
    pub bus: bus::BusStats,
    /// Hash of the whole event log (same schedule, same hash).
    pub trace_hash: u64,
}

/// Runs `schedule` with a trace that keeps its tail for failure reports.
pub fn run(schedule: &ClusterSchedule) -> Result<ClusterOutcome, Failure> {
    run_with(schedule, Trace::default())
}

/// Runs `schedule`: the nodes register, every operation is applied with a little time
/// after it, then two leases pass so every bound comes due.
pub fn run_with(schedule: &ClusterSchedule, trace: Trace) -> Result<ClusterOutcome, Failure> {
    let mut world = ClusterWorld::new(schedule, trace);
    world.run_until(Duration::from_millis(50))?;
    for op in &schedule.ops {
        world.apply(*op)?;
        world.think()?;
    }
    world.run_until(world.now() + LEASE * 2)?;
    world.finish();
    Ok(ClusterOutcome {
        coverage: world.coverage.clone(),
        bus: world.bus.stats.clone(),
        trace_hash: world.trace.hash(),
    })
}
