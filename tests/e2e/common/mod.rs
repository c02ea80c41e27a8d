//! Test helpers: servers on either runtime, in-process clients, bounded waits.

#![allow(dead_code)]

mod client;
pub mod hostile;
pub mod process;
pub mod raw;

pub use client::TestClient;

use ocm_core::{Config, Operation, Stats};
use ocm_io::{Driver, Inspector, Options, Protocol};
use ocm_smol::client::{ClientOptions, Target};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The longest any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// Makes `#[test]`s for both runtimes out of functions taking a [`Runtime`].
#[macro_export]
macro_rules! on_both_runtimes {
    ($($name:ident),* $(,)?) => {
        mod smol {
            $(#[test]
            fn $name() {
                super::$name($crate::common::Runtime::Smol)
            })*
        }
        mod async_std {
            $(#[test]
            fn $name() {
                super::$name($crate::common::Runtime::AsyncStd)
            })*
        }
    };
}

/// Which server shell runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `ocm-smol`.
    Smol,
    /// `ocm-asyncstd`.
    AsyncStd,
}

impl Runtime {
    /// The `--runtime` value of the command line.
    pub fn flag(self) -> &'static str {
        match self {
            Runtime::Smol => "smol",
            Runtime::AsyncStd => "async-std",
        }
    }
}

/// Limits for tests: the defaults, but members are evicted after 30 s of silence, so
/// no test depends on keepalives unless it says so.
pub fn config() -> Config {
    Config {
        idle_timeout: Duration::from_secs(30),
        ..Config::default()
    }
}

/// A server running on its own thread; stopped (gracefully) when dropped.
pub struct TestServer {
    /// TCP address (rooms mode).
    pub tcp: Option<SocketAddr>,
    /// UDP address.
    pub udp: SocketAddr,
    stop: async_channel::Sender<()>,
    done: mpsc::Receiver<io::Result<Stats>>,
    inspector: Inspector,
}

impl TestServer {
    /// A rooms server on 127.0.0.1 with [`config`].
    pub fn rooms(runtime: Runtime) -> TestServer {
        TestServer::start(runtime, Protocol::Rooms, "127.0.0.1:0", config())
    }

    /// A relay server on 127.0.0.1 with [`config`].
    pub fn relay(runtime: Runtime) -> TestServer {
        TestServer::start(runtime, Protocol::Relay, "127.0.0.1:0", config())
    }

    /// A server on `ip:0` (TCP and UDP).
    pub fn start(runtime: Runtime, protocol: Protocol, addr: &str, config: Config) -> TestServer {
        TestServer::try_start(runtime, protocol, addr, config).expect("server binds")
    }

    /// As [`TestServer::start`], or the bind error.
    pub fn try_start(
        runtime: Runtime,
        protocol: Protocol,
        addr: &str,
        config: Config,
    ) -> io::Result<TestServer> {
        let addr: SocketAddr = addr.parse().expect("an address");
        let options = Options {
            protocol,
            tcp: addr,
            udp: addr,
            config,
            ..Options::default()
        };
        TestServer::launch(runtime, &options)
    }

    /// A server on 127.0.0.1 that records every input and output to `trace`.
    pub fn recording(runtime: Runtime, protocol: Protocol, trace: &std::path::Path) -> TestServer {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let options = Options {
            protocol,
            tcp: addr,
            udp: addr,
            config: config(),
            record: Some(ocm_io::RecordOptions {
                path: trace.to_owned(),
                max_bytes: ocm_io::recorder::DEFAULT_MAX_BYTES,
                outputs: true,
            }),
            ..Options::default()
        };
        TestServer::launch(runtime, &options).expect("server binds")
    }

    /// Starts a server with these options on its own thread.
    pub fn launch(runtime: Runtime, options: &Options) -> io::Result<TestServer> {
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let shutdown = async move {
            let _ = stopped.recv().await;
        };
        let (result, done) = mpsc::channel();
        let (tcp, udp, inspector) = match runtime {
            Runtime::Smol => spawn::<ocm_smol::Smol>(options, shutdown, result)?,
            Runtime::AsyncStd => spawn::<ocm_asyncstd::AsyncStd>(options, shutdown, result)?,
        };
        Ok(TestServer {
            tcp,
            udp,
            stop,
            done,
            inspector,
        })
    }

