//! What the chat client does for its user, end to end over loopback: `/who`, safe
//! display of what members send, a 10 000-line pipe delivered whole and in order, and
//! joining again after the server was killed and restarted.

use crate::cli::client;
use crate::common::process::Proc;
use crate::common::{Runtime, TestServer, WAIT};
use std::io::Write;
use std::net::{TcpListener, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(
    who_is_answered_to_the_asker_only,
    the_relay_answers_who_too,
    control_characters_from_members_are_printed_escaped,
    ten_thousand_piped_lines_arrive_whole_and_in_order,
    clients_join_again_after_the_server_is_killed_and_restarted,
    relay_clients_register_again_after_the_relay_is_killed_and_restarted,
    a_server_out_of_reach_for_a_while_gets_the_same_members_back,
);

fn who_is_answered_to_the_asker_only(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let alice = server.create("lobby", "alice");
    let bob = server.join("lobby", "bob");
    alice.expect(&["* bob joined"]);
    bob.say("/who");
    bob.expect(&["* members: alice (host), bob"]);
    bob.say("after");
    alice.expect(&["bob: after"]); // and not /who, nor its answer
}

fn the_relay_answers_who_too(runtime: Runtime) {
    let server = TestServer::relay(runtime);
    let a = server.relay_client("a");
    let b = server.relay_client("b");
    a.expect(&["* b joined"]);
    b.say("/who");
    b.expect(&["* members: a, b"]);
    b.say("after");
    a.expect(&["b: after"]);
}

/// An ocm server drops messages with control characters other than TAB; the client
/// does not rely on it (another server may relay them, see `src/chat/escape.rs` for
/// C0 and C1): what an ocm server does relay (TAB, bidi overrides, line separators)
/// is printed escaped.
fn control_characters_from_members_are_printed_escaped(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let mallory = server.create("lobby", "mallory");
    let tcp = server.tcp();
    let mut bob = client(tcp, server.udp, &["--name", "bob", "--join", "lobby"]);
    bob.stderr_until("in room \"lobby\"");
    mallory.expect(&["* bob joined"]);
    mallory.say("x\u{2028}* room closed: host left");
    mallory.say("abc\u{202e}fed\tend");
    bob.expect(&[
        "mallory: x\\u{2028}* room closed: host left",
        "mallory: abc\\u{202e}fed\\tend",
    ]);
    bob.close_stdin();
    assert_eq!(bob.exit_code(), 0);
}

const LINES: usize = 10_000;

fn ten_thousand_piped_lines_arrive_whole_and_in_order(runtime: Runtime) {
    // The client's pace is raised for speed below; the server's rates (which a paced
    // client stays under at its default) are raised to match.
    let config = ocm_core::Config {
        member_messages_per_sec: 5_000,
        member_message_burst: 5_000,
        source_messages_per_sec: 10_000,
        source_message_burst: 10_000,
        ..crate::common::config()
    };
    let server = TestServer::start(runtime, ocm_core::Protocol::Rooms, "127.0.0.1:0", config);
    let host = server.create("lobby", "host");
    let other = server.join("lobby", "other");
    host.expect(&["* other joined"]);
    // The pace is raised for speed (the default, 100 lines a second, would take 100 s).
    let mut sender = client(
        server.tcp(),
        server.udp,
        &["--name", "seq", "--join", "lobby", "--rate", "4000"],
    );
    sender.stderr_until("in room \"lobby\"");
    host.expect(&["* seq joined"]);
    other.expect(&["* seq joined"]);
    let mut stdin = sender.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        let text: String = (1..=LINES).map(|i| format!("{i}\n")).collect();
        stdin
            .write_all(text.as_bytes())
            .expect("the client reads its stdin");
        // Dropping stdin is the end of input: the client leaves after the last line.
    });
    let started = Instant::now();
    for member in [&host, &other] {
        let got = member.lines_until("* seq left");
        let expected: Vec<String> = (1..=LINES).map(|i| format!("seq: {i}")).collect();
        assert_eq!(got.len(), LINES, "lines lost");
        assert!(got == expected, "lines out of order or changed");
    }
    writer.join().unwrap();
    assert_eq!(sender.exit_code(), 0, "exit 0 once the last line was sent");
    eprintln!(
        "{LINES} piped lines to 2 members in {:?}",
        started.elapsed()
    );
}

