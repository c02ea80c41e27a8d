//! [`encode`]: a [`Snapshot`] as the Prometheus text format, through `prometheus-client`.
//!
//! The counters live in the owner loop (the core's `Stats`, the shell's `Telemetry`), so
//! the registry here holds no metric of its own: one [`Collector`] turns the copied
//! snapshot into const counters, gauges and histograms at each scrape. Names get the
//! `ocm_` prefix from the registry, `_total` (counters) and `_seconds` (the unit) from
//! the encoder. Every label value comes from an exhaustive `match`, so a new drop reason
//! or status in the core does not compile until it has its label here (and, by the same
//! review, in `docs/METRICS.md`).

use ocm_core::wire::tcrp::Status;
use ocm_core::DropReason;
use ocm_io::metrics::{Histogram, Snapshot, EVICT_REASONS, REGISTRY_ERRORS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::fmt;
use std::time::Duration;

/// The `reason` label of `ocm_datagrams_dropped_total`.
pub fn drop_label(reason: DropReason) -> &'static str {
    match reason {
        DropReason::TooLarge => "too_large",
        DropReason::Truncated => "truncated",
        DropReason::UnknownRoom => "unknown_room",
        DropReason::UnknownToken => "unknown_token",
        DropReason::WrongAddress => "wrong_address",
        DropReason::NotUtf8 => "not_utf8",
        DropReason::BadUsername => "bad_username",
        DropReason::ServerFull => "server_full",
        DropReason::ControlCharacter => "control_character",
        DropReason::RateLimited => "rate_limited",
        DropReason::Unverified => "unverified",
    }
}

/// The `status` label of `ocm_handshakes_total`.
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::RoomExists => "room_exists",
        Status::RoomNotFound => "room_not_found",
        Status::InvalidPassword => "invalid_password",
        Status::UsernameTaken => "username_taken",
        Status::InvalidRequest => "invalid_request",
        Status::PayloadTooLarge => "payload_too_large",
        Status::ServerFull => "server_full",
        Status::TryLater => "try_later",
    }
}

