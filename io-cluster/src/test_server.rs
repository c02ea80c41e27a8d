//! A private `redis-server` for tests and benchmarks (feature `test-support`): started
//! on a free loopback port with no persistence, in a directory of its own, and stopped
//! when dropped.
//!
//! ```no_run
//! let Some(redis) = ocm_cluster::test_server::redis_or_skip("my_test") else { return };
//! let url = redis.url(); // redis://127.0.0.1:PORT/0
//! ```
//!
//! [`redis_or_skip`] is the policy of every test that needs Redis: under CI (`CI=true`)
//! a Redis that cannot be started fails the test; elsewhere the test is skipped with a
//! line saying why and how to install it. `OCM_REDIS_SERVER` names another binary.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a started server may take to answer its first `PING`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one on a free loopback port and waits until it answers.
    pub fn start() -> io::Result<RedisServer> {
        let mut last = None;
        // The port is free when chosen; another process may take it before Redis binds.
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            match RedisServer::start_on(port) {
                Ok(server) => return Ok(server),
                Err(error) => last = Some(error),
            }
        }
        Err(last.expect("tried at least once"))
    }

    fn start_on(port: u16) -> io::Result<RedisServer> {
        let dir = std::env::temp_dir().join(format!("ocm-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let binary = std::env::var("OCM_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot run {binary}: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.ping() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "{binary} exited at start ({status}) on port {}",
                    self.port
                )));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{binary} did not answer on port {} in {START_TIMEOUT:?}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when the server answers `PING` within a second.
    pub fn ping(&self) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// Runs one command whose answer is a bulk string (`GET`, `HGET`, ...): its bytes,
    /// or `None` for a nil answer or any error. For tests to look at what is stored.
    pub fn bulk(&self, args: &[&str]) -> Option<Vec<u8>> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut command = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            command.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        stream.write_all(&command).ok()?;
        let mut reader = io::BufReader::new(stream);
        let mut header = String::new();
        io::BufRead::read_line(&mut reader, &mut header).ok()?;
        let len: usize = header.strip_prefix('$')?.trim_end().parse().ok()?;
        let mut body = vec![0; len + 2];
        reader.read_exact(&mut body).ok()?;
        body.truncate(len);
        Some(body)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The server process's id, while it runs (benchmarks read its CPU time).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (like a crash: no shutdown, and nothing saved).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// Freezes the server (`SIGSTOP`): connections stay open and nothing is answered.
    pub fn pause(&self) -> io::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a paused server go on (`SIGCONT`).
    pub fn resume(&self) -> io::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, which: &str) -> io::Result<()> {
        let Some(child) = &self.child else {
            return Err(io::Error::other("the server is not running"));
        };
        let status = Command::new("kill")
            .args([which, &child.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill {which} failed: {status}")))
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.resume();
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh server for `test`, or `None` (with a line on stderr) when Redis cannot be
/// started outside CI.
///
/// # Panics
/// Under `CI=true` when Redis cannot be started: CI installs it (`.ci/run`), so a
/// missing Redis there is a broken CI, not a reason to skip.
pub fn redis_or_skip(test: &str) -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(server) => Some(server),
        Err(error) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: CI=true and redis-server cannot be started: {error}")
        }
        Err(error) => {
            eprintln!(
                "SKIPPED {test}: redis-server cannot be started ({error}); \
                 install it (Debian: apt-get install -y redis-server) to run this test"
            );
            None
        }
    }
}
