//! Relay-mode tests: registration, relaying in the same framing, notices, eviction.

use super::*;
use std::time::Duration;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const A: &str = "10.0.0.1:4000";
const B: &str = "10.0.0.2:4000";
const C: &str = "10.0.0.3:4000";

struct Harness {
    relay: RelayServer,
    now: Instant,
    sent: Vec<(SocketAddr, Bytes)>,
    drops: Vec<DropReason>,
}

impl Harness {
    fn new(config: Config) -> Harness {
        Harness {
            relay: RelayServer::new(config, [3; 32]).unwrap(),
            now: Instant::now(),
            sent: Vec::new(),
            drops: Vec::new(),
        }
    }

    fn pump(&mut self) {
        while let Some(output) = self.relay.poll_output() {
            match output {
                Output::Datagram { to, payload } => self.sent.push((to, payload)),
                Output::Event(Event::DatagramDropped { reason, .. }) => self.drops.push(reason),
                Output::Event(_) => {}
                other => panic!("relay mode has no TCP: {other:?}"),
            }
        }
        self.relay.check_invariants().unwrap();
    }

    fn send(&mut self, from: &str, name: &str, message: &str) {
        let bytes = RelayDatagram::Message {
            username: name.as_bytes(),
            message: message.as_bytes(),
        }
        .encode()
        .unwrap();
        self.raw(from, &bytes);
    }

    fn raw(&mut self, from: &str, bytes: &[u8]) {
        self.relay.handle_datagram(self.now, addr(from), bytes);
        self.pump();
    }

    fn take(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.sent
            .drain(..)
            .map(|(to, p)| (to, p.to_vec()))
            .collect()
    }
}

fn three() -> Harness {
    let mut h = Harness::new(Config::default());
    h.send(A, "alice", "");
    h.send(B, "bob", "");
    h.send(C, "carol", "");
    h.take();
    h
}

#[test]
fn first_datagram_registers_and_others_hear_of_it() {
    let mut h = Harness::new(Config::default());
    h.send(A, "alice", "");
    assert!(h.take().is_empty(), "nobody else to tell, no echo");
    h.send(B, "bob", "");
    assert_eq!(h.take(), vec![(addr(A), b"\x00bob joined".to_vec())]);
    assert_eq!(h.relay.stats().keepalives, 2);
}

#[test]
fn messages_are_relayed_unchanged_to_everyone_else() {
    let mut h = three();
    h.send(A, "alice", "hello");
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(B), b"\x05alicehello".to_vec()),
            (addr(C), b"\x05alicehello".to_vec())
        ]
    );
}

#[test]
fn a_message_registers_too() {
    let mut h = Harness::new(Config::default());
    h.send(A, "alice", "");
    h.send(B, "bob", "first words");
    assert_eq!(
        h.take(),
        vec![
            (addr(A), b"\x00bob joined".to_vec()),
            (addr(A), b"\x03bobfirst words".to_vec())
        ]
    );
}

#[test]
fn a_new_name_renames_the_address() {
    let mut h = three();
    h.send(A, "alicia", "hi");
    assert_eq!(h.relay.clients()[0].1.as_ref(), "alicia");
    assert_eq!(h.take().len(), 2);
}

#[test]
fn exit_unregisters_and_tells_the_others() {
    let mut h = three();
    h.send(C, "carol", "/exit");
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), b"\x00carol left".to_vec()),
            (addr(B), b"\x00carol left".to_vec())
        ]
    );
    h.send(A, "alice", "still there?");
    assert!(h.take().iter().all(|(to, _)| *to != addr(C)));
    // an /exit from a stranger registers nothing
    h.send("10.0.0.9:1", "zed", "/exit");
    assert_eq!(h.relay.clients().len(), 2);
}

