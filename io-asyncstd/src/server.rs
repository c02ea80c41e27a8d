//! [`Server`]: binds the sockets, then runs the owner loop until the shutdown future
//! completes.

use crate::conn;
use async_channel::Receiver;
use async_std::net::TcpListener;
use async_std::task;
use futures_lite::future::{self, Future};
use ocm_core::Stats;
use ocm_io::{errqueue, Driver, Input, Inspection, Inspector, Options, Protocol, UdpPath};
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::time::Instant;

/// A bound server, not yet running.
#[derive(Debug)]
pub struct Server {
    tcp: Option<TcpListener>,
    udp: UdpPath,
    driver: Driver,
    inspector: Inspector,
    inspections: async_channel::Receiver<Inspection>,
    tcp_addr: Option<SocketAddr>,
    udp_addr: SocketAddr,
}

enum Step {
    Input(Input),
    Readable,
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
            udp: UdpPath::new(udp)?,
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
            mut udp,
            mut driver,
            inspections,
            ..
        } = self;
        let (tx, rx) = async_channel::bounded(ocm_io::INPUT_QUEUE);
        let acceptor = tcp.map(|listener| task::spawn(conn::accept(listener, tx)));
        let mut shutdown = pin!(shutdown);
        loop {
            let step = next_step(
                &mut shutdown,
                &inspections,
                &rx,
                &udp,
                driver.poll_timeout(),
            )
            .await;
            let now = Instant::now();
            match step {
                Step::Input(input) => driver.handle(now, input),
                Step::Readable => udp.read_ready(&mut driver, now),
                Step::Inspect(question) => question(&driver),
                Step::Timer => {}
                Step::Stop => break,
            }
            driver.handle_timeout(now);
            udp.flush(&mut driver).await;
        }
        tracing::info!("shutting down");
        // What is already waiting is handled first (a bounded amount: the channel's
        // capacity and one read batch), so a member whose registration was in flight is
        // told too.
        let now = Instant::now();
        while let Ok(input) = rx.try_recv() {
            driver.handle(now, input);
        }
        udp.read_ready(&mut driver, now);
        driver.shutdown(now);
        udp.flush(&mut driver).await;
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

/// Waits for what the owner does next: stop, answer a question, handle a TCP input,
/// read datagrams, or fire the core's timers. Earlier branches win when several are ready.
async fn next_step(
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    inspections: &Receiver<Inspection>,
    inputs: &Receiver<Input>,
    udp: &UdpPath,
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
    // In relay mode no task sends inputs and the channel is closed from the start.
    let input = async {
        match inputs.recv().await {
            Ok(input) => Step::Input(input),
            Err(_) => future::pending().await,
        }
    };
    let readable = async {
        match udp.readable().await {
            Ok(()) => Step::Readable,
            Err(error) => {
                tracing::warn!(%error, "udp socket failed");
                Step::Stop
            }
        }
    };
    let timer = async {
        match deadline {
            Some(at) => task::sleep(at.saturating_duration_since(Instant::now())).await,
            None => future::pending().await,
        }
        Step::Timer
    };
    future::or(
        stop,
        future::or(inspect, future::or(input, future::or(readable, timer))),
    )
    .await
}

fn bind_error(what: &str, addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {what} {addr}: {error}"))
}
