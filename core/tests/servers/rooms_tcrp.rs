//! TCRP: every status, to the exact bytes, and the order of the checks.

use crate::common::*;

#[test]
fn create_answers_ok_then_a_hex_token_then_shuts_its_write_side() {
    let mut h = Harness::rooms(Config::default());
    let conn = h.connect(A_TCP);
    h.tcp_send(conn, &encode_frame(b"lobby", 1, 0, b"alice"));
    let got = h.tcp[&conn].received.clone();
    let ok = response(b"lobby", 1, Status::Ok);
    assert_eq!(&got[..ok.len()], &ok[..]);
    let complete = &got[ok.len()..];
    assert_eq!(&complete[..3], &[5, 1, 2]);
    assert_eq!(&complete[30..32], &[0, 32]);
    assert_eq!(&complete[32..37], b"lobby");
    let token = &complete[37..];
    assert_eq!(token.len(), 32);
    assert!(token
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
    assert!(h.tcp[&conn].shut_down && !h.tcp[&conn].closed);
    assert_eq!(
        h.room_server().members_of("lobby").unwrap()[0]
            .username
            .as_ref(),
        "alice"
    );
    assert!(h.room_server().members_of("lobby").unwrap()[0].is_host);
    h.tcp_eof(conn);
    assert!(h.tcp[&conn].closed);
    assert_eq!(h.server.counts().connections, 0);
}

#[test]
fn duplicate_room_is_room_exists() {
    let mut h = Harness::rooms(Config::default());
    h.create(A_TCP, "lobby", "alice");
    let (got, closed) = h.raw_request(B_TCP, &encode_frame(b"lobby", 1, 0, b"bob"));
    assert_eq!(got, response(b"lobby", 1, Status::RoomExists));
    assert!(closed);
    assert_eq!(h.server.stats().handshakes(Status::RoomExists), 1);
}

#[test]
fn join_of_missing_room_is_room_not_found() {
    let mut h = Harness::rooms(Config::default());
    let (got, closed) = h.raw_request(B_TCP, &encode_frame(b"nowhere", 2, 0, b"bob"));
    assert_eq!(got, response(b"nowhere", 2, Status::RoomNotFound));
    assert!(closed);
}

#[test]
fn passwords_protect_rooms_and_are_ignored_by_open_ones() {
    let mut h = Harness::rooms(Config::default());
    h.handshake(A_TCP, true, "vault", "alice", Some("s3cret"))
        .unwrap();
    assert_eq!(
        h.handshake(B_TCP, false, "vault", "bob", Some("nope")),
        Err(Status::InvalidPassword)
    );
    assert_eq!(
        h.handshake(B_TCP, false, "vault", "bob", None),
        Err(Status::InvalidPassword)
    );
    assert!(h
        .handshake(B_TCP, false, "vault", "bob", Some("s3cret"))
        .is_ok());
    h.create(A_TCP, "open", "alice");
    assert!(h
        .handshake(C_TCP, false, "open", "carol", Some("anything"))
        .is_ok());
    let (got, _) = h.raw_request(
        C_TCP,
        &encode_frame(b"vault", 2, 0, br#"{"username":"c","password":"x"}"#),
    );
    assert_eq!(got, response(b"vault", 2, Status::InvalidPassword));
}

#[test]
fn username_taken_only_within_one_room() {
    let mut h = Harness::rooms(Config::default());
    h.create(A_TCP, "one", "alice");
    assert_eq!(
        h.handshake(B_TCP, false, "one", "alice", None),
        Err(Status::UsernameTaken)
    );
    h.create(B_TCP, "two", "alice");
    // byte-exact comparison: a different case is a different name
    assert!(h.handshake(C_TCP, false, "one", "Alice", None).is_ok());
}

#[test]
fn invalid_requests_get_status_5() {
    let cases: Vec<(Vec<u8>, &[u8], u8)> = vec![
        (encode_frame(b"r", 3, 0, b"bob").to_vec(), b"r", 3), // unknown operation
        (encode_frame(b"r", 1, 1, b"bob").to_vec(), b"r", 1), // not a request state
        (encode_frame(b"", 1, 0, b"bob").to_vec(), b"", 1),   // empty room name
        (encode_frame(b"\xff", 1, 0, b"bob").to_vec(), b"\xff", 1), // room not UTF-8
        (encode_frame(b"a\tb", 1, 0, b"bob").to_vec(), b"a\tb", 1), // control character
        (encode_frame(b"r", 1, 0, b"\xc3").to_vec(), b"r", 1), // payload not UTF-8
        (
            encode_frame(b"r", 1, 0, br#"{"user":"x"}"#).to_vec(),
            b"r",
            1,
        ), // JSON without username
        (encode_frame(b"r", 1, 0, b"*admin").to_vec(), b"r", 1), // username starts with *
        (encode_frame(b"r", 1, 0, b"").to_vec(), b"r", 1),    // empty username
    ];
    for (request, room, op) in cases {
        let mut h = Harness::rooms(Config::default());
        let (got, closed) = h.raw_request(A_TCP, &request);
        assert_eq!(
            got,
            response(room, op, Status::InvalidRequest),
            "request {request:?}"
        );
        assert!(closed);
        assert_eq!(h.server.counts().rooms, 0);
    }
}

#[test]
fn oversize_payload_is_refused_after_the_room_name_without_reading_it() {
    let mut h = Harness::rooms(Config::default());
    let conn = h.connect(A_TCP);
    let mut header = encode_frame(b"big", 1, 0, &[]).to_vec();
    header[28..32].copy_from_slice(&4097u32.to_be_bytes());
    h.tcp_send(conn, &header[..34]);
    assert!(
        h.tcp[&conn].received.is_empty(),
        "no answer before the whole room name"
    );
    h.tcp_send(conn, &header[34..]);
    assert_eq!(
        h.tcp[&conn].received,
        response(b"big", 1, Status::PayloadTooLarge)
    );
    assert!(h.tcp[&conn].closed);
    // a 29-byte size with its top byte set
    let mut huge = encode_frame(b"big", 2, 0, &[]).to_vec();
    huge[3] = 0x80;
    let (got, closed) = h.raw_request(B_TCP, &huge);
    assert_eq!(got, response(b"big", 2, Status::PayloadTooLarge));
    assert!(closed);
}

#[test]
fn payload_limit_is_configurable_and_inclusive() {
    let mut h = Harness::rooms(Config {
        max_payload: 10,
        ..Config::default()
    });
    let (got, _) = h.raw_request(A_TCP, &encode_frame(b"r", 1, 0, b"0123456789"));
    assert_eq!(&got[..34], &response(b"r", 1, Status::Ok)[..]);
    let (got, _) = h.raw_request(A_TCP, &encode_frame(b"s", 1, 0, b"0123456789a"));
    assert_eq!(got, response(b"s", 1, Status::PayloadTooLarge));
}

#[test]
fn room_and_member_limits_are_server_full() {
    let mut h = Harness::rooms(Config {
        max_rooms: 1,
        max_members_per_room: 2,
        ..Config::default()
    });
    h.create(A_TCP, "one", "alice");
    assert_eq!(
        h.handshake(B_TCP, true, "two", "bob", None),
        Err(Status::ServerFull)
    );
    h.join(B_TCP, "one", "bob");
    assert_eq!(
        h.handshake(C_TCP, false, "one", "carol", None),
        Err(Status::ServerFull)
    );
    let mut h = Harness::rooms(Config {
        max_members: 2,
        ..Config::default()
    });
    h.create(A_TCP, "one", "alice");
    h.create(B_TCP, "two", "bob");
    assert_eq!(
        h.handshake(C_TCP, false, "one", "carol", None),
        Err(Status::ServerFull)
    );
    assert_eq!(
        h.handshake(C_TCP, true, "three", "carol", None),
        Err(Status::ServerFull)
    );
}

#[test]
fn one_ip_holds_at_most_max_members_per_ip_seats() {
    let mut h = Harness::rooms(Config {
        max_members_per_ip: 2,
        ..Config::default()
    });
    h.create(A_TCP, "one", "alice");
    let two = h.create("10.0.0.1:50001", "two", "alice");
    assert_eq!(
        h.handshake("10.0.0.1:50002", true, "three", "alice", None),
        Err(Status::ServerFull)
    );
    assert_eq!(
        h.handshake("10.0.0.1:50003", false, "one", "al", None),
        Err(Status::ServerFull)
    );
    // another IP is not affected
    h.join(B_TCP, "one", "bob");
    h.create(B_TCP, "three", "bob");
    // a seat given back can be taken again
    h.say("10.0.0.1:4001", "two", &two, "/exit");
    assert!(h
        .handshake("10.0.0.1:50004", true, "four", "alice", None)
        .is_ok());
    assert_eq!(h.server.counts().members, 4);
}

#[test]
fn one_source_hosts_at_most_max_rooms_per_source_rooms() {
    let mut h = Harness::rooms(Config {
        max_rooms_per_source: 2,
        ..Config::default()
    });
    let one = h.create(A_TCP, "one", "alice");
    h.create("10.0.0.1:50001", "two", "alice");
    assert_eq!(
        h.handshake("10.0.0.1:50002", true, "three", "alice", None),
        Err(Status::ServerFull)
    );
    // ROOM_EXISTS is checked first; joining is not hosting.
    assert_eq!(
        h.handshake("10.0.0.1:50003", true, "one", "al", None),
        Err(Status::RoomExists)
    );
    h.create(B_TCP, "three", "bob");
    h.join("10.0.0.1:50004", "three", "al");
    // The host leaves, the room closes, the source may host another.
    h.say(A, "one", &one, "/exit");
    assert!(h
        .handshake("10.0.0.1:50005", true, "four", "alice", None)
        .is_ok());
    assert_eq!(h.server.counts().rooms, 3);
}

#[test]
fn an_ipv6_prefix_is_one_source_for_members_and_rooms() {
    let mut h = Harness::rooms(Config {
        max_members_per_ip: 3,
        max_rooms_per_source: 2,
        ..Config::default()
    });
    h.create("[2001:db8:1:2::1]:1", "one", "a");
    h.create("[2001:db8:1:2::2]:1", "two", "b");
    assert_eq!(
        h.handshake("[2001:db8:1:2::3]:1", true, "three", "c", None),
        Err(Status::ServerFull),
        "the /64 hosts two rooms already"
    );
    h.join("[2001:db8:1:2:aaaa::4]:1", "one", "d");
    assert_eq!(
        h.handshake("[2001:db8:1:2::5]:1", false, "two", "e", None),
        Err(Status::ServerFull),
        "the /64 holds three seats already"
    );
    // Another /64 is another source.
    h.create("[2001:db8:1:3::1]:1", "three", "f");
    h.join("[2001:db8:1:3::1]:1", "two", "g");
    assert_eq!(h.server.counts().members, 5);
}

#[test]
fn checks_run_in_the_documented_order() {
    let mut h = Harness::rooms(Config {
        max_members_per_room: 2,
        ..Config::default()
    });
    h.handshake(A_TCP, true, "vault", "alice", Some("pw"))
        .unwrap();
    h.handshake(B_TCP, false, "vault", "bob", Some("pw"))
        .unwrap();
    let order =
        |h: &mut Harness, frame: Bytes| h.raw_request(C_TCP, &frame).0[32 + frame[0] as usize];
    // bad state beats too large
    let mut big = encode_frame(b"vault", 2, 1, &[]).to_vec();
    big[31] = 255;
    big[30] = 255;
    assert_eq!(
        order(&mut h, Bytes::from(big.clone())),
        Status::InvalidRequest.code()
    );
    // too large beats a bad room name
    let mut big_bad_room = encode_frame(b"\xff", 2, 0, &[]).to_vec();
    big_bad_room[30] = 255;
    assert_eq!(
        order(&mut h, Bytes::from(big_bad_room)),
        Status::PayloadTooLarge.code()
    );
    // bad payload beats "room exists"
    assert_eq!(
        order(&mut h, encode_frame(b"vault", 1, 0, b"*x")),
        Status::InvalidRequest.code()
    );
    // join: missing room beats everything after it
    assert_eq!(
        order(&mut h, encode_frame(b"none", 2, 0, b"bob")),
        Status::RoomNotFound.code()
    );
    // wrong password beats username taken and room full
    assert_eq!(
        order(&mut h, encode_frame(b"vault", 2, 0, b"bob")),
        Status::InvalidPassword.code()
    );
    // username taken beats room full
    let taken = encode_frame(b"vault", 2, 0, br#"{"username":"bob","password":"pw"}"#);
    assert_eq!(order(&mut h, taken), Status::UsernameTaken.code());
    let full = encode_frame(b"vault", 2, 0, br#"{"username":"carol","password":"pw"}"#);
    assert_eq!(order(&mut h, full), Status::ServerFull.code());
}

#[test]
fn request_split_into_single_bytes_is_answered_once_whole() {
    let mut h = Harness::rooms(Config::default());
    let conn = h.connect(A_TCP);
    let request = encode_frame(b"lobby", 1, 0, br#"{"username":"alice"}"#);
    for (i, byte) in request.iter().enumerate() {
        assert!(
            h.tcp[&conn].received.is_empty() || i == request.len(),
            "answered early at {i}"
        );
        h.tcp_send(conn, &[*byte]);
    }
    let ok = response(b"lobby", 1, Status::Ok);
    assert_eq!(&h.tcp[&conn].received[..ok.len()], &ok[..]);
}

#[test]
fn password_guessing_is_slowed_per_source_and_per_room() {
    let mut h = Harness::rooms(Config::default());
    let ta = h
        .handshake(A_TCP, true, "vault", "alice", Some("4821"))
        .unwrap();
    h.say(A, "vault", &ta, "");
    let guess = |h: &mut Harness, peer: &str, pw: &str, user: &str| {
        h.handshake(peer, false, "vault", user, Some(pw)).err()
    };
    // five free wrong guesses from one source, then it must wait
    for pw in ["0000", "0001", "0002", "0003", "0004"] {
        assert_eq!(
            guess(&mut h, B_TCP, pw, "mallory"),
            Some(Status::InvalidPassword)
        );
    }
    // while it waits, even the right password is not looked at
    assert_eq!(
        guess(&mut h, B_TCP, "4821", "mallory"),
        Some(Status::TryLater)
    );
    // another source is not slowed by mallory's source
    assert_eq!(guess(&mut h, C_TCP, "4821", "carol"), None);
    // after the wait, one more try; then the wait doubles
    h.advance(Duration::from_secs(1));
    assert_eq!(
        guess(&mut h, B_TCP, "0005", "mallory"),
        Some(Status::InvalidPassword)
    );
    h.advance(Duration::from_millis(1_999));
    assert_eq!(
        guess(&mut h, B_TCP, "0006", "mallory"),
        Some(Status::TryLater)
    );
    h.advance(Duration::from_millis(1));
    assert_eq!(
        guess(&mut h, B_TCP, "0006", "mallory"),
        Some(Status::InvalidPassword)
    );
    assert_eq!(h.server.stats().handshakes(Status::TryLater), 2);
}

#[test]
fn guesses_from_many_sources_slow_the_room_down() {
    let mut h = Harness::rooms(Config::default());
    let ta = h
        .handshake(A_TCP, true, "vault", "alice", Some("4821"))
        .unwrap();
    h.say(A, "vault", &ta, "");
    for i in 0..20 {
        let peer = format!("10.7.0.{}:5000", i + 1);
        let got = h.handshake(&peer, false, "vault", "m", Some("wrong")).err();
        assert_eq!(got, Some(Status::InvalidPassword), "guess {i}");
    }
    let got = h
        .handshake("10.7.1.1:5000", false, "vault", "m", Some("wrong"))
        .err();
    assert_eq!(
        got,
        Some(Status::TryLater),
        "the room waits after 20 wrong guesses"
    );
    // open rooms never ask for a password, so they are never slowed
    h.create(B_TCP, "open", "bob");
    assert!(h
        .handshake("10.7.1.1:5000", false, "open", "m", None)
        .is_ok());
}

#[test]
fn password_guesses_from_one_ipv6_prefix_share_one_wait() {
    let mut h = Harness::rooms(Config::default());
    let ta = h
        .handshake(A_TCP, true, "vault", "alice", Some("4821"))
        .unwrap();
    h.say(A, "vault", &ta, "");
    // a new address of the same /64 for every guess: the host's network waits all the same
    for i in 0..5 {
        let peer = format!("[2001:db8:0:7::{:x}]:5000", i + 1);
        let got = h.handshake(&peer, false, "vault", "m", Some("wrong")).err();
        assert_eq!(got, Some(Status::InvalidPassword), "guess {i}");
    }
    let got = h
        .handshake("[2001:db8:0:7::99]:5000", false, "vault", "m", Some("4821"))
        .err();
    assert_eq!(got, Some(Status::TryLater));
    // another /64 is another source
    let got = h
        .handshake(
            "[2001:db8:0:8::1]:5000",
            false,
            "vault",
            "carol",
            Some("4821"),
        )
        .err();
    assert_eq!(got, None);
}
