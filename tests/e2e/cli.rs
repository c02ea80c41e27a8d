//! The built `ocm` binary as child processes: the `listening` line, two clients chatting
//! through stdin and stdout, SIGTERM, the exit codes of the documented failures, the
//! periodic stats line and the rate-limited drop log.

use crate::common::{Runtime, WAIT};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(a_server_and_two_clients_chat_through_the_binary);

/// A child process with its output read line by line on threads; killed when dropped.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: mpsc::Receiver<String>,
    pub(crate) stderr: mpsc::Receiver<String>,
}

fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    pub(crate) fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_logging(args, "info")
    }

    pub(crate) fn spawn_logging(args: &[&str], log: &str) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ocm"))
            .args(args)
            .env("RUST_LOG", log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ocm starts");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Proc {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
        }
    }

    pub(crate) fn line(&self) -> String {
        self.stdout
            .recv_timeout(WAIT)
            .expect("a line on stdout within the wait")
    }

    pub(crate) fn expect(&self, lines: &[&str]) {
        for expected in lines {
            assert_eq!(self.line(), *expected);
        }
    }

    /// Waits for a stderr line containing `text`.
    pub(crate) fn stderr_until(&self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no stderr line with {text:?} within the wait"));
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Every stderr line not read yet, up to the end of the stream (call after exit).
    pub(crate) fn stderr_lines(&self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    pub(crate) fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub(crate) fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().expect("exited, not killed");
            }
            assert!(
                Instant::now() < deadline,
                "ocm did not exit within the wait"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    #[cfg(unix)]
    pub(crate) fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ocm server` on free loopback ports and parses its one stdout line.
pub(crate) fn server(extra: &[&str]) -> (Proc, SocketAddr, SocketAddr) {
    server_logging(extra, "info")
}

/// [`server`] with `RUST_LOG` set to `log`.
fn server_logging(extra: &[&str], log: &str) -> (Proc, SocketAddr, SocketAddr) {
    let mut args = vec!["server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let server = Proc::spawn_logging(&args, log);
    let line = server.line();
    let addr = |key: &str| -> SocketAddr {
        let field = line
            .split(' ')
            .find_map(|f| f.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in {line:?}"));
        field.parse().unwrap()
    };
    assert!(line.starts_with("listening tcp="), "{line}");
    let (tcp, udp) = (addr("tcp="), addr("udp="));
    (server, tcp, udp)
}

pub(crate) fn client(tcp: SocketAddr, udp: SocketAddr, args: &[&str]) -> Proc {
    let (t, u) = (tcp.port().to_string(), udp.port().to_string());
    let mut all = vec![
        "client",
        "--server",
        "127.0.0.1",
        "--tcp-port",
        &t,
        "--udp-port",
        &u,
    ];
    all.extend_from_slice(args);
    Proc::spawn(&all)
}

fn a_server_and_two_clients_chat_through_the_binary(runtime: Runtime) {
    let (mut server, tcp, udp) = server(&["--runtime", runtime.flag()]);
    let mut alice = client(tcp, udp, &["--name", "alice", "--create", "lobby"]);
    alice.stderr_until("in room \"lobby\"");
    let mut bob = client(tcp, udp, &["--name", "bob", "--join", "lobby"]);
    bob.stderr_until("in room \"lobby\"");
    alice.expect(&["* bob joined"]);
    bob.say("hi alice");
    alice.expect(&["bob: hi alice"]);
    alice.say("hi bob");
    bob.expect(&["alice: hi bob"]);
    server.stderr_until("joined");
    bob.close_stdin();
    assert_eq!(bob.exit_code(), 0, "end of input leaves with 0");
    alice.expect(&["* bob left"]);
    #[cfg(unix)]
    {
        server.terminate();
        alice.expect(&["* room closed: server shutting down"]);
        assert_eq!(alice.exit_code(), 6, "a closed room exits with 6");
        assert_eq!(server.exit_code(), 0, "SIGTERM is a clean shutdown");
    }
    #[cfg(not(unix))]
    {
        alice.say("/exit");
        assert_eq!(alice.exit_code(), 0);
    }
}

#[test]
fn relay_mode_prints_only_the_udp_address() {
    let server = Proc::spawn(&["server", "--protocol", "relay", "--udp", "127.0.0.1:0"]);
    let line = server.line();
    let udp: SocketAddr = line
        .strip_prefix("listening udp=")
        .expect(&line)
        .parse()
        .unwrap();
    let addr = udp.to_string();
    let mut a = Proc::spawn(&[
        "client",
        "--protocol",
        "relay",
        "--server",
        &addr,
        "--name",
        "a",
    ]);
    a.stderr_until("on the relay");
    let mut b = Proc::spawn(&[
        "client",
        "--protocol",
        "relay",
        "--server",
        &addr,
        "--name",
        "b",
    ]);
    b.stderr_until("on the relay");
    a.expect(&["* b joined"]);
    b.say("hello relay");
    a.expect(&["b: hello relay"]);
    a.say("/exit");
    assert_eq!(a.exit_code(), 0);
    b.expect(&["* a left"]);
}

#[test]
fn a_refused_join_is_one_line_on_stderr_and_exit_3() {
    let (_server, tcp, udp) = server(&[]);
    let mut bob = client(tcp, udp, &["--name", "bob", "--join", "nowhere"]);
    assert_eq!(bob.exit_code(), 3);
    assert_eq!(
        bob.stderr.recv_timeout(WAIT).unwrap(),
        r#"ocm: error: room "nowhere" does not exist"#
    );
}

#[test]
fn a_server_that_never_answers_is_a_timeout_with_exit_4() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = silent.local_addr().unwrap();
    let mut client = client(
        tcp,
        tcp,
        &["--name", "bob", "--join", "x", "--timeout", "0.5"],
    );
    assert_eq!(client.exit_code(), 4);
    let error = client.stderr.recv_timeout(WAIT).unwrap();
    assert!(error.starts_with("ocm: error: no answer from"), "{error}");
    drop(silent);
}

#[test]
fn no_server_at_all_is_an_error_with_exit_1() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = closed.local_addr().unwrap();
    drop(closed);
    let mut client = client(tcp, tcp, &["--name", "bob", "--join", "x"]);
    assert_eq!(client.exit_code(), 1);
    let error = client.stderr.recv_timeout(WAIT).unwrap();
    assert!(
        error.starts_with("ocm: error: cannot connect to"),
        "{error}"
    );
}

#[test]
fn a_missing_name_without_a_terminal_is_a_usage_error() {
    let mut client = Proc::spawn(&["client", "--join", "x"]);
    assert_eq!(client.exit_code(), 2);
    let error = client.stderr.recv_timeout(WAIT).unwrap();
    assert!(error.contains("no username given"), "{error}");
}

#[test]
fn help_teaches_the_commands_and_the_exit_codes() {
    let output = Command::new(env!("CARGO_BIN_EXE_ocm"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for text in [
        "ocm server",
        "ocm client --name alice --create lobby",
        "Exit codes:",
        "6  the room closed",
    ] {
        assert!(help.contains(text), "--help lacks {text:?}:\n{help}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_ocm"))
        .args(["server", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--runtime",
        "--protocol",
        "--tcp",
        "--udp",
        "--idle-timeout",
        "--max-send-failures",
        "--max-rooms",
        "--max-members",
    ] {
        assert!(help.contains(flag), "server --help lacks {flag}");
    }
}

/// Sends `n` truncated datagrams to `udp`, 10 at a time with a breath between, so the
/// kernel's receive buffer cannot overflow.
fn junk(udp: SocketAddr, n: usize) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..n {
        socket.send_to(&[9, 9, b'x'], udp).unwrap();
        if i % 10 == 9 {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(unix)]
#[test]
fn the_server_logs_its_counters_periodically_and_on_shutdown() {
    let (mut server, _tcp, udp) = server(&["--stats-interval", "1"]);
    let first = server.stderr_until("stats:");
    assert!(first.contains(" INFO "), "{first}");
    assert!(first.contains("stats: received=0 "), "{first}");
    assert!(first.contains("rooms=0 members=0 connections=0"), "{first}");
    junk(udp, 3);
    // The next summaries count them, once the owner has read them.
    let deadline = Instant::now() + WAIT;
    while !server.stderr_until("stats:").contains("dropped=3 ") {
        assert!(Instant::now() < deadline, "no summary counted the 3 drops");
    }
    server.terminate();
    let last = server.stderr_until("stopped");
    assert!(last.contains("stats: received=3 "), "{last}");
    assert!(last.contains("dropped=3 "), "{last}");
    assert_eq!(server.exit_code(), 0);
}

#[test]
fn a_flood_of_drops_is_logged_at_most_20_lines_a_second() {
    let (server, _tcp, udp) = server_logging(&["--stats-interval", "0"], "ocm_io=debug");
    let sent = 100;
    junk(udp, sent);
    let (mut printed, mut left_out) = (0, 0);
    let deadline = Instant::now() + WAIT;
    while printed + left_out < sent {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = server.stderr.recv_timeout(left) else {
            panic!("{printed} drop lines and {left_out} left out, of {sent}, within the wait");
        };
        if line.contains("datagram dropped from=") {
            printed += 1;
        } else if let Some((_, n)) = line.split_once("suppressed=") {
            left_out += n.trim().parse::<usize>().expect("a count");
        }
    }
    assert_eq!(
        printed + left_out,
        sent,
        "every drop is a line or is counted"
    );
    assert!(
        left_out > 0,
        "a burst of {sent} was not limited: {printed} lines"
    );
    eprintln!("drop log: {sent} drops, {printed} lines, {left_out} left out");
}

/// 300 relay registrations from as many source ports (what one spoofer makes at will;
/// 20 000 of them once wrote 8.5 MB of info log in 0.6 s) give at most 20 "joined"
/// lines a second at info level, and a count of the rest.
#[test]
fn a_flood_of_registrations_is_logged_at_most_20_lines_a_second() {
    // With the address check off (a trusted network), each spoofed source registers.
    let server = Proc::spawn(&[
        "server",
        "--protocol",
        "relay",
        "--udp",
        "127.0.0.1:0",
        "--relay-verify",
        "off",
        "--max-members-per-ip",
        "1000",
    ]);
    let line = server.line();
    let udp: SocketAddr = line
        .strip_prefix("listening udp=")
        .expect(&line)
        .parse()
        .unwrap();
    let sent = 300;
    let sockets: Vec<std::net::UdpSocket> = (0..sent)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, socket) in sockets.iter().enumerate() {
        socket.send_to(b"\x04user", udp).unwrap();
        if i % 10 == 9 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    let (mut joined, mut left_out) = (0, 0);
    let deadline = Instant::now() + WAIT;
    while joined + left_out < sent {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = server.stderr.recv_timeout(left) else {
            panic!("{joined} joined lines and {left_out} left out, of {sent}, within the wait");
        };
        if line.contains(" joined") {
            joined += 1;
        } else if line.contains("membership lines left out") {
            let (_, n) = line.split_once("suppressed=").expect("a count");
            left_out += n
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap();
        }
    }
    assert!(
        left_out > 0 && joined < sent,
        "{joined} lines for {sent} joins: not limited"
    );
    server.terminate();
    eprintln!("registration log: {sent} joins, {joined} lines, {left_out} left out");
}

/// `ocm replay` on a committed trace, on the same trace with an output changed, and on
/// a file that is no trace: exit codes 0, 7 and 1, with a summary or one error line.
#[test]
fn replay_runs_a_trace_and_says_when_it_no_longer_matches() {
    let trace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/traces/rooms-session.trace");
    let run = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_ocm"))
            .arg("replay")
            .args(args)
            .output()
            .expect("ocm runs")
    };
    let ok = run(&[trace.as_os_str(), "--compare".as_ref()]);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("protocol=rooms, outputs recorded"),
        "{stdout}"
    );
    assert!(stdout.contains("rooms created=1"), "{stdout}");
    assert!(
        stdout.contains("outputs identical to the recording"),
        "{stdout}"
    );

    let changed = std::env::temp_dir().join(format!("ocm-cli-{}.trace", std::process::id()));
    let mut bytes = std::fs::read(&trace).unwrap();
    *bytes.last_mut().unwrap() ^= 0x20;
    std::fs::write(&changed, &bytes).unwrap();
    let failed = run(&[changed.as_os_str(), "--compare".as_ref()]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("outputs differ from the recording"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&changed);

    let not_a_trace = run(&[std::ffi::OsStr::new(env!("CARGO_MANIFEST_DIR"))]);
    assert_eq!(not_a_trace.status.code(), Some(1));
}

/// The server sizes its UDP buffers itself (8 MiB asked; the kernel's default is about
/// 208 KiB, which a burst of junk fills) and says what it got: the size, or a warning
/// that the kernel capped it.
#[test]
fn the_server_sizes_its_udp_buffers_and_says_so() {
    let server = Proc::spawn(&["server", "--protocol", "relay", "--udp", "127.0.0.1:0"]);
    let line = server.stderr_until("udp buffers");
    let capped = line.contains("capped");
    let receive: usize = line
        .split("receive=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {line:?}"));
    assert!(
        receive >= ocm_io::sockbuf::DEFAULT_BUFFER || capped,
        "{line}"
    );
    let small = Proc::spawn(&[
        "server",
        "--protocol",
        "relay",
        "--udp",
        "127.0.0.1:0",
        "--udp-buffer",
        "0",
    ]);
    assert!(
        small.line().starts_with("listening"),
        "0 keeps the kernel's defaults"
    );
    server.terminate();
}
