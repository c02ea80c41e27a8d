//! [`Endpoint`]: the bound sockets and the driver, and the owner loop both shells run.
//!
//! Each turn of the loop reads the clock once and handles what is ready without
//! waiting: a question from an [`Inspector`], the TCP sockets the reactor said are ready
//! (up to [`crate::tcp::TURN_BATCH`]: accepts, and reads fed to the core straight from
//! the buffer; [`TcpPath`]), in cluster mode up to [`CHANNEL_BATCH`] registry answers and
//! bus messages from the [`ClusterLink`], up to [`crate::udp::READ_BATCH`] datagrams
//! (read with a non-blocking `recvmmsg`, whether or not the reactor said the socket is
//! readable, except in the turn right after a wait that something else ended: the
//! socket was empty just before); then, when a timer is due, it reads the socket dry
//! first (at most 64 batches: after a stall, what the kernel already received counts),
//! fires due timers, sends what the core queued and carries out its TCP commands
//! (writes and closes, on the sockets at once). Only a turn that found nothing waits,
//! for whichever comes first: the shutdown signal, a question, a ready TCP socket, a
//! cluster input, a readable UDP socket, or the next deadline (the core's, or a
//! closed TCP socket's linger). So a busy server goes from batch to batch in system
//! calls of its own (`recvmmsg`, `sendmmsg`, `accept`, `read`, `writev`), and pays for
//! the reactor (its `epoll` calls, timer registration, wake-ups) only when it runs dry;
//! the deadline's timer is registered again only when the deadline moves. On shutdown
//! it handles what is already waiting, tells every member, sends those notices, and
//! (cluster mode) gives what it owes Redis a second to get there.
//!
//! Waiting uses `async_io` (the reactor and timers under both smol and async-std), so
//! the loop runs unchanged on either; a shell only says how to block on it and where
//! the cluster link's tasks run.

use crate::tcp::TcpPath;
use crate::{errqueue, fd_limit, Driver, Inspection, Inspector, Options, Protocol, UdpPath};
use async_channel::Receiver;
use async_io::Timer;
use futures_lite::future::{self, Future};
use futures_lite::Stream;
use ocm_cluster::{Answer, BusEvent, ClusterLink};
use ocm_core::cluster::node::ClusterInput;
use ocm_core::Stats;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Instant;

