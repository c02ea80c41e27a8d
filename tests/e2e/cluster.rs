//! Cluster mode over loopback against a real `redis-server` (one private server per
//! test, `ocm_cluster::test_server`; under `CI=true` a Redis that cannot be started
//! fails the test, elsewhere the test is skipped with a line on stderr). Nodes run
//! in-process on their own ports, except the one killed with `kill -9`, which is the
//! `ocm` binary.

use crate::common::{config, Runtime, TestClient, TestServer, WAIT};
use ocm_cluster::redis::RedisConfig;
use ocm_cluster::test_server::{redis_or_skip, RedisServer};
use ocm_core::cluster::node::ClusterConfig;
use ocm_core::cluster::NodeId;
use ocm_core::{Operation, Status};
use ocm_io::{ClusterOptions, Options, Protocol};
use ocm_smol::client::ClientError;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The lease in these tests: a dead host's room closes elsewhere within about 1.25 of it.
const LEASE: Duration = Duration::from_secs(2);

fn cluster_options(redis: &RedisServer, node: &str, lease: Duration) -> ClusterOptions {
    let mut node = ClusterConfig::new(NodeId::new(node).unwrap());
    node.lease = lease;
    node.registry_timeout = Duration::from_millis(500);
    let mut redis = RedisConfig::new(&redis.url()).unwrap();
    redis.response_timeout = Duration::from_millis(400);
    redis.connect_timeout = Duration::from_millis(400);
    redis.retry_after = Duration::from_millis(50);
    redis.ping_interval = Duration::from_millis(200);
    ClusterOptions { redis, node }
}

/// A node on 127.0.0.1, registered in the cluster.
fn node(runtime: Runtime, redis: &RedisServer, name: &str) -> TestServer {
    node_with_lease(runtime, redis, name, LEASE)
}

/// [`node`] with another lease.
fn node_with_lease(
    runtime: Runtime,
    redis: &RedisServer,
    name: &str,
    lease: Duration,
) -> TestServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let options = Options {
        protocol: Protocol::Rooms,
        tcp: addr,
        udp: addr,
        config: config(),
        cluster: Some(cluster_options(redis, name, lease)),
        ..Options::default()
    };
    let server = TestServer::launch(runtime, &options).expect("the node binds");
    server.until(&format!("{name} registered"), |driver| {
        driver.server().rooms().is_some_and(|s| s.cluster_ready())
    });
    server
}

fn refusal(server: &TestServer, operation: Operation, room: &str, name: &str) -> Status {
    match TestClient::start(server.target(operation, room, name, None)) {
        Ok(_) => panic!("{operation:?} {room} as {name} was accepted"),
        Err(ClientError::Refused { status, .. }) => status,
        Err(other) => panic!("not a refusal: {other}"),
    }
}

