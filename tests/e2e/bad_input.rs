//! Bad input on the command line, given to the built `ocm` binary: an unknown flag, a
//! malformed or foreign address, a zero, negative, huge or non-numeric limit, an address
//! already in use. Each gives one clear line on stderr and a non-zero exit, never a
//! panic or a server that starts anyway.

use crate::common::WAIT;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `ocm` with `args`; returns (exit code, stdout, stderr). Fails if it runs on.
fn run(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocm"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocm starts");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ocm {args:?} was still running after {WAIT:?}: bad input was accepted");
        }
        thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (
        output.status.code().expect("an exit code, not a signal"),
        text(output.stdout),
        text(output.stderr),
    )
}

/// Asserts the error on stderr contains each of `words`, nothing on stdout, and exit
/// code `code`. A mistake clap finds is clap's full error (`error: ...`, its tip or the
/// valid values, the usage line); one found later is one line, `ocm: error: ...`.
fn refused(args: &[&str], code: i32, words: &[&str]) {
    let (status, stdout, stderr) = run(args);
    let context = format!("ocm {args:?}: exit {status}, stderr:\n{stderr}");
    assert_eq!(status, code, "{context}");
    assert!(stdout.is_empty(), "{context}\nstdout: {stdout}");
    assert!(!stderr.contains("panicked"), "{context}");
    let lines: Vec<&str> = stderr.lines().collect();
    if lines[0].starts_with("error: ") {
        assert!(stderr.contains("--help"), "clap's full error: {context}");
    } else {
        assert_eq!(lines.len(), 1, "one line: {context}");
        assert!(lines[0].starts_with("ocm: error: "), "{context}");
    }
    for word in words {
        assert!(stderr.contains(word), "{word:?} missing: {context}");
    }
}

const USAGE: i32 = 2;
const ERROR: i32 = 1;

#[test]
fn unknown_flags_and_commands_are_usage_errors() {
    refused(&["server", "--bogus"], USAGE, &["'--bogus'", "ocm server"]);
    refused(&["client", "--bogus"], USAGE, &["'--bogus'", "ocm client"]);
    refused(&["frobnicate"], USAGE, &["'frobnicate'", "Usage: ocm"]);
    // clap's suggestions and valid values come through.
    refused(&["client", "--jion", "x"], USAGE, &["--join"]);
    refused(&["sevrer"], USAGE, &["server"]);
    refused(
        &["server", "--protocol", "pigeon"],
        USAGE,
        &["'pigeon'", "--protocol", "rooms", "relay"],
    );
    refused(
        &["server", "--runtime", "tokio"],
        USAGE,
        &["'tokio'", "--runtime"],
    );
}

#[test]
fn malformed_addresses_are_usage_errors() {
    refused(
        &["server", "--tcp", "nowhere"],
        USAGE,
        &["--tcp", "'nowhere'"],
    );
    refused(&["server", "--udp", "127.0.0.1"], USAGE, &["--udp"]);
    refused(&["server", "--tcp", "256.0.0.1:80"], USAGE, &["--tcp"]);
    refused(&["server", "--udp", "127.0.0.1:65536"], USAGE, &["--udp"]);
    refused(&["client", "--tcp-port", "70000"], USAGE, &["--tcp-port"]);
}

#[test]
fn zero_negative_huge_and_non_numeric_limits_are_usage_errors() {
    for flag in [
        "--max-rooms",
        "--max-members",
        "--max-members-per-room",
        "--max-handshakes",
        "--max-handshakes-per-ip",
        "--max-send-failures",
        "--idle-timeout",
        "--handshake-timeout",
        "--port-wait",
        "--max-payload",
    ] {
        for value in ["0", "-1", "many", "99999999999999999999999"] {
            refused(&["server", flag, value], USAGE, &[flag]);
        }
    }
    refused(
        &["server", "--max-payload", "536870913"],
        USAGE,
        &["--max-payload"],
    );
    refused(
        &["server", "--idle-timeout", "31536001"],
        USAGE,
        &["--idle-timeout"],
    );
    refused(
        &["server", "--handshake-timeout", "NaN"],
        USAGE,
        &["--handshake-timeout"],
    );
    refused(
        &["server", "--stats-interval", "soon"],
        USAGE,
        &["--stats-interval"],
    );
    refused(&["client", "--keepalive", "0"], USAGE, &["--keepalive"]);
    refused(&["client", "--timeout", "inf"], USAGE, &["--timeout"]);
    refused(
        &["client", "--server", "a:b:c"],
        USAGE,
        &["--server", "brackets"],
    );
    refused(
        &[
            "client",
            "--name",
            "x",
            "--join",
            "r",
            "--server",
            "127.0.0.1:9000",
            "--tcp-port",
            "9001",
        ],
        USAGE,
        &["--tcp-port", "give one"],
    );
}

#[test]
fn a_limit_of_the_other_mode_is_a_usage_error() {
    refused(
        &[
            "server",
            "--protocol",
            "relay",
            "--max-members-per-room",
            "5",
        ],
        USAGE,
        &["--max-members-per-room", "--max-members"],
    );
}

#[test]
fn an_address_the_server_cannot_bind_is_an_error() {
    // 192.0.2.1 (TEST-NET-1) is not an address of this machine.
    refused(
        &["server", "--tcp", "192.0.2.1:0", "--udp", "127.0.0.1:0"],
        ERROR,
        &["cannot bind", "192.0.2.1:0"],
    );
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    refused(
        &["server", "--tcp", "127.0.0.1:0", "--udp", &addr],
        ERROR,
        &["cannot bind udp", &addr],
    );
}

#[test]
fn the_server_help_lists_every_limit_and_its_default() {
    let (status, help, _) = run(&["server", "--help"]);
    assert_eq!(status, 0);
    for text in [
        "--max-rooms <N>",
        "--max-members <N>",
        "--max-members-per-room <N>",
        "--max-handshakes <N>",
        "--max-handshakes-per-ip <N>",
        "--handshake-timeout <DURATION>",
        "--port-wait <DURATION>",
        "--max-payload <BYTES>",
        "--idle-timeout <DURATION>",
        "--max-send-failures <N>",
        "--stats-interval <DURATION>",
        "[default: 1024]",
        "[default: 64]",
        "[default: 100000; relay: 1000]",
        "SERVER_FULL",
    ] {
        assert!(help.contains(text), "server --help lacks {text:?}:\n{help}");
    }
}
