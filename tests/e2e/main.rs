//! End-to-end tests over real loopback sockets, for both server runtimes.
//!
//! Servers run in-process on port 0 ([`common::TestServer`]), clients are the real
//! `ocm_smol::client` ([`common::TestClient`]), the raw-bytes tests speak TCRP and UDP
//! from the protocol document alone ([`common::raw`]), and `cli` runs the built `ocm`
//! binary as child processes. Every wait is bounded ([`common::WAIT`]); a broken
//! server fails a test in seconds instead of hanging it.
//!
//! The hostile-client tests (`slowloris`, `flood`, `tokens`, `bad_input`, `answered`,
//! `fd_limit`, `sources`, `request_budget`) attack the server the way the Internet will
//! and assert what must hold; each is bounded in count and time and prints what it
//! measured (run with `--nocapture` to see it).
//!
//! Each test is a function taking a [`common::Runtime`]; `on_both_runtimes!` makes a
//! `#[test]` of it for smol and one for async-std.

mod common;

mod answered;
mod bad_input;
mod busy_udp;
mod chat_client;
mod cli;
mod cluster;
mod eviction;
mod fd_limit;
mod flood;
mod ipv6;
mod metrics;
mod raw_bytes;
mod record;
mod relay;
mod request_budget;
mod rooms;
mod shutdown;
mod slowloris;
mod sources;
mod stall;
mod terminal;
mod tokens;
