//! [`ClusterLink`]: the owner loop's side of a cluster backend, through bounded
//! channels in both directions, so that nothing the backend does can block the UDP
//! path.
//!
//! Three tasks run on the shell's executor, one per backend part:
//!
//! - registry: takes requests in order, executes each, sends the answer back;
//! - publisher: takes envelopes in order and publishes whatever has queued up as one
//!   batch (one pipeline, in order: a sender's messages keep their order);
//! - subscriber: keeps the subscriptions equal to the rooms the owner named last
//!   ([`ClusterLink::set_rooms`]) and forwards what arrives.
//!
//! The owner never waits: [`ClusterLink::request`] and [`ClusterLink::publish`] use
//! `try_send`, and a full queue is a counted drop (a request dropped this way is
//! answered [`Unavailable::Overloaded`] at once, by the return value). The tasks never
//! wait on the owner either: an answer or a message that finds its channel full is
//! dropped and counted ([`LinkStats`]); the core's registry timeout and the envelope
//! sequence numbers then see it as lost. Answers and bus messages have separate
//! channels, so a flood of chat cannot push out the answer to a create. Dropping the
//! link ends the three tasks.
//!
//! ```text
//! owner loop                       ClusterLink tasks                 backend
//! request(id, req) --try_send-->   registry: execute(req) ---------> Registry
//!            answers() <--try_send-- (id, answer)
//! publish(room, bytes) --try_send-> publisher: batch --------------> Publisher
//! set_rooms(rooms) --------------> subscriber: set_rooms / next ---> Subscriber
//!                bus() <--try_send-- BusEvent
//! ```

use crate::backend::{BusEvent, Publisher, Registry, Subscriber};
use async_channel::{Receiver, Sender, TrySendError};
use bytes::Bytes;
use futures_lite::future;
use ocm_core::cluster::registry::{RegistryAnswer, RegistryRequest, RequestId, Unavailable};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A task for the shell's executor (`ocm_io::Task` too).
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Queue sizes between the owner loop and the backend tasks.
#[derive(Clone, Copy, Debug)]
pub struct LinkConfig {
    /// Registry requests waiting for the registry task (answers: one more).
    pub requests: usize,
    /// Envelopes waiting for the publisher task.
    pub publishes: usize,
    /// Most envelopes in one publish batch.
    pub publish_batch: usize,
    /// Bus messages waiting for the owner loop.
    pub bus: usize,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            requests: 1024,
            publishes: 4096,
            publish_batch: 256,
            bus: 4096,
        }
    }
}

/// What the owner loop hears from the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The request answered.
    pub id: RequestId,
    /// What the registry did, or why there is no answer.
    pub answer: Result<RegistryAnswer, Unavailable>,
}

/// Counters of what went through the link, and what was dropped where.
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Registry requests handed to the registry task.
    pub requests: AtomicU64,
    /// Registry requests the registry task has finished (answered or failed).
    pub answered: AtomicU64,
    /// Registry requests refused because the request queue was full.
    pub requests_dropped: AtomicU64,
    /// Answers dropped because the owner's answer queue was full.
    pub answers_dropped: AtomicU64,
    /// Envelopes queued for the publisher task.
    pub queued: AtomicU64,
    /// Envelopes published.
    pub published: AtomicU64,
    /// Envelopes dropped because the publish queue was full.
    pub publishes_dropped: AtomicU64,
    /// Envelopes the backend failed to publish.
    pub publishes_failed: AtomicU64,
    /// Bus messages that arrived (handed to the owner, or dropped below).
    pub received: AtomicU64,
    /// Bus messages dropped because the owner's bus queue was full.
    pub received_dropped: AtomicU64,
    /// Times the subscriber came back after losing its connection.
    pub reconnects: AtomicU64,
}

impl LinkStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One counter's value now.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The owner loop's handle on the backend tasks.
#[derive(Debug)]
pub struct ClusterLink {
    requests: Sender<(RequestId, RegistryRequest)>,
    publishes: Sender<(Arc<str>, Bytes)>,
    rooms: Arc<Mutex<Vec<Arc<str>>>>,
    rooms_changed: Sender<()>,
    answers: Receiver<Answer>,
    bus: Receiver<BusEvent>,
    stats: Arc<LinkStats>,
}

