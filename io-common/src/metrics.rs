//! [`Telemetry`]: what the owner loop measures beside the core's counters, and
//! [`Snapshot`], everything an operator endpoint shows, copied out in one go.
//!
//! The core already counts (`ocm_core::Stats`) and can say what it holds
//! (`ocm_core::Counts`); the shell adds what only it sees: how long each turn of the
//! owner loop takes, how many datagrams one received message fans out to, evictions by
//! reason (from the core's events), and in cluster mode how long the registry takes to
//! answer. All of it lives in plain integers inside the [`crate::Driver`], touched only
//! by the owner loop, so recording costs an add and a comparison or two, no lock and no
//! atomic.
//!
//! Reading: an [`crate::Inspector`] asks the owner for [`crate::Driver::snapshot`],
//! which copies a few hundred bytes between two turns. A scraper never holds anything
//! the owner waits for, and the owner pays for a snapshot only when one is asked for.
//!
//! ```text
//! let snapshot = inspector.inspect(|d| d.snapshot()).await;   // Option<Snapshot>
//! ```

use ocm_core::cluster::registry::Unavailable;
use ocm_core::wire::notice::EvictReason;
use ocm_core::{Counts, Event, Stats};
use std::time::{Duration, Instant};

/// Upper bounds of the fan-out histogram's buckets: datagrams sent for one message.
pub const FANOUT_BOUNDS: [u64; 12] = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Upper bounds of the owner loop's turn histogram, in nanoseconds (1 µs to 100 ms).
pub const STEP_BOUNDS_NS: [u64; 16] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
];

/// Upper bounds of the registry latency histogram, in nanoseconds (100 µs to 5 s).
pub const REGISTRY_BOUNDS_NS: [u64; 12] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// A histogram of integer observations over fixed bucket bounds (`value <= bound`);
/// values above the last bound count only in `count` and `sum` (the `+Inf` bucket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram<const N: usize> {
    /// Each bucket's upper bound, ascending.
    pub bounds: [u64; N],
    /// Observations per bucket (not cumulative).
    pub buckets: [u64; N],
    /// All observations.
    pub count: u64,
    /// Sum of all observations.
    pub sum: u64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram over `bounds`.
    pub const fn new(bounds: [u64; N]) -> Histogram<N> {
        Histogram {
            bounds,
            buckets: [0; N],
            count: 0,
            sum: 0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, value: u64) {
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
        let i = self.bounds.partition_point(|&bound| bound < value);
        if let Some(bucket) = self.buckets.get_mut(i) {
            *bucket += 1;
        }
    }

    /// `(bound, observations <= bound)` for each bucket, as Prometheus wants them.
    pub fn cumulative(&self) -> [(u64, u64); N] {
        let mut total = 0;
        std::array::from_fn(|i| {
            total += self.buckets[i];
            (self.bounds[i], total)
        })
    }
}

/// Evictions by reason, in [`EVICT_REASONS`] order.
pub const EVICT_REASONS: [&str; 3] = ["idle", "send_failures", "never_registered"];

/// Registry errors by kind, in [`REGISTRY_ERRORS`] order.
pub const REGISTRY_ERRORS: [&str; 3] = ["timeout", "down", "overloaded"];

/// What the owner loop measures itself; kept in the [`crate::Driver`].
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// Datagrams sent per chat message received and relayed here.
    pub fanout: Histogram<12>,
    /// Nanoseconds per turn of the owner loop that did not wait.
    pub step: Histogram<16>,
    /// Turns that began by waiting for a datagram in the UDP socket rather than in the
    /// poller (datagrams kept coming; `crate::udp::UdpPath::wait`).
    pub socket_waits: u64,
    /// Members evicted, by reason ([`EVICT_REASONS`]).
    pub evictions: [u64; 3],
    /// Cluster mode: nanoseconds from a registry request to its answer.
    pub registry_latency: Histogram<12>,
    /// Cluster mode: registry requests that failed, by kind ([`REGISTRY_ERRORS`]).
    pub registry_errors: [u64; 3],
    /// Cluster mode: whether the latest registry answer was an error (`None`: none yet).
    pub registry_failing: Option<Unavailable>,
    /// Cluster mode: a registry answer has arrived since start.
    pub registry_answered: bool,
    /// Cluster mode: when each request still unanswered was sent.
    pub(crate) pending: std::collections::HashMap<u64, Instant>,
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry {
            fanout: Histogram::new(FANOUT_BOUNDS),
            step: Histogram::new(STEP_BOUNDS_NS),
            socket_waits: 0,
            evictions: [0; 3],
            registry_latency: Histogram::new(REGISTRY_BOUNDS_NS),
            registry_errors: [0; 3],
            registry_failing: None,
            registry_answered: false,
            pending: Default::default(),
        }
    }
}

