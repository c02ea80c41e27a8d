//! [`Server`]: binds the sockets, then runs the owner loop until the shutdown future
//! completes.

use crate::{conn, udp};
use async_channel::Receiver;
use async_std::net::{TcpListener, UdpSocket};
use async_std::task;
use futures_lite::future::{self, Future};
use ocm_core::Stats;
use ocm_io::{errqueue, Driver, Input, Inspection, Inspector, Options, Protocol};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Instant;

/// A bound server, not yet running.
#[derive(Debug)]
pub struct Server {
    tcp: Option<TcpListener>,
    udp: UdpSocket,
    driver: Driver,
    inspector: Inspector,
    inspections: async_channel::Receiver<Inspection>,
    tcp_addr: Option<SocketAddr>,
    udp_addr: SocketAddr,
}

enum Step {
    Input(Input),
    Inspect(Inspection),
    Timer,
    Stop,
}

impl Server {
    /// Binds the UDP socket (and, in rooms mode, the TCP listener) and seeds the core
    /// from OS entropy. Errors name the address that could not be bound.
    pub fn bind(options: &Options) -> io::Result<Server> {
        let udp = std::net::UdpSocket::bind(options.udp)
            .map_err(|e| bind_error("udp", options.udp, e))?;
        if let Err(error) = errqueue::enable(&udp) {
            tracing::warn!(%error, "cannot enable the socket error queue; only send_to errors will count");
        }
        let udp_addr = udp.local_addr()?;
        let tcp = match options.protocol {
            Protocol::Rooms => Some(
                std::net::TcpListener::bind(options.tcp)
                    .map_err(|e| bind_error("tcp", options.tcp, e))?,
            ),
            Protocol::Relay => None,
        };
        let tcp_addr = tcp
            .as_ref()
            .map(std::net::TcpListener::local_addr)
            .transpose()?;
        let driver = Driver::new(options, ocm_io::seed::os_seed()?, udp_addr)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let (inspector, inspections) = Inspector::new();
        Ok(Server {
            tcp: tcp.map(TcpListener::from),
            udp: UdpSocket::from(udp),
            driver,
            inspector,
            inspections,
            tcp_addr,
            udp_addr,
        })
    }

    /// The TCP address actually bound (`None` in relay mode).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }

    /// The UDP address actually bound.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// Asks the running server questions (see [`Inspector`]).
    pub fn inspector(&self) -> Inspector {
        self.inspector.clone()
    }

    /// Serves until `shutdown` completes, then tells every member the server is going,
    /// sends those notices and returns the core's counters. Tasks run on async-std's
    /// executor.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<Stats> {
        let Server {
            tcp,
            udp,
            mut driver,
            inspections,
            ..
        } = self;
        let udp = Arc::new(udp);
        let (tx, rx) = async_channel::bounded(ocm_io::INPUT_QUEUE);
        let reader = task::spawn(udp::read(udp.clone(), tx.clone()));
        let acceptor = tcp.map(|listener| task::spawn(conn::accept(listener, tx)));
        let mut shutdown = pin!(shutdown);
        loop {
            let step = next_step(&mut shutdown, &inspections, &rx, driver.poll_timeout()).await;
            let now = Instant::now();
            match step {
                Step::Input(input) => driver.handle(now, input),
                Step::Inspect(question) => question(&driver),
                Step::Timer => {}
                Step::Stop => break,
            }
            driver.handle_timeout(now);
            udp::send_all(&udp, &mut driver).await;
        }
        tracing::info!("shutting down");
        // What the readers had already passed on is handled first (a bounded amount: the
        // channel's capacity), so a member whose registration was in flight is told too.
        let now = Instant::now();
        while let Ok(input) = rx.try_recv() {
            driver.handle(now, input);
        }
        driver.shutdown(now);
        udp::send_all(&udp, &mut driver).await;
        reader.cancel().await;
        if let Some(acceptor) = acceptor {
            acceptor.cancel().await;
        }
        Ok(driver.stats().clone())
    }

    /// [`Server::run`] on the current thread.
    pub fn run_blocking(self, shutdown: impl Future<Output = ()>) -> io::Result<Stats> {
        task::block_on(self.run(shutdown))
    }
}

/// Waits for what the owner does next: stop, answer a question, handle an input, or
/// fire the core's timers. Earlier branches win when several are ready.
async fn next_step(
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    inspections: &Receiver<Inspection>,
    inputs: &Receiver<Input>,
    deadline: Option<Instant>,
) -> Step {
    let stop = async {
        shutdown.await;
        Step::Stop
    };
    let inspect = async {
        match inspections.recv().await {
            Ok(question) => Step::Inspect(question),
            Err(_) => future::pending().await,
        }
    };
    let input = async { inputs.recv().await.map_or(Step::Stop, Step::Input) };
    let timer = async {
        match deadline {
            Some(at) => task::sleep(at.saturating_duration_since(Instant::now())).await,
            None => future::pending().await,
        }
        Step::Timer
    };
    future::or(stop, future::or(inspect, future::or(input, timer))).await
}

fn bind_error(what: &str, addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {what} {addr}: {error}"))
}
