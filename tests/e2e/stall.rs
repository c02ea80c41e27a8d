//! A stall of the whole server process (SIGSTOP here; a VM's steal time or a swapped-out
//! page does the same) must not evict members whose datagrams were already waiting in
//! the kernel when it resumed: they were received, so they count. And what waited in the
//! kernel is taken in the order it could have been caused: a datagram that was there
//! before a TCP request is handled before it.

use crate::common::process::server;
use crate::common::raw::{handshake, recv_text, room_datagram, udp};
use crate::common::Runtime;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::thread;
use std::time::Duration;

crate::on_both_runtimes!(
    members_heard_during_a_stall_are_not_evicted_after_it,
    a_member_heard_before_a_join_is_told_of_it_after_a_stall,
);

fn members_heard_during_a_stall_are_not_evicted_after_it(runtime: Runtime) {
    let (server, tcp, udp_addr) = server(&["--runtime", runtime.flag(), "--idle-timeout", "2s"]);
    let (host, guest, stranger) = (
        udp("127.0.0.1").unwrap(),
        udp("127.0.0.1").unwrap(),
        udp("127.0.0.1").unwrap(),
    );
    let host_token = handshake(tcp, 1, "stall", "host", "", None).expect("created");
    host.send_to(&room_datagram("stall", &host_token, ""), udp_addr)
        .unwrap();
    let guest_token = handshake(tcp, 2, "stall", "guest", "", None).expect("joined");
    guest
        .send_to(&room_datagram("stall", &guest_token, ""), udp_addr)
        .unwrap();
    // UDP is read in order: once the guest's line reaches the host, both are known
    guest
        .send_to(&room_datagram("stall", &guest_token, "hi"), udp_addr)
        .unwrap();
    while recv_text(&host) != "guest: hi" {}

    let pid = Pid::from_raw(server.child.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    thread::sleep(Duration::from_millis(1_500));
    // While it is stopped: more junk than one read batch, then both members speak. The
    // kernel holds it all; every member was last heard over 2 s before the resume.
    for _ in 0..300 {
        stranger.send_to(b"\x05\x00junk", udp_addr).unwrap();
    }
    host.send_to(&room_datagram("stall", &host_token, "still here"), udp_addr)
        .unwrap();
    guest
        .send_to(&room_datagram("stall", &guest_token, "me too"), udp_addr)
        .unwrap();
    thread::sleep(Duration::from_millis(1_500));
    kill(pid, Signal::SIGCONT).unwrap();

    // Had the idle timers fired before the socket was read, the host would be evicted
    // and the guest told the room closed.
    assert_eq!(recv_text(&guest), "host: still here");
    assert_eq!(recv_text(&host), "guest: me too");
}

/// The host's first datagram (its address) is in the kernel before the guest connects;
/// the server, stopped, finds both when it resumes. Had it handled the join before the
/// datagram, the host would have had no address to be told at: no `* guest joined`,
/// ever (seen once under load, with the real client, in `cli.rs`).
fn a_member_heard_before_a_join_is_told_of_it_after_a_stall(runtime: Runtime) {
    let (server, tcp, udp_addr) = server(&["--runtime", runtime.flag()]);
    let host = udp("127.0.0.1").unwrap();
    let host_token = handshake(tcp, 1, "order", "host", "", None).expect("created");
    let pid = Pid::from_raw(server.child.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    host.send_to(&room_datagram("order", &host_token, ""), udp_addr)
        .unwrap();
    // The kernel accepts the guest's connection and holds its request meanwhile.
    let guest = thread::spawn(move || handshake(tcp, 2, "order", "guest", "", None));
    thread::sleep(Duration::from_millis(500));
    kill(pid, Signal::SIGCONT).unwrap();
    guest.join().unwrap().expect("joined");
    assert_eq!(recv_text(&host), "* guest joined");
}
