//! What a server shell is asked to run: the protocol, the addresses, the core's limits.

use crate::recorder::RecordOptions;
use ocm_core::{Config, Protocol};
use std::net::SocketAddr;
use std::time::Duration;

/// Default of [`Options::stats_interval`].
pub const DEFAULT_STATS_INTERVAL: Duration = Duration::from_secs(60);

/// A server to start. `Options::default()` gives the documented defaults (TCP `0.0.0.0:8000`,
/// UDP `0.0.0.0:8001`, rooms, `Config::default()`, a stats line every 60 s).
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
    /// How often the one-line traffic summary is logged at info level (`None`: never;
    /// default 60 s). The shell's owner loop needs nothing for it: the [`crate::Driver`]
    /// folds it into its `poll_timeout`.
    pub stats_interval: Option<Duration>,
    /// Record every input the core receives to a trace file (`None`: off, the default).
    pub record: Option<RecordOptions>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            protocol: Protocol::Rooms,
            tcp: SocketAddr::from(([0, 0, 0, 0], 8000)),
            udp: SocketAddr::from(([0, 0, 0, 0], 8001)),
            config: Config::default(),
            stats_interval: Some(DEFAULT_STATS_INTERVAL),
            record: None,
        }
    }
}
