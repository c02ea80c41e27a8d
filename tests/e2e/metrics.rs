//! The operator endpoints (`ocm_metrics`): `/metrics` scraped by a real HTTP client
//! (`ureq`) and parsed by a real Prometheus text parser (`prometheus-parse`), counters
//! moving with traffic; `/healthz` and `/readyz` answering 200 while the owner loop
//! serves and 503 when it does not; and, through the binary, `--metrics` on the
//! listening line and `--log-format json` lines parsed by `serde_json`.

use crate::common::process::Proc;
use crate::common::{config, raw, Runtime, TestServer, WAIT};
use ocm_core::{Config, Operation};
use ocm_io::{Inspector, Protocol};
use ocm_metrics::{MetricsOptions, MetricsServer};
use prometheus_parse::{Scrape, Value};
use std::net::SocketAddr;
use std::time::Duration;

crate::on_both_runtimes!(
    counters_move_with_a_relayed_message_a_junk_datagram_and_an_eviction,
    health_is_200_while_the_owner_serves_and_503_once_it_stopped,
);

/// A GET within [`WAIT`]: status, content type, body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(WAIT))
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://{addr}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.body_mut().read_to_string().unwrap();
    (status, content_type, body)
}

/// `/metrics`, checked to be 200 in the Prometheus text format, parsed.
pub(crate) fn scrape(addr: SocketAddr) -> Metrics {
    let (status, content_type, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    Metrics(Scrape::parse(lines).expect("the Prometheus text parses"))
}

/// A parsed scrape.
pub(crate) struct Metrics(Scrape);

impl Metrics {
    fn sample(&self, name: &str, label: Option<(&str, &str)>) -> &Value {
        let found =
            self.0.samples.iter().find(|s| {
                s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v))
            });
        &found
            .unwrap_or_else(|| panic!("no {name} {label:?} in the scrape"))
            .value
    }

    /// A counter's value (it must be typed counter, and named `_total`).
    pub(crate) fn counter(&self, name: &str, label: Option<(&str, &str)>) -> f64 {
        assert!(name.ends_with("_total"), "{name}");
        match self.sample(name, label) {
            Value::Counter(v) => *v,
            other => panic!("{name} is not a counter: {other:?}"),
        }
    }

    /// A gauge's value.
    pub(crate) fn gauge(&self, name: &str) -> f64 {
        match self.sample(name, None) {
            Value::Gauge(v) => *v,
            other => panic!("{name} is not a gauge: {other:?}"),
        }
    }

    /// A histogram's cumulative buckets `(le, count)` and its `_count`.
    pub(crate) fn histogram(&self, name: &str) -> (Vec<(f64, f64)>, f64) {
        let buckets = match self.sample(name, None) {
            Value::Histogram(b) => b.iter().map(|h| (h.less_than, h.count)).collect(),
            other => panic!("{name} is not a histogram: {other:?}"),
        };
        let count = match self.sample(&format!("{name}_count"), None) {
            Value::Untyped(v) => *v,
            other => panic!("{name}_count: {other:?}"),
        };
        (buckets, count)
    }
}

fn endpoints(server: &TestServer) -> MetricsServer {
    let addr = "127.0.0.1:0".parse().unwrap();
    let options = MetricsOptions::new(addr, server.tcp, server.udp);
    MetricsServer::start(options, server.inspector()).expect("the endpoints bind")
}

