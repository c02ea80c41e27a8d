//! [`Machine`]: what every server state machine offers its driver, and [`AnyServer`]:
//! either one, chosen at start by [`Protocol`].
//!
//! A driver (a shell, the simulator, a fuzz target, a trace replay) needs nothing but
//! this: feed an [`Input`] with the time, drain the outputs, ask for the next deadline.
//!
//! ```
//! use ocm_core::{Config, Input, Machine, Protocol, AnyServer};
//! use std::time::Instant;
//!
//! let mut server = AnyServer::new(Protocol::Relay, Config::default(), [0; 32]).unwrap();
//! let now = Instant::now();
//! let from = "10.0.0.1:4000".parse().unwrap();
//! server.handle(now, Input::Datagram { from, data: b"\x05alicehello" });
//! while let Some(output) = server.poll_output() {
//!     // carry it out: send the datagram (here, the code alice must echo), log, ...
//!     # let _ = output;
//! }
//! // then sleep until server.poll_timeout() or the next input
//! # assert_eq!(server.stats().challenges, 1);
//! ```

use crate::config::{Config, ConfigError};
use crate::input::Input;
use crate::invariants::InvariantViolation;
use crate::output::Output;
use crate::relay::RelayServer;
use crate::rooms::{Counts, RoomServer};
use crate::stats::Stats;
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::Instant;

/// A server state machine, driven by its shell.
pub trait Machine {
    /// Handles one input at `now`; what it causes is queued for [`Machine::poll_output`].
    fn handle(&mut self, now: Instant, input: Input<&[u8]>);
    /// The next thing to do, until `None`.
    fn poll_output(&mut self) -> Option<Output>;
    /// The datagrams at the front of the queue, up to `max`, as [`Output::Datagram`]'s
    /// destination and payload, stopping at the first output of another kind: the same
    /// outputs in the same order as [`Machine::poll_output`] would give, left where they
    /// are queued, so that a shell sends them from there (no move, no call per
    /// datagram) and then says how many went with [`Machine::datagrams_sent`]. Empty
    /// when the next output is not a datagram (or there is none, or `max` is 0), which
    /// `poll_output` then gives. It may be fewer than the run holds. The default is
    /// always empty, which is always correct (the caller polls instead).
    fn front_datagrams(&self, max: usize) -> &[(SocketAddr, Bytes)] {
        let _ = max;
        &[]
    }
    /// The first `n` datagrams [`Machine::front_datagrams`] gave are done with (sent, or
    /// their failure is the shell's to report): taken off the queue and dropped. At most
    /// as many as it gave.
    fn datagrams_sent(&mut self, n: usize) {
        debug_assert_eq!(n, 0, "front_datagrams gave none");
    }
    /// When [`Input::Timeout`] should next be fed. Earlier or later is harmless.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The limits in force.
    fn config(&self) -> &Config;
    /// Counters since start.
    fn stats(&self) -> &Stats;
    /// What it holds now.
    fn counts(&self) -> Counts;
    /// Its own bookkeeping checks; a violation is a bug in the server.
    fn check_invariants(&self) -> Result<(), InvariantViolation>;
    /// Every address it may send a datagram to now: the members' known UDP addresses.
    fn member_addrs(&self) -> Vec<SocketAddr>;
}

/// Which protocol a server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Rooms: TCRP over TCP hands out tokens, UDP carries the chat ([`RoomServer`]).
    #[default]
    Rooms,
    /// Relay mode: one global room over UDP only ([`RelayServer`]).
    Relay,
}

impl Protocol {
    /// Both, in a fixed order.
    pub const ALL: [Protocol; 2] = [Protocol::Rooms, Protocol::Relay];

    /// The name used on the command line and in traces.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rooms => "rooms",
            Protocol::Relay => "relay",
        }
    }
}

/// Either server, so a driver need not know which one it runs.
#[derive(Debug)]
pub enum AnyServer {
    /// Rooms mode.
    Rooms(Box<RoomServer>),
    /// Relay mode.
    Relay(Box<RelayServer>),
}

impl AnyServer {
    /// A server for `protocol` with these limits, seeded with `seed` (OS entropy in a real
    /// server, fixed in tests).
    pub fn new(
        protocol: Protocol,
        config: Config,
        seed: [u8; 32],
    ) -> Result<AnyServer, ConfigError> {
        Ok(match protocol {
            Protocol::Rooms => AnyServer::Rooms(Box::new(RoomServer::new(config, seed)?)),
            Protocol::Relay => AnyServer::Relay(Box::new(RelayServer::new(config, seed)?)),
        })
    }

    /// Which protocol it speaks.
    pub fn protocol(&self) -> Protocol {
        match self {
            AnyServer::Rooms(_) => Protocol::Rooms,
            AnyServer::Relay(_) => Protocol::Relay,
        }
    }

    /// The rooms server, if that is what this is.
    pub fn rooms(&self) -> Option<&RoomServer> {
        match self {
            AnyServer::Rooms(server) => Some(server),
            AnyServer::Relay(_) => None,
        }
    }

    /// The relay server, if that is what this is.
    pub fn relay(&self) -> Option<&RelayServer> {
        match self {
            AnyServer::Relay(relay) => Some(relay),
            AnyServer::Rooms(_) => None,
        }
    }

    /// See [`RoomServer::report_drops`].
    pub fn report_drops(&mut self, report: bool) {
        match self {
            AnyServer::Rooms(server) => server.report_drops(report),
            AnyServer::Relay(relay) => relay.report_drops(report),
        }
    }
}

/// `$body` with `$server` the server inside, whichever it is: a `match`, so calls are
/// direct (and small ones inlined), not through a `dyn Machine` on every datagram.
macro_rules! each {
    ($any:expr, $server:ident => $body:expr) => {
        match $any {
            AnyServer::Rooms($server) => $body,
            AnyServer::Relay($server) => $body,
        }
    };
}

impl Machine for AnyServer {
    fn handle(&mut self, now: Instant, input: Input<&[u8]>) {
        each!(self, m => m.handle(now, input))
    }

    fn poll_output(&mut self) -> Option<Output> {
        each!(self, m => m.poll_output())
    }

    fn front_datagrams(&self, max: usize) -> &[(SocketAddr, Bytes)] {
        each!(self, m => m.front_datagrams(max))
    }

    fn datagrams_sent(&mut self, n: usize) {
        each!(self, m => m.datagrams_sent(n))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        each!(self, m => m.poll_timeout())
    }

    fn config(&self) -> &Config {
        each!(self, m => m.config())
    }

    fn stats(&self) -> &Stats {
        each!(self, m => m.stats())
    }

    fn counts(&self) -> Counts {
        each!(self, m => m.counts())
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        each!(self, m => m.check_invariants())
    }

    fn member_addrs(&self) -> Vec<SocketAddr> {
        each!(self, m => m.member_addrs())
    }
}
