//! A client written from the protocol document alone: TCRP frames and UDP datagrams
//! as raw bytes, no ocm client code (see `common::raw`). If these fail, the wire
//! format drifted from docs/PROTOCOL.md.

use crate::common::{raw, Runtime, TestServer};

crate::on_both_runtimes!(
    the_whole_rooms_flow_in_raw_bytes,
    relay_mode_in_raw_bytes,
    requests_in_other_implementations_dialects_are_served,
    terminal_escapes_and_invisible_names_never_reach_other_members,
);

/// A member sends a screen-clearing escape and a carriage return that fakes a notice;
/// a joiner picks a name with a zero-width space: the server drops the first two and
/// refuses the third (INVALID_REQUEST), so no other member's terminal ever sees them.
fn terminal_escapes_and_invisible_names_never_reach_other_members(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let (tcp, udp) = (server.tcp(), server.udp);
    let host = raw::udp("127.0.0.1").unwrap();
    let guest = raw::udp("127.0.0.1").unwrap();
    let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port();
    raw::handshake(tcp, raw::CREATE, "esc", "host", "", Some(port(&host))).unwrap();
    // The port step counts at the host's EOF, which races the guest's join: wait for it.
    server.wait_known("esc", "host");
    let guest_token =
        raw::handshake(tcp, raw::JOIN, "esc", "guest", "", Some(port(&guest))).unwrap();
    assert_eq!(raw::recv_text(&host), "* guest joined");
    assert_eq!(
        raw::handshake(tcp, raw::JOIN, "esc", "gu\u{200B}est", "", None),
        Err(5),
        "a name that looks like another"
    );
    for evil in ["\u{1b}[2J\u{1b}[H", "x\r* room closed: host left"] {
        guest
            .send_to(&raw::room_datagram("esc", &guest_token, evil), udp)
            .unwrap();
    }
    guest
        .send_to(&raw::room_datagram("esc", &guest_token, "plain"), udp)
        .unwrap();
    // The next thing the host hears is the plain line: the two before it were dropped.
    assert_eq!(raw::recv_text(&host), "guest: plain");
}

/// The two variants of docs/PROTOCOL.md "Compatibility": `user_name` for `username`,
/// and the UDP port in the JSON instead of a port step (with an `ip` that is ignored).
fn requests_in_other_implementations_dialects_are_served(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let (tcp, udp) = (server.tcp(), server.udp);
    let host = raw::udp("127.0.0.1").unwrap();
    let guest = raw::udp("127.0.0.1").unwrap();
    let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port();

    let create = r#"{"user_name": "host", "password": ""}"#;
    let host_token = raw::handshake_with(tcp, raw::CREATE, "dialects", create, None).unwrap();
    host.send_to(&raw::room_datagram("dialects", &host_token, ""), udp)
        .unwrap();
    server.wait_known("dialects", "host");

    let join = format!(
        r#"{{"user_name": "guest", "ip": "192.0.2.44", "port": {}}}"#,
        port(&guest)
    );
    let guest_token = raw::handshake_with(tcp, raw::JOIN, "dialects", &join, None).unwrap();
    assert_eq!(raw::recv_text(&host), "* guest joined");
    // The guest has not sent a single datagram: the JSON port is where it receives.
    server.wait_known("dialects", "guest");
    host.send_to(
        &raw::room_datagram("dialects", &host_token, "hi guest"),
        udp,
    )
    .unwrap();
    assert_eq!(raw::recv_text(&guest), "host: hi guest");
    guest
        .send_to(&raw::room_datagram("dialects", &guest_token, "hello"), udp)
        .unwrap();
    assert_eq!(raw::recv_text(&host), "guest: hello");
}

