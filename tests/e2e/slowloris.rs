//! Slowloris over loopback: connections that dribble a byte every 250 ms, stall after a
//! header announcing a huge payload, or stall before the payload are closed at the
//! handshake deadline without an answer, while legitimate creates and joins get through;
//! the per-IP cap holds attackers to their share, and at the global cap the oldest
//! unfinished connection makes way for a new one.

use crate::common::hostile::{ip_available, poll_closed, tcp_from, wait_closed, wait_for};
use crate::common::{config, raw, Runtime, TestServer, WAIT};
use ocm_core::{Config, Status};
use ocm_io::Protocol;
use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(
    slow_and_stalled_connections_are_closed_at_the_handshake_deadline,
    legit_users_get_in_while_attackers_hold_their_caps,
);

/// A create request's header announcing `size` bytes of payload (see [`raw::request_header`]).
fn header(room_len: u8, size: u64) -> Vec<u8> {
    raw::request_header(room_len, raw::CREATE, size)
}

struct Attacker {
    stream: TcpStream,
    kind: &'static str,
    opened: Instant,
    dribble: bool,
    closed: Option<Instant>,
    received: Vec<u8>,
}

fn slow_and_stalled_connections_are_closed_at_the_handshake_deadline(runtime: Runtime) {
    let timeout = Duration::from_secs(1);
    let config = Config {
        handshake_timeout: timeout,
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let mut attackers = Vec::new();
    let mut open = |kind, first: &[u8], dribble| {
        let mut stream = raw::connect(server.tcp());
        stream.write_all(first).unwrap();
        stream.set_nonblocking(true).unwrap();
        attackers.push(Attacker {
            stream,
            kind,
            opened: Instant::now(),
            dribble,
            closed: None,
            received: Vec::new(),
        });
    };
    // One byte every 250 ms: a header would take 8 s, the deadline comes first.
    for _ in 0..30 {
        open("dribbler", &[5], true);
    }
    // A header announcing 2^232 - 1 bytes, then not even the room name.
    for _ in 0..5 {
        open("huge header, then nothing", &header(10, u64::MAX), false);
    }
    // A whole header and room name announcing the largest allowed payload, then nothing.
    for _ in 0..5 {
        let mut first = header(5, 4096);
        first.extend_from_slice(b"stall");
        open("payload never sent", &first, false);
    }
    let attacks = attackers.len();

    // Meanwhile, people create, join and chat.
    let alice = server.create("open", "alice");
    let bob = server.join("open", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("the door still works");
    alice.expect(&["bob: the door still works"]);

    // A huge payload with the room name in is answered at once with PAYLOAD_TOO_LARGE.
    let mut honest = raw::connect(server.tcp());
    let mut too_large = header(3, u64::MAX);
    too_large.extend_from_slice(b"big");
    honest.write_all(&too_large).unwrap();
    let answer = wait_closed(&mut honest, WAIT);
    assert_eq!(
        answer.received.last(),
        Some(&Status::PayloadTooLarge.code())
    );

    let give_up = Instant::now() + timeout + WAIT;
    while attackers.iter().any(|a| a.closed.is_none()) {
        assert!(
            Instant::now() < give_up,
            "connections still open long after the deadline"
        );
        for a in attackers.iter_mut().filter(|a| a.closed.is_none()) {
            if a.dribble {
                // The server may have closed its side already: errors are expected.
                match a.stream.write(b"\0") {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => {}
                }
            }
            if poll_closed(&mut a.stream, &mut a.received) {
                a.closed = Some(Instant::now());
            }
        }
        thread::sleep(Duration::from_millis(250));
    }
    let mut latest = Duration::ZERO;
    for a in &attackers {
        let lived = a.closed.unwrap() - a.opened;
        assert!(
            a.received.is_empty(),
            "{}: a slow connection gets no answer, got {:?}",
            a.kind,
            a.received
        );
        assert!(
            lived >= timeout,
            "{}: closed after {lived:?}, before the {timeout:?} deadline",
            a.kind
        );
        latest = latest.max(lived);
    }
    eprintln!(
        "slowloris ({runtime:?}): {attacks} connections, all closed without an answer, \
         the last {latest:?} after it opened (deadline {timeout:?}, polled every 250 ms)"
    );

    let inspector = server.inspector();
    wait_for(&inspector, "every connection closed", |d| {
        d.counts().connections == 0
    });
    let stats = server.ask(|d| d.stats().clone());
    assert_eq!(stats.handshake_timeouts, attacks as u64);
    assert_eq!(stats.handshakes(Status::PayloadTooLarge), 1);
    assert_eq!(stats.handshakes(Status::Ok), 2, "alice and bob");
    assert_eq!(stats.connections_refused, 0, "the caps were never reached");
}

/// Opens `n` connections from `ip` that send nothing.
fn hold(ip: Ipv4Addr, server: &TestServer, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| tcp_from(ip, server.tcp()).expect("connect from another loopback IP"))
        .collect()
}

/// Connects from `ip` and expects to be closed at once: nothing read, EOF or reset.
fn refused(ip: Ipv4Addr, server: &TestServer) {
    let mut stream = tcp_from(ip, server.tcp()).expect("the kernel accepts the connection");
    let closed = wait_closed(&mut stream, WAIT);
    assert!(
        closed.received.is_empty(),
        "a refused connection gets no answer"
    );
}

fn legit_users_get_in_while_attackers_hold_their_caps(runtime: Runtime) {
    if !ip_available("127.0.0.2") || !ip_available("127.0.0.5") {
        eprintln!("skipped: this system cannot bind 127.0.0.2..5 (only Linux routes all of 127/8)");
        return;
    }
    let ip = |last| Ipv4Addr::new(127, 0, 0, last);
    // The default handshake deadline (10 s) is far away: attackers keep their slots until
    // the test closes them, and every step below is decided by the caps alone.
    let config = Config {
        max_handshakes: 24,
        max_handshakes_per_ip: 8,
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let inspector = server.inspector();
    let connections = move |n: usize| {
        let inspector = inspector.clone();
        move || {
            wait_for(&inspector, &format!("{n} connections open"), move |d| {
                d.counts().connections == n
            })
        }
    };

    // 127.0.0.2 takes its 8; the next 4 from it are closed at once.
    let from_2 = hold(ip(2), &server, 8);
    connections(8)();
    for _ in 0..4 {
        refused(ip(2), &server);
    }
    // 127.0.0.3 takes 8 with a header announcing a huge payload and no room name.
    let mut from_3 = hold(ip(3), &server, 8);
    for stream in &mut from_3 {
        stream.write_all(&header(10, u64::MAX)).unwrap();
    }
    connections(16)();

    // Legitimate users on 127.0.0.1 are not affected.
    let alice = server.create("safe", "alice");
    let bob = server.join("safe", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("we got in");
    alice.expect(&["bob: we got in"]);
    let stats = server.ask(|d| d.stats().clone());
    assert_eq!(
        stats.handshake_timeouts, 0,
        "the attackers still held their slots"
    );

    // 127.0.0.4 fills the server to its global cap of 24.
    connections(16)();
    let from_4 = hold(ip(4), &server, 8);
    connections(24)();
    // At the cap a fresh IP still gets in: the oldest incomplete connection (the first
    // of 127.0.0.2's) is closed without an answer to make way for it.
    let mut from_2 = from_2;
    let from_5 = tcp_from(ip(5), server.tcp()).expect("connect from 127.0.0.5");
    let closed = wait_closed(&mut from_2[0], WAIT);
    assert!(
        closed.received.is_empty(),
        "the displaced connection gets no answer"
    );
    connections(24)();
    // So does a legitimate join, though attackers hold every slot (it displaces the
    // next oldest, the second of 127.0.0.2's).
    let carol = server.join("safe", "carol");
    alice.expect(&["* carol joined"]);
    bob.expect(&["* carol joined"]);
    carol.say("me too");
    bob.expect(&["carol: me too"]);
    let closed = wait_closed(&mut from_2[1], WAIT);
    assert!(closed.received.is_empty());
    // A source at its own cap is still refused at once, even at the global cap.
    refused(ip(4), &server);

    let stats = server.ask(|d| d.stats().clone());
    eprintln!("slowloris caps ({runtime:?}): {stats}");
    // 4 from 127.0.0.2 and 1 from 127.0.0.4 refused; 2 of 127.0.0.2's displaced.
    assert_eq!(stats.connections_refused, 5);
    assert_eq!(stats.connections_displaced, 2);
    assert_eq!(stats.handshakes(Status::Ok), 3);
    drop((from_2, from_3, from_4, from_5));
    connections(0)();
}
