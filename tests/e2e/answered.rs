//! Connections the server has answered: it reads no more from them than the linger
//! allows, and a socket still lingering counts against the connection limits until it
//! is closed (issue 17, items 3 and 4).

use crate::common::hostile::{ip_available, tcp_from, wait_for};
use crate::common::{config, raw, Runtime, TestServer, WAIT};
use ocm_core::{Config, Status};
use ocm_io::Protocol;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(
    a_refused_connection_that_keeps_streaming_is_closed_within_the_linger,
    answered_connections_held_open_count_until_their_socket_closes,
);

/// How long each attacker below streams at most.
const STREAM_FOR: Duration = Duration::from_secs(4);

/// Attackers streaming at once, each from two threads: an old connection task stopped
/// reading only when it found the socket empty, so a lucky pause of one sender let it
/// go; with eight senders, some keep it busy.
const STREAMS: usize = 4;

/// What one attacker saw: bytes the kernel took from it, and when its writes failed
/// because the server had closed (`None`: still open after [`STREAM_FOR`]).
fn stream_after_refusal(server: SocketAddr) -> (usize, Option<Duration>) {
    let mut stream = raw::connect(server);
    let mut first = raw::request_header(3, raw::CREATE, 1 << 30);
    first.extend_from_slice(b"big");
    stream.write_all(&first).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let start = Instant::now();
    let writer = move |mut stream: TcpStream| {
        let chunk = [0u8; 64 * 1024];
        let mut sent = 0usize;
        while start.elapsed() < STREAM_FOR {
            match stream.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return (sent, Some(start.elapsed())),
            }
        }
        (sent, None)
    };
    let other = stream.try_clone().unwrap();
    let second = thread::spawn(move || writer(other));
    let (a, closed_a) = writer(stream);
    let (b, closed_b) = second.join().unwrap();
    (a + b, closed_a.max(closed_b))
}

/// A header announcing 1 GiB, the room name, then payload bytes as fast as loopback
/// takes them. The server answers PAYLOAD_TOO_LARGE at once; it must then stop reading
/// and close within the linger (2 s, 64 KiB), however fast the peer keeps sending.
fn a_refused_connection_that_keeps_streaming_is_closed_within_the_linger(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let tcp = server.tcp();
    let attackers: Vec<_> = (0..STREAMS)
        .map(|_| thread::spawn(move || stream_after_refusal(tcp)))
        .collect();
    let seen: Vec<(usize, Option<Duration>)> =
        attackers.into_iter().map(|a| a.join().unwrap()).collect();
    let mib = |n: usize| n as f64 / (1 << 20) as f64;
    for (sent, closed) in &seen {
        eprintln!(
            "answered stream ({runtime:?}): {:.2} MiB taken by the kernel, closed after {closed:?}",
            mib(*sent)
        );
    }
    for (sent, closed) in seen {
        let closed = closed.unwrap_or_else(|| {
            panic!(
                "still reading after {STREAM_FOR:?}: {:.0} MiB taken after the answer",
                mib(sent)
            )
        });
        assert!(
            closed < ocm_core::Config::default().linger + Duration::from_secs(1),
            "closed only after {closed:?}"
        );
        // Both sides' socket buffers, the chunks in flight and the 64 KiB linger.
        assert!(
            sent < 32 << 20,
            "{:.1} MiB taken before the close",
            mib(sent)
        );
    }
    let stats = server.ask(|d| d.stats().clone());
    assert_eq!(stats.handshakes(Status::PayloadTooLarge), STREAMS as u64);
}

/// Connects from `ip`, sends an invalid request (operation 3) and returns the stream
/// with what came back before the server closed or went quiet: the 37-byte answer, or
/// nothing when the connection was refused at accept.
fn answered_then_held(ip: Ipv4Addr, server: &TestServer) -> (TcpStream, Vec<u8>) {
    let mut stream = tcp_from(ip, server.tcp()).expect("connect from another loopback IP");
    let request = raw::frame(b"lobby", 3, 0, br#"{"username":"mallory"}"#);
    // A refused connection may be reset before the request is written: that is fine.
    let _ = stream.write_all(&request);
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = vec![0u8; 32 + 5 + 1];
    let mut got = 0;
    while got < answer.len() {
        match stream.read(&mut answer[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    answer.truncate(got);
    (stream, answer)
}

/// A peer that reads its answer and then neither closes nor sends keeps the server's
/// socket open for the linger: that socket holds a descriptor and counts against the
/// per-IP and total connection limits until it is closed, though the request is done.
fn answered_connections_held_open_count_until_their_socket_closes(runtime: Runtime) {
    if !ip_available("127.0.0.2") {
        eprintln!("skipped: this system cannot bind 127.0.0.2 (only Linux routes all of 127/8)");
        return;
    }
    let per_ip = 8;
    // A long linger: the slots come back below because the peer closes, not because
    // the linger ran out.
    let config = Config {
        max_handshakes_per_ip: per_ip,
        linger: Duration::from_secs(30),
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut held = Vec::new();
    let mut answered = 0;
    for _ in 0..20 {
        let (stream, answer) = answered_then_held(attacker, &server);
        if answer.last() == Some(&Status::InvalidRequest.code()) {
            answered += 1;
        } else {
            assert!(answer.is_empty(), "a refused connection gets no answer");
        }
        held.push(stream);
    }
    let (stats, connections) = server.ask(|d| (d.stats().clone(), d.counts().connections));
    eprintln!(
        "held answered connections ({runtime:?}): {answered} of 20 answered, {} refused, {connections} counted",
        stats.connections_refused
    );
    assert_eq!(
        answered, per_ip,
        "only the per-IP limit's worth are answered"
    );
    assert_eq!(stats.connections_refused, 20 - per_ip as u64);
    assert_eq!(connections, per_ip, "lingering sockets are counted");

    // Another IP is not affected.
    let alice = server.create("lobby", "alice");
    drop(alice);

    // The peer goes: its close ends each linger, the shell reports the sockets gone,
    // and the slots come back.
    drop(held);
    wait_for(
        &server.inspector(),
        "every lingering socket released",
        |d| d.counts().connections == 0,
    );
    let (stream, answer) = answered_then_held(attacker, &server);
    assert_eq!(answer.last(), Some(&Status::InvalidRequest.code()));
    drop(stream);
}