fn three_nodes_chat_all_ways_and_names_are_unique(runtime: Runtime) {
    let Some(redis) = redis_or_skip("three_nodes_chat_all_ways") else {
        return;
    };
    let nodes = [
        node(runtime, &redis, "n0"),
        node(runtime, &redis, "n1"),
        node(runtime, &redis, "n2"),
    ];
    let alice = nodes[0].create("lobby", "alice");
    let bob = nodes[1].join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    let carol = nodes[2].join("lobby", "carol");
    alice.expect(&["* carol joined"]);
    bob.expect(&["* carol joined"]);
    for (speaker, text, listeners) in [
        (&alice, "from n0", [&bob, &carol]),
        (&bob, "from n1", [&alice, &carol]),
        (&carol, "from n2", [&alice, &bob]),
    ] {
        speaker.say(text);
        for listener in listeners {
            assert_eq!(listener.line(), format!("{}: {text}", speaker.name()));
        }
    }
    assert_eq!(
        refusal(&nodes[1], Operation::Create, "lobby", "dave"),
        Status::RoomExists
    );
    assert_eq!(
        refusal(&nodes[2], Operation::Join, "lobby", "alice"),
        Status::UsernameTaken
    );
    bob.say("/exit");
    alice.expect(&["* bob left"]);
    carol.expect(&["* bob left"]);
    alice.say("/exit");
    carol.expect(&["* room closed: host left"]);
    // The name is free again, on another node, once the release reached Redis.
    let deadline = Instant::now() + WAIT;
    let create = nodes[2].target(Operation::Create, "lobby", "dave", None);
    loop {
        match TestClient::start(create.clone()) {
            Ok(_dave) => break,
            Err(ClientError::Refused {
                status: Status::RoomExists,
                ..
            }) => {
                assert!(Instant::now() < deadline, "the name stayed taken");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(other) => panic!("dave's create: {other}"),
        }
    }
}

fn delivery_resumes_after_a_redis_restart(runtime: Runtime) {
    let Some(mut redis) = redis_or_skip("delivery_resumes_after_a_redis_restart") else {
        return;
    };
    // A restart takes about a second here: a lease of 6 s keeps it well below the
    // half lease after which a node fences itself.
    let lease = Duration::from_secs(6);
    let n0 = node_with_lease(runtime, &redis, "n0", lease);
    let n1 = node_with_lease(runtime, &redis, "n1", lease);
    let alice = n0.create("lobby", "alice");
    let bob = n1.join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    alice.say("before");
    bob.expect(&["alice: before"]);

    redis.restart().expect("redis restarts");
    // Chat on one node never stopped; across nodes it comes back by itself.
    let deadline = Instant::now() + 2 * WAIT;
    let mut n = 0;
    loop {
        n += 1;
        alice.say(&format!("after {n}"));
        if let Some(line) = bob.line_within(Duration::from_millis(200)) {
            assert!(line.starts_with("alice: after "), "{line}");
            break;
        }
        assert!(Instant::now() < deadline, "no delivery after the restart");
    }
    // The restart lost Redis's data: the nodes put the room and both members back,
    // each at its next renewal.
    let deadline = Instant::now() + 2 * WAIT;
    while redis.bulk(&["HGET", "ocm:members:lobby", "bob"]).as_deref() != Some(b"n1") {
        assert!(
            Instant::now() < deadline,
            "bob was not restored: lease {:?}, alice {:?}, n0 {:?}",
            redis
                .bulk(&["GET", "ocm:room:lobby"])
                .map(String::from_utf8),
            redis
                .bulk(&["HGET", "ocm:members:lobby", "alice"])
                .map(String::from_utf8),
            n0.ask(|d| d
                .server()
                .rooms()
                .map(|s| (s.room_names(), s.cluster_stats().cloned()))),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // (A node's first request on a connection Redis dropped may be TRY_LATER.)
    assert_eq!(
        settled(&n1, Operation::Create, "lobby", "zed"),
        Status::RoomExists
    );
    assert_eq!(
        settled(&n0, Operation::Join, "lobby", "bob"),
        Status::UsernameTaken
    );
}

/// The refusal once the node answers other than TRY_LATER.
fn settled(server: &TestServer, operation: Operation, room: &str, name: &str) -> Status {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = refusal(server, operation, room, name);
        if status != Status::TryLater || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_killed_host_node_closes_the_room_elsewhere_within_the_lease(runtime: Runtime) {
    let Some(redis) = redis_or_skip("a_killed_host_node_closes_the_room") else {
        return;
    };
    let lease = LEASE.as_secs().to_string();
    let mut host = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_ocm"))
            .args(["server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
            .args(["--runtime", runtime.flag(), "--cluster", &redis.url()])
            .args(["--node-id", "host-node", "--lease", &lease])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ocm starts"),
    );
    let mut line = String::new();
    BufReader::new(host.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = |key: &str| -> SocketAddr {
        let field = line.split_whitespace().find_map(|f| f.strip_prefix(key));
        field
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
            .parse()
            .unwrap()
    };
    let (tcp, udp) = (addr("tcp="), addr("udp="));
    let n1 = node(runtime, &redis, "n1");
    let mut options = n1.target(Operation::Create, "lobby", "alice", None);
    if let ocm_smol::client::Target::Room { tcp: t, udp: u, .. } = &mut options.target {
        (*t, *u) = (tcp, udp);
    }
    // The binary registers at start; until then a create is TRY_LATER.
    let deadline = Instant::now() + WAIT;
    let alice = loop {
        match TestClient::start(options.clone()) {
            Ok(alice) => break alice,
            Err(ClientError::Refused {
                status: Status::TryLater,
                ..
            }) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(other) => panic!("alice's create: {other}"),
        }
    };
    let bob = n1.join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("hi");
    assert_eq!(alice.line(), "bob: hi");

    host.0.kill().unwrap(); // SIGKILL
    host.0.wait().unwrap();
    let killed = Instant::now();
    assert_eq!(
        bob.line_within(2 * LEASE).as_deref(),
        Some("* room closed: host's server is gone")
    );
    let took = killed.elapsed();
    println!("room closed {took:?} after the kill (lease {LEASE:?})");
    let _carol = n1.create("lobby", "carol");
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

crate::on_both_runtimes!(
    three_nodes_chat_all_ways_and_names_are_unique,
    delivery_resumes_after_a_redis_restart,
    a_killed_host_node_closes_the_room_elsewhere_within_the_lease,
    a_node_reports_its_registry_on_metrics_and_is_not_ready_without_redis,
);

/// `/readyz` is 200 while the node is registered, registry latency and the link's
/// counters are on `/metrics`, and once Redis is gone `/readyz` says 503 (the node
/// still serves: `/healthz` stays 200).
fn a_node_reports_its_registry_on_metrics_and_is_not_ready_without_redis(runtime: Runtime) {
    let Some(mut redis) = redis_or_skip("a_node_reports_its_registry_on_metrics") else {
        return;
    };
    let n0 = node(runtime, &redis, "n0");
    let options = ocm_metrics::MetricsOptions::new("127.0.0.1:0".parse().unwrap(), n0.tcp, n0.udp);
    let metrics = ocm_metrics::MetricsServer::start(options, n0.inspector()).unwrap();
    let (status, _, body) = crate::metrics::get(metrics.addr(), "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.ends_with("bound, registered with the cluster registry\n"),
        "{body}"
    );
    let _alice = n0.create("lobby", "alice");
    let scraped = crate::metrics::scrape(metrics.addr());
    let (_, answered) = scraped.histogram("ocm_cluster_registry_latency_seconds");
    assert!(
        answered >= 2.0,
        "the renewal and the create were timed: {answered}"
    );
    assert!(scraped.counter("ocm_cluster_registry_requests_total", None) >= 2.0);
    assert_eq!(scraped.gauge("ocm_cluster_registered"), 1.0);
    assert_eq!(scraped.counter("ocm_cluster_fenced_total", None), 0.0);
    assert_eq!(
        scraped.counter("ocm_cluster_envelopes_missed_total", None),
        0.0
    );
    assert_eq!(
        scraped.counter("ocm_cluster_registry_errors_total", Some(("kind", "down"))),
        0.0
    );

    redis.stop();
    let deadline = Instant::now() + 2 * WAIT;
    let body = loop {
        let (status, _, body) = crate::metrics::get(metrics.addr(), "/readyz");
        if status == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still ready without Redis: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(body.starts_with("not ready: "), "{body}");
    assert_eq!(crate::metrics::get(metrics.addr(), "/healthz").0, 200);
    let scraped = crate::metrics::scrape(metrics.addr());
    let errors: f64 = ["timeout", "down", "overloaded"]
        .iter()
        .map(|kind| scraped.counter("ocm_cluster_registry_errors_total", Some(("kind", kind))))
        .sum();
    assert!(errors >= 1.0, "the failed renewal was counted");
}
