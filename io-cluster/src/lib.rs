//! # ocm-cluster
//!
//! Cluster mode of ocm: several `ocm server` nodes serve the same rooms, with Redis as
//! the registry of room names (leases) and members, and as the bus that carries each
//! room's traffic between nodes. The protocol rules stay in `ocm-core`
//! ([`ocm_core::cluster`]): this crate only carries requests to the backend and brings
//! answers and messages back.
//!
//! - [`backend`]: the interfaces, [`Registry`], [`Publisher`] and [`Subscriber`], small
//!   enough for another broker (NATS) to implement later.
//! - [`redis`]: the Redis implementation (`redis` crate 1.x on smol's reactor).
//! - [`link`]: [`ClusterLink`], the owner loop's side: bounded channels both ways,
//!   full means dropped and counted, never a blocked UDP path.
//! - `test_server` (feature `test-support`): a private `redis-server` for tests.
//!
//! The design, the Redis keys and every failure mode: `docs/CLUSTER.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
pub mod link;
pub mod redis;
#[cfg(feature = "test-support")]
pub mod test_server;

pub use backend::{BusEvent, Publisher, Registry, Subscriber};
pub use link::{Answer, ClusterLink, LinkConfig, LinkStats, Task};
