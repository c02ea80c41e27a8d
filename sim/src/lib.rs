//! # ocm-sim
//!
//! A deterministic simulation of the whole ocm protocol, in the style of FoundationDB's
//! simulator and TigerBeetle's VOPR. One seed drives every random choice; a virtual
//! clock drives every timer; the same seed gives the same byte-for-byte event log.
//!
//! A [`schedule::Schedule`] (a seed, a network profile and a list of operations,
//! generated and shrunk by proptest) runs in a [`world::World`]: one core
//! `ocm_core::Server`, six clients built on core's client state machines
//! ([`host`]), an attacker, and a faulty network ([`net`]). Every input the server gets
//! is also fed to an independent reference [`model`]; after every step the outputs must
//! match the model's exactly ([`check`]) and the safety rules must hold
//! ([`invariants`]). A failure reports the rule, the virtual time and the tail of the
//! [`trace`].
//!
//! [`cluster`] is the same idea for cluster mode: two or three servers, each on its own
//! clock, a simulated Redis (registry with leases, pub/sub) and faulty links to it
//! (delay, loss, duplication, partitions, crashes, outages), under proptest schedules
//! with the cluster invariants after every step (`docs/CLUSTER.md`, "Testing").
//!
//! ```
//! use ocm_sim::schedule::{Network, Op, Schedule};
//! let schedule = Schedule { seed: 9, network: Network::Perfect, ops: vec![Op::Advance { ms: 10 }] };
//! assert_eq!(ocm_sim::run(&schedule).unwrap().relayed, 0);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod cluster;
pub mod coverage;
pub mod host;
pub mod invariants;
pub mod model;
pub mod net;
mod ops;
mod run;
pub mod schedule;
pub mod trace;
pub mod world;

pub use coverage::Coverage;
pub use run::{run, run_with, run_with_config, run_with_setup, Outcome};
pub use world::{Failure, Setup};