    /// The same server, reached by clients at `ip` (for a server bound to `[::]`).
    pub fn via(mut self, ip: &str) -> TestServer {
        let ip = ip.parse().expect("an IP");
        if let Some(tcp) = &mut self.tcp {
            tcp.set_ip(ip);
        }
        self.udp.set_ip(ip);
        self
    }

    /// Asks the running server questions (a handle other threads can own).
    pub fn inspector(&self) -> Inspector {
        self.inspector.clone()
    }

    /// Asks the running server, within [`WAIT`].
    pub fn ask<T: Send + 'static>(&self, f: impl FnOnce(&Driver) -> T + Send + 'static) -> T {
        hostile::ask(&self.inspector, f)
    }

    /// The TCP address; panics in relay mode.
    pub fn tcp(&self) -> SocketAddr {
        self.tcp.expect("a rooms server")
    }

    /// Shuts the server down (members are told) and returns its counters.
    pub fn stop(self) -> Stats {
        let _ = self.stop.try_send(());
        self.done
            .recv_timeout(WAIT)
            .expect("the server stops in time")
            .expect("the server ran without error")
    }

    /// Options for a real client of this server.
    pub fn target(
        &self,
        operation: Operation,
        room: &str,
        username: &str,
        password: Option<&str>,
    ) -> ClientOptions {
        let mut options = ClientOptions::new(Target::Room {
            tcp: self.tcp(),
            udp: self.udp,
            operation,
            room: room.into(),
            username: username.into(),
            password: password.map(Into::into),
        });
        options.timeout = WAIT;
        options
    }

    /// Waits until `check` holds on the running server (asked between two inputs).
    pub fn until(&self, what: &str, check: impl Fn(&Driver) -> bool + Send + Clone + 'static) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if smol::block_on(self.inspector.inspect(check.clone())) == Some(true) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not within {WAIT:?}: {what}"
            );
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until the server knows where `username` of `room` receives. Clients on
    /// different sockets race each other into the server; tests that expect a join
    /// notice wait for this first.
    pub fn wait_known(&self, room: &str, username: &str) {
        let (room, name) = (room.to_owned(), username.to_owned());
        self.until(
            &format!("{username} of {room} has an address"),
            move |driver| {
                let members = driver
                    .server()
                    .rooms()
                    .and_then(|s| s.members_of(&room))
                    .unwrap_or_default();
                members
                    .iter()
                    .any(|m| *m.username == *name && m.udp.is_some())
            },
        );
    }

    /// Starts a real client and waits until the server knows its address.
    pub fn client(&self, options: ClientOptions) -> TestClient {
        let client = TestClient::start(options.clone()).expect("the client starts");
        match &options.target {
            Target::Room { room, username, .. } => self.wait_known(room, username),
            Target::Relay { username, .. } => {
                let name = username.clone();
                self.until(&format!("{username} is registered"), move |driver| {
                    let relay = driver.server().relay();
                    relay.is_some_and(|r| r.clients().iter().any(|(_, n)| **n == *name))
                });
            }
        }
        client
    }

    /// Creates `room` as `username` with a real client.
    pub fn create(&self, room: &str, username: &str) -> TestClient {
        self.client(self.target(Operation::Create, room, username, None))
    }

    /// Joins `room` as `username` with a real client.
    pub fn join(&self, room: &str, username: &str) -> TestClient {
        self.client(self.target(Operation::Join, room, username, None))
    }

    /// A relay-mode client.
    pub fn relay_client(&self, username: &str) -> TestClient {
        let options = ClientOptions::new(Target::Relay {
            udp: self.udp,
            username: username.into(),
        });
        self.client(options)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
    }
}

/// Binds a server on runtime `R` and runs it on its own thread until `shutdown`; its
/// addresses and inspector.
fn spawn<R: ocm_io::Runtime>(
    options: &Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    result: mpsc::Sender<io::Result<Stats>>,
) -> io::Result<(Option<SocketAddr>, SocketAddr, Inspector)> {
    let server = ocm_io::Shell::<R>::bind(options)?;
    let addrs = (server.tcp_addr(), server.udp_addr(), server.inspector());
    thread::spawn(move || {
        let _ = result.send(server.run_blocking(shutdown));
    });
    Ok(addrs)
}
