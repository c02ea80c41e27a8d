//! ocm's benchmarks: set-up for the criterion benches of the core ([`fixture`]), and the
//! loopback load tool (`ocm-load`) that measures a real `ocm server` against a raw-UDP
//! fan-out baseline ([`load`], [`baseline`]).

#![deny(unsafe_code)]

pub mod baseline;
pub mod fixture;
pub mod load;

pub use fixture::Fixture;
