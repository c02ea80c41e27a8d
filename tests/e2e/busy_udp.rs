//! While datagrams keep coming, the owner waits for the next one in the UDP socket's own
//! receive rather than in its poller (`io-common/src/owner.rs`), and asks the poller at
//! least every millisecond: a stream of datagrams must not keep TCP handshakes,
//! questions or the shutdown signal from getting through.
//!
//! The stream is clocked by the server alone: a host sends a message as soon as the
//! previous ones have reached the guest, a few in flight, so the server has the next
//! datagram within microseconds and its reads come back short (the case where the owner
//! waits in the socket). This checks that everything else gets through, not how soon:
//! that is timing, for the benchmarks; the rule that bounds it (`waits_in_socket`) has
//! its own unit test.

use crate::common::{config, raw, Runtime, TestServer};
use ocm_core::Config;
use ocm_io::Protocol;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(a_stream_with_no_pause_keeps_nothing_else_waiting);

/// Rooms created and joined while the stream runs (a source may make 16, one is the
/// stream's).
const ROOMS: usize = 7;
/// Messages the host keeps ahead of the guest.
const IN_FLIGHT: u64 = 4;
/// Longest the stream runs: it stops once the server has, or after this.
const LONGEST: Duration = Duration::from_secs(30);

fn a_stream_with_no_pause_keeps_nothing_else_waiting(runtime: Runtime) {
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
            guest.set_nonblocking(true).unwrap();
            let started = Instant::now();
            let (mut sent, mut heard) = (0u64, 0u64);
            let mut buf = [0u8; 64];
            let mut progress = Instant::now();
            while !done.load(Ordering::Relaxed) && started.elapsed() < LONGEST {
                while guest.recv(&mut buf).is_ok() {
                    heard += 1;
                    progress = Instant::now();
                }
                // (a message lost, say to a full buffer, is made up for after a pause)
                let stalled = progress.elapsed() > Duration::from_millis(100);
                if sent < heard + IN_FLIGHT || stalled {
                    host.send_to(&datagram, to).unwrap();
                    sent += 1;
                    if stalled {
                        progress = Instant::now();
                    }
                }
            }
            heard
        }
    });
    let relayed = |server: &TestServer| server.ask(|driver| driver.stats().messages_relayed);
    server.until("the stream is relayed", |driver| {
        driver.stats().messages_relayed > 100
    });
    let before = relayed(&server);
    for i in 0..ROOMS {
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
        heard + 1 + IN_FLIGHT >= after,
        "{heard} heard, {after} relayed"
    );
}
