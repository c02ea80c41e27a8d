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
use ocm_cluster::{Answer, BusEvent, ClusterLink};
use ocm_core::cluster::node::ClusterInput;
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
    cluster: Option<crate::ClusterOptions>,
}

enum Step {
    Tcp(TcpEvent),
    Answer(Answer),
    Bus(BusEvent),
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
        let udp_addr = udp.local_addr()?;
        let tcp = match options.protocol {
            Protocol::Rooms => Some(
                TcpListener::bind(options.tcp).map_err(|e| bind_error("tcp", options.tcp, e))?,
            ),
            Protocol::Relay => None,
        };
        // Both bound: now the socket options, and their log lines.
        if let Err(error) = errqueue::enable(&udp) {
            tracing::warn!(%error, "cannot enable the socket error queue; only send_to errors will count");
        }
        if options.udp_buffer > 0 {
            crate::sockbuf::apply(&udp, options.udp_buffer);
        }
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
            cluster: options.cluster.clone(),
        })
    }

    /// Cluster mode: where Redis is (`None` for a single node).
    pub fn cluster_options(&self) -> Option<&crate::ClusterOptions> {
        self.cluster.as_ref()
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
    /// TCP tasks read, `cluster` (cluster mode) the backend's answers and messages.
    /// Returns the core's counters.
    pub async fn serve(
        self,
        inputs: Receiver<TcpEvent>,
        cluster: Option<ClusterLink>,
        shutdown: impl Future<Output = ()>,
    ) -> Stats {
        let Endpoint {
            mut udp,
            mut driver,
            inspections,
            ..
        } = self;
        let from_cluster = cluster
            .as_ref()
            .map(|link| (link.answers().clone(), link.bus().clone()));
        if let Some(link) = cluster {
            driver.attach_cluster(link);
        }
        let mut shutdown = pin!(shutdown);
        loop {
            let deadline = driver.poll_timeout();
            let sources = Sources {
                inspections: &inspections,
                inputs: &inputs,
                cluster: from_cluster.as_ref(),
                udp: &udp,
            };
            let step = next_step(&mut shutdown, sources, deadline).await;
            let now = Instant::now();
            match step {
                Step::Tcp(event) => driver.handle_tcp(now, event),
                Step::Answer(Answer { id, answer }) => {
                    driver.handle_cluster(now, ClusterInput::Answer { id, answer })
                }
                Step::Bus(event) => driver.handle_bus(now, event),
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
        if let Some(link) = driver.cluster() {
            // The closing of the rooms hosted here, and their release, reach Redis.
            if !link.flush(std::time::Duration::from_secs(1)).await {
                tracing::warn!("cluster: not everything reached Redis before exit");
            }
        }
        driver.stats().clone()
    }
}

/// Waits for what the owner does next: stop, answer a question, handle a TCP input,
/// read datagrams, or fire the core's timers. Earlier branches win when several are ready.
struct Sources<'a> {
    inspections: &'a Receiver<Inspection>,
    inputs: &'a Receiver<TcpEvent>,
    cluster: Option<&'a (Receiver<Answer>, Receiver<BusEvent>)>,
    udp: &'a UdpPath,
}

async fn next_step(
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    sources: Sources<'_>,
    deadline: Option<Instant>,
) -> Step {
    let Sources {
        inspections,
        inputs,
        cluster,
        udp,
    } = sources;
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
    let answer = async {
        match cluster.map(|(answers, _)| answers.recv()) {
            Some(recv) => match recv.await {
                Ok(answer) => Step::Answer(answer),
                Err(_) => future::pending().await,
            },
            None => future::pending().await,
        }
    };
    let bus = async {
        match cluster.map(|(_, bus)| bus.recv()) {
            Some(recv) => match recv.await {
                Ok(event) => Step::Bus(event),
                Err(_) => future::pending().await,
            },
            None => future::pending().await,
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
        future::or(
            inspect,
            future::or(
                input,
                future::or(answer, future::or(bus, future::or(readable, timer))),
            ),
        ),
    )
    .await
}

fn bind_error(what: &str, addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {what} {addr}: {error}"))
}
