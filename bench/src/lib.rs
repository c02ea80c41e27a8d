//! ocm's benchmarks: set-up for the criterion benches of the core ([`fixture`]), and the
//! loopback load tool (`ocm-load`) that measures a real `ocm server` against plain-socket
//! baselines run the same way: the naive raw relay ([`baseline`]), the batched raw relay
//! and the drain loop ([`batched`], over [`mmsg`]), and the minimal TCRP server
//! ([`handshake`]). [`load`] drives fan-out runs, [`junk`] floods with datagrams to drop,
//! [`procfs`] reads a server's CPU time and socket queue, [`profile`] counts what it does
//! (callgrind, perf), [`scrape`] GETs a server's `/metrics` at a fixed rate, [`pin`] keeps a
//! core for the server under test, [`stats`] gives a ratio's mean over runs and its
//! confidence interval.

#![deny(unsafe_code)]

pub mod baseline;
pub mod batched;
pub mod fixture;
pub mod handshake;
pub mod junk;
pub mod load;
pub mod mmsg;
pub mod pin;
pub mod procfs;
pub mod profile;
pub mod scrape;
pub mod stats;

pub use fixture::Fixture;
