//! # ocm-testkit
//!
//! The drivers ocm's tests share, so each is written once:
//!
//! - [`Harness`]: a server, a fake clock and what it sent, in memory, with every
//!   property of [`ocm_core::invariants::check_step`] asserted after every input. Core's
//!   integration tests are written against it; the benches build their fixtures with it.
//! - [`fuzz`]: the fuzz targets (called by the one-line binaries in `fuzz/` and by the
//!   corpus replay in `tests/fuzz_corpus.rs`), their input formats and seed corpus.
//!
//! A dev crate: nothing here ships in `ocm`.

pub mod fuzz;
pub mod harness;

pub use harness::{addr, Harness, TcpRecord};