/// The snapshot in the Prometheus text format (version 0.0.4); `copy` is how long the
/// owner loop took to copy it, exported as `ocm_metrics_snapshot_seconds`.
pub fn encode(snapshot: &Snapshot, copy: Duration) -> String {
    let mut registry = Registry::with_prefix("ocm");
    registry.register_collector(Box::new(SnapshotCollector {
        snapshot: snapshot.clone(),
        copy,
    }));
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

/// The `Content-Type` of [`encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Debug)]
struct SnapshotCollector {
    snapshot: Snapshot,
    copy: Duration,
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: usize) -> fmt::Result {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// One counter with one label, a series per `(value, count)`.
fn labelled<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    series: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut metric = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in series {
        let labels = [(label, value)];
        ConstCounter::new(count).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A histogram of integers; dividing a bound or the sum by `per_unit` gives the base unit.
fn histogram<const N: usize>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    h: &Histogram<N>,
    per_unit: f64,
) -> fmt::Result {
    let buckets: Vec<(f64, u64)> = (0..N)
        .map(|i| (h.bounds[i] as f64 / per_unit, h.buckets[i]))
        .collect();
    let mut metric = e.encode_descriptor(name, help, unit, MetricType::Histogram)?;
    metric.encode_histogram::<NoLabelSet>(h.sum as f64 / per_unit, h.count, &buckets, None)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> fmt::Result {
        let s = &self.snapshot.stats;
        let e = &mut e;
        counter(
            e,
            "datagrams_received",
            "Datagrams received, valid or not.",
            s.datagrams_received,
        )?;
        counter(
            e,
            "messages_relayed",
            "Chat messages accepted and relayed, each counted once however many receive it.",
            s.messages_relayed,
        )?;
        counter(
            e,
            "datagrams_sent",
            "Datagrams emitted: relayed lines and notices, one per receiver.",
            s.datagrams_sent,
        )?;
        counter(
            e,
            "keepalives",
            "Empty messages (registrations, keepalives) and members' liveness probes.",
            s.keepalives,
        )?;
        counter(
            e,
            "probes_refused",
            "Liveness probes from no member, answered not a member.",
            s.probes_refused,
        )?;
        labelled(
            e,
            "datagrams_dropped",
            "Datagrams dropped, by reason (rate_limited: over a member's, source's or room's rate).",
            "reason",
            DropReason::ALL.map(|r| (drop_label(r), s.dropped(r))),
        )?;
        labelled(
            e,
            "evictions",
            "Members evicted, by reason.",
            "reason",
            EVICT_REASONS
                .into_iter()
                .zip(self.snapshot.telemetry.evictions),
        )?;
        counter(
            e,
            "send_failures",
            "Sends that failed (refused, or an ICMP error from the socket's error queue).",
            s.send_failures,
        )?;
        counter(
            e,
            "icmp_ignored",
            "ICMP errors ignored because the member had spoken within the ICMP grace.",
            s.icmp_ignored,
        )?;
        counter(
            e,
            "unproven_skipped",
            "Datagrams not sent to a port-step address whose unproven budget was spent.",
            s.unproven_skipped,
        )?;
        counter(
            e,
            "relay_challenges",
            "Relay mode: codes sent to unregistered addresses.",
            s.challenges,
        )?;
        labelled(
            e,
            "handshakes",
            "TCRP requests answered, by status.",
            "status",
            Status::ALL.map(|st| (status_label(st), s.handshakes(st))),
        )?;
        counter(
            e,
            "connections_refused",
            "TCP connections closed at once because a connection limit was reached.",
            s.connections_refused,
        )?;
        counter(
            e,
            "handshake_timeouts",
            "TCP connections closed at the handshake deadline.",
            s.handshake_timeouts,
        )?;
        counter(
            e,
            "connections_displaced",
            "Unfinished TCP connections closed unanswered to make way for a new one at --max-handshakes.",
            s.connections_displaced,
        )?;
        counter(
            e,
            "connections_over_budget",
            "Unfinished TCP connections closed unanswered because all requests together passed --request-budget.",
            s.connections_over_budget,
        )?;

        let c = &self.snapshot.counts;
        gauge(
            e,
            "rooms",
            "Rooms alive (relay mode: 1 while it has clients).",
            c.rooms,
        )?;
        gauge(
            e,
            "members",
            "Members in all rooms (relay mode: its clients).",
            c.members,
        )?;
        gauge(
            e,
            "connections",
            "TCP connections the core holds (in handshake, waiting for the port, or lingering after an answer).",
            c.connections,
        )?;
        gauge(
            e,
            "timers",
            "Timer entries the core holds (live and stale).",
            c.timers,
        )?;
        gauge(
            e,
            "queued_outputs",
            "Outputs the core has queued and the shell not yet taken.",
            c.queued_outputs,
        )?;

        let t = &self.snapshot.telemetry;
        histogram(
            e,
            "fanout_datagrams",
            "Datagrams sent for one chat message received here and relayed.",
            None,
            &t.fanout,
            1.0,
        )?;
        histogram(
            e,
            "owner_step",
            "Time of one turn of the owner loop that did not wait: inputs, timers, sends.",
            Some(&Unit::Seconds),
            &t.step,
            1e9,
        )?;
        counter(
            e,
            "owner_socket_waits",
            "Turns of the owner loop that began by waiting for a datagram in the UDP socket, not in the poller.",
            t.socket_waits,
        )?;
        let copy = ConstGauge::new(self.copy.as_secs_f64());
        copy.encode(e.encode_descriptor(
            "metrics_snapshot",
            "Time the owner loop spent copying the snapshot for this scrape.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?)?;

        if let Some(link) = &self.snapshot.link {
            histogram(
                e,
                "cluster_registry_latency",
                "Cluster mode: time from a registry request to its answer (errors included).",
                Some(&Unit::Seconds),
                &t.registry_latency,
                1e9,
            )?;
            labelled(
                e,
                "cluster_registry_errors",
                "Cluster mode: registry requests that failed, by kind.",
                "kind",
                REGISTRY_ERRORS.into_iter().zip(t.registry_errors),
            )?;
            for (name, help, value) in &link.counters {
                counter(e, name, help, *value)?;
            }
        }
        if let Some(c) = &self.snapshot.cluster {
            let registered = ConstGauge::new(i64::from(self.snapshot.registered == Some(true)));
            registered.encode(e.encode_descriptor(
                "cluster_registered",
                "Cluster mode: 1 while the node is registered (a lease renewal succeeded since start or the last fence).",
                None,
                MetricType::Gauge,
            )?)?;
            for (name, help, value) in [
                ("cluster_envelopes_published", "Cluster mode: envelopes this node published.", c.published),
                ("cluster_envelopes_received", "Cluster mode: envelopes from other nodes delivered to members here.", c.received),
                ("cluster_envelopes_dropped", "Cluster mode: envelopes dropped (malformed, another version, or for no room or epoch here).", c.dropped),
                ("cluster_envelopes_stale", "Cluster mode: envelopes dropped as duplicates or late arrivals.", c.stale),
                ("cluster_envelopes_missed", "Cluster mode: envelopes from other nodes known lost (skipped sequence numbers).", c.missed),
                ("cluster_try_later", "Cluster mode: creates and joins answered TRY_LATER.", c.try_later),
                ("cluster_fenced", "Cluster mode: times this node fenced itself (closed its rooms for want of renewals).", c.fenced),
                ("cluster_rooms_lost", "Cluster mode: rooms closed because their lease was lost or their host's server gone.", c.rooms_lost),
            ] {
                counter(e, name, help, value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocm_io::metrics::{LinkCounts, Snapshot, Telemetry};

    /// docs/METRICS.md is the operator's reference: a metric the endpoint serves and the
    /// reference does not name is a metric nobody can read.
    #[test]
    fn every_metric_served_is_in_the_reference() {
        let snapshot = Snapshot {
            stats: Default::default(),
            counts: Default::default(),
            telemetry: Telemetry::default(),
            link: Some(LinkCounts::default()),
            cluster: Some(Default::default()),
            registered: Some(true),
        };
        let text = encode(&snapshot, Duration::from_micros(2));
        let reference = include_str!("../../docs/METRICS.md");
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(families.len() > 20, "{text}");
        for family in families {
            let counter = format!("`{family}_total`");
            let plain = format!("`{family}`");
            assert!(
                reference.contains(&counter) || reference.contains(&plain),
                "{family} is served but not in docs/METRICS.md"
            );
        }
    }
}