#[test]
fn bad_datagrams_are_dropped_and_never_answered() {
    let mut h = three();
    h.raw("10.0.0.9:1", b"");
    h.raw("10.0.0.9:1", b"\x00I am the server");
    h.raw("10.0.0.9:1", b"\x09short");
    h.raw("10.0.0.9:1", b"\x04*bob hi");
    h.raw("10.0.0.9:1", b"\x03b\nbhi");
    h.raw("10.0.0.9:1", b"\x03bob\xff");
    h.raw("10.0.0.9:1", &[1; 4097]);
    assert_eq!(
        h.drops,
        vec![
            DropReason::Truncated,
            DropReason::BadUsername,
            DropReason::Truncated,
            DropReason::BadUsername,
            DropReason::BadUsername,
            DropReason::NotUtf8,
            DropReason::TooLarge,
        ]
    );
    assert!(h.take().is_empty());
    assert_eq!(h.relay.clients().len(), 3);
}

#[test]
fn counts_follow_the_clients_and_stale_timers_are_swept() {
    let mut h = Harness::new(Config::default());
    assert_eq!(h.relay.counts(), crate::Counts::default());
    h.send(A, "alice", "");
    h.send(B, "bob", "");
    let counts = h.relay.counts();
    assert_eq!((counts.rooms, counts.members, counts.timers), (1, 2, 2));
    for i in 0..100 {
        h.send(&format!("10.1.0.{i}:1"), "x", "");
        h.send(&format!("10.1.0.{i}:1"), "x", "/exit");
    }
    assert_eq!(h.relay.counts().members, 2);
    h.relay.handle_timeout(h.now);
    assert!(h.relay.counts().timers <= 2 * 2 + 64);
}

#[test]
fn client_limit_drops_newcomers() {
    let mut h = Harness::new(Config {
        max_members: 2,
        ..Config::default()
    });
    h.send(A, "alice", "");
    h.send(B, "bob", "");
    h.send(C, "carol", "hi");
    assert_eq!(h.drops, vec![DropReason::ServerFull]);
    assert_eq!(h.relay.clients().len(), 2);
}

#[test]
fn idle_clients_are_evicted_and_come_back_with_their_next_datagram() {
    let mut h = three();
    h.now += Duration::from_secs(200);
    h.send(A, "alice", "");
    h.send(B, "bob", "");
    h.now += Duration::from_secs(100);
    h.relay.handle_timeout(h.now);
    h.pump();
    let mut got = h.take();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), b"\x00carol was disconnected".to_vec()),
            (addr(B), b"\x00carol was disconnected".to_vec()),
            (
                addr(C),
                b"\x00disconnected: idle for 300 s, join again".to_vec()
            ),
        ]
    );
    assert_eq!(h.relay.stats().evictions, 1);
    h.send(C, "carol", "back");
    assert_eq!(h.relay.clients().len(), 3);
    assert_eq!(
        h.relay.poll_timeout(),
        Some(h.now - Duration::from_secs(100) + Duration::from_secs(300))
    );
}

#[test]
fn failing_clients_are_evicted_after_n_failures_in_a_row() {
    let mut h = three();
    h.relay.handle_send_failed(h.now, addr(B));
    h.relay.handle_send_failed(h.now, addr(B));
    h.send(B, "bob", ""); // resets
    h.relay.handle_send_failed(h.now, addr(B));
    h.relay.handle_send_failed(h.now, addr(B));
    h.pump();
    assert_eq!(h.relay.clients().len(), 3);
    h.relay.handle_send_failed(h.now, addr(B));
    h.pump();
    assert_eq!(h.relay.clients().len(), 2);
    assert!(h.take().contains(&(
        addr(B),
        b"\x00disconnected: 3 failed sends, join again".to_vec()
    )));
}

#[test]
fn mapped_ipv6_and_ipv4_forms_are_one_client() {
    let mut h = three();
    h.send("[::ffff:10.0.0.1]:4000", "alice", "same socket");
    assert_eq!(h.relay.clients().len(), 3);
    for _ in 0..3 {
        h.relay
            .handle_send_failed(h.now, addr("[::ffff:10.0.0.2]:4000"));
    }
    h.pump();
    assert_eq!(h.relay.clients().len(), 2);
}

#[test]
fn shutdown_tells_everyone() {
    let mut h = three();
    h.relay.shutdown(h.now);
    h.pump();
    let got = h.take();
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|(_, p)| p == b"\x00room closed: server shutting down"));
    assert!(h.relay.clients().is_empty());
}
