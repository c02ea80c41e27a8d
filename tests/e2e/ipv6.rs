//! IPv6: a server on `::1`, and IPv4 clients of a dual-stack server on `[::]` (whose
//! socket sees them as `::ffff:127.0.0.1`, while core keys them as `127.0.0.1`).

use crate::common::{config, Runtime, TestServer};
use ocm_io::Protocol;
use std::net::UdpSocket;
use std::time::Duration;

crate::on_both_runtimes!(
    clients_chat_over_ipv6_loopback,
    ipv4_clients_chat_on_a_dual_stack_server
);

/// True when `::1` can be bound.
pub fn loopback_v6() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

/// True when a socket bound to `[::]` receives from an IPv4 peer.
pub fn dual_stack() -> bool {
    let probe = || -> std::io::Result<bool> {
        let server = UdpSocket::bind("[::]:0")?;
        server.set_read_timeout(Some(Duration::from_secs(1)))?;
        let client = UdpSocket::bind("127.0.0.1:0")?;
        client.send_to(b"probe", ("127.0.0.1", server.local_addr()?.port()))?;
        Ok(server.recv_from(&mut [0; 8]).is_ok())
    };
    probe().unwrap_or(false)
}

fn clients_chat_over_ipv6_loopback(runtime: Runtime) {
    if !loopback_v6() {
        eprintln!("skipped: IPv6 loopback is not available");
        return;
    }
    let server = TestServer::start(runtime, Protocol::Rooms, "[::1]:0", config());
    let alice = server.create("six", "alice");
    let bob = server.join("six", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("over v6");
    alice.expect(&["bob: over v6"]);
    alice.say("back");
    bob.expect(&["alice: back"]);
}

fn ipv4_clients_chat_on_a_dual_stack_server(runtime: Runtime) {
    if !dual_stack() {
        eprintln!("skipped: no dual-stack IPv6 sockets on this system");
        return;
    }
    let server = TestServer::start(runtime, Protocol::Rooms, "[::]:0", config()).via("127.0.0.1");
    let alice = server.create("mixed", "alice");
    let bob = server.join("mixed", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("mapped");
    alice.expect(&["bob: mapped"]);
    alice.say("and back");
    bob.expect(&["alice: and back"]);
}
