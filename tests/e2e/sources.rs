//! Per-source limits (issue 17, item 5): one IPv4 address, or one IPv6 /64, is one
//! source; it may hold a few rooms, not all of them, and its addresses cannot multiply
//! its connection or member allowance.
//!
//! The IPv6 test needs addresses of one /64 on loopback: it makes them in a network
//! namespace of its own (Linux, with the right to create one; skipped elsewhere).

use crate::common::hostile::{ip_available, tcp_from, wait_closed, wait_for};
use crate::common::{config, raw, Runtime, TestServer, WAIT};
use ocm_core::{Config, Status};
use ocm_io::Protocol;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

crate::on_both_runtimes!(
    one_source_cannot_take_every_room,
    an_ipv6_prefix_is_one_source,
);

/// Creates `room` as `username` from `ip`; the status (0 for OK).
fn create_from(ip: impl Into<IpAddr>, server: &TestServer, room: &str, username: &str) -> u8 {
    let stream = tcp_from(ip, server.tcp()).expect("connect from the source address");
    let payload = format!(r#"{{"username":"{username}"}}"#);
    match raw::handshake_on(stream, raw::CREATE, room, &payload, None) {
        Ok(_) => 0,
        Err(status) => status,
    }
}

/// 40 addresses took all 10 000 rooms in 4 s: a source may host 16 rooms, and a create
/// over that is answered SERVER_FULL (7), while other sources still create.
fn one_source_cannot_take_every_room(runtime: Runtime) {
    if !ip_available("127.0.0.2") || !ip_available("127.0.0.3") {
        eprintln!("skipped: this system cannot bind 127.0.0.2 and 127.0.0.3");
        return;
    }
    let server = TestServer::rooms(runtime);
    let greedy = Ipv4Addr::new(127, 0, 0, 2);
    let statuses: Vec<u8> = (0..20)
        .map(|i| create_from(greedy, &server, &format!("room{i}"), "host"))
        .collect();
    eprintln!("rooms per source ({runtime:?}): statuses {statuses:?}");
    let ok = statuses.iter().filter(|s| **s == 0).count();
    assert_eq!(ok, 16, "one source hosts at most 16 rooms: {statuses:?}");
    assert!(statuses[16..]
        .iter()
        .all(|s| *s == Status::ServerFull.code()));
    assert_eq!(
        create_from(Ipv4Addr::new(127, 0, 0, 3), &server, "mine", "bob"),
        0,
        "another source still creates"
    );
    let rooms = server.ask(|d| d.counts().rooms);
    assert_eq!(rooms, 17);
}

/// Runs `test` on a thread of its own inside a new network namespace whose loopback
/// carries the addresses `fd00:17::1..=n` and `fd00:18::1` (two /64s). `None` when this
/// system does not allow it.
#[cfg(target_os = "linux")]
fn in_private_network(n: u16, test: impl FnOnce() + Send + 'static) -> Option<()> {
    use std::process::Command;
    let thread = std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ip(&["link", "set", "lo", "up"]) {
            return None;
        }
        let mut addrs: Vec<String> = (1..=n).map(|i| format!("fd00:17::{i:x}/64")).collect();
        addrs.push("fd00:18::1/64".into());
        for addr in &addrs {
            if !ip(&["-6", "addr", "add", addr, "dev", "lo", "nodad"]) {
                return None;
            }
        }
        test();
        Some(())
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(not(target_os = "linux"))]
fn in_private_network(_n: u16, _test: impl FnOnce() + Send + 'static) -> Option<()> {
    None
}

/// One IPv6 /64 is one host to an attacker but 2^64 addresses: every per-source limit
/// counts it once. Eight addresses of `fd00:17::/64` share 4 connections; a create from
/// any of them counts toward the same 16 rooms; `fd00:18::/64` is another source.
fn an_ipv6_prefix_is_one_source(runtime: Runtime) {
    let ran = in_private_network(18, move || {
        let v6 = |prefix: u16, i: u16| Ipv6Addr::new(0xfd00, prefix, 0, 0, 0, 0, 0, i);
        let config = Config {
            max_handshakes_per_ip: 4,
            ..config()
        };
        let bind = format!("[{}]:0", v6(0x17, 1));
        let server = TestServer::start(runtime, Protocol::Rooms, &bind, config);
        let inspector = server.inspector();
        // Eight silent connections from eight addresses of one /64.
        let mut held = Vec::new();
        for i in 2..10 {
            held.push(tcp_from(v6(0x17, i), server.tcp()).expect("connect in the namespace"));
        }
        wait_for(&inspector, "8 connections seen", |d| {
            d.counts().connections + d.stats().connections_refused as usize == 8
        });
        let (open, refused) =
            server.ask(|d| (d.counts().connections, d.stats().connections_refused));
        eprintln!("one /64 ({runtime:?}): 8 connections, {open} open, {refused} refused");
        assert_eq!((open, refused), (4, 4), "the /64 shares one allowance");
        // Which four: the first four stay, the others were closed without an answer.
        for stream in &mut held[4..] {
            assert!(wait_closed(stream, WAIT).received.is_empty());
        }
        // Another /64 is another source.
        let _other = tcp_from(v6(0x18, 1), server.tcp()).unwrap();
        wait_for(&inspector, "the other /64 is let in", |d| {
            d.counts().connections == 5
        });
        drop(held);
        wait_for(&inspector, "the silent connections are gone", |d| {
            d.counts().connections == 1
        });

        // Rooms: 18 creates from 18 addresses of the /64, 16 of them hosted.
        let statuses: Vec<u8> = (0..18)
            .map(|i| create_from(v6(0x17, 1 + i), &server, &format!("r{i}"), "h"))
            .collect();
        eprintln!("rooms from one /64 ({runtime:?}): {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 0).count(), 16);
        assert_eq!(create_from(v6(0x18, 1), &server, "elsewhere", "h"), 0);
    });
    if ran.is_none() {
        eprintln!(
            "skipped: cannot make a network namespace with IPv6 addresses here (needs Linux, `ip` and CAP_SYS_ADMIN)"
        );
    }
}
