//! The Redis backend: [`RedisRegistry`] (Lua scripts over one multiplexed connection),
//! [`RedisPublisher`] (pipelined `PUBLISH`) and [`RedisSubscriber`] (a dedicated
//! pub/sub connection that reconnects and resubscribes by itself).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ocm_cluster::redis::{RedisConfig, RedisRegistry};
//! let config = RedisConfig::new("redis://127.0.0.1:6379/0")?;
//! let registry = RedisRegistry::new(&config); // connects on first use
//! # Ok(()) }
//! ```
//!
//! Every command has a response timeout ([`RedisConfig::response_timeout`]) and every
//! connection attempt a connect timeout. After a failed attempt, requests fail at once
//! with [`Unavailable::Down`] for [`RedisConfig::retry_after`] instead of each waiting
//! for a connect of its own: while Redis is down, a create or join is refused in
//! milliseconds, not after a pile of timeouts. The keys are in [`keys`], the scripts
//! in [`scripts`], and both are described in `docs/CLUSTER.md`.

pub mod keys;
mod publisher;
mod registry;
pub mod scripts;
mod subscriber;

pub use publisher::RedisPublisher;
pub use registry::RedisRegistry;
pub use subscriber::RedisSubscriber;

use ocm_core::cluster::registry::Unavailable;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use std::fmt;
use std::time::{Duration, Instant};

/// Where Redis is and how long to wait for it.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://HOST:PORT[/DB]`, checked.
    pub url: String,
    /// Prefix of every key and channel (`ocm`: `ocm:room:lobby`, ...).
    pub prefix: String,
    /// Longest wait for a TCP connection and the handshake.
    pub connect_timeout: Duration,
    /// Longest wait for the answer to one command.
    pub response_timeout: Duration,
    /// After a failed connect, how long requests fail at once before the next attempt.
    pub retry_after: Duration,
    /// How often the subscriber checks its connection with a `PING` (a Redis that is
    /// frozen rather than gone sends no error, only silence).
    pub ping_interval: Duration,
}

/// Why a Redis URL was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlError(String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

impl RedisConfig {
    /// The defaults for `url`, which must be `redis://HOST:PORT[/DB]` (TLS, sockets and
    /// credentials are not supported).
    pub fn new(url: &str) -> Result<RedisConfig, UrlError> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| UrlError(format!("{url:?}: expected redis://HOST:PORT[/DB]")))?;
        if rest.contains('@') || rest.contains('?') {
            return Err(UrlError(format!(
                "{url:?}: credentials and options are not supported, expected redis://HOST:PORT[/DB]"
            )));
        }
        let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
        let port_ok = hostport.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !port_ok {
            return Err(UrlError(format!(
                "{url:?}: expected redis://HOST:PORT[/DB]"
            )));
        }
        if !db.is_empty() && db.parse::<u16>().is_err() {
            return Err(UrlError(format!("{url:?}: the database is a number")));
        }
        Client::open(url).map_err(|e| UrlError(format!("{url:?}: {e}")))?;
        Ok(RedisConfig {
            url: url.to_owned(),
            prefix: "ocm".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            retry_after: Duration::from_millis(250),
            ping_interval: Duration::from_secs(1),
        })
    }

    fn client(&self) -> Client {
        Client::open(self.url.as_str()).expect("checked in RedisConfig::new")
    }
}

/// One multiplexed connection, made on first use and again after it failed.
struct Link {
    client: Client,
    config: AsyncConnectionConfig,
    retry_after: Duration,
    conn: Option<MultiplexedConnection>,
    /// A connect failed: until then, fail at once.
    quiet_until: Option<Instant>,
}

impl Link {
    fn new(config: &RedisConfig) -> Link {
        Link {
            client: config.client(),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(Some(config.response_timeout)),
            retry_after: config.retry_after,
            conn: None,
            quiet_until: None,
        }
    }

    /// The connection, made now if there is none (unless a recent attempt failed).
    async fn get(&mut self) -> Result<&mut MultiplexedConnection, Unavailable> {
        if self.conn.is_none() {
            if self.quiet_until.is_some_and(|t| Instant::now() < t) {
                return Err(Unavailable::Down);
            }
            match self
                .client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await
            {
                Ok(conn) => {
                    self.quiet_until = None;
                    self.conn = Some(conn);
                }
                Err(error) => {
                    tracing::debug!(%error, "redis: cannot connect");
                    self.quiet_until = Some(Instant::now() + self.retry_after);
                    return Err(unavailable(&error));
                }
            }
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// A command failed: a broken or silent connection is dropped, to be made again.
    fn failed(&mut self, error: &RedisError) -> Unavailable {
        if error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
        {
            self.conn = None;
        } else {
            tracing::warn!(%error, "redis: command refused");
        }
        unavailable(error)
    }
}

/// `fut`'s output, or `None` if it takes longer than `limit`.
async fn within<T>(limit: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

fn unavailable(error: &RedisError) -> Unavailable {
    if error.is_timeout() {
        Unavailable::Timeout
    } else {
        Unavailable::Down
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_redis_urls_with_a_port_are_taken() {
        for good in [
            "redis://127.0.0.1:6379",
            "redis://127.0.0.1:6379/",
            "redis://localhost:7000/3",
            "redis://[::1]:6379/0",
        ] {
            assert!(RedisConfig::new(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:6379",
            "rediss://127.0.0.1:6379",
            "redis://127.0.0.1",
            "redis://:6379",
            "redis://127.0.0.1:0",
            "redis://127.0.0.1:99999",
            "redis://127.0.0.1:6379/x",
            "redis://user:pw@127.0.0.1:6379",
            "redis://127.0.0.1:6379?protocol=resp3",
        ] {
            assert!(RedisConfig::new(bad).is_err(), "{bad}");
        }
    }
}