impl ClusterLink {
    /// Starts the three tasks on `spawn`.
    pub fn start(
        registry: impl Registry,
        publisher: impl Publisher,
        subscriber: impl Subscriber,
        config: LinkConfig,
        mut spawn: impl FnMut(Task),
    ) -> ClusterLink {
        let stats = Arc::new(LinkStats::default());
        let (requests, request_rx) = async_channel::bounded(config.requests.max(1));
        let (answer_tx, answers) = async_channel::bounded(config.requests.max(1) + 1);
        let (publishes, publish_rx) = async_channel::bounded(config.publishes.max(1));
        let (bus_tx, bus) = async_channel::bounded(config.bus.max(1));
        let (rooms_changed, changed_rx) = async_channel::bounded(1);
        let rooms = Arc::new(Mutex::new(Vec::new()));
        spawn(Box::pin(registry_task(
            registry,
            request_rx,
            answer_tx,
            stats.clone(),
        )));
        spawn(Box::pin(publisher_task(
            publisher,
            publish_rx,
            config.publish_batch.max(1),
            stats.clone(),
        )));
        spawn(Box::pin(subscriber_task(
            subscriber,
            rooms.clone(),
            changed_rx,
            bus_tx,
            stats.clone(),
        )));
        ClusterLink {
            requests,
            publishes,
            rooms,
            rooms_changed,
            answers,
            bus,
            stats,
        }
    }

    /// Queues a registry request; its answer comes on [`ClusterLink::answers`]. Never
    /// waits: a full queue refuses it with [`Unavailable::Overloaded`] (counted).
    pub fn request(&self, id: RequestId, request: RegistryRequest) -> Result<(), Unavailable> {
        match self.requests.try_send((id, request)) {
            Ok(()) => {
                LinkStats::add(&self.stats.requests, 1);
                Ok(())
            }
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                LinkStats::add(&self.stats.requests_dropped, 1);
                Err(Unavailable::Overloaded)
            }
        }
    }

    /// Queues an envelope for `room`'s channel. Never waits: false when the queue is
    /// full and it was dropped (counted).
    pub fn publish(&self, room: Arc<str>, payload: Bytes) -> bool {
        let queued = self.publishes.try_send((room, payload)).is_ok();
        let counter = if queued {
            &self.stats.queued
        } else {
            &self.stats.publishes_dropped
        };
        LinkStats::add(counter, 1);
        queued
    }

    /// From now on, receive the channels of exactly these rooms. Never waits, never
    /// lost: the subscriber task reads the latest set when it gets to it.
    pub fn set_rooms(&self, mut rooms: Vec<Arc<str>>) {
        rooms.sort();
        rooms.dedup();
        *self
            .rooms
            .lock()
            .expect("no task panics holding the room set") = rooms;
        let _ = self.rooms_changed.try_send(());
    }

    /// Answers to registry requests, in the order they were executed.
    pub fn answers(&self) -> &Receiver<Answer> {
        &self.answers
    }

    /// Messages and reconnections of the bus.
    pub fn bus(&self) -> &Receiver<BusEvent> {
        &self.bus
    }

    /// The counters.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Waits until every request and envelope queued so far has been carried out (or
    /// failed), for at most `limit`: what a node does before it exits, so that the
    /// closing of its rooms reaches the other nodes. True if all went.
    pub async fn flush(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let s = &self.stats;
            let done = LinkStats::get(&s.answered) == LinkStats::get(&s.requests)
                && LinkStats::get(&s.published) + LinkStats::get(&s.publishes_failed)
                    == LinkStats::get(&s.queued);
            if done {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            async_io::Timer::after(std::time::Duration::from_millis(5)).await;
        }
    }
}

async fn registry_task(
    mut registry: impl Registry,
    requests: Receiver<(RequestId, RegistryRequest)>,
    answers: Sender<Answer>,
    stats: Arc<LinkStats>,
) {
    while let Ok((id, request)) = requests.recv().await {
        let answer = registry.execute(&request).await;
        LinkStats::add(&stats.answered, 1);
        if answers.try_send(Answer { id, answer }).is_err() {
            LinkStats::add(&stats.answers_dropped, 1);
        }
    }
}

