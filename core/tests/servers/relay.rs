//! Relay mode: registration, relaying in the same framing, notices, eviction.

use ocm_core::{Config, DropReason, Machine};
use ocm_testkit::{addr, Harness};
use std::time::Duration;

const A: &str = "10.0.0.1:4000";
const B: &str = "10.0.0.2:4000";
const C: &str = "10.0.0.3:4000";

/// A relay that registers any address (`relay_verify` off): these tests are about what
/// a registered client gets; the address check has its own below.
fn open() -> Config {
    Config {
        relay_verify: false,
        ..Config::default()
    }
}

fn three() -> Harness {
    let mut h = Harness::relay(open());
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "");
    h.relay_say(C, "carol", "");
    h.take_bytes();
    h
}

#[test]
fn first_datagram_registers_and_others_hear_of_it() {
    let mut h = Harness::relay(open());
    h.relay_say(A, "alice", "");
    assert!(h.take_bytes().is_empty(), "nobody else to tell, no echo");
    h.relay_say(B, "bob", "");
    assert_eq!(h.take_bytes(), vec![(addr(A), b"\x00bob joined".to_vec())]);
    assert_eq!(h.server.stats().keepalives, 2);
}

#[test]
fn messages_are_relayed_unchanged_to_everyone_else() {
    let mut h = three();
    h.relay_say(A, "alice", "hello");
    let mut got = h.take_bytes();
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
    let mut h = Harness::relay(open());
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "first words");
    assert_eq!(
        h.take_bytes(),
        vec![
            (addr(A), b"\x00bob joined".to_vec()),
            (addr(A), b"\x03bobfirst words".to_vec())
        ]
    );
}

#[test]
fn a_new_name_renames_the_address() {
    let mut h = three();
    h.relay_say(A, "alicia", "hi");
    assert_eq!(h.relay_server().clients()[0].1.as_ref(), "alicia");
    assert_eq!(h.take_bytes().len(), 2);
}

#[test]
fn exit_unregisters_and_tells_the_others() {
    let mut h = three();
    h.relay_say(C, "carol", "/exit");
    let mut got = h.take_bytes();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), b"\x00carol left".to_vec()),
            (addr(B), b"\x00carol left".to_vec())
        ]
    );
    h.relay_say(A, "alice", "still there?");
    assert!(h.take_bytes().iter().all(|(to, _)| *to != addr(C)));
    // an /exit from a stranger registers nothing
    h.relay_say("10.0.0.9:1", "zed", "/exit");
    assert_eq!(h.relay_server().clients().len(), 2);
}

#[test]
fn bad_datagrams_are_dropped_and_never_answered() {
    let mut h = three();
    h.datagram("10.0.0.9:1", b"");
    h.datagram("10.0.0.9:1", b"\x00I am the server");
    h.datagram("10.0.0.9:1", b"\x09short");
    h.datagram("10.0.0.9:1", b"\x04*bob hi");
    h.datagram("10.0.0.9:1", b"\x03b\nbhi");
    h.datagram("10.0.0.9:1", b"\x03bob\xff");
    h.datagram("10.0.0.9:1", &[1; 4097]);
    assert_eq!(
        h.dropped(),
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
    assert!(h.take_bytes().is_empty());
    assert_eq!(h.relay_server().clients().len(), 3);
}

#[test]
fn a_client_cannot_rename_itself_to_a_bad_name_nor_send_a_bad_message() {
    let mut h = three();
    h.take_bytes();
    h.datagram(A, b"\x06*alice hi"); // a new name, refused
    h.datagram(A, b"\x05ali\x07e hi"); // a control character in the new name
    h.datagram(A, b"\x05alice\xff"); // its own name, a message not UTF-8
    h.datagram(A, b"\x05alicea\x1b[2J"); // its own name, an escape in the message
    h.datagram(A, b"\x05alic\x07\xff"); // a bad new name before a bad message
    assert_eq!(
        h.dropped(),
        vec![
            DropReason::BadUsername,
            DropReason::BadUsername,
            DropReason::NotUtf8,
            DropReason::ControlCharacter,
            DropReason::BadUsername,
        ]
    );
    assert!(h.take_bytes().is_empty());
    assert_eq!(h.relay_server().clients()[0].1.as_ref(), "alice");
}

#[test]
fn counts_follow_the_clients_and_stale_timers_are_swept() {
    let mut h = Harness::relay(open());
    assert_eq!(h.server.counts(), ocm_core::Counts::default());
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "");
    let counts = h.server.counts();
    assert_eq!((counts.rooms, counts.members, counts.timers), (1, 2, 2));
    for i in 0..100 {
        h.relay_say(&format!("10.1.0.{i}:1"), "x", "");
        h.relay_say(&format!("10.1.0.{i}:1"), "x", "/exit");
    }
    assert_eq!(h.server.counts().members, 2);
    h.advance(Duration::ZERO);
    assert!(h.server.counts().timers <= ocm_core::timers::max_entries(2));
}

