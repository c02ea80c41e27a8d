//! What a server shell is asked to run: the protocol, the addresses, the core's limits.

use ocm_core::Config;
use std::net::SocketAddr;

/// Which protocol the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Rooms: TCRP over TCP hands out tokens, UDP carries the chat (the spec's stage 2).
    #[default]
    Rooms,
    /// Relay: one global room over UDP only (the spec's stage 1).
    Relay,
}

/// A server to start. `Options::new` gives the documented defaults (TCP `0.0.0.0:8000`,
/// UDP `0.0.0.0:8001`, rooms, `Config::default()`).
#[derive(Clone, Debug)]
pub struct Options {
    /// Rooms or relay.
    pub protocol: Protocol,
    /// TCP listen address (unused in relay mode). Port 0 picks a free one.
    pub tcp: SocketAddr,
    /// UDP address. Port 0 picks a free one.
    pub udp: SocketAddr,
    /// Limits and timeouts of the core.
    pub config: Config,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            protocol: Protocol::Rooms,
            tcp: SocketAddr::from(([0, 0, 0, 0], 8000)),
            udp: SocketAddr::from(([0, 0, 0, 0], 8001)),
            config: Config::default(),
        }
    }
}
