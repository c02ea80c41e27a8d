//! [`Server`]: the shared [`Endpoint`] with its TCP tasks on async-std's executor.

use async_io::Async;
use async_std::task;
use futures_lite::future::Future;
use ocm_core::Stats;
use ocm_io::{Endpoint, Inspector, Options};
use std::io;
use std::net::SocketAddr;

/// A bound server, not yet running.
#[derive(Debug)]
pub struct Server {
    endpoint: Endpoint,
}

impl Server {
    /// Binds the UDP socket (and, in rooms mode, the TCP listener) and seeds the core
    /// from OS entropy. Errors name the address that could not be bound.
    pub fn bind(options: &Options) -> io::Result<Server> {
        Ok(Server {
            endpoint: Endpoint::bind(options)?,
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

    /// Serves until `shutdown` completes, then tells every member the server is going,
    /// sends those notices and returns the core's counters. The acceptor and connection
    /// tasks run on async-std's executor.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<Stats> {
        let mut endpoint = self.endpoint;
        let (tx, rx) = async_channel::bounded(ocm_io::INPUT_QUEUE);
        let acceptor = match endpoint.take_listener() {
            Some(listener) => {
                let accept = ocm_io::tcp::accept(Async::new(listener)?, tx, |job| {
                    task::spawn(job);
                });
                Some(task::spawn(accept))
            }
            None => None,
        };
        let stats = endpoint.serve(rx, shutdown).await;
        if let Some(acceptor) = acceptor {
            acceptor.cancel().await;
        }
        Ok(stats)
    }

    /// [`Server::run`] on the current thread.
    pub fn run_blocking(self, shutdown: impl Future<Output = ()>) -> io::Result<Stats> {
        task::block_on(self.run(shutdown))
    }
}