/// A bound server: sockets, core, and the channel its [`Inspector`]s ask through.
#[derive(Debug)]
pub struct Endpoint {
    tcp: Option<TcpListener>,
    /// Most TCP connection sockets open at once (see [`TcpPath`]).
    max_sockets: usize,
    udp: UdpPath,
    driver: Driver,
    inspector: Inspector,
    inspections: Receiver<Inspection>,
    tcp_addr: Option<SocketAddr>,
    udp_addr: SocketAddr,
    cluster: Option<crate::ClusterOptions>,
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
        let tcp_addr = tcp.as_ref().map(TcpListener::local_addr).transpose()?;
        // Both bound: now the socket options, and their log lines.
        if let Err(error) = errqueue::enable(&udp) {
            tracing::warn!(%error, "cannot enable the socket error queue; only send_to errors will count");
        }
        if options.udp_buffer > 0 {
            crate::sockbuf::apply(&udp, options.udp_buffer);
        }
        let driver = Driver::new(options, crate::seed::os_seed()?, udp_addr)?;
        let (inspector, inspections) = Inspector::new();
        Ok(Endpoint {
            tcp,
            max_sockets: options.config.max_handshakes + fd_limit::ACCEPT_SLACK,
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

    /// Runs the owner loop until `shutdown` completes; `cluster` (cluster mode) carries
    /// the backend's answers and messages. Returns the core's counters.
    pub async fn serve(
        self,
        cluster: Option<ClusterLink>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<Stats> {
        let Endpoint {
            tcp,
            max_sockets,
            mut udp,
            mut driver,
            inspections,
            ..
        } = self;
        let mut tcp = match tcp {
            Some(listener) => Some(TcpPath::new(listener, max_sockets)?),
            None => None,
        };
        // A single node listens to two closed channels: never ready, never in the way.
        let (answers, bus) = match &cluster {
            Some(link) => (link.answers().clone(), link.bus().clone()),
            None => (async_channel::bounded(1).1, async_channel::bounded(1).1),
        };
        if let Some(link) = cluster {
            driver.attach_cluster(link);
        }
        let mut shutdown = pin!(shutdown);
        // Receivers are streams that keep their listener between waits; streams are pinned.
        let mut inspections = pin!(inspections);
        let mut answers = pin!(answers);
        let mut bus = pin!(bus);
        let mut timer = Wakeup::default();
        // The UDP socket is read while datagrams keep coming (no reactor in the way); once a
        // read finds it empty, only when the reactor says it is readable again (a check
        // without a system call while nothing came), so that a turn busy with TCP does
        // not ask an empty socket every time.
        let mut udp_busy = true;
        let waker = future::poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        loop {
            // First what is ready now, without the reactor: while datagrams or TCP
            // inputs keep coming, the loop never waits (and never registers anything).
            if future::poll_once(shutdown.as_mut()).await.is_some() {
                break;
            }
            let now = Instant::now();
            while let Ok(question) = inspections.try_recv() {
                question(&driver);
            }
            let mut handled = match &mut tcp {
                Some(tcp) => tcp.handle_ready(&mut driver, now),
                None => 0,
            };
            handled += drain(&answers, |Answer { id, answer }| {
                driver.handle_cluster(now, ClusterInput::Answer { id, answer })
            });
            handled += drain(&bus, |event| driver.handle_bus(now, event));
            let reading = udp_busy
                || udp
                    .poll_readable(&mut Context::from_waker(&waker))
                    .is_ready();
            let read = if reading {
                udp.read_ready(&mut driver, now)
            } else {
                0
            };
            udp_busy = read > 0;
            handled += read;
            // Due timers wait for what the kernel holds, unless this turn's read has
            // just found the socket empty.
            let maybe_more = !reading || read >= crate::udp::READ_BATCH;
            if maybe_more && driver.poll_timeout().is_some_and(|at| at <= now) {
                handled += read_before_timers(&mut udp, &mut driver, now).await;
            }
            driver.handle_timeout(now);
            if let Some(tcp) = &mut tcp {
                handled += tcp.expire(&mut driver, now);
            }
            udp.flush(&mut driver).await;
            if let Some(tcp) = &mut tcp {
                // What the commands cause (a failed write is a closed connection) is
                // sent next turn.
                handled += tcp.carry_out(&mut driver, now);
            }
            driver.telemetry_mut().step(now.elapsed());
            if handled > 0 {
                continue;
            }
            // Nothing was waiting: sleep until something is.
            let tcp_deadline = tcp.as_ref().and_then(TcpPath::poll_timeout);
            timer.set(driver.poll_timeout().into_iter().chain(tcp_deadline).min());
            let sources = Sources {
                inspections: inspections.as_mut(),
                tcp: tcp.as_ref(),
                answers: answers.as_mut(),
                bus: bus.as_mut(),
                udp: &udp,
            };
            let woken = wait(&mut shutdown, sources, &mut timer).await;
            match woken {
                Woken::Stop => break,
                Woken::Inspect(question) => question(&driver),
                Woken::Tcp => {}
                Woken::Answer(Answer { id, answer }) => {
                    driver.handle_cluster(Instant::now(), ClusterInput::Answer { id, answer });
                }
                Woken::Bus(event) => driver.handle_bus(Instant::now(), event),
                // The wait took the socket's readiness: the next turn reads.
                Woken::Ready => udp_busy = true,
            }
        }
        tracing::info!("shutting down");
        // What is already waiting is handled first (a bounded amount: the channel's
        // capacity and one read batch), so a member whose registration was in flight is
        // told too.
        let now = Instant::now();
        if let Some(tcp) = &mut tcp {
            tcp.handle_ready(&mut driver, now);
        }
        udp.read_ready(&mut driver, now);
        driver.shutdown(now);
        udp.flush(&mut driver).await;
        if let Some(tcp) = &mut tcp {
            // Answers written, sockets closed (the process is going: no linger).
            tcp.carry_out(&mut driver, now);
        }
        if let Some(link) = driver.cluster() {
            // The closing of the rooms hosted here, and their release, reach Redis.
            if !link.flush(std::time::Duration::from_secs(1)).await {
                tracing::warn!("cluster: not everything reached Redis before exit");
            }
        }
        Ok(driver.stats().clone())
    }
}

/// Most datagram batches read before due timers fire (see [`read_before_timers`]).
const READS_BEFORE_TIMERS: usize = 64;

/// Reads the socket dry (at most [`READS_BEFORE_TIMERS`] batches, sending what they
/// cause in between) before timers due at `now` fire: after a stall (SIGSTOP, a VM's
/// steal time) a member whose datagrams were waiting in the kernel was heard, and must
/// not be evicted as idle. Bounded, so that a flood cannot hold the timers off.
async fn read_before_timers(udp: &mut UdpPath, driver: &mut Driver, now: Instant) -> usize {
    let mut handled = 0;
    for _ in 0..READS_BEFORE_TIMERS {
        let read = udp.read_ready(driver, now);
        handled += read;
        if read < crate::udp::READ_BATCH {
            break;
        }
        udp.flush(driver).await;
    }
    handled
}

/// Most inputs taken from each cluster channel (registry answers, bus) in one turn, before
/// the owner reads datagrams again.
const CHANNEL_BATCH: usize = 64;

/// Handles up to [`CHANNEL_BATCH`] of what `channel` already holds; returns how many.
fn drain<T>(channel: &Receiver<T>, mut handle: impl FnMut(T)) -> usize {
    let mut handled = 0;
    while handled < CHANNEL_BATCH {
        let Ok(item) = channel.try_recv() else { break };
        handle(item);
        handled += 1;
    }
    handled
}

/// The reactor timer for the next deadline, kept across waits and registered again
/// only when the deadline moves earlier (registering wakes the reactor: a system call
/// or two). A deadline that moves later, or goes, keeps the armed timer: it fires
/// early, the turn finds nothing due, and the wait after it arms the real deadline. So a
/// stream of handshakes, each moving the earliest deadline a little later as it ends,
/// costs no timer registration at all.
#[derive(Default)]
struct Wakeup {
    timer: Option<Timer>,
    at: Option<Instant>,
}

impl Wakeup {
    fn set(&mut self, at: Option<Instant>) {
        let armed_earlier = match (self.at, at) {
            (Some(armed), Some(at)) => armed <= at,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if armed_earlier && self.timer.is_some() {
            return;
        }
        self.at = at;
        match (at, &mut self.timer) {
            (Some(at), Some(timer)) => timer.set_at(at),
            (Some(at), None) => self.timer = Some(Timer::at(at)),
            (None, timer) => *timer = None,
        }
    }

    /// Ready once the deadline has passed (never without one).
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(timer) = &mut self.timer else {
            return Poll::Pending;
        };
        match Pin::new(timer).poll_next(cx) {
            Poll::Ready(_) => {
                // fired (a one-shot timer is spent): the next `set` makes a new one
                self.timer = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Why a wait ended.
enum Woken {
    Stop,
    Inspect(Inspection),
    /// A TCP socket is ready.
    Tcp,
    Answer(Answer),
    Bus(BusEvent),
    /// The socket is readable or the deadline has passed: the loop looks again.
    Ready,
}

/// What the owner waits on besides shutdown and its timer.
struct Sources<'a> {
    inspections: Pin<&'a mut Receiver<Inspection>>,
    tcp: Option<&'a TcpPath>,
    answers: Pin<&'a mut Receiver<Answer>>,
    bus: Pin<&'a mut Receiver<BusEvent>>,
    udp: &'a UdpPath,
}

/// Sleeps until the owner has something to do: stop, answer a question, a ready TCP socket, a
/// cluster input, a readable socket, or the core's deadline. Earlier sources win when several are ready.
/// The channel receivers keep their listeners between waits (as streams), and the
/// timer stays registered while the deadline does not move.
async fn wait(
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
    sources: Sources<'_>,
    timer: &mut Wakeup,
) -> Woken {
    let Sources {
        mut inspections,
        tcp,
        mut answers,
        mut bus,
        udp,
    } = sources;
    future::poll_fn(|cx| {
        if shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woken::Stop);
        }
        // A closed channel (no inspector left; relay mode has no TCP tasks; a single
        // node has no cluster) is never ready again: `Ready(None)` is ignored.
        if let Poll::Ready(Some(question)) = inspections.as_mut().poll_next(cx) {
            return Poll::Ready(Woken::Inspect(question));
        }
        if tcp.is_some_and(|tcp| tcp.poll_ready(cx).is_ready()) {
            return Poll::Ready(Woken::Tcp);
        }
        if let Poll::Ready(Some(answer)) = answers.as_mut().poll_next(cx) {
            return Poll::Ready(Woken::Answer(answer));
        }
        if let Poll::Ready(Some(event)) = bus.as_mut().poll_next(cx) {
            return Poll::Ready(Woken::Bus(event));
        }
        match udp.poll_readable(cx) {
            Poll::Ready(Ok(())) => return Poll::Ready(Woken::Ready),
            Poll::Ready(Err(error)) => {
                tracing::warn!(%error, "udp socket failed");
                return Poll::Ready(Woken::Stop);
            }
            Poll::Pending => {}
        }
        timer.poll(cx).map(|()| Woken::Ready)
    })
    .await
}

fn bind_error(what: &str, addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {what} {addr}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_wakeup_is_registered_again_only_for_an_earlier_deadline() {
        let t0 = Instant::now() + Duration::from_secs(60);
        let at = |s| Some(t0 + Duration::from_secs(s));
        let mut wakeup = Wakeup::default();
        wakeup.set(at(10));
        assert_eq!(wakeup.at, at(10));
        // Later, or none at all: the armed timer stays, to fire early.
        wakeup.set(at(20));
        wakeup.set(None);
        assert_eq!(wakeup.at, at(10));
        // Earlier: armed again.
        wakeup.set(at(5));
        assert_eq!(wakeup.at, at(5));
        // Once it has fired, whatever comes next is armed.
        wakeup.timer = None;
        wakeup.set(at(30));
        assert_eq!(wakeup.at, at(30));
        assert!(wakeup.timer.is_some());
    }
}
