//! # ocm-core
//!
//! The whole ocm chat protocol as deterministic, sans-IO state machines: no sockets, no
//! clocks, no threads, no global randomness. Inputs come in with the time
//! (`handle_*(now, ..)`), outputs are drained (`poll_output`), and the next deadline is
//! asked for (`poll_timeout`). The shells in `io-smol` and `io-asyncstd` move bytes and
//! time; the simulator in `sim` drives the very same machines over a fake network.
//!
//! - [`Server`]: rooms mode. TCRP over TCP ([`tcrp`]) hands out [`Token`]s; UDP
//!   datagrams ([`room_datagram`]) carry the chat; members are evicted when idle or
//!   unreachable; the room closes when its host leaves.
//! - [`RelayServer`]: relay mode, one global room ([`relay_datagram`]).
//! - [`client`]: the client side of both, shared by the CLI and the simulator.
//!
//! The exact wire format is in `docs/PROTOCOL.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod cluster;
pub mod config;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod names;
pub mod notice;
pub mod output;
pub mod password;
pub mod relay;
pub mod relay_datagram;
pub mod request;
pub mod room_datagram;
pub mod server;
pub mod stats;
pub mod tcrp;
pub mod timers;
pub mod token;

pub use config::{Config, ConfigError};
pub use output::{ConnId, DropReason, Event, Output};
pub use relay::RelayServer;
pub use server::{canonical_ip, Counts, InvariantViolation, MemberInfo, Server};
pub use stats::Stats;
pub use tcrp::{Operation, State, Status};
pub use token::Token;
