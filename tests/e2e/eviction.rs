//! Members are evicted when silent for the idle timeout, or when sends to them fail
//! (an ICMP port unreachable read from the socket's error queue, on Linux).

use crate::common::{config, raw, Runtime, TestServer};
use ocm_core::{Config, Operation};
use ocm_io::Protocol;
use ocm_smol::client::Outcome;
use std::time::Duration;

crate::on_both_runtimes!(
    a_silent_member_is_evicted_and_keepalives_keep_the_others,
    a_member_whose_socket_closed_is_evicted_after_n_relays,
    the_same_over_a_dual_stack_ipv6_socket,
    forged_icmp_errors_never_evict_a_member_that_keeps_talking,
);

fn a_silent_member_is_evicted_and_keepalives_keep_the_others(runtime: Runtime) {
    let config = Config {
        idle_timeout: Duration::from_secs(1),
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let chatty = |operation, name| {
        let mut options = server.target(operation, "idle", name, None);
        options.keepalive = Duration::from_millis(200);
        server.client(options)
    };
    let host = chatty(Operation::Create, "host");
    let silent = {
        let mut options = server.target(Operation::Join, "idle", "silent", None);
        options.keepalive = Duration::from_secs(60);
        server.client(options)
    };
    let carol = chatty(Operation::Join, "carol");
    host.expect(&["* silent joined", "* carol joined"]);
    silent.expect(&["* carol joined", "* disconnected: idle for 1 s, join again"]);
    assert_eq!(silent.outcome(), Outcome::Disconnected);
    host.expect(&["* silent was disconnected"]);
    carol.expect(&["* silent was disconnected"]);
    // More than the idle timeout has passed: keepalives kept host and carol in.
    host.say("still here");
    carol.expect(&["host: still here"]);
}

fn a_member_whose_socket_closed_is_evicted_after_n_relays(runtime: Runtime) {
    if !cfg!(target_os = "linux") {
        eprintln!(
            "skipped: ICMP errors reach an unconnected UDP socket only on Linux (IP_RECVERR)"
        );
        return;
    }
    evicted_after_failed_sends(runtime, "127.0.0.1:0");
}

fn the_same_over_a_dual_stack_ipv6_socket(runtime: Runtime) {
    if !cfg!(target_os = "linux") {
        eprintln!(
            "skipped: ICMP errors reach an unconnected UDP socket only on Linux (IP_RECVERR)"
        );
        return;
    }
    if !crate::ipv6::dual_stack() {
        eprintln!("skipped: no dual-stack IPv6 sockets on this system");
        return;
    }
    evicted_after_failed_sends(runtime, "[::]:0");
}

/// The victim gets its token, speaks once (so the server surely knows its address),
/// then closes its socket. Once it has been silent for `icmp_grace`, exactly
/// `max_send_failures` relays later (each answered by the kernel's ICMP port
/// unreachable) it is gone.
fn evicted_after_failed_sends(runtime: Runtime, addr: &str) {
    let grace = Duration::from_millis(300);
    let config = Config {
        max_send_failures: 2,
        icmp_grace: grace,
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, addr, config).via("127.0.0.1");
    let host = server.create("fragile", "host");
    let victim = raw::udp("127.0.0.1").unwrap();
    let port = victim.local_addr().unwrap().port();
    let token =
        raw::handshake(server.tcp(), raw::JOIN, "fragile", "victim", "", Some(port)).unwrap();
    victim
        .send_to(&raw::room_datagram("fragile", &token, "bye"), server.udp)
        .unwrap();
    host.expect(&["* victim joined", "victim: bye"]);
    drop(victim);
    std::thread::sleep(grace + Duration::from_millis(100));
    host.say("one");
    host.say("two");
    host.expect(&["* victim was disconnected"]);
}

/// An off-path attacker forges ICMP port unreachables quoting a member's address (100
/// of them, where 2 real failures would evict): the member keeps talking, so they count
/// for nothing, and it stays in the room. Before this rule, three forged packets evicted
/// anyone and closed a host's room.
fn forged_icmp_errors_never_evict_a_member_that_keeps_talking(runtime: Runtime) {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: ICMP errors reach an unconnected UDP socket only on Linux");
        return;
    }
    let config = Config {
        max_send_failures: 2,
        ..config()
    };
    let server = TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config);
    let host = server.create("target", "host");
    let victim = server.join("target", "victim");
    host.expect(&["* victim joined"]);
    victim.say("hello");
    host.expect(&["victim: hello"]);
    let victim_addr = server.ask(|d| {
        let members = d.server().rooms().unwrap().members_of("target").unwrap();
        members[1].udp.unwrap()
    });
    #[cfg(target_os = "linux")]
    if let Err(error) = crate::common::hostile::forge_icmp_unreachable(server.udp, victim_addr, 100)
    {
        eprintln!("skipped: cannot open a raw ICMP socket here ({error})");
        return;
    }
    server.until("the forged errors reached the core", |d| {
        d.stats().icmp_ignored >= 2
    });
    host.say("are you still there?");
    victim.expect(&["host: are you still there?"]);
    victim.say("yes");
    host.expect(&["victim: yes"]);
    let stats = server.stop();
    assert_eq!(stats.evictions, 0, "{stats:?}");
    eprintln!("forged ICMP errors ignored: {}", stats.icmp_ignored);
}
