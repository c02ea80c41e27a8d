//! Cluster mode under generated schedules: creates, joins, messages and leaves on random
//! nodes, time passing, a node killed, the registry going down and coming back. After
//! every step, beyond what [`ClusterHarness`] checks (each node's invariants, datagrams
//! only to members): at most one node holds a room name as its host's, no member gets a
//! message twice, and a dead host's room is closed everywhere within the lease and a
//! renewal interval.

use ocm_core::Config;
use ocm_testkit::ClusterHarness;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

const NODES: usize = 3;
const LEASE: Duration = Duration::from_secs(4);

#[derive(Clone, Debug)]
enum Op {
    Create { node: usize, room: u8, user: u8 },
    Join { node: usize, room: u8, user: u8 },
    Say { member: usize },
    Exit { member: usize },
    Advance { ms: u64 },
    Kill { node: usize },
    Registry { up: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..NODES, 0..3u8, 0..6u8).prop_map(|(node, room, user)| Op::Create { node, room, user }),
        5 => (0..NODES, 0..3u8, 0..6u8).prop_map(|(node, room, user)| Op::Join { node, room, user }),
        6 => (0..32usize).prop_map(|member| Op::Say { member }),
        1 => (0..32usize).prop_map(|member| Op::Exit { member }),
        3 => (0..3000u64).prop_map(|ms| Op::Advance { ms }),
        1 => (0..NODES).prop_map(|node| Op::Kill { node }),
        1 => any::<bool>().prop_map(|up| Op::Registry { up }),
    ]
}

struct Member {
    node: usize,
    addr: String,
    room: String,
    token: bytes::Bytes,
}

fn run(ops: Vec<Op>) {
    let config = Config {
        idle_timeout: Duration::from_secs(3600),
        registration_timeout: Duration::from_secs(3600),
        ..Config::default()
    };
    let mut c = ClusterHarness::new(NODES, config);
    let mut members: Vec<Member> = Vec::new();
    let mut next_addr = 0u32;
    let mut next_message = 0u64;
    let mut seen: BTreeMap<std::net::SocketAddr, HashSet<String>> = BTreeMap::new();
    let mut killed: Option<(usize, Instant)> = None;
    for op in ops {
        match op {
            Op::Create { node, room, user } | Op::Join { node, room, user } => {
                let create = matches!(op, Op::Create { .. });
                next_addr += 1;
                let addr = format!("10.0.{}.{}:5000", next_addr / 200, next_addr % 200 + 1);
                let room = format!("r{room}");
                let answer = c.handshake(node, &addr, create, &room, &format!("u{user}"), None);
                if let Some(Ok(token)) = answer {
                    c.say(node, &addr, &room, &token, "");
                    members.push(Member {
                        node,
                        addr,
                        room,
                        token,
                    });
                }
            }
            Op::Say { member } | Op::Exit { member } if member < members.len() => {
                let m = &members[member];
                let text = if matches!(op, Op::Exit { .. }) {
                    "/exit".to_owned()
                } else {
                    next_message += 1;
                    format!("m{next_message}")
                };
                let (node, addr, room, token) =
                    (m.node, m.addr.clone(), m.room.clone(), m.token.clone());
                c.say(node, &addr, &room, &token, &text);
            }
            Op::Say { .. } | Op::Exit { .. } => {}
            Op::Advance { ms } => c.advance(Duration::from_millis(ms)),
            Op::Kill { node } => {
                if killed.is_none() {
                    c.kill(node);
                    killed = Some((node, c.now));
                }
            }
            Op::Registry { up } => c.registry_up = up,
        }
        // No member gets the same message twice.
        for (to, texts) in c.take_all() {
            let got = seen.entry(to).or_default();
            for text in texts {
                if text.starts_with('*') {
                    continue;
                }
                assert!(got.insert(text.clone()), "{to} got {text:?} twice");
            }
        }
        // At most one live node holds each name as its host's.
        let mut hosts: BTreeMap<std::sync::Arc<str>, usize> = BTreeMap::new();
        for (i, node) in c.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
            for room in node.server.room_names() {
                if let Some((_, true)) = node.server.room_claim(&room) {
                    if let Some(other) = hosts.insert(room.clone(), i) {
                        panic!("{room} hosted on nodes {other} and {i}");
                    }
                }
            }
        }
        // A dead host's rooms are gone everywhere within the lease and a renewal.
        if let Some((dead, at)) = killed {
            if c.now >= at + LEASE + LEASE / 4 + Duration::from_millis(200) {
                let dead_id = format!("node-{dead}");
                for (i, node) in c.nodes.iter().enumerate().filter(|(_, n)| n.alive) {
                    for room in node.server.room_names() {
                        let (claim, _) = node.server.room_claim(&room).unwrap();
                        assert_ne!(
                            claim.node.as_str(),
                            dead_id,
                            "node {i} still serves {room} of the dead node"
                        );
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn cluster_schedules_keep_the_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
