//! Fuzz targets, shared by the cargo-fuzz crate in `fuzz/` and the corpus replay test
//! `testkit/tests/fuzz_corpus.rs`, so the assertions live in one place.
//!
//! Each target takes the raw bytes libFuzzer hands it, reads a structured input out of
//! them with [`arbitrary::Unstructured`], drives one part of the core and panics when a
//! property breaks. The inputs implement [`arbitrary::Arbitrary`] with an `encode` that
//! is its exact inverse ([`ops`] writes both from one table for the whole-server
//! inputs), so the seed corpus ([`seeds`]) is written as typed values and turned into
//! bytes, never hand-copied. The whole-server targets step the server through
//! [`ocm_core::invariants::step`], so they check what every driver checks, and add what
//! only a fuzzer can: exact answers for every strange input.
//!
//! | target | drives | properties |
//! |---|---|---|
//! | [`tcrp_stream`] | [`ocm_core::wire::tcrp::FrameDecoder`], arbitrary chunking | no panic; holds at most 32 + 255 + limit bytes; frames re-encode to their bytes; chunking changes nothing |
//! | [`room_datagram`] | [`ocm_core::wire::room_datagram`], room client | no panic; decode → encode gives the same bytes; errors match the sizes |
//! | [`relay_datagram`] | [`ocm_core::wire::relay_datagram`], relay client | same |
//! | [`server_ops`] | a whole [`ocm_core::RoomServer`] | no panic; [`ocm_core::invariants::check_step`] after every input; TCRP answers well formed; refusals exactly at the limits; dropped datagrams change nothing |
//! | [`relay_ops`] | a whole [`ocm_core::RelayServer`] | same, for relay mode |
//!
//! Test code: not part of any supported API.

mod codec;
mod config;
pub mod ops;
mod pools;
mod relay_ops;
mod scenarios;
pub mod seeds;
mod server_ops;
mod server_shell;

pub use codec::{relay_datagram, room_datagram, tcrp_stream, TcrpInput};
pub use config::FuzzConfig;
pub use ops::{Long, Ops, Short};
pub use relay_ops::{relay_ops, RelayOp, RelayOps};
pub use server_ops::{server_ops, ServerOp, ServerOps};

/// A target: its name (as the fuzz crate and the corpus directories have it) and function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 5] = [
    ("tcrp_stream", tcrp_stream),
    ("room_datagram", room_datagram),
    ("relay_datagram", relay_datagram),
    ("server_ops", server_ops),
    ("relay_ops", relay_ops),
];
