//! [`RedisPublisher`]: a batch of envelopes as one pipeline of `PUBLISH` commands, in
//! order, on its own multiplexed connection (so registry scripts never wait behind
//! chat traffic, nor chat behind a slow script).

use super::keys::Keys;
use super::{Link, RedisConfig};
use crate::backend::Publisher;
use bytes::Bytes;
use ocm_core::cluster::registry::Unavailable;
use std::sync::Arc;

/// The sending half of the bus on Redis.
pub struct RedisPublisher {
    link: Link,
    keys: Keys,
}

impl RedisPublisher {
    /// A publisher for `config`; it connects on first use.
    pub fn new(config: &RedisConfig) -> RedisPublisher {
        RedisPublisher {
            link: Link::new(config),
            keys: Keys::new(&config.prefix),
        }
    }
}

impl Publisher for RedisPublisher {
    async fn publish(&mut self, batch: &[(Arc<str>, Bytes)]) -> Result<(), Unavailable> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (room, payload) in batch {
            pipe.cmd("PUBLISH")
                .arg(self.keys.channel(room))
                .arg(payload.as_ref())
                .ignore();
        }
        let conn = self.link.get().await?;
        match pipe.query_async::<()>(conn).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.link.failed(&error)),
        }
    }
}
