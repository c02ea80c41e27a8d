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
    let a2 = h.connect("10.0.0.1:2");
    let a3 = h.connect("10.0.0.1:3");
    assert!(h.tcp[&a3].closed && h.tcp[&a3].received.is_empty());
    assert!(!h.tcp.get(&a1).is_some_and(|r| r.closed));
    // IPv4-mapped IPv6 counts as the same IP
    let mapped = h.connect("[::ffff:10.0.0.1]:4");
    assert!(h.tcp[&mapped].closed);
    h.connect("10.0.0.2:1");
    // Over the total, the newcomer takes the oldest unfinished connection's place.
    let over_total = h.connect("10.0.0.3:1");
    assert!(!h.tcp[&over_total].closed);
    assert!(h.tcp[&a1].closed && h.tcp[&a1].received.is_empty());
    assert_eq!(h.server.stats().connections_refused, 2);
    // a closed connection frees its slot
    h.tcp_eof(a2);
    let again = h.connect("10.0.0.1:5");
    assert!(!h.tcp.get(&again).is_some_and(|r| r.closed));
    assert_eq!(h.server.stats().connections_displaced, 1);
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

/// An invalid request (operation 3) from `peer`: answered INVALID_REQUEST and closed by
/// the server, while the peer keeps its side open.
fn refused_and_held(h: &mut Harness, peer: &str) -> ConnId {
    let conn = h.connect(peer);
    h.tcp_send(conn, &encode_frame(b"lobby", 3, 0, b"mallory"));
    assert!(h.tcp[&conn].closed, "closed after the answer");
    assert_eq!(
        h.tcp[&conn].received,
        response(b"lobby", 3, Status::InvalidRequest)
    );
    conn
}

#[test]
fn an_answered_connection_counts_until_the_shell_reports_its_socket_gone() {
    let mut h = Harness::rooms(Config {
        max_handshakes: 3,
        max_handshakes_per_ip: 2,
        ..Config::default()
    });
    let first = refused_and_held(&mut h, "10.0.0.1:1");
    refused_and_held(&mut h, "10.0.0.1:2");
    assert_eq!(h.server.counts().connections, 2, "both sockets linger");
    // The per-IP limit counts them: a third from the IP is refused at once.
    let third = h.connect("10.0.0.1:3");
    assert!(h.tcp[&third].closed && h.tcp[&third].received.is_empty());
    // And so does the total.
    refused_and_held(&mut h, "10.0.0.2:1");
    let over = h.connect("10.0.0.3:1");
    assert!(h.tcp[&over].closed && h.tcp[&over].received.is_empty());
    assert_eq!(h.server.stats().connections_refused, 2);
    // The shell reports the first socket gone (the peer closed during the linger).
    h.tcp_eof(first);
    assert_eq!(h.server.counts().connections, 2);
    let again = h.connect("10.0.0.1:4");
    assert!(!h.tcp[&again].closed, "the slot came back");
    // Anything on a lingering connection is ignored: no output, no state.
    h.tcp_send(first, b"more");
    assert_eq!(h.server.counts().connections, 3);
}

#[test]
fn a_lingering_connection_is_released_at_the_linger_deadline_without_a_word() {
    let linger = Duration::from_millis(1500);
    let mut h = Harness::rooms(Config {
        linger,
        ..Config::default()
    });
    let conn = refused_and_held(&mut h, A_TCP);
    // A payload over the limit lingers the same way.
    let big = h.connect(B_TCP);
    let mut header = encode_frame(b"r", 1, 0, b"").to_vec();
    header[24..32].copy_from_slice(&(1u64 << 40).to_be_bytes());
    h.tcp_send(big, &header);
    assert_eq!(h.tcp[&big].received.last(), Some(&6));
    assert_eq!(h.server.poll_timeout(), Some(h.now + linger));
    h.tcp_send(conn, &[0; 100]);
    h.advance(linger - Duration::from_millis(1));
    assert_eq!(h.server.counts().connections, 2);
    let events = h.events.len();
    h.advance(Duration::from_millis(1));
    assert_eq!(h.server.counts().connections, 0);
    assert_eq!(h.events.len(), events, "releasing a slot is not an event");
    assert_eq!(h.server.stats().handshake_timeouts, 0);
}