fn the_whole_rooms_flow_in_raw_bytes(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let (tcp, udp) = (server.tcp(), server.udp);
    let host = raw::udp("127.0.0.1").unwrap();
    let guest = raw::udp("127.0.0.1").unwrap();
    let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port();

    let host_token = raw::handshake(
        tcp,
        raw::CREATE,
        "raw room",
        "host",
        "pw",
        Some(port(&host)),
    )
    .unwrap();
    assert_eq!(
        raw::handshake(tcp, raw::CREATE, "raw room", "x", "", None),
        Err(1),
        "ROOM_EXISTS"
    );
    assert_eq!(
        raw::handshake(tcp, raw::JOIN, "no room", "x", "", None),
        Err(2),
        "ROOM_NOT_FOUND"
    );
    assert_eq!(
        raw::handshake(tcp, raw::JOIN, "raw room", "x", "nope", None),
        Err(3),
        "INVALID_PASSWORD"
    );
    assert_eq!(
        raw::handshake(tcp, raw::JOIN, "raw room", "host", "pw", None),
        Err(4),
        "USERNAME_TAKEN"
    );
    assert_eq!(
        raw::handshake(tcp, raw::JOIN, "raw room", "*star", "pw", None),
        Err(5),
        "INVALID_REQUEST"
    );
    let guest_token = raw::handshake(
        tcp,
        raw::JOIN,
        "raw room",
        "guest",
        "pw",
        Some(port(&guest)),
    )
    .unwrap();
    assert_ne!(host_token, guest_token);
    assert_eq!(raw::recv_text(&host), "* guest joined");

    let send = |socket: &std::net::UdpSocket, token: &[u8], message: &str| {
        socket
            .send_to(&raw::room_datagram("raw room", token, message), udp)
            .unwrap();
    };
    send(&guest, &guest_token, ""); // registration / keepalive: not relayed
    send(&guest, &guest_token, "hello");
    assert_eq!(raw::recv_text(&host), "guest: hello");
    send(&host, &host_token, "hi guest");
    assert_eq!(raw::recv_text(&guest), "host: hi guest");

    // 4097 bytes is one too many: dropped, not truncated into a valid datagram.
    let room_and_token = 2 + "raw room".len() + guest_token.len();
    let oversize = "x".repeat(4097 - room_and_token);
    send(&guest, &guest_token, &oversize);
    // 4096 bytes is the largest datagram; the relayed `NAME: message` is cut to 4094.
    let long_name = "g".repeat(100);
    let long = raw::udp("127.0.0.1").unwrap();
    let long_token = raw::handshake(
        tcp,
        raw::JOIN,
        "raw room",
        &long_name,
        "pw",
        Some(port(&long)),
    )
    .unwrap();
    assert_eq!(raw::recv_text(&host), format!("* {long_name} joined"));
    assert_eq!(raw::recv_text(&guest), format!("* {long_name} joined"));
    let largest = "y".repeat(4096 - room_and_token);
    send(&long, &long_token, &largest);
    let relayed = raw::recv_text(&host);
    assert_eq!(relayed.len(), 4094);
    assert_eq!(relayed, format!("{long_name}: {largest}")[..4094]);
    assert_eq!(raw::recv_text(&guest), relayed);

    // A username sent as raw UTF-8 instead of JSON is accepted too.
    let mut stream = raw::connect(tcp);
    std::io::Write::write_all(
        &mut stream,
        &raw::frame(b"raw room", raw::JOIN, 0, b"plain"),
    )
    .unwrap();
    assert_eq!(
        raw::read_frame(&mut stream).unwrap().3,
        vec![3],
        "but the room has a password"
    );
    drop(stream);

    send(&host, &host_token, "/exit");
    assert_eq!(raw::recv_text(&guest), "* room closed: host left");
    send(&guest, &guest_token, "anyone?");
    assert_eq!(
        raw::handshake(tcp, raw::JOIN, "raw room", "late", "pw", None),
        Err(2),
        "the room is gone"
    );
}

fn relay_mode_in_raw_bytes(runtime: Runtime) {
    let server = TestServer::relay(runtime);
    let a = raw::udp("127.0.0.1").unwrap();
    let b = raw::udp("127.0.0.1").unwrap();
    a.send_to(&raw::relay_datagram("a", ""), server.udp)
        .unwrap();
    b.send_to(&raw::relay_datagram("b", ""), server.udp)
        .unwrap();
    assert_eq!(raw::recv(&a), b"\0b joined", "notices have usernamelen 0");
    b.send_to(&raw::relay_datagram("b", "hey"), server.udp)
        .unwrap();
    assert_eq!(raw::recv(&a), b"\x01bhey", "relayed in the same framing");
    a.send_to(&raw::relay_datagram("a", "/exit"), server.udp)
        .unwrap();
    assert_eq!(raw::recv(&b), b"\0a left");
}