async fn publisher_task(
    mut publisher: impl Publisher,
    queue: Receiver<(Arc<str>, Bytes)>,
    most: usize,
    stats: Arc<LinkStats>,
) {
    let mut batch = Vec::with_capacity(most);
    while let Ok(first) = queue.recv().await {
        batch.push(first);
        while batch.len() < most {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        match publisher.publish(&batch).await {
            Ok(()) => LinkStats::add(&stats.published, n),
            Err(_) => LinkStats::add(&stats.publishes_failed, n),
        }
        batch.clear();
    }
}

async fn subscriber_task(
    mut subscriber: impl Subscriber,
    rooms: Arc<Mutex<Vec<Arc<str>>>>,
    changed: Receiver<()>,
    bus: Sender<BusEvent>,
    stats: Arc<LinkStats>,
) {
    enum Step {
        Changed,
        Stop,
        Event(BusEvent),
    }
    loop {
        let step = future::or(
            async {
                match changed.recv().await {
                    Ok(()) => Step::Changed,
                    Err(_) => Step::Stop,
                }
            },
            async { Step::Event(subscriber.next().await) },
        )
        .await;
        match step {
            Step::Stop => return,
            Step::Changed => {
                let wanted = rooms
                    .lock()
                    .expect("no task panics holding the room set")
                    .clone();
                subscriber.set_rooms(&wanted).await;
            }
            Step::Event(event) => {
                match event {
                    BusEvent::Message { .. } => LinkStats::add(&stats.received, 1),
                    BusEvent::Reconnected { .. } => LinkStats::add(&stats.reconnects, 1),
                }
                if bus.try_send(event).is_err() {
                    LinkStats::add(&stats.received_dropped, 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A registry that never answers.
    struct Silent;

    impl Registry for Silent {
        async fn execute(&mut self, _: &RegistryRequest) -> Result<RegistryAnswer, Unavailable> {
            future::pending().await
        }
    }

    /// A publisher that records its batches.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<String>>>>);

    impl Publisher for Recorder {
        async fn publish(&mut self, batch: &[(Arc<str>, Bytes)]) -> Result<(), Unavailable> {
            let batch = batch
                .iter()
                .map(|(room, payload)| format!("{room}:{}", String::from_utf8_lossy(payload)))
                .collect();
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }

    /// A subscriber with nothing to say.
    struct Quiet;

    impl Subscriber for Quiet {
        async fn set_rooms(&mut self, _: &[Arc<str>]) {}
        async fn next(&mut self) -> BusEvent {
            future::pending().await
        }
    }

    fn lookup() -> RegistryRequest {
        RegistryRequest::Lookup {
            room: "lobby".into(),
        }
    }

    #[test]
    fn a_full_request_queue_refuses_at_once_and_counts() {
        let mut tasks = Vec::new();
        let config = LinkConfig {
            requests: 2,
            ..LinkConfig::default()
        };
        // The tasks are never run: the queue stays exactly as the owner filled it.
        let link = ClusterLink::start(Silent, Recorder::default(), Quiet, config, |t| {
            tasks.push(t)
        });
        assert_eq!(tasks.len(), 3);
        assert_eq!(link.request(RequestId(1), lookup()), Ok(()));
        assert_eq!(link.request(RequestId(2), lookup()), Ok(()));
        assert_eq!(
            link.request(RequestId(3), lookup()),
            Err(Unavailable::Overloaded)
        );
        assert_eq!(LinkStats::get(&link.stats().requests), 2);
        assert_eq!(LinkStats::get(&link.stats().requests_dropped), 1);
    }

    #[test]
    fn publishes_keep_their_order_in_batches_and_overflow_is_counted() {
        let mut tasks = Vec::new();
        let recorder = Recorder::default();
        let config = LinkConfig {
            publishes: 10,
            publish_batch: 4,
            ..LinkConfig::default()
        };
        let link = ClusterLink::start(Silent, recorder.clone(), Quiet, config, |t| tasks.push(t));
        for i in 0..12 {
            let queued = link.publish("lobby".into(), Bytes::from(format!("{i}")));
            assert_eq!(queued, i < 10, "message {i}");
        }
        assert_eq!(LinkStats::get(&link.stats().publishes_dropped), 2);
        let publisher = tasks.remove(1);
        drop(link); // closes the queue once it is drained, so the task ends
        future::block_on(publisher);
        let batches = recorder.0.lock().unwrap().clone();
        let expected: Vec<Vec<String>> = [0..4, 4..8, 8..10]
            .into_iter()
            .map(|r| r.map(|i| format!("lobby:{i}")).collect())
            .collect();
        assert_eq!(batches, expected);
    }

    #[test]
    fn the_subscriber_gets_the_latest_room_set_and_ends_with_the_link() {
        #[derive(Clone, Default)]
        struct Sets(Arc<Mutex<Vec<Vec<Arc<str>>>>>);
        impl Subscriber for Sets {
            async fn set_rooms(&mut self, rooms: &[Arc<str>]) {
                self.0.lock().unwrap().push(rooms.to_vec());
            }
            async fn next(&mut self) -> BusEvent {
                future::pending().await
            }
        }
        let sets = Sets::default();
        let mut tasks = Vec::new();
        let link = ClusterLink::start(
            Silent,
            Recorder::default(),
            sets.clone(),
            LinkConfig::default(),
            |t| tasks.push(t),
        );
        link.set_rooms(vec!["b".into(), "a".into(), "b".into()]);
        link.set_rooms(vec!["c".into(), "a".into()]);
        let subscriber = tasks.remove(2);
        drop(link);
        future::block_on(subscriber);
        // Two changes before the task ran: it saw the latest set, sorted and once.
        let seen = sets.0.lock().unwrap().clone();
        assert_eq!(seen, vec![vec![Arc::from("a"), Arc::from("c")]]);
    }
}
