//! # ocm-core
//!
//! The whole ocm chat protocol as deterministic, sans-IO state machines: no sockets, no
//! clocks, no threads, no global randomness. Every [`Input`] comes in with the time
//! ([`Machine::handle`]), outputs are drained ([`Machine::poll_output`]), and the next
//! deadline is asked for ([`Machine::poll_timeout`]). The shells in `io-smol` and
//! `io-asyncstd` move bytes and time; the simulator in `sim`, the fuzz targets and
//! trace replay ([`record`]) drive the very same machines.
//!
//! - [`RoomServer`]: rooms mode. TCRP over TCP ([`wire::tcrp`]) hands out [`Token`]s; UDP
//!   datagrams ([`wire::room_datagram`]) carry the chat; members are evicted when idle or
//!   unreachable; the room closes when its host leaves.
//! - [`RelayServer`]: relay mode, one global room ([`wire::relay_datagram`]).
//! - [`AnyServer`]: either one, for a driver that need not know which.
//! - [`client`]: the client side of both, shared by the CLI and the simulator.
//! - [`invariants`]: what must hold after every step, checked by every driver in tests.
//!
//! Layers, bottom up: [`wire`] (pure codecs), [`names`], [`token`], [`password`],
//! [`source`] (what the per-source limits count under);
//! then the servers ([`rooms`], [`relay`]) on one output queue, liveness rule and
//! [`timers`]; [`machine`] on top. The exact wire format is in `docs/PROTOCOL.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod arena;
pub mod client;
pub mod cluster;
pub mod config;
pub mod hash;
pub mod input;
pub mod invariants;
mod liveness;
pub mod machine;
pub mod names;
mod outbox;
pub mod output;
pub mod password;
pub mod probe;
pub mod rate;
pub mod record;
pub mod relay;
pub mod rooms;
pub mod source;
pub(crate) mod source_members;
pub mod stats;
mod throttle;
pub mod timers;
pub mod token;
pub mod wire;

pub use config::{Config, ConfigError};
pub use input::{Input, SendFailure};
pub use invariants::InvariantViolation;
pub use machine::{AnyServer, Machine, Protocol};
pub use output::{ConnId, DropReason, Event, Output, ShedReason};
pub use relay::RelayServer;
pub use rooms::{canonical_ip, Counts, MemberInfo, RoomServer};
pub use source::Source;
pub use stats::Stats;
pub use token::Token;
pub use wire::tcrp::{Operation, State, Status};
