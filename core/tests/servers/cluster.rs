//! Cluster mode (`docs/CLUSTER.md`): several nodes, one in-memory registry and bus
//! ([`ocm_testkit::ClusterHarness`]), every node's invariants checked after every step.

use ocm_core::cluster::envelope::Envelope;
use ocm_core::{Config, Status};
use ocm_testkit::ClusterHarness;
use std::time::Duration;

const ALICE: &str = "10.0.0.1:5000";
const BOB: &str = "10.0.0.2:5000";
const CAROL: &str = "10.0.0.3:5000";

fn cluster(n: usize) -> ClusterHarness {
    ClusterHarness::new(n, Config::default())
}

/// alice hosts `lobby` on node 0, bob joins through node 1, carol through node 2, and
/// each has registered its address; the tokens.
fn three_way(c: &mut ClusterHarness) -> [bytes::Bytes; 3] {
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    let k = c.join(2, CAROL, "lobby", "carol");
    c.say(2, CAROL, "lobby", &k, "");
    c.take_all();
    [a, b, k]
}

#[test]
fn a_room_created_on_one_node_is_joined_through_others_and_chat_goes_all_ways() {
    let mut c = cluster(3);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    assert_eq!(c.received_by(ALICE), ["* bob joined"]);
    c.say(1, BOB, "lobby", &b, "");
    let k = c.join(2, CAROL, "lobby", "carol");
    assert_eq!(c.received_by(ALICE), ["* carol joined"]);
    assert_eq!(c.received_by(BOB), ["* carol joined"]);
    c.say(2, CAROL, "lobby", &k, "");

    c.say(0, ALICE, "lobby", &a, "hi from a");
    c.say(1, BOB, "lobby", &b, "hi from b");
    c.say(2, CAROL, "lobby", &k, "hi from c");
    assert_eq!(c.received_by(ALICE), ["bob: hi from b", "carol: hi from c"]);
    assert_eq!(c.received_by(BOB), ["alice: hi from a", "carol: hi from c"]);
    assert_eq!(c.received_by(CAROL), ["alice: hi from a", "bob: hi from b"]);
    assert!(c.take_all().is_empty(), "nothing else, nobody twice");
    // Each node serves only its own members.
    for (node, name) in [(0, "alice"), (1, "bob"), (2, "carol")] {
        let members = c.nodes[node].server.members_of("lobby").unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(&*members[0].username, name);
        assert_eq!(members[0].is_host, node == 0, "only alice is a host");
    }
}

#[test]
fn names_are_unique_across_the_cluster() {
    let mut c = cluster(2);
    c.create(0, ALICE, "lobby", "alice");
    assert_eq!(
        c.handshake(1, BOB, true, "lobby", "bob", None),
        Some(Err(Status::RoomExists)),
        "a create on another node of a name that exists"
    );
    assert_eq!(
        c.handshake(1, BOB, false, "lobby", "alice", None),
        Some(Err(Status::UsernameTaken)),
        "a username used on another node"
    );
    assert_eq!(
        c.handshake(1, BOB, false, "nowhere", "bob", None),
        Some(Err(Status::RoomNotFound))
    );
}

#[test]
fn a_password_is_checked_on_the_node_joined_through() {
    let mut c = cluster(2);
    c.handshake(0, ALICE, true, "vault", "alice", Some("s3cret"))
        .unwrap()
        .unwrap();
    assert_eq!(
        c.handshake(1, BOB, false, "vault", "bob", Some("guess")),
        Some(Err(Status::InvalidPassword))
    );
    assert_eq!(
        c.handshake(1, BOB, false, "vault", "bob", None),
        Some(Err(Status::InvalidPassword))
    );
    assert!(c
        .handshake(1, BOB, false, "vault", "bob", Some("s3cret"))
        .unwrap()
        .is_ok());
    // Now node 1 serves the room: the next join there checks with the hash it keeps.
    assert_eq!(
        c.handshake(1, CAROL, false, "vault", "carol", Some("guess")),
        Some(Err(Status::InvalidPassword))
    );
}

#[test]
fn the_members_per_room_limit_holds_across_nodes() {
    let config = Config {
        max_members_per_room: 2,
        ..Config::default()
    };
    let mut c = ClusterHarness::new(3, config);
    c.create(0, ALICE, "lobby", "alice");
    c.join(1, BOB, "lobby", "bob");
    assert_eq!(
        c.handshake(2, CAROL, false, "lobby", "carol", None),
        Some(Err(Status::ServerFull))
    );
}