#[test]
fn client_limit_drops_newcomers() {
    let mut h = Harness::relay(Config {
        relay_verify: false,
        max_members: 2,
        ..Config::default()
    });
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "");
    h.relay_say(C, "carol", "hi");
    assert_eq!(h.dropped(), vec![DropReason::ServerFull]);
    assert_eq!(h.relay_server().clients().len(), 2);
}

#[test]
fn idle_clients_are_evicted_and_come_back_with_their_next_datagram() {
    let mut h = three();
    h.now += Duration::from_secs(200);
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "");
    h.now += Duration::from_secs(100);
    h.advance(Duration::ZERO);
    let mut got = h.take_bytes();
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
    assert_eq!(h.server.stats().evictions, 1);
    h.relay_say(C, "carol", "back");
    assert_eq!(h.relay_server().clients().len(), 3);
    assert_eq!(
        h.server.poll_timeout(),
        Some(h.now - Duration::from_secs(100) + Duration::from_secs(300))
    );
}

#[test]
fn failing_clients_are_evicted_after_n_failures_in_a_row() {
    let mut h = three();
    h.send_failed(B);
    h.send_failed(B);
    h.relay_say(B, "bob", ""); // resets
    h.send_failed(B);
    h.send_failed(B);
    assert_eq!(h.relay_server().clients().len(), 3);
    h.send_failed(B);
    assert_eq!(h.relay_server().clients().len(), 2);
    assert!(h.take_bytes().contains(&(
        addr(B),
        b"\x00disconnected: 3 failed sends, join again".to_vec()
    )));
}

#[test]
fn mapped_ipv6_and_ipv4_forms_are_one_client() {
    let mut h = three();
    h.relay_say("[::ffff:10.0.0.1]:4000", "alice", "same socket");
    assert_eq!(h.relay_server().clients().len(), 3);
    for _ in 0..3 {
        h.send_failed("[::ffff:10.0.0.2]:4000");
    }
    assert_eq!(h.relay_server().clients().len(), 2);
}

#[test]
fn shutdown_tells_everyone() {
    let mut h = three();
    h.shutdown();
    let got = h.take_bytes();
    assert_eq!(got.len(), 3);
    assert!(got
        .iter()
        .all(|(_, p)| p == b"\x00room closed: server shutting down"));
    assert!(h.relay_server().clients().is_empty());
}

#[test]
fn relay_messages_with_control_characters_are_dropped() {
    let mut h = three();
    h.relay_say(A, "alice", "\u{1b}]0;pwned\u{7}");
    assert_eq!(h.dropped(), vec![DropReason::ControlCharacter]);
    assert!(h.take_bytes().is_empty());
}

#[test]
fn icmp_errors_do_not_evict_a_client_that_keeps_talking() {
    let mut h = three();
    for _ in 0..5 {
        h.icmp_error(B);
    }
    assert_eq!(h.relay_server().clients().len(), 3);
    h.now += Duration::from_secs(31);
    for _ in 0..3 {
        h.icmp_error(B);
    }
    assert_eq!(h.relay_server().clients().len(), 2);
}

