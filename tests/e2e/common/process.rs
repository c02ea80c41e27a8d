//! The built `ocm` binary as a child process, its stdout and stderr read line by line.

use super::WAIT;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A child process with its output read line by line on threads; killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
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
    pub fn spawn(args: &[&str]) -> Proc {
        Proc::spawn_logging(args, "info")
    }

    pub fn spawn_logging(args: &[&str], log: &str) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ocm"));
        command.args(args);
        Proc::spawn_command(command, log)
    }

    /// Runs `command` (the `ocm` binary, or a shell that execs it) with `RUST_LOG=log`.
    pub fn spawn_command(mut command: Command, log: &str) -> Proc {
        let mut child = command
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

    pub fn line(&self) -> String {
        self.stdout
            .recv_timeout(WAIT)
            .expect("a line on stdout within the wait")
    }

    pub fn expect(&self, lines: &[&str]) {
        for expected in lines {
            assert_eq!(self.line(), *expected);
        }
    }

    /// Waits for a stderr line containing `text`.
    pub fn stderr_until(&self, text: &str) -> String {
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
    pub fn stderr_lines(&self) -> Vec<String> {
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

    pub fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    pub fn exit_code(&mut self) -> i32 {
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
    pub fn terminate(&self) {
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
pub fn server(extra: &[&str]) -> (Proc, SocketAddr, SocketAddr) {
    server_logging(extra, "info")
}

/// [`server`] with `RUST_LOG` set to `log`.
pub fn server_logging(extra: &[&str], log: &str) -> (Proc, SocketAddr, SocketAddr) {
    let mut args = vec!["server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    listening(Proc::spawn_logging(&args, log))
}

/// Reads the `listening` line of a server just started: the process, its TCP and UDP
/// addresses.
pub fn listening(server: Proc) -> (Proc, SocketAddr, SocketAddr) {
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
