//! [`RedisSubscriber`]: one pub/sub connection subscribed to `P:chat:ROOM` for every
//! room the node serves, made again whenever it breaks.
//!
//! A connection is lost when its stream ends (Redis closed it, or restarted) or when a
//! `PING` every [`RedisConfig::ping_interval`] gets no answer within the response
//! timeout (a frozen Redis, a black-holed route). [`Subscriber::next`] then connects
//! again (at most one attempt per [`RedisConfig::retry_after`]), subscribes to every
//! room wanted now, and reports [`BusEvent::Reconnected`] with how long it was without.

use super::keys::Keys;
use super::{within, RedisConfig};
use crate::backend::{BusEvent, Subscriber};
use async_io::Timer;
use bytes::Bytes;
use futures_lite::{future, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use redis::Client;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most channels named in one `SUBSCRIBE` or `UNSUBSCRIBE`.
const CHANNELS_PER_COMMAND: usize = 1000;

/// The receiving half of the bus on Redis.
pub struct RedisSubscriber {
    client: Client,
    keys: Keys,
    connect_timeout: Duration,
    response_timeout: Duration,
    retry_after: Duration,
    ping_interval: Duration,
    wanted: BTreeSet<Arc<str>>,
    conn: Option<Connected>,
    /// Since when there has been no connection (`None` before the first one).
    down_since: Option<Instant>,
    /// No connect attempt before this.
    quiet_until: Option<Instant>,
}

struct Connected {
    sink: PubSubSink,
    stream: PubSubStream,
    subscribed: BTreeSet<Arc<str>>,
    next_ping: Instant,
}

enum Step {
    Message(redis::Msg),
    Closed,
    Ping,
}

impl RedisSubscriber {
    /// A subscriber for `config`; it connects on the first [`Subscriber::next`].
    pub fn new(config: &RedisConfig) -> RedisSubscriber {
        RedisSubscriber {
            client: config.client(),
            keys: Keys::new(&config.prefix),
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
            retry_after: config.retry_after,
            ping_interval: config.ping_interval,
            wanted: BTreeSet::new(),
            conn: None,
            down_since: None,
            quiet_until: None,
        }
    }

    /// True while a connection is up.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn lost(&mut self, why: &str) {
        if self.conn.take().is_some() {
            tracing::warn!("redis: bus connection lost ({why}); reconnecting");
            self.down_since = Some(Instant::now());
        }
    }

    /// Brings the connection's subscriptions to `wanted`. False: the connection broke.
    async fn reconcile(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return true;
        };
        let add: Vec<Arc<str>> = self.wanted.difference(&conn.subscribed).cloned().collect();
        let remove: Vec<Arc<str>> = conn.subscribed.difference(&self.wanted).cloned().collect();
        for chunk in add.chunks(CHANNELS_PER_COMMAND) {
            let channels: Vec<String> = chunk.iter().map(|r| self.keys.channel(r)).collect();
            match within(self.response_timeout, conn.sink.subscribe(channels)).await {
                Some(Ok(())) => conn.subscribed.extend(chunk.iter().cloned()),
                _ => return false,
            }
        }
        for chunk in remove.chunks(CHANNELS_PER_COMMAND) {
            let channels: Vec<String> = chunk.iter().map(|r| self.keys.channel(r)).collect();
            match within(self.response_timeout, conn.sink.unsubscribe(channels)).await {
                Some(Ok(())) => {
                    for room in chunk {
                        conn.subscribed.remove(room);
                    }
                }
                _ => return false,
            }
        }
        true
    }

    async fn connect(&mut self) -> bool {
        if let Some(at) = self.quiet_until {
            Timer::at(at).await;
        }
        let made = within(self.connect_timeout, self.client.get_async_pubsub()).await;
        let Some(Ok(pubsub)) = made else {
            tracing::debug!("redis: cannot connect the bus");
            self.quiet_until = Some(Instant::now() + self.retry_after);
            return false;
        };
        let (sink, stream) = pubsub.split();
        self.conn = Some(Connected {
            sink,
            stream,
            subscribed: BTreeSet::new(),
            next_ping: Instant::now() + self.ping_interval,
        });
        if !self.reconcile().await {
            self.conn = None;
            self.quiet_until = Some(Instant::now() + self.retry_after);
            return false;
        }
        self.quiet_until = None;
        true
    }

    fn message(&self, msg: &redis::Msg) -> Option<BusEvent> {
        let channel: Vec<u8> = msg.get_channel().ok()?;
        let channel = std::str::from_utf8(&channel).ok()?;
        let room = self.keys.room_of_channel(channel)?;
        // A message can still arrive for a room just unsubscribed.
        let room = self.wanted.get(room)?.clone();
        Some(BusEvent::Message {
            room,
            payload: Bytes::copy_from_slice(msg.get_payload_bytes()),
        })
    }
}

impl Subscriber for RedisSubscriber {
    async fn set_rooms(&mut self, rooms: &[Arc<str>]) {
        self.wanted = rooms.iter().cloned().collect();
        if !self.reconcile().await {
            self.lost("subscribe failed");
        }
    }

    async fn next(&mut self) -> BusEvent {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                if self.connect().await {
                    if let Some(since) = self.down_since.take() {
                        let outage = since.elapsed();
                        tracing::info!(?outage, "redis: bus connection back, resubscribed");
                        return BusEvent::Reconnected { outage };
                    }
                }
                continue;
            };
            let next_ping = conn.next_ping;
            let step = future::or(
                async {
                    match conn.stream.next().await {
                        Some(msg) => Step::Message(msg),
                        None => Step::Closed,
                    }
                },
                async {
                    Timer::at(next_ping).await;
                    Step::Ping
                },
            )
            .await;
            match step {
                Step::Message(msg) => {
                    if let Some(event) = self.message(&msg) {
                        return event;
                    }
                }
                Step::Closed => self.lost("closed"),
                Step::Ping => {
                    let answered =
                        within(self.response_timeout, conn.sink.ping::<redis::Value>()).await;
                    conn.next_ping = Instant::now() + self.ping_interval;
                    if !matches!(answered, Some(Ok(_))) {
                        self.lost("no answer to ping");
                    }
                }
            }
        }
    }
}
