//! The global budget for unfinished requests (issue 17, item 11): connections that
//! announce the largest payload and stop just short of it cannot pile up memory without
//! bound; over the budget the server closes the ones holding the most, and a small
//! request still gets through.

use crate::common::hostile::{ip_available, poll_closed, tcp_from, wait_for};
use crate::common::{config, raw, Runtime, TestServer};
use ocm_core::{Config, Status};
use ocm_io::Protocol;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::time::{Duration, Instant};

crate::on_both_runtimes!(unfinished_requests_share_one_budget);

/// The largest payload the server accepts.
const MAX_PAYLOAD: u32 = 64 * 1024;

/// A create announcing [`MAX_PAYLOAD`] bytes, with all but `short` of them sent.
fn hoard(ip: Ipv4Addr, server: &TestServer, short: usize) -> TcpStream {
    let mut stream = tcp_from(ip, server.tcp()).expect("connect from another loopback IP");
    let mut request = raw::request_header(3, raw::CREATE, u64::from(MAX_PAYLOAD));
    request.extend_from_slice(b"big");
    request.resize(request.len() + MAX_PAYLOAD as usize - short, b'x');
    stream.write_all(&request).unwrap();
    stream.set_nonblocking(true).unwrap();
    stream
}

fn unfinished_requests_share_one_budget(runtime: Runtime) {
    if !(2..6).all(|i| ip_available(&format!("127.0.0.{i}"))) {
        eprintln!("skipped: this system cannot bind 127.0.0.2..5");
        return;
    }
    let config = Config {
        max_payload: MAX_PAYLOAD,
        ..config()
    };
    let budget = ocm_core::Config::default().request_budget;
    assert_eq!(budget, 4 << 20);
    // Each holds its header, room name and 64 KiB - 1 of payload.
    let most = budget / (32 + 3 + MAX_PAYLOAD as usize - 1);
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    // 80 connections from 4 addresses, each 64 KiB short of 1 byte: 5 MiB in all.
    let mut hoarders: Vec<(TcpStream, Vec<u8>, bool)> = Vec::new();
    for i in 0..80u8 {
        let stream = hoard(Ipv4Addr::new(127, 0, 0, 2 + i % 4), &server, 1);
        hoarders.push((stream, Vec::new(), false));
    }
    // Every byte is in once the server holds or has shed all 80 (the rest of the
    // request is never sent, so none can complete).
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut closed = 0;
    while Instant::now() < deadline {
        for (stream, received, gone) in hoarders.iter_mut().filter(|h| !h.2) {
            if poll_closed(stream, received) {
                *gone = true;
                closed += 1;
            }
        }
        if closed >= 80 - most {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = server.ask(|d| d.stats().clone());
    let connections = server.ask(|d| d.counts().connections);
    let held = server.ask(|d| d.server().rooms().map_or(0, |s| s.request_bytes()));
    eprintln!(
        "request budget ({runtime:?}): 80 connections of 64 KiB - 1, {closed} closed by the server, {connections} held, {held} bytes"
    );
    assert!(
        held <= budget,
        "{held} bytes held, over the {budget}-byte budget"
    );
    assert_eq!(stats.connections_over_budget, closed as u64);
    assert!(
        hoarders.iter().all(|h| h.1.is_empty()),
        "an unfinished request is never answered"
    );
    assert!(
        connections <= most,
        "{connections} unfinished 64 KiB requests held, more than {budget} bytes"
    );
    assert_eq!(stats.handshake_timeouts, 0);

    // A small request still gets in, however full the budget is.
    let alice = server.create("lobby", "alice");
    drop(alice);
    assert_eq!(
        server.ask(|d| d.stats().handshakes(Status::Ok)),
        1,
        "alice's create was answered"
    );
    drop(hoarders);
    wait_for(&server.inspector(), "the hoarders are gone", |d| {
        d.counts().connections == 0
    });
}