/// A port free on 127.0.0.1 for both TCP and UDP (checked, then released).
fn free_ports() -> (u16, u16) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    (
        tcp.local_addr().unwrap().port(),
        udp.local_addr().unwrap().port(),
    )
}

fn start_server(runtime: Runtime, tcp: u16, udp: u16) -> Proc {
    let (t, u) = (format!("127.0.0.1:{tcp}"), format!("127.0.0.1:{udp}"));
    start(&[
        "server",
        "--runtime",
        runtime.flag(),
        "--tcp",
        &t,
        "--udp",
        &u,
    ])
}

/// Starts `ocm server` with `args` and waits for its `listening` line (retrying while
/// the ports are not free again yet).
fn start(args: &[&str]) -> Proc {
    let deadline = Instant::now() + WAIT;
    loop {
        let server = Proc::spawn(args);
        if let Ok(line) = server.stdout.recv_timeout(WAIT) {
            assert!(line.starts_with("listening"), "{line}");
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "the server does not start: {args:?}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

fn clients_join_again_after_the_server_is_killed_and_restarted(runtime: Runtime) {
    let (tcp_port, udp_port) = free_ports();
    let mut server = start_server(runtime, tcp_port, udp_port);
    let tcp = format!("127.0.0.1:{tcp_port}").parse().unwrap();
    let udp = format!("127.0.0.1:{udp_port}").parse().unwrap();
    let fast = ["--keepalive", "300ms"];
    let with = |args: &[&'static str]| [args, &fast[..]].concat();
    let mut alice = client(tcp, udp, &with(&["--name", "alice", "--create", "lobby"]));
    alice.stderr_until("in room \"lobby\"");
    let mut bob = client(tcp, udp, &with(&["--name", "bob", "--join", "lobby"]));
    bob.stderr_until("in room \"lobby\"");
    let mut carol = client(
        tcp,
        udp,
        &with(&["--name", "carol", "--join", "lobby", "--no-reconnect"]),
    );
    carol.stderr_until("in room \"lobby\"");
    alice.expect(&["* bob joined", "* carol joined"]);

    // A crash: no notice reaches anyone.
    let killed = Instant::now();
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for member in [&alice, &bob] {
        member.stderr_until("connection lost");
    }
    let noticed = killed.elapsed();
    assert!(
        noticed <= Duration::from_millis(2 * 300 + 500),
        "noticed after {noticed:?}"
    );
    let code = carol.exit_code();
    assert!(
        code == 1 || code == 5,
        "--no-reconnect exits with an error, got {code}"
    );

    let _server = start_server(runtime, tcp_port, udp_port);
    // The host creates its room again, the member joins it again (retrying while the
    // room is not back yet).
    alice.stderr_until("* back in room \"lobby\"");
    bob.stderr_until("* back in room \"lobby\"");
    bob.say("after the restart");
    let deadline = Instant::now() + WAIT;
    while alice.line() != "bob: after the restart" {
        assert!(Instant::now() < deadline, "bob's line never reached alice");
    }
    alice.say("welcome back");
    let deadline = Instant::now() + WAIT;
    while bob.line() != "alice: welcome back" {
        assert!(Instant::now() < deadline, "alice's line never reached bob");
    }
    bob.close_stdin();
    assert_eq!(bob.exit_code(), 0);
}

#[test]
fn a_room_that_needs_a_password_says_so_and_a_file_opens_it() {
    let server = TestServer::rooms(Runtime::Smol);
    let options = server.target(
        ocm_core::Operation::Create,
        "vault",
        "alice",
        Some("sesame"),
    );
    let alice = server.client(options);
    let (tcp, udp) = (server.tcp(), server.udp);
    let mut none = client(tcp, udp, &["--name", "bob", "--join", "vault"]);
    assert_eq!(none.exit_code(), 3);
    let error = none.stderr_until("ocm: error:");
    assert!(error.contains("room \"vault\" needs a password"), "{error}");
    let mut wrong = client(
        tcp,
        udp,
        &["--name", "bob", "--join", "vault", "--password", "x"],
    );
    assert_eq!(wrong.exit_code(), 3);
    assert!(wrong.stderr_until("ocm: error:").contains("wrong password"));
    let file = std::env::temp_dir().join(format!("ocm-e2e-pw-{}", std::process::id()));
    std::fs::write(&file, "sesame\n").unwrap();
    let path = file.to_str().unwrap();
    let mut right = client(
        tcp,
        udp,
        &["--name", "bob", "--join", "vault", "--password-file", path],
    );
    right.stderr_until("in room \"vault\"");
    alice.expect(&["* bob joined"]);
    right.close_stdin();
    assert_eq!(right.exit_code(), 0);
    std::fs::remove_file(&file).unwrap();
}

fn relay_clients_register_again_after_the_relay_is_killed_and_restarted(runtime: Runtime) {
    let (_, udp_port) = free_ports();
    let addr = format!("127.0.0.1:{udp_port}");
    let args = [
        "server",
        "--runtime",
        runtime.flag(),
        "--protocol",
        "relay",
        "--udp",
        &addr,
    ];
    let mut relay = start(&args);
    let relay_client = |name| {
        Proc::spawn(&[
            "client",
            "--protocol",
            "relay",
            "--server",
            &addr,
            "--name",
            name,
            "--keepalive",
            "300ms",
        ])
    };
    let ann = relay_client("ann");
    ann.stderr_until("on the relay");
    let mut ben = relay_client("ben");
    ben.stderr_until("on the relay");
    ann.expect(&["* ben joined"]);
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    ann.stderr_until("connection lost");
    ben.stderr_until("connection lost");
    let _relay = start(&args);
    ann.stderr_until("* back on the relay");
    ben.stderr_until("* back on the relay");
    ben.say("after the restart");
    let deadline = Instant::now() + WAIT;
    while ann.line() != "ben: after the restart" {
        assert!(Instant::now() < deadline, "ben's line never reached ann");
    }
    ben.close_stdin();
    assert_eq!(ben.exit_code(), 0);
}

/// A server frozen (SIGSTOP) for longer than two keepalives, then thawed: it still
/// holds both members, and they resume them (a new create would be refused: the room
/// still exists) instead of joining anew.
#[cfg(unix)]
fn a_server_out_of_reach_for_a_while_gets_the_same_members_back(runtime: Runtime) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let (tcp_port, udp_port) = free_ports();
    let server = start_server(runtime, tcp_port, udp_port);
    let pid = Pid::from_raw(server.child.id() as i32);
    let tcp = format!("127.0.0.1:{tcp_port}").parse().unwrap();
    let udp = format!("127.0.0.1:{udp_port}").parse().unwrap();
    let fast = ["--keepalive", "300ms", "--timeout", "300ms"];
    let with = |args: &[&'static str]| [args, &fast[..]].concat();
    let mut alice = client(tcp, udp, &with(&["--name", "alice", "--create", "lobby"]));
    alice.stderr_until("in room \"lobby\"");
    let mut bob = client(tcp, udp, &with(&["--name", "bob", "--join", "lobby"]));
    bob.stderr_until("in room \"lobby\"");
    alice.expect(&["* bob joined"]);
    // A line each way: the server has read (and answered) both clients' first probes,
    // so both know it has the extension before it freezes.
    bob.say("ready");
    alice.expect(&["bob: ready"]);
    alice.say("ready");
    assert_eq!(bob.line(), "alice: ready");
    kill(pid, Signal::SIGSTOP).unwrap();
    alice.stderr_until("connection lost: the server stopped answering");
    bob.stderr_until("connection lost: the server stopped answering");
    thread::sleep(Duration::from_millis(700));
    kill(pid, Signal::SIGCONT).unwrap();
    alice.stderr_until("* back in room \"lobby\"");
    bob.stderr_until("* back in room \"lobby\"");
    bob.say("still here");
    // The same memberships: no new join notice comes before bob's line.
    assert_eq!(alice.line(), "bob: still here");
    bob.close_stdin();
    assert_eq!(bob.exit_code(), 0);
    alice.expect(&["* bob left"]);
}

#[cfg(not(unix))]
fn a_server_out_of_reach_for_a_while_gets_the_same_members_back(_: Runtime) {}
