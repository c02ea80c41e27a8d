//! The TCP connection lifecycle: deadlines, connection limits, the port step.

use crate::common::*;

#[test]
fn slow_connections_are_closed_at_the_handshake_deadline() {
    let mut h = Harness::rooms(Config::default());
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &[5, 1]);
    assert_eq!(
        h.server.poll_timeout(),
        Some(h.now + Duration::from_secs(10))
    );
    h.advance(Duration::from_millis(9_999));
    assert!(!h.tcp[&conn].closed);
    h.advance(Duration::from_millis(1));
    assert!(h.tcp[&conn].closed);
    assert!(h.tcp[&conn].received.is_empty());
    assert_eq!(h.server.stats().handshake_timeouts, 1);
    assert_eq!(h.server.counts().connections, 0);
}

#[test]
fn connection_limits_close_at_once_without_a_response() {
    let mut h = Harness::rooms(Config {
        max_handshakes: 3,
        max_handshakes_per_ip: 2,
        ..Config::default()
    });
    let a1 = h.connect("10.0.0.1:1");
    h.connect("10.0.0.1:2");
    let a3 = h.connect("10.0.0.1:3");
    assert!(h.tcp[&a3].closed && h.tcp[&a3].received.is_empty());
    assert!(!h.tcp.get(&a1).is_some_and(|r| r.closed));
    // IPv4-mapped IPv6 counts as the same IP
    let mapped = h.connect("[::ffff:10.0.0.1]:4");
    assert!(h.tcp[&mapped].closed);
    h.connect("10.0.0.2:1");
    let over_total = h.connect("10.0.0.3:1");
    assert!(h.tcp[&over_total].closed);
    assert_eq!(h.server.stats().connections_refused, 3);
    // a closed connection frees its slot
    h.tcp_eof(a1);
    let again = h.connect("10.0.0.1:5");
    assert!(!h.tcp.get(&again).is_some_and(|r| r.closed));
}

#[test]
fn port_step_registers_the_udp_address_before_the_member_speaks() {
    let (mut h, _, _) = lobby();
    let mut hs = Handshake::join("lobby", "carol", None).unwrap();
    let conn = h.connect(C_TCP);
    h.tcp_send(conn, hs.request());
    let received = h.tcp[&conn].received.clone();
    hs.handle_data(&received).unwrap().unwrap();
    h.tcp_send(conn, &port_bytes(6000));
    assert!(
        !h.tcp[&conn].closed,
        "2 bytes so far: a third would void the step"
    );
    h.tcp_eof(conn);
    assert!(h.tcp[&conn].closed);
    let carol = h.room_server().members_of("lobby").unwrap()[2].clone();
    assert_eq!(carol.udp, Some(addr("10.0.0.3:6000")));
    h.take();
    h.say(
        A,
        "lobby",
        &h.room_server()
            .members_of("lobby")
            .map(|_| Bytes::new())
            .unwrap(),
        "x",
    );
    assert_eq!(h.dropped(), vec![DropReason::UnknownToken]);
}

#[test]
fn member_with_port_step_receives_messages_before_speaking() {
    let (mut h, ta, _) = lobby();
    let mut hs = Handshake::join("lobby", "carol", None).unwrap();
    let conn = h.connect(C_TCP);
    // request and port pipelined in one write
    let mut bytes = hs.request().to_vec();
    bytes.extend_from_slice(&port_bytes(6000));
    h.tcp_send(conn, &bytes);
    let received = h.tcp[&conn].received.clone();
    assert!(hs.handle_data(&received).unwrap().is_some());
    h.tcp_eof(conn);
    h.take();
    h.say(A, "lobby", &ta, "hello carol");
    assert_eq!(h.received_by("10.0.0.3:6000"), vec!["alice: hello carol"]);
}

#[test]
fn port_step_ignores_wrong_lengths_and_port_zero() {
    for (bytes, eof) in [
        (&[0u8, 0][..], true),
        (&[1, 2, 3][..], false),
        (&[1][..], true),
    ] {
        let mut h = Harness::rooms(Config::default());
        let mut hs = Handshake::create("r", "alice", None).unwrap();
        let conn = h.connect(A_TCP);
        h.tcp_send(conn, hs.request());
        let received = h.tcp[&conn].received.clone();
        hs.handle_data(&received).unwrap().unwrap();
        h.tcp_send(conn, bytes);
        if eof {
            h.tcp_eof(conn);
        }
        assert!(h.tcp[&conn].closed, "{bytes:?}");
        assert_eq!(
            h.room_server().members_of("r").unwrap()[0].udp,
            None,
            "{bytes:?}"
        );
    }
}

