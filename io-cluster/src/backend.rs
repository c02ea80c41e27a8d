//! The two interfaces a cluster backend implements: a [`Registry`] and a bus
//! ([`Publisher`] and [`Subscriber`]). Redis implements them in [`crate::redis`]; a
//! NATS backend (JetStream key-value for the registry, core NATS subjects for the bus)
//! would implement the same three traits and nothing else would change.
//!
//! The shapes follow what a broker can promise: a registry request is one atomic step
//! with an answer ([`ocm_core::cluster::registry`] specifies each), the bus is
//! at-most-once fan-out per room, in publish order per publisher, and a subscriber that
//! lost its connection says so ([`BusEvent::Reconnected`]) after it has subscribed
//! again to every room it was asked for. Every call answers within the backend's
//! timeouts; nothing waits for a broker that is down.

use bytes::Bytes;
use ocm_core::cluster::registry::{RegistryAnswer, RegistryRequest, Unavailable};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Room names and membership, with leases.
pub trait Registry: Send + 'static {
    /// Carries out one request as one atomic step.
    fn execute(
        &mut self,
        request: &RegistryRequest,
    ) -> impl Future<Output = Result<RegistryAnswer, Unavailable>> + Send;
}

/// The sending half of the bus.
pub trait Publisher: Send + 'static {
    /// Publishes each `(room, payload)` in order. Err: none, or only some, went out.
    fn publish(
        &mut self,
        batch: &[(Arc<str>, Bytes)],
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
}

/// The receiving half of the bus: one connection subscribed to the rooms asked for.
pub trait Subscriber: Send + 'static {
    /// From now on, the rooms to receive are exactly `rooms` (sorted, no duplicates).
    /// Subscribes and unsubscribes the difference; while disconnected only remembers.
    fn set_rooms(&mut self, rooms: &[Arc<str>]) -> impl Future<Output = ()> + Send;

    /// The next message or event. Reconnects (and subscribes again) by itself.
    /// Cancel-safe: a call dropped before it completes loses nothing but a half-made
    /// connection.
    fn next(&mut self) -> impl Future<Output = BusEvent> + Send;
}

/// What a [`Subscriber`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusEvent {
    /// A payload published for `room`.
    Message {
        /// The room.
        room: Arc<str>,
        /// What was published.
        payload: Bytes,
    },
    /// The connection was lost and is back, subscribed again to every room; whatever
    /// was published in between is gone (the receivers' sequence numbers count it).
    Reconnected {
        /// How long the subscriber was without a connection.
        outage: Duration,
    },
}