/// The core's relay counters before an input, to see what the input fanned out to.
#[derive(Clone, Copy, Debug)]
pub struct FanoutMark {
    relayed: u64,
    sent: u64,
}

impl FanoutMark {
    /// The counters now.
    pub fn of(stats: &Stats) -> FanoutMark {
        FanoutMark {
            relayed: stats.messages_relayed,
            sent: stats.datagrams_sent,
        }
    }
}

impl Telemetry {
    /// After one datagram input: if it was a relayed message, how many datagrams it
    /// became (everything the core emitted for it, notices included).
    pub fn fanout(&mut self, before: FanoutMark, after: &Stats) {
        if after.messages_relayed > before.relayed {
            self.fanout
                .observe(after.datagrams_sent.saturating_sub(before.sent));
        }
    }

    /// One turn of the owner loop took `took`.
    pub fn step(&mut self, took: Duration) {
        self.step
            .observe(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// A core event went by (the shell counts what the core only reports).
    pub fn event(&mut self, event: &Event) {
        if let Event::MemberEvicted { reason, .. } = event {
            let i = match reason {
                EvictReason::Idle(_) => 0,
                EvictReason::SendFailures(_) => 1,
                EvictReason::NeverRegistered(_) => 2,
            };
            self.evictions[i] += 1;
        }
    }

    /// Cluster mode: registry request `id` went out at `now`.
    pub fn registry_sent(&mut self, id: u64, now: Instant) {
        // An answer the link dropped never comes (the core times the request out): keep
        // the table bounded by forgetting requests older than any registry timeout.
        if self.pending.len() >= PENDING_LIMIT {
            self.pending
                .retain(|_, sent| now.saturating_duration_since(*sent) < PENDING_AGE);
        }
        self.pending.insert(id, now);
    }

    /// A copy of what was measured, without the table of requests in flight.
    pub fn measured(&self) -> Telemetry {
        Telemetry {
            fanout: self.fanout.clone(),
            step: self.step.clone(),
            socket_waits: self.socket_waits,
            evictions: self.evictions,
            registry_latency: self.registry_latency.clone(),
            registry_errors: self.registry_errors,
            registry_failing: self.registry_failing,
            registry_answered: self.registry_answered,
            pending: Default::default(),
        }
    }

    /// Cluster mode: the answer to `id` came at `now`, an error or not.
    pub fn registry_answered(&mut self, id: u64, now: Instant, error: Option<Unavailable>) {
        if let Some(sent) = self.pending.remove(&id) {
            let took = now.saturating_duration_since(sent);
            self.registry_latency
                .observe(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
        if let Some(error) = error {
            let i = match error {
                Unavailable::Timeout => 0,
                Unavailable::Down => 1,
                Unavailable::Overloaded => 2,
            };
            self.registry_errors[i] += 1;
        }
        self.registry_failing = error;
        self.registry_answered = true;
    }
}

/// Requests in flight past which old ones are forgotten.
const PENDING_LIMIT: usize = 4096;

/// Older than this, a request is no longer waited for (registry timeouts are seconds).
const PENDING_AGE: Duration = Duration::from_secs(60);

/// The cluster link's counters, copied.
pub fn link_counts(link: &ocm_cluster::ClusterLink) -> LinkCounts {
    let s = link.stats();
    let get = ocm_cluster::LinkStats::get;
    LinkCounts {
        counters: vec![
            (
                "cluster_registry_requests",
                "Registry requests handed to the registry task.",
                get(&s.requests),
            ),
            (
                "cluster_registry_finished",
                "Registry requests the registry task finished (answered or failed).",
                get(&s.answered),
            ),
            (
                "cluster_registry_requests_dropped",
                "Registry requests refused because the request queue was full.",
                get(&s.requests_dropped),
            ),
            (
                "cluster_registry_answers_dropped",
                "Registry answers dropped because the owner's answer queue was full.",
                get(&s.answers_dropped),
            ),
            (
                "cluster_bus_queued",
                "Envelopes queued for the publisher task.",
                get(&s.queued),
            ),
            (
                "cluster_bus_published",
                "Envelopes published to the bus.",
                get(&s.published),
            ),
            (
                "cluster_bus_publish_dropped",
                "Envelopes dropped because the publish queue was full.",
                get(&s.publishes_dropped),
            ),
            (
                "cluster_bus_publish_failed",
                "Envelopes the backend failed to publish.",
                get(&s.publishes_failed),
            ),
            (
                "cluster_bus_received",
                "Bus messages that arrived from other nodes.",
                get(&s.received),
            ),
            (
                "cluster_bus_received_dropped",
                "Bus messages dropped because the owner's bus queue was full.",
                get(&s.received_dropped),
            ),
            (
                "cluster_bus_reconnects",
                "Times the bus subscriber came back after losing its connection.",
                get(&s.reconnects),
            ),
        ],
    }
}

/// The cluster link's own counters (`ocm_cluster::LinkStats`), copied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// `(name, help, value)` for each counter, in a fixed order.
    pub counters: Vec<(&'static str, &'static str, u64)>,
}

/// Everything the operator endpoints show, copied out of the owner loop at once.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The core's counters since start.
    pub stats: Stats,
    /// What the core holds now.
    pub counts: Counts,
    /// What the shell measured.
    pub telemetry: Telemetry,
    /// Cluster mode: the link's counters (`None` for a single node).
    pub link: Option<LinkCounts>,
    /// Cluster mode: the core's cluster counters (`None` for a single node).
    pub cluster: Option<ocm_core::rooms::ClusterStats>,
    /// Cluster mode: the node is registered (a renewal succeeded since start or its last
    /// fence); `None` for a single node.
    pub registered: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_puts_each_value_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::new([1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        assert_eq!(h.buckets, [2, 1, 2]);
        assert_eq!(h.count, 7);
        assert_eq!(h.sum, 115);
        // 5 and 100 are only in +Inf (count).
        assert_eq!(h.cumulative(), [(1, 2), (2, 3), (4, 5)]);
    }

    #[test]
    fn only_a_relayed_message_is_a_fanout() {
        let mut t = Telemetry::default();
        let mut stats = Stats::default();
        let before = FanoutMark::of(&stats);
        stats.datagrams_sent = 1; // a keepalive's answer, say
        t.fanout(before, &stats);
        assert_eq!(t.fanout.count, 0);
        let before = FanoutMark::of(&stats);
        stats.messages_relayed = 1;
        stats.datagrams_sent = 4;
        t.fanout(before, &stats);
        assert_eq!((t.fanout.count, t.fanout.sum), (1, 3));
        assert_eq!(t.fanout.buckets[3], 1, "3 is in the <= 4 bucket");
    }

    #[test]
    fn registry_answers_are_timed_and_errors_counted_by_kind() {
        let mut t = Telemetry::default();
        let t0 = Instant::now();
        t.registry_sent(7, t0);
        t.registry_answered(7, t0 + Duration::from_millis(3), None);
        assert_eq!(t.registry_latency.count, 1);
        assert_eq!(t.registry_latency.sum, 3_000_000);
        assert!(t.pending.is_empty());
        t.registry_answered(8, t0, Some(Unavailable::Down));
        assert_eq!(t.registry_errors, [0, 1, 0]);
        assert_eq!(t.registry_failing, Some(Unavailable::Down));
        assert_eq!(t.registry_latency.count, 1, "an unknown id is not timed");
    }
}