fn counters_move_with_a_relayed_message_a_junk_datagram_and_an_eviction(runtime: Runtime) {
    let config = Config {
        idle_timeout: Duration::from_secs(1),
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let metrics = endpoints(&server);
    let before = scrape(metrics.addr());
    for name in [
        "ocm_datagrams_received_total",
        "ocm_messages_relayed_total",
        "ocm_datagrams_sent_total",
    ] {
        assert_eq!(before.counter(name, None), 0.0, "{name}");
    }
    assert_eq!(before.gauge("ocm_members"), 0.0);
    assert_eq!(before.histogram("ocm_fanout_datagrams").1, 0.0);

    let chatty = |operation, name| {
        let mut options = server.target(operation, "ops", name, None);
        options.keepalive = Duration::from_millis(200);
        server.client(options)
    };
    let host = chatty(Operation::Create, "host");
    let bob = chatty(Operation::Join, "bob");
    let carol = chatty(Operation::Join, "carol");
    host.expect(&["* bob joined", "* carol joined"]);
    bob.expect(&["* carol joined"]);
    // One message, relayed to the other two.
    bob.say("hello");
    host.expect(&["bob: hello"]);
    carol.expect(&["bob: hello"]);
    // A datagram shorter than its own length byte says: dropped as truncated.
    let junk = raw::udp("127.0.0.1").unwrap();
    junk.send_to(&[200], server.udp).unwrap();
    server.until("the junk was counted", |d| d.stats().dropped_total() >= 1);
    let during = scrape(metrics.addr());
    assert_eq!(during.gauge("ocm_rooms"), 1.0);
    assert_eq!(during.gauge("ocm_members"), 3.0);
    assert_eq!(
        during.counter("ocm_handshakes_total", Some(("status", "ok"))),
        3.0
    );
    assert_eq!(during.counter("ocm_messages_relayed_total", None), 1.0);
    assert_eq!(
        during.counter("ocm_datagrams_dropped_total", Some(("reason", "truncated"))),
        1.0
    );
    assert_eq!(
        during.counter(
            "ocm_datagrams_dropped_total",
            Some(("reason", "unknown_token"))
        ),
        0.0
    );
    let (buckets, count) = during.histogram("ocm_fanout_datagrams");
    assert_eq!(count, 1.0, "one message fanned out");
    let at = |le: f64| buckets.iter().find(|(b, _)| *b == le).unwrap().1;
    assert_eq!(
        (at(1.0), at(2.0)),
        (0.0, 1.0),
        "to two receivers: {buckets:?}"
    );
    let (_, turns) = during.histogram("ocm_owner_step_seconds");
    assert!(turns > 0.0, "the owner loop's turns are timed");
    assert!(
        during.counter("ocm_datagrams_received_total", None)
            > before.counter("ocm_datagrams_received_total", None)
    );

    // A member that never speaks again after joining: evicted as idle after a
    // second, and counted by reason.
    let silent = {
        let mut options = server.target(Operation::Join, "ops", "silent", None);
        options.keepalive = Duration::from_secs(60);
        server.client(options)
    };
    host.expect(&["* silent joined", "* silent was disconnected"]);
    silent.expect(&["* disconnected: idle for 1 s, join again"]);
    let after = scrape(metrics.addr());
    assert_eq!(
        after.counter("ocm_evictions_total", Some(("reason", "idle"))),
        1.0
    );
    assert_eq!(
        after.counter("ocm_evictions_total", Some(("reason", "send_failures"))),
        0.0
    );
    assert_eq!(after.gauge("ocm_members"), 3.0);
    // The scrape says what the core says.
    let stats = server.ask(|d| d.stats().clone());
    assert_eq!(
        after.counter("ocm_messages_relayed_total", None),
        stats.messages_relayed as f64
    );
    assert_eq!(
        after.counter("ocm_handshakes_total", Some(("status", "ok"))),
        stats.handshakes(ocm_core::Status::Ok) as f64
    );
    drop((bob, carol, host));
}

fn health_is_200_while_the_owner_serves_and_503_once_it_stopped(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let metrics = endpoints(&server);
    let (status, _, body) = get(metrics.addr(), "/healthz");
    assert_eq!((status, body.lines().count()), (200, 1), "{body}");
    assert!(body.starts_with("ok: owner loop answered in"), "{body}");
    let (status, _, body) = get(metrics.addr(), "/readyz");
    assert_eq!(status, 200, "{body}");
    let bound = format!("ready: tcp={} udp={} bound\n", server.tcp(), server.udp);
    assert_eq!(body, bound);
    assert_eq!(get(metrics.addr(), "/nothing").0, 404);

    server.stop();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, body) = get(metrics.addr(), path);
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body, "server stopped: owner loop gone\n", "{path}");
    }
}

/// An owner loop that never answers (here: nobody serves the inspector's channel) is
/// unhealthy once the bound has passed, whatever the bound.
#[test]
fn an_owner_that_does_not_answer_within_the_bound_is_unhealthy() {
    let (inspector, _questions) = Inspector::new();
    let udp = "127.0.0.1:9".parse().unwrap();
    let mut options = MetricsOptions::new("127.0.0.1:0".parse().unwrap(), None, udp);
    options.bound = Duration::from_millis(100);
    let metrics = MetricsServer::start(options, inspector).unwrap();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, body) = get(metrics.addr(), path);
        assert_eq!(status, 503, "{path}");
        assert_eq!(body, "owner loop did not answer within 100ms\n", "{path}");
    }
}

/// The binary: `--metrics` puts the bound address on the listening line, and with
/// `--log-format json` every stderr line is one JSON object with the usual fields.
#[cfg(unix)]
#[test]
fn the_binary_serves_metrics_and_logs_json_lines() {
    for runtime in ["smol", "async-std"] {
        let args = [
            "server",
            "--runtime",
            runtime,
            "--tcp",
            "127.0.0.1:0",
            "--udp",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ];
        let mut server = Proc::spawn(&args);
        let line = server.line();
        let metrics: SocketAddr = line
            .split(' ')
            .find_map(|f| f.strip_prefix("metrics="))
            .unwrap_or_else(|| panic!("metrics= in {line:?}"))
            .parse()
            .unwrap();
        assert!(line.starts_with("listening tcp="), "{line}");
        assert_eq!(get(metrics, "/healthz").0, 200);
        let scraped = scrape(metrics);
        assert_eq!(scraped.gauge("ocm_rooms"), 0.0);
        server.terminate();
        assert_eq!(server.exit_code(), 0);
        let lines = server.stderr_lines();
        let messages: Vec<String> = lines
            .iter()
            .map(|line| {
                let object: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                assert!(object["timestamp"].is_string(), "{line}");
                assert!(object["level"].is_string(), "{line}");
                assert!(object["target"].is_string(), "{line}");
                object["fields"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert!(
            messages.iter().any(|m| m.starts_with("metrics on http://")),
            "{runtime}: {messages:?}"
        );
        assert!(
            messages.iter().any(|m| m == "shutting down"),
            "{runtime}: {messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("stopped; stats: received=")),
            "{runtime}: {messages:?}"
        );
    }
}
