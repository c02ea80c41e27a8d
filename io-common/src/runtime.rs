//! [`Shell`]: an [`Endpoint`] run on an executor of the shell's choosing.
//!
//! All that differs between the smol and async-std shells is where a task is spawned (the
//! cluster link's, in cluster mode: the owner loop itself needs no executor); a shell
//! says that by implementing [`Runtime`] and names its server `ocm_io::Shell<ItsRuntime>`.

use crate::{fd_limit, Endpoint, Inspector, Options, Protocol};
use futures_lite::future::Future;
use ocm_cluster::redis::{RedisPublisher, RedisRegistry, RedisSubscriber};
pub use ocm_cluster::Task;
use ocm_cluster::{ClusterLink, LinkConfig};
use ocm_core::Stats;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;

/// An executor: where the cluster link's tasks run (the owner loop runs on the thread
/// that calls [`Shell::run_blocking`], in its own poller).
pub trait Runtime: 'static {
    /// Runs `task` in the background, detached.
    fn spawn(task: Task);
}

/// A bound server, not yet running, for the runtime `R`.
#[derive(Debug)]
pub struct Shell<R> {
    endpoint: Endpoint,
    runtime: PhantomData<fn() -> R>,
}

impl<R: Runtime> Shell<R> {
    /// Binds the UDP socket (and, in rooms mode, the TCP listener) and seeds the core
    /// from OS entropy. Errors name the address that could not be bound.
    ///
    /// In rooms mode the connection limit is first fitted to the file descriptor limit
    /// ([`fd_limit::fit`]: the soft limit raised if it can be, `max_handshakes` lowered
    /// if it must be, with a warning).
    pub fn bind(options: &Options) -> io::Result<Shell<R>> {
        let mut options = options.clone();
        if options.protocol == Protocol::Rooms {
            fd_limit::fit(&mut options.config);
        }
        Ok(Shell {
            endpoint: Endpoint::bind(&options)?,
            runtime: PhantomData,
        })
    }

    /// The TCP address actually bound (`None` in relay mode).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.endpoint.tcp_addr()
    }

    /// The UDP address actually bound.
    pub fn udp_addr(&self) -> SocketAddr {
        self.endpoint.udp_addr()
    }

    /// Asks the running server questions (see [`Inspector`]).
    pub fn inspector(&self) -> Inspector {
        self.endpoint.inspector()
    }

    /// Serves on this thread until `shutdown` completes (polled with the owner loop's
    /// waker: it may complete on any thread), then tells every member the server is
    /// going, sends those notices, stops accepting and returns the core's counters.
    pub fn run_blocking(self, shutdown: impl Future<Output = ()>) -> io::Result<Stats> {
        let endpoint = self.endpoint;
        let cluster = endpoint.cluster_options().map(|options| {
            let redis = &options.redis;
            tracing::info!(node = %options.node.node, url = %redis.url, lease = ?options.node.lease, "cluster mode");
            ClusterLink::start(
                RedisRegistry::new(redis),
                RedisPublisher::new(redis),
                RedisSubscriber::new(redis),
                LinkConfig::default(),
                R::spawn,
            )
        });
        endpoint.serve(cluster, shutdown)
    }
}