/// The code the relay sent `to` in its last answer.
fn code_sent(h: &mut Harness, to: &str) -> String {
    let (dest, bytes) = h.take_bytes().pop().expect("an answer");
    assert_eq!(dest, addr(to));
    let text = String::from_utf8(bytes[1..].to_vec()).unwrap();
    text.rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn a_forged_source_gets_at_most_three_times_what_it_sent_and_is_not_registered() {
    let mut h = Harness::relay(Config::default());
    // 2-byte datagrams (the measured attack: 300 of them made the relay send 673x):
    // nothing at all comes back, nothing is registered.
    for i in 0..300 {
        h.datagram(&format!("192.0.2.7:{}", 1000 + i), b"\x01x");
    }
    assert!(h.take_bytes().is_empty());
    assert!(h.relay_server().clients().is_empty());
    assert_eq!(h.server.stats().dropped(DropReason::Unverified), 300);
    // bigger ones get one notice each, never more than 3x their size
    for message in ["", "hi", "a longer first message"] {
        h.relay_say(A, "alice", message);
        let sent = 1 + "alice".len() + message.len();
        for (_, answer) in h.take_bytes() {
            assert!(
                answer.len() <= 3 * sent,
                "{} bytes for {sent}",
                answer.len()
            );
        }
    }
    assert!(h.relay_server().clients().is_empty());
}

#[test]
fn a_plain_client_echoes_its_code_and_is_welcomed() {
    let mut h = Harness::relay(Config::default());
    h.relay_say(A, "alice", "hello everyone");
    let code = code_sent(&mut h, A);
    h.relay_say(A, "alice", &format!("/verify {code}"));
    assert_eq!(
        h.take_bytes(),
        vec![(addr(A), b"\x00welcome, alice".to_vec())]
    );
    h.relay_say(B, "bob", "hi");
    let code = code_sent(&mut h, B);
    h.relay_say(B, "bob", &format!("/verify {code}"));
    let mut got = h.take_bytes();
    got.sort();
    assert_eq!(
        got,
        vec![
            (addr(A), b"\x00bob joined".to_vec()),
            (addr(B), b"\x00welcome, bob".to_vec())
        ]
    );
    h.relay_say(B, "bob", "now it counts");
    assert_eq!(
        h.take_bytes(),
        vec![(addr(A), b"\x03bobnow it counts".to_vec())]
    );
}

#[test]
fn a_code_is_only_good_for_its_own_address_and_guessing_must_wait() {
    let mut h = Harness::relay(Config::default());
    h.relay_say(A, "alice", "hello");
    let code = code_sent(&mut h, A);
    // another port of the same host cannot use it
    h.relay_say("10.0.0.1:4001", "mallory", &format!("/verify {code}"));
    assert_eq!(h.dropped(), vec![DropReason::Unverified]);
    for guess in 0..10 {
        h.relay_say("10.0.0.1:4001", "mallory", &format!("/verify {guess:06}"));
    }
    // after five wrong codes from the IP, even the right one waits
    h.relay_say(A, "alice", &format!("/verify {code}"));
    assert!(h.relay_server().clients().is_empty());
    h.now += Duration::from_secs(60);
    h.relay_say(A, "alice", &format!("/verify {code}"));
    assert_eq!(h.relay_server().clients().len(), 1);
}

#[test]
fn one_ip_holds_at_most_max_members_per_ip_clients() {
    let mut h = Harness::relay(Config {
        max_members_per_ip: 2,
        ..open()
    });
    for port in 1..=3 {
        h.relay_say(&format!("10.0.0.1:{port}"), "u", "");
    }
    assert_eq!(h.relay_server().clients().len(), 2);
    assert_eq!(h.dropped(), vec![DropReason::ServerFull]);
}

#[test]
fn relayed_messages_are_rate_limited_per_client() {
    let mut h = Harness::relay(Config {
        member_messages_per_sec: 5,
        member_message_burst: 5,
        ..open()
    });
    h.relay_say(A, "alice", "");
    h.relay_say(B, "bob", "");
    h.take_bytes();
    for i in 0..8 {
        h.relay_say(A, "alice", &format!("m{i}"));
    }
    assert_eq!(h.take_bytes().len(), 5, "the burst, then drops");
    assert_eq!(h.server.stats().dropped(DropReason::RateLimited), 3);
    h.now += Duration::from_millis(200);
    h.relay_say(A, "alice", "one more a fifth of a second later");
    assert_eq!(h.take_bytes().len(), 1);
}

#[test]
fn with_drop_reports_off_a_dropped_datagram_is_only_counted() {
    let mut h = three();
    h.server.report_drops(false);
    h.events.clear();
    h.datagram("10.0.0.9:1", b"\x00I am the server");
    h.datagram("10.0.0.9:1", &[1; 4097]);
    assert!(h.events.is_empty(), "{:?}", h.events);
    assert_eq!(h.server.counts().queued_outputs, 0);
    assert_eq!(h.server.stats().dropped(DropReason::BadUsername), 1);
    assert_eq!(h.server.stats().dropped(DropReason::TooLarge), 1);
    h.server.report_drops(true);
    h.datagram("10.0.0.9:1", b"");
    assert_eq!(h.dropped(), vec![DropReason::Truncated]);
}
