//! While datagrams keep coming, the owner waits for the next one in the UDP socket's own
//! receive rather than in its poller (`io-common/src/owner.rs`), and asks the poller at
//! least every millisecond: a stream of datagrams must not keep TCP handshakes,
//! questions or the shutdown signal from getting through.
//!
//! The stream is clocked by the server alone: a host sends a message as soon as the
//! previous ones have reached the guest. With a few in flight the server has the next
//! datagram within microseconds and its reads come back short: the owner waits in the
//! socket, and each handshake here begins while it does (the test waits until the
//! server's count of such waits moves). With many in flight its reads come back full
//! and it reads on without asking the poller. Either way everything else must get
//! through; how soon is timing, for the benchmarks (the rules that bound it,
//! `waits_in_socket` and `poller_due`, have their own unit test).

use crate::common::{config, raw, Runtime, TestServer};
use ocm_core::Config;
use ocm_io::Protocol;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(
    a_stream_of_short_reads_keeps_nothing_else_waiting,
    a_stream_of_full_reads_keeps_nothing_else_waiting,
);

fn a_stream_of_short_reads_keeps_nothing_else_waiting(runtime: Runtime) {
    stream_keeps_nothing_else_waiting(runtime, 4, cfg!(target_os = "linux"));
}

fn a_stream_of_full_reads_keeps_nothing_else_waiting(runtime: Runtime) {
    // (within the guest's default receive buffer)
    stream_keeps_nothing_else_waiting(runtime, 128, false);
}

/// Rooms created and joined while the stream runs (a source may make 16, one is the
/// stream's).
const ROOMS: usize = 7;
/// Longest the stream runs: it stops once the server has, or after this.
const LONGEST: Duration = Duration::from_secs(30);

/// A stream with `in_flight` messages ahead of the guest while rooms are created and
/// joined; with `socket_waits`, each handshake begins while the owner waits in the
/// socket.
fn stream_keeps_nothing_else_waiting(runtime: Runtime, in_flight: u64, socket_waits: bool) {
    // No rate cuts the stream: it is as fast as the server.
    let config = Config {
        member_messages_per_sec: 1_000_000_000,
        member_message_burst: 1_000_000_000,
        member_bytes_per_sec: 2_000_000_000,
        member_byte_burst: 2_000_000_000,
        source_messages_per_sec: 1_000_000_000,
        source_message_burst: 1_000_000_000,
        room_fanout_per_sec: 2_000_000_000,
        room_fanout_burst: 2_000_000_000,
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let (host, guest) = (
        raw::udp("127.0.0.1").unwrap(),
        raw::udp("127.0.0.1").unwrap(),
    );
    let port = |s: &UdpSocket| Some(s.local_addr().unwrap().port());
    let token = raw::handshake(server.tcp(), raw::CREATE, "stream", "host", "", port(&host));
    let token = token.expect("the stream's room");
    let guest_token = raw::handshake(server.tcp(), raw::JOIN, "stream", "guest", "", port(&guest));
    let guest_token = guest_token.expect("the guest's token");
    server.wait_known("stream", "host");
    server.wait_known("stream", "guest");
    let done = Arc::new(AtomicBool::new(false));
    let to = server.udp;
    let stream = thread::spawn({
        let done = done.clone();
        move || {
            // The guest speaks once, so that its address is proven and it hears everything.
            let hello = raw::room_datagram("stream", &guest_token, "hi");
            guest.send_to(&hello, to).unwrap();
            let datagram = raw::room_datagram("stream", &token, "m");
            // (a message lost, say to a full buffer, is made up for after a pause)
            guest
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let started = Instant::now();
            let (mut sent, mut heard) = (0u64, 0u64);
            let mut buf = [0u8; 64];
            while !done.load(Ordering::Relaxed) && started.elapsed() < LONGEST {
                while sent < heard + in_flight {
                    host.send_to(&datagram, to).unwrap();
                    sent += 1;
                }
                match guest.recv(&mut buf) {
                    Ok(_) => heard += 1,
                    Err(_) => sent = heard, // timed out: what was in flight is lost
                }
            }
            heard
        }
    });
    let relayed = |server: &TestServer| server.ask(|driver| driver.stats().messages_relayed);
    server.until("the stream is relayed", |driver| {
        driver.stats().messages_relayed > 100
    });
    let waits = |server: &TestServer| server.ask(|driver| driver.telemetry().socket_waits);
    let before = relayed(&server);
    for i in 0..ROOMS {
        if socket_waits {
            let now = waits(&server);
            server.until("the owner waits in the socket", move |driver| {
                driver.telemetry().socket_waits > now
            });
        }
        let room = format!("busy-{i}");
        let created = raw::handshake(server.tcp(), raw::CREATE, &room, "host", "", None);
        assert!(created.is_ok(), "create {i} answered {created:?}");
        let joined = raw::handshake(server.tcp(), raw::JOIN, &room, "guest", "", None);
        assert!(joined.is_ok(), "join {i} answered {joined:?}");
    }
    let after = relayed(&server);
    assert!(
        after > before + ROOMS as u64,
        "the stream went on through the handshakes ({before} -> {after} relayed)"
    );
    // The shutdown signal gets through the stream too (within the harness's wait).
    server.stop();
    done.store(true, Ordering::Relaxed);
    let heard = stream.join().unwrap();
    // every message but the guest's own reached the guest, but those in flight at the end
    assert!(
        heard + 1 + in_flight >= after,
        "{heard} heard, {after} relayed"
    );
}
