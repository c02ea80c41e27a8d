//! The `ocm` binary under a low file-descriptor limit (issue 17, item 4), set with
//! `ulimit` in the shell that execs it: the server reads `RLIMIT_NOFILE` at start,
//! raises the soft limit toward the hard one, and lowers its connection limit to what
//! still fits, so answered connections held open by a peer can never exhaust its
//! descriptors (before: 300 such connections from one IP filled `ulimit -n 200`, and
//! `accept` failed every 100 ms while the stats said `connections=0`).

use crate::common::hostile::{ip_available, tcp_from};
use crate::common::process::{listening, Proc};
use crate::common::{raw, Runtime};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(
    at_a_low_hard_limit_the_connection_limit_shrinks_to_fit_and_accept_never_fails,
    a_low_soft_limit_is_raised_toward_the_hard_one,
);

/// `ocm server` on free loopback ports, after `ulimit` in its shell.
fn server_under(ulimit: &str, runtime: Runtime) -> (Proc, SocketAddr) {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("{ulimit} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_ocm"))
        .args(["server", "--runtime", runtime.flag()])
        .args(["--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .args(["--stats-interval", "1"]);
    let (server, tcp, _udp) = listening(Proc::spawn_command(command, "info"));
    (server, tcp)
}

/// The `Max open files` soft and hard limits of a running process.
fn open_files_limit(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut numbers = line
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Descriptors the process holds now.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

fn at_a_low_hard_limit_the_connection_limit_shrinks_to_fit_and_accept_never_fails(
    runtime: Runtime,
) {
    if !cfg!(target_os = "linux") || !ip_available("127.0.0.2") {
        eprintln!("skipped: needs Linux (/proc, all of 127/8)");
        return;
    }
    let (server, tcp) = server_under("ulimit -n 200", runtime);
    let pid = server.child.id();
    assert_eq!(open_files_limit(pid), (200, 200));

    // One IP opens 300 connections, each sends an invalid request and then holds the
    // connection open without reading or closing: every answered one lingers.
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let request = raw::frame(b"lobby", 3, 0, br#"{"username":"mallory"}"#);
    let mut held = Vec::new();
    let mut peak = 0;
    for _ in 0..300 {
        let Ok(mut stream) = tcp_from(attacker, tcp) else {
            continue;
        };
        let _ = stream.write_all(&request);
        held.push(stream);
        peak = peak.max(open_fds(pid));
    }
    // Meanwhile a legitimate create from 127.0.0.1 is answered.
    let status = raw::handshake(tcp, raw::CREATE, "safe", "alice", "", None);
    let mut log = Vec::new();
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        peak = peak.max(open_fds(pid));
        log.extend(server.stderr.try_iter());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answered = 0;
    for stream in &mut held {
        stream
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let mut buf = [0u8; 64];
        answered += usize::from(matches!(stream.read(&mut buf), Ok(n) if n > 0));
    }
    let failed = log.iter().filter(|l| l.contains("accept failed")).count();
    let stats = log.iter().rev().find(|l| l.contains("stats:"));
    eprintln!(
        "fd limit 200 ({runtime:?}): 300 held connections, {answered} answered, peak {peak} descriptors, {failed} accept failures\n  {stats:?}"
    );
    let warning = log.iter().find(|l| l.contains("max_handshakes"));
    assert!(
        warning.is_some_and(|w| w.contains("WARN")),
        "no warning that the connection limit was lowered: {log:#?}"
    );
    assert_eq!(failed, 0, "accept failed: {log:#?}");
    assert!(
        peak < 200,
        "the server reached its descriptor limit ({peak})"
    );
    assert!(status.is_ok(), "alice's create: {status:?}");
}

fn a_low_soft_limit_is_raised_toward_the_hard_one(runtime: Runtime) {
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: needs Linux (/proc)");
        return;
    }
    let hard = open_files_limit(std::process::id()).1;
    if hard < 2048 {
        eprintln!("skipped: the hard limit ({hard}) is too low to see a raise");
        return;
    }
    let (server, _tcp) = server_under("ulimit -S -n 200", runtime);
    let line = server.stderr_until("descriptor limit");
    let (soft, after_hard) = open_files_limit(server.child.id());
    eprintln!("soft limit 200 ({runtime:?}): now {soft} (hard {after_hard})\n  {line}");
    assert_eq!(after_hard, hard);
    assert!(
        soft > 1024 && soft <= hard,
        "the soft limit was not raised: {soft}"
    );
}