#[test]
fn a_datagram_at_another_node_is_dropped_never_delivered_twice() {
    let mut c = cluster(3);
    let [_, b, _] = three_way(&mut c);
    // bob's token sent to node 0 (the host's) and node 2: unknown there.
    c.say(0, BOB, "lobby", &b, "wrong door");
    c.say(2, BOB, "lobby", &b, "wrong door");
    assert!(c.take_all().is_empty());
    use ocm_core::{DropReason, Machine};
    for node in [0, 2] {
        let stats = c.nodes[node].server.stats();
        assert_eq!(stats.dropped(DropReason::UnknownToken), 1, "node {node}");
    }
}

#[test]
fn leaving_and_eviction_are_told_on_every_node_and_free_the_name() {
    let config = Config {
        idle_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let mut c = ClusterHarness::new(3, config);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    let k = c.join(2, CAROL, "lobby", "carol");
    c.say(2, CAROL, "lobby", &k, "");
    c.take_all();
    c.say(1, BOB, "lobby", &b, "/exit");
    assert_eq!(c.received_by(ALICE), ["* bob left"]);
    assert_eq!(c.received_by(CAROL), ["* bob left"]);
    assert!(
        c.nodes[1].server.room_names().is_empty(),
        "node 1 serves nobody there now"
    );
    // The name is free again, through any node.
    let b2 = c.join(2, BOB, "lobby", "bob");
    c.say(2, BOB, "lobby", &b2, "");
    c.take_all();
    // carol and bob stay quiet on node 2: both evicted there; alice keeps talking.
    for _ in 0..4 {
        c.advance(Duration::from_secs(10));
        c.say(0, ALICE, "lobby", &a, "");
    }
    assert_eq!(
        c.received_by(CAROL),
        ["* disconnected: idle for 30 s, join again"]
    );
    let told = c.received_by(ALICE);
    assert!(
        told.contains(&"* carol was disconnected".to_owned()),
        "{told:?}"
    );
    assert!(
        told.contains(&"* bob was disconnected".to_owned()),
        "{told:?}"
    );
}

#[test]
fn the_host_leaving_closes_the_room_everywhere_and_frees_the_name() {
    let mut c = cluster(3);
    let [a, ..] = three_way(&mut c);
    c.say(0, ALICE, "lobby", &a, "/exit");
    assert_eq!(c.received_by(BOB), ["* room closed: host left"]);
    assert_eq!(c.received_by(CAROL), ["* room closed: host left"]);
    for node in 0..3 {
        assert!(c.nodes[node].server.room_names().is_empty(), "node {node}");
    }
    assert!(c.registry.holder(c.now, "lobby").is_none(), "released");
    c.create(2, CAROL, "lobby", "carol");
}

#[test]
fn a_dead_hosts_room_closes_elsewhere_within_the_lease() {
    let mut c = cluster(3);
    three_way(&mut c);
    c.kill(0);
    let lease = Duration::from_secs(4);
    // Half a lease: still open (the lease has not run out).
    c.advance(lease / 2);
    assert!(c.take_all().is_empty());
    c.advance(lease / 2 + lease / 4 + Duration::from_millis(200));
    assert_eq!(c.received_by(BOB), ["* room closed: host's server is gone"]);
    assert_eq!(
        c.received_by(CAROL),
        ["* room closed: host's server is gone"]
    );
    assert!(c.registry.holder(c.now, "lobby").is_none());
    c.create(1, BOB, "lobby", "bob");
}

#[test]
fn with_the_registry_down_local_chat_goes_on_creates_wait_then_the_node_fences() {
    let mut c = cluster(2);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let d = c.join(0, "10.0.0.4:5000", "lobby", "dave");
    c.say(0, "10.0.0.4:5000", "lobby", &d, "");
    c.take_all();
    c.registry_up = false;
    assert_eq!(
        c.handshake(1, BOB, true, "den", "bob", None),
        Some(Err(Status::TryLater))
    );
    // No answer at all: TRY_LATER at the registry timeout.
    c.hold_answers = true;
    let conn = c.start_handshake(1, BOB, true, "den", "bob", None);
    assert_eq!(c.finish_handshake(1, conn, true, "den", "bob", None), None);
    c.advance(Duration::from_millis(1100));
    assert_eq!(
        c.finish_handshake(1, conn, true, "den", "bob", None),
        Some(Err(Status::TryLater))
    );
    c.held.clear();
    c.hold_answers = false;
    c.say(0, ALICE, "lobby", &a, "still here");
    assert_eq!(c.received_by("10.0.0.4:5000"), ["alice: still here"]);
    c.advance(Duration::from_secs(2));
    assert_eq!(c.received_by(ALICE), ["* room closed: cluster unreachable"]);
    assert!(c.nodes[0].server.room_names().is_empty());
    assert_eq!(c.nodes[0].server.cluster_stats().unwrap().fenced, 1);
}

#[test]
fn a_create_answered_after_its_timeout_is_released() {
    let mut c = cluster(2);
    c.hold_answers = true;
    let conn = c.start_handshake(0, ALICE, true, "lobby", "alice", None);
    c.advance(Duration::from_millis(1100));
    assert_eq!(
        c.finish_handshake(0, conn, true, "lobby", "alice", None),
        Some(Err(Status::TryLater))
    );
    c.release_held();
    assert!(
        c.registry.holder(c.now, "lobby").is_none(),
        "the late create was undone"
    );
    c.create(1, BOB, "lobby", "bob");
}

#[test]
fn a_room_recreated_under_the_same_name_never_gets_the_old_rooms_traffic() {
    let mut c = cluster(2);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    c.say(0, ALICE, "lobby", &a, "old room");
    let old = c.bus_log.last().unwrap().2.clone();
    c.say(0, ALICE, "lobby", &a, "/exit");
    c.take_all();
    let b = c.create(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    // A late copy of the old room's message reaches node 1.
    c.cluster_input(
        1,
        ocm_core::cluster::node::ClusterInput::Message {
            payload: old.clone(),
        },
    );
    assert!(c.take_all().is_empty());
    let stats = c.nodes[1].server.cluster_stats().unwrap();
    assert_eq!(stats.dropped, 1);
    let old_epoch = Envelope::decode(&old).unwrap().epoch;
    assert_ne!(
        c.nodes[1].server.room_claim("lobby").unwrap().0.epoch,
        old_epoch
    );
}

#[test]
fn an_envelope_delivered_twice_reaches_members_once() {
    let mut c = cluster(2);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    c.take_all();
    c.say(0, ALICE, "lobby", &a, "once");
    assert_eq!(c.received_by(BOB), ["alice: once"]);
    let again = c.bus_log.last().unwrap().2.clone();
    c.cluster_input(
        1,
        ocm_core::cluster::node::ClusterInput::Message { payload: again },
    );
    assert!(c.take_all().is_empty());
    assert_eq!(c.nodes[1].server.cluster_stats().unwrap().stale, 1);
}

#[test]
fn a_lost_envelope_is_counted_and_later_ones_still_arrive_in_order() {
    let mut c = cluster(2);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    c.say(0, ALICE, "lobby", &a, "0");
    c.take_all();
    // Node 1 misses two messages (its subscription was down).
    let subscribed = std::mem::take(&mut c.nodes[1].subscribed);
    c.say(0, ALICE, "lobby", &a, "1");
    c.say(0, ALICE, "lobby", &a, "2");
    c.nodes[1].subscribed = subscribed;
    c.say(0, ALICE, "lobby", &a, "3");
    assert_eq!(c.received_by(BOB), ["alice: 3"]);
    assert_eq!(c.nodes[1].server.cluster_stats().unwrap().missed, 2);
}

/// What the other nodes published before this node served the room was never meant
/// for it: a join through a new node reports no loss (the cluster simulator found the
/// room's whole history counted as lost on every such join).
#[test]
fn what_was_published_before_a_node_served_the_room_is_not_counted_lost() {
    let mut c = cluster(3);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    for text in ["1", "2", "3"] {
        c.say(0, ALICE, "lobby", &a, text);
        c.say(1, BOB, "lobby", &b, text);
    }
    let t = c.join(2, CAROL, "lobby", "carol");
    c.say(2, CAROL, "lobby", &t, "");
    c.take_all();
    c.say(0, ALICE, "lobby", &a, "4");
    c.say(1, BOB, "lobby", &b, "4");
    assert_eq!(c.received_by(CAROL), ["alice: 4", "bob: 4"]);
    assert_eq!(c.nodes[2].server.cluster_stats().unwrap().missed, 0);
}

#[test]
fn a_graceful_shutdown_of_the_hosts_node_closes_the_room_elsewhere() {
    let mut c = cluster(2);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    let b = c.join(1, BOB, "lobby", "bob");
    c.say(1, BOB, "lobby", &b, "");
    c.take_all();
    c.feed(0, ocm_core::Input::Shutdown);
    assert_eq!(
        c.received_by(ALICE),
        ["* room closed: server shutting down"]
    );
    assert_eq!(
        c.received_by(BOB),
        ["* room closed: host's server shut down"]
    );
    assert!(c.registry.holder(c.now, "lobby").is_none());
}

#[test]
fn after_the_registry_lost_its_data_the_nodes_restore_rooms_and_members() {
    let mut c = cluster(2);
    let [a, b] = {
        let a = c.create(0, ALICE, "lobby", "alice");
        c.say(0, ALICE, "lobby", &a, "");
        let b = c.join(1, BOB, "lobby", "bob");
        c.say(1, BOB, "lobby", &b, "");
        [a, b]
    };
    c.take_all();
    c.registry.lose_data();
    c.advance(Duration::from_secs(3));
    assert!(c.take_all().is_empty(), "nobody was told anything");
    assert!(c.registry.holder(c.now, "lobby").is_some());
    let mut members = c.registry.members(c.now, "lobby");
    members.sort();
    let names: Vec<&str> = members.iter().map(|(u, _)| &**u).collect();
    assert_eq!(names, ["alice", "bob"]);
    c.say(1, BOB, "lobby", &b, "back");
    assert_eq!(c.received_by(ALICE), ["bob: back"]);
    let _ = a;
}

/// Each failed renewal is retried after lease/20; the retry must replace the pending
/// renewal, not add to it: a registry down for two minutes left hundreds of renewal
/// timers behind (the cluster simulator found the timer table over its bound).
#[test]
fn a_long_registry_outage_piles_up_no_renewal_timers() {
    let mut c = cluster(2);
    let a = c.create(0, ALICE, "lobby", "alice");
    c.say(0, ALICE, "lobby", &a, "");
    c.registry_up = false;
    c.advance(std::time::Duration::from_secs(120));
    // Left: the renewal and the fence, each failed renewal's own deadline for half a
    // lease (ten of them at one retry per lease/20), and the dead room's member timers
    // until they fire. Before the fix: one more renewal entry per failed renewal, 598.
    for node in &c.nodes {
        let timers = ocm_core::Machine::counts(&node.server).timers;
        assert!(timers <= 24, "{timers} timers on a node with nothing alive");
    }
    c.registry_up = true;
    c.advance(std::time::Duration::from_secs(1));
    assert!(c.nodes.iter().all(|n| n.server.cluster_ready()));
    let b = c.create(1, BOB, "lobby", "bob");
    assert!(!b.is_empty());
}

#[test]
fn a_refusal_after_the_peer_closed_while_the_registry_decided_frees_the_slot_at_once() {
    use ocm_core::{Input, Machine};
    // One connection per source: a slot held after the peer is gone refuses the next.
    let config = Config {
        max_handshakes_per_ip: 1,
        ..Config::default()
    };
    let mut c = ClusterHarness::new(2, config);
    c.create(1, BOB, "lobby", "bob");
    // Node 0 does not serve `lobby`: the create passes its local checks and waits; the
    // client shuts its write side (EOF) before the registry answers RoomExists.
    c.hold_answers = true;
    let conn = c.start_handshake(0, ALICE, true, "lobby", "alice", None);
    c.feed(0, Input::TcpClosed { conn });
    c.release_held();
    assert_eq!(
        c.finish_handshake(0, conn, true, "lobby", "alice", None),
        Some(Err(Status::RoomExists))
    );
    // The shell already reported this socket closed and will not again: no linger.
    assert_eq!(
        c.nodes[0].server.counts().connections,
        0,
        "a refused connection whose peer had closed is forgotten at once"
    );
    assert_eq!(
        c.handshake(0, ALICE, true, "den", "alice", None)
            .map(|r| r.is_ok()),
        Some(true),
        "the source's one slot is free again"
    );

    // The same when the registry never answers and the request times out (TRY_LATER).
    c.hold_answers = true;
    let conn = c.start_handshake(0, CAROL, true, "attic", "carol", None);
    c.feed(0, Input::TcpClosed { conn });
    c.advance(Duration::from_millis(1100));
    assert_eq!(
        c.finish_handshake(0, conn, true, "attic", "carol", None),
        Some(Err(Status::TryLater))
    );
    assert_eq!(c.nodes[0].server.counts().connections, 0);
}

#[test]
fn wrong_passwords_are_throttled_in_cluster_mode_too() {
    // docs/PROTOCOL.md, Limits: 5 wrong passwords from one source are free, then each
    // next try waits (TRY_LATER without the password being looked at), in every mode.
    let mut c = cluster(2);
    c.handshake(0, ALICE, true, "vault", "alice", Some("s3cret"))
        .unwrap()
        .unwrap();
    // Through node 1, which looks the room up in the registry.
    for _ in 0..5 {
        assert_eq!(
            c.handshake(1, BOB, false, "vault", "bob", Some("guess")),
            Some(Err(Status::InvalidPassword))
        );
    }
    assert_eq!(
        c.handshake(1, BOB, false, "vault", "bob", Some("s3cret")),
        Some(Err(Status::TryLater)),
        "the sixth try from the source waits, even with the right password"
    );
    // Through node 0, which serves the room and checks with the hash it keeps.
    for _ in 0..5 {
        assert_eq!(
            c.handshake(0, CAROL, false, "vault", "carol", Some("guess")),
            Some(Err(Status::InvalidPassword))
        );
    }
    assert_eq!(
        c.handshake(0, CAROL, false, "vault", "carol", Some("s3cret")),
        Some(Err(Status::TryLater))
    );
    // After the wait the right password gets in.
    c.advance(Duration::from_millis(1100));
    assert!(c
        .handshake(0, CAROL, false, "vault", "carol", Some("s3cret"))
        .unwrap()
        .is_ok());
}
