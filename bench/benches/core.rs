//! Criterion benchmarks of the sans-IO core alone (no sockets):
//!
//! - `relay/N`: one inbound chat datagram through `RoomServer` (decode, authorize, fan-out
//!   to N-1 outputs, drained) in a room of N members;
//! - `rooms/K`: the same for a 2-member room while K rooms are alive: the cost must
//!   not grow with K;
//! - `handshake`: a whole TCRP create (accept, request, answer, close) and the host's
//!   `/exit` that closes the room again.
//!
//! Run with `cargo bench -p ocm-bench --bench core`.

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use ocm_bench::Fixture;
use ocm_core::Machine;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Measures one chat datagram from member `speaker` through `fixture`'s server, drained.
fn bench_datagram(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: usize,
    fixture: &mut Fixture,
    speaker: usize,
    message: &str,
) {
    let datagram = fixture.datagram(speaker, message);
    let from = fixture.members[speaker].2;
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::from_parameter(id), |b| {
        b.iter(|| {
            // A microsecond apart: the buckets refill (as between reads in a server).
            fixture.now += Duration::from_micros(1);
            fixture
                .server
                .handle_datagram(fixture.now, from, black_box(&datagram));
            black_box(fixture.drain())
        })
    });
    // Every message measured was relayed, none dropped (by a rate limit, say).
    let stats = fixture.server.stats();
    assert_eq!(
        stats.dropped_total(),
        0,
        "relay/{id}: datagrams were dropped"
    );
    assert!(stats.messages_relayed > 0);
}

fn relay(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay");
    for members in [2usize, 8, 64, 256] {
        let mut fixture = Fixture::with_rooms(1, members);
        bench_datagram(
            &mut group,
            members,
            &mut fixture,
            0,
            "hello, everyone in the room",
        );
    }
    group.finish();
}

fn rooms(c: &mut Criterion) {
    let mut group = c.benchmark_group("rooms");
    group.sample_size(30);
    for rooms in [1usize, 100, 10_000] {
        let mut fixture = Fixture::with_rooms(rooms, 2);
        // speak in the last room created, so no lucky early hit in any table
        let speaker = fixture.members.len() - 2;
        bench_datagram(&mut group, rooms, &mut fixture, speaker, "hello");
    }
    group.finish();
}

fn handshake(c: &mut Criterion) {
    let mut fixture = Fixture::new();
    let ip = IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1));
    let udp = std::net::SocketAddr::new(ip, 4000);
    c.bench_function("handshake", |b| {
        b.iter(|| {
            let token = fixture.handshake(ip, "bench-room", "host", true);
            let exit = ocm_core::wire::room_datagram::RoomDatagram {
                room: b"bench-room",
                token: &token,
                message: b"/exit",
            }
            .encode()
            .expect("small datagram");
            fixture.server.handle_datagram(fixture.now, udp, &exit);
            black_box(fixture.drain())
        })
    });
}

criterion_group!(benches, relay, rooms, handshake);
criterion_main!(benches);
