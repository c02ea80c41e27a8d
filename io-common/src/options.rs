//! What a server shell is asked to run: the protocol, the addresses, the core's limits.

use crate::recorder::RecordOptions;
use ocm_cluster::redis::RedisConfig;
use ocm_core::cluster::node::ClusterConfig;
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
    /// Bytes asked of the kernel for the UDP socket's receive and send buffers (default
    /// [`crate::sockbuf::DEFAULT_BUFFER`]; 0 keeps the kernel's defaults).
    pub udp_buffer: usize,
    /// Cluster mode (`docs/CLUSTER.md`): `None`, the default, is a single node that
    /// never contacts Redis.
    pub cluster: Option<ClusterOptions>,
}

/// Where the cluster's Redis is, and this node's place in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The Redis to use as registry and bus.
    pub redis: RedisConfig,
    /// This node's id, lease and registry timeout.
    pub node: ClusterConfig,
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
            udp_buffer: crate::sockbuf::DEFAULT_BUFFER,
            cluster: None,
        }
    }
}