#[test]
fn the_port_step_deadline_and_a_third_port_byte_linger_but_a_peer_close_does_not() {
    let mut h = Harness::rooms(Config::default());
    // OK, then silence until the port deadline: closed by the server, lingering.
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &encode_frame(b"a", 1, 0, b"alice"));
    h.advance(Config::default().port_wait);
    assert!(h.tcp[&conn].closed);
    assert_eq!(h.server.counts().connections, 1);
    // OK, then 3 port bytes: closed at once by the server, lingering.
    let conn = h.connect(B_TCP);
    h.tcp_send(conn, &encode_frame(b"b", 1, 0, b"bob"));
    h.tcp_send(conn, &[1, 2, 3]);
    assert!(h.tcp[&conn].closed);
    assert_eq!(h.server.counts().connections, 2);
    // OK, then the port and EOF: the peer closed first, nothing lingers.
    let conn = h.connect(C_TCP);
    h.tcp_send(conn, &encode_frame(b"c", 1, 0, b"carol"));
    h.tcp_send(conn, &port_bytes(6000));
    h.tcp_eof(conn);
    assert!(h.tcp[&conn].closed);
    assert_eq!(h.server.counts().connections, 2);
    // A request never finished: closed at its deadline, nothing lingers either.
    let slow = h.connect("10.0.0.4:1");
    h.tcp_send(slow, &[1]);
    h.advance(Config::default().handshake_timeout);
    assert!(h.tcp[&slow].closed);
    assert_eq!(h.server.counts().connections, 0);
}

#[test]
fn shutdown_forgets_lingering_connections_without_closing_them_twice() {
    let mut h = Harness::rooms(Config::default());
    let lingering = refused_and_held(&mut h, A_TCP);
    let open = h.connect(B_TCP);
    let now = h.now;
    h.server.handle(now, Input::Shutdown);
    let closes: Vec<ConnId> = std::iter::from_fn(|| h.server.poll_output())
        .filter_map(|o| match o {
            ocm_core::Output::TcpClose { conn } => Some(conn),
            _ => None,
        })
        .collect();
    assert_eq!(closes, vec![open], "{lingering:?} was closed already");
    assert_eq!(h.server.counts(), Counts::default());
}

#[test]
fn ipv6_addresses_of_one_prefix_share_the_connection_limit() {
    for (prefix, third_admitted) in [(64, false), (128, true)] {
        let mut h = Harness::rooms(Config {
            max_handshakes_per_ip: 2,
            ipv6_source_prefix: prefix,
            ..Config::default()
        });
        h.connect("[2001:db8::1]:1");
        h.connect("[2001:db8::2]:1");
        let third = h.connect("[2001:db8::ffff:3]:1");
        assert_eq!(!h.tcp[&third].closed, third_admitted, "/{prefix}");
        let other = h.connect("[2001:db8:0:1::1]:1");
        assert!(!h.tcp[&other].closed, "another /64 is another source");
    }
}

#[test]
fn at_the_connection_limit_the_oldest_unfinished_connection_makes_way() {
    let mut h = Harness::rooms(Config {
        max_handshakes: 2,
        ..Config::default()
    });
    // bob's create is answered and waits for its port step: not unfinished.
    let bob = h.connect(B_TCP);
    h.tcp_send(bob, &encode_frame(b"r", 1, 0, b"bob"));
    let silent = h.connect("10.0.0.1:1");
    h.tcp_send(silent, &[5, 1]);
    // Full: a newcomer from anywhere displaces the silent one, which gets no answer.
    let newcomer = h.connect("10.0.0.3:1");
    assert!(!h.tcp[&newcomer].closed);
    assert!(h.tcp[&silent].closed && h.tcp[&silent].received.is_empty());
    assert!(!h.tcp[&bob].closed);
    assert_eq!(h.server.stats().connections_displaced, 1);
    assert_eq!(h.server.stats().connections_refused, 0);
    assert!(h.events.contains(&Event::ConnectionShed {
        peer: addr("10.0.0.1:1"),
        reason: ocm_core::ShedReason::Displaced,
    }));
    // The newcomer finishes its request: nothing unfinished is left to displace, and
    // the next one is refused.
    h.tcp_send(newcomer, &encode_frame(b"s", 1, 0, b"carol"));
    let late = h.connect("10.0.0.4:1");
    assert!(h.tcp[&late].closed && h.tcp[&late].received.is_empty());
    assert_eq!(h.server.stats().connections_refused, 1);
    assert_eq!(h.server.counts().connections, 2);
}