#[test]
fn port_step_outcome_does_not_depend_on_how_tcp_splits_it() {
    // the same bytes, whole or split: 2 bytes count (at EOF or at the deadline), 3 never
    let cases: [(Vec<&[u8]>, bool, bool); 6] = [
        (vec![&[0x17, 0x70]], true, true),
        (vec![&[0x17], &[0x70]], true, true),
        (vec![&[0x17, 0x70]], false, true),
        (vec![&[0x17, 0x70, 1]], true, false),
        (vec![&[0x17, 0x70], &[1]], true, false),
        (vec![&[0x17], &[0x70], &[1]], false, false),
    ];
    for (chunks, eof, applied) in cases {
        let mut h = Harness::rooms(Config::default());
        let conn = h.connect(A_TCP);
        h.tcp_send(conn, &encode_frame(b"r", 1, 0, b"alice"));
        for chunk in &chunks {
            h.tcp_send(conn, chunk);
        }
        if eof {
            h.tcp_eof(conn);
        } else {
            h.advance(Duration::from_secs(1));
        }
        assert!(h.tcp[&conn].closed);
        let udp = h.room_server().members_of("r").unwrap()[0].udp;
        assert_eq!(udp, applied.then(|| addr("10.0.0.1:6000")), "{chunks:?}");
    }
}

#[test]
fn port_wait_is_bounded() {
    let mut h = Harness::rooms(Config::default());
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &encode_frame(b"r", 1, 0, b"alice"));
    h.advance(Duration::from_millis(999));
    assert!(!h.tcp[&conn].closed);
    h.advance(Duration::from_millis(1));
    assert!(h.tcp[&conn].closed);
    assert_eq!(
        h.server.stats().handshake_timeouts,
        0,
        "not a handshake timeout"
    );
    assert_eq!(h.server.counts().members, 1, "the member stays");
}

/// Joins `lobby` from C's TCP address with a raw JSON payload, then sends `step` (the
/// port step, possibly empty) and closes; carol's UDP address afterwards.
fn join_with_json(h: &mut Harness, payload: &str, step: &[u8]) -> Option<SocketAddr> {
    let conn = h.connect(C_TCP);
    h.tcp_send(conn, &encode_frame(b"lobby", 2, 0, payload.as_bytes()));
    let received = &h.tcp[&conn].received;
    assert_eq!(received[32 + 5], 0, "join answered OK");
    if !step.is_empty() {
        h.tcp_send(conn, step);
    }
    if !h.tcp[&conn].closed {
        h.tcp_eof(conn);
    }
    let members = h.room_server().members_of("lobby").unwrap();
    members.iter().find(|m| &*m.username == "carol")?.udp
}

#[test]
fn a_json_port_is_the_udp_port_when_no_port_step_sets_one() {
    let (mut h, ta, _) = lobby();
    // `ip` is ignored: the address is the TCP peer's IP, never another host.
    let json = r#"{"user_name":"carol","ip":"203.0.113.9","port":7000}"#;
    assert_eq!(
        join_with_json(&mut h, json, &[]),
        Some(addr("10.0.0.3:7000"))
    );
    h.take();
    // carol receives before she ever speaks
    h.say(A, "lobby", &ta, "welcome carol");
    assert_eq!(h.received_by("10.0.0.3:7000"), vec!["alice: welcome carol"]);
}

#[test]
fn a_port_step_wins_over_the_json_port_and_bad_steps_leave_it() {
    let json = r#"{"username":"carol","port":7000}"#;
    for (step, expected) in [
        (&port_bytes(6000)[..], "10.0.0.3:6000"),
        (&[0, 0][..], "10.0.0.3:7000"),
        (&[1][..], "10.0.0.3:7000"),
        (&[1, 2, 3][..], "10.0.0.3:7000"),
    ] {
        let (mut h, _, _) = lobby();
        assert_eq!(
            join_with_json(&mut h, json, step),
            Some(addr(expected)),
            "step {step:?}"
        );
    }
    // Zero or out of range: no address until carol speaks.
    for json in [
        r#"{"username":"carol","port":0}"#,
        r#"{"username":"carol","port":70000}"#,
    ] {
        let (mut h, _, _) = lobby();
        assert_eq!(join_with_json(&mut h, json, &[]), None, "{json}");
    }
}

#[test]
fn a_json_port_also_waits_for_the_port_deadline_and_a_datagram_first_wins() {
    let (mut h, _, _) = lobby();
    let conn = h.connect(C_TCP);
    let json = br#"{"username":"carol","port":7000}"#;
    h.tcp_send(conn, &encode_frame(b"lobby", 2, 0, json));
    let token = h.tcp[&conn].received[32 + 5 + 1 + 32 + 5..].to_vec();
    assert_eq!(token.len(), 32);
    // carol speaks from her real socket before the step ends: that address stays
    h.say("10.0.0.3:7100", "lobby", &token, "");
    h.advance(Config::default().port_wait);
    assert!(h.tcp[&conn].closed, "closed at the port deadline");
    let members = h.room_server().members_of("lobby").unwrap();
    assert_eq!(members[2].udp, Some(addr("10.0.0.3:7100")));
}
