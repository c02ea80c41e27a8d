//! [`Endpoint`]: the bound sockets and the driver, and the owner loop both shells run.
//!
//! The loop waits for whichever comes first: the shutdown signal, a question from an
//! [`Inspector`], a TCP input from the shell's connection tasks, a readable UDP socket,
//! or the core's next deadline; handles it with `Instant::now()`; fires due timers; and
//! sends what the core queued. On shutdown it handles what is already waiting, tells
//! every member, and sends those notices.
//!
//! Waiting uses `async_io` (the reactor and timers under both smol and async-std), so
//! the loop runs unchanged on either; a shell only spawns its TCP tasks on its own
//! executor and feeds their [`TcpEvent`]s into the channel it hands to [`Endpoint::serve`].

use crate::{errqueue, Driver, Inspection, Inspector, Options, Protocol, TcpEvent, UdpPath};
use async_channel::Receiver;
use async_io::Timer;
use futures_lite::future::{self, Future};
use ocm_core::Stats;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::pin::{pin, Pin};
use std::time::Instant;

/// A bound server: sockets, core, and the channel its [`Inspector`]s ask through.
#[derive(Debug)]
pub struct Endpoint {
    tcp: Option<TcpListener>,
    udp: UdpPath,
    driver: Driver,
    inspector: Inspector,
    inspections: Receiver<Inspection>,
    tcp_addr: Option<SocketAddr>,
    udp_addr: SocketAddr,
}

enum Step {
    Tcp(TcpEvent),
    Readable,
    Inspect(Inspection),
    Timer,
    Stop,
}

impl Endpoint {
    /// Binds the UDP socket (and, in rooms mode, the TCP listener) and seeds the core
    /// from OS entropy. Errors name the address that could not be bound.
    pub fn bind(options: &Options) -> io::Result<Endpoint> {
        let udp = UdpSocket::bind(options.udp).map_err(|e| bind_error("udp", options.udp, e))?;
        if let Err(error) = errqueue::enable(&udp) {
            tracing::warn!(%error, "cannot enable the socket error queue; only send_to errors will count");
        }
        let udp_addr = udp.local_addr()?;
        let tcp = match options.protocol {
            Protocol::Rooms => Some(
                TcpListener::bind(options.tcp).map_err(|e| bind_error("tcp", options.tcp, e))?,
            ),
            Protocol::Relay => None,
        };
        let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        let driver = Driver::new(options, crate::seed::os_seed()?, udp_addr)?;
        let (inspector, inspections) = Inspector::new();
        Ok(Endpoint {
            tcp,
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

    /// The TCP listener, for the shell's acceptor task (once; `None` in relay mode).
    pub fn take_listener(&mut self) -> Option<TcpListener> {
        self.tcp.take()
    }

    /// Runs the owner loop until `shutdown` completes; `inputs` carries what the shell's
    /// TCP tasks read. Returns the core's counters.
    pub async fn serve(
        self,
        inputs: Receiver<TcpEvent>,
        shutdown: impl Future<Output = ()>,
    ) -> Stats {
        let Endpoint {
            mut udp,
            mut driver,
            inspections,
            ..
        } = self;
        let mut shutdown = pin!(shutdown);
        loop {
            let deadline = driver.poll_timeout();
            let step = next_step(&mut shutdown, &inspections, &inputs, &udp, deadline).await;
            let now = Instant::now();
            match step {
                Step::Tcp(event) => driver.handle_tcp(now, event),
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
        while let Ok(event) = inputs.try_recv() {
            driver.handle_tcp(now, event);
        }
        udp.read_ready(&mut driver, now);
        driver.shutdown(now);
        udp.flush(&mut driver).await;
        driver.stats().clone()
    }
}

/// Waits for what the owner does next: stop, answer a question, handle a TCP input,
/// read datagrams, or fire the core's timers. Earlier branches win when several are ready.
async fn next_step(
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    inspections: &Receiver<Inspection>,
    inputs: &Receiver<TcpEvent>,
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
            Ok(event) => Step::Tcp(event),
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
            Some(at) => Timer::at(at).await,
            None => Timer::never().await,
        };
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