#[test]
fn a_source_at_its_own_limit_is_refused_even_when_it_could_displace() {
    let mut h = Harness::rooms(Config {
        max_handshakes: 2,
        max_handshakes_per_ip: 1,
        ..Config::default()
    });
    let a = h.connect("10.0.0.1:1");
    h.connect("10.0.0.2:1");
    let again = h.connect("10.0.0.1:2");
    assert!(h.tcp[&again].closed, "10.0.0.1 holds its one connection");
    assert!(!h.tcp[&a].closed, "nothing was displaced for it");
    assert_eq!(h.server.stats().connections_displaced, 0);
    // A third source displaces the oldest (10.0.0.1's).
    h.connect("10.0.0.3:1");
    assert!(h.tcp[&a].closed);
    assert_eq!(h.server.stats().connections_displaced, 1);
}

/// A create announcing `size` bytes of payload with `sent` of them, from `peer`.
fn hoard(h: &mut Harness, peer: &str, size: u64, sent: usize) -> ConnId {
    let conn = h.connect(peer);
    let mut request = encode_frame(b"r", 1, 0, b"").to_vec();
    request[24..32].copy_from_slice(&size.to_be_bytes());
    request.resize(request.len() + sent, b'x');
    h.tcp_send(conn, &request);
    conn
}

#[test]
fn over_the_request_budget_the_connections_holding_the_most_are_closed() {
    let mut h = Harness::rooms(Config {
        max_payload: 1000,
        request_budget: 3000,
        ..Config::default()
    });
    // Each holds its 33 bytes of header and room name, and what it sent of its payload.
    let a = hoard(&mut h, "10.0.0.1:1", 1000, 900);
    let b = hoard(&mut h, "10.0.0.2:1", 1000, 950);
    let c = hoard(&mut h, "10.0.0.3:1", 1000, 500);
    assert_eq!(h.server.stats().connections_over_budget, 0, "2 449 bytes");
    // 733 more: 3 182 bytes, over. The largest holder goes, not the newcomer.
    let d = hoard(&mut h, "10.0.0.4:1", 1000, 700);
    assert!(h.tcp[&b].closed && h.tcp[&b].received.is_empty());
    for open in [a, c, d] {
        assert!(!h.tcp[&open].closed);
    }
    assert_eq!(h.server.stats().connections_over_budget, 1);
    assert!(h.events.contains(&Event::ConnectionShed {
        peer: addr("10.0.0.2:1"),
        reason: ocm_core::ShedReason::RequestBudget,
    }));
    // A small request still gets through, and its bytes are given back once answered.
    assert!(h
        .handshake("10.0.0.5:1", true, "lobby", "eve", None)
        .is_ok());
    // d grows to 933 bytes, as much as a; a newcomer with 933 more goes over: of the
    // three equal holders the oldest, a, is closed.
    h.tcp_send(d, &[b'x'; 200]);
    let e = hoard(&mut h, "10.0.0.6:1", 1000, 900);
    assert!(h.tcp[&a].closed && h.tcp[&a].received.is_empty());
    assert!(!h.tcp[&d].closed && !h.tcp[&e].closed);
    assert_eq!(h.server.stats().connections_over_budget, 2);
    // Finishing a request gives its bytes back: c completes and is answered.
    h.tcp_send(c, &[b'x'; 500]);
    assert!(!h.tcp[&c].received.is_empty(), "c was answered");
}
