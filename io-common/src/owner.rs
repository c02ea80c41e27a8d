//! [`Endpoint`]: the bound sockets and the driver, and the owner loop both shells run.
//!
//! Each turn of the loop reads the clock once and handles what is ready without
//! waiting: a question from an [`Inspector`], up to [`crate::udp::READ_BATCH`] datagrams
//! (read with a non-blocking `recvmmsg` while reads come back full, and otherwise once
//! the poller has reported the socket), the TCP sockets that are ready (up to
//! [`crate::tcp::TURN_BATCH`]: accepts, and reads fed to the core straight from the
//! buffer; [`TcpPath`]), in cluster mode up to [`CHANNEL_BATCH`] registry answers and bus
//! messages from the [`ClusterLink`]. Datagrams come first: one that waited in the kernel
//! may be the address a TCP join after it is to notify, and none can depend on a TCP
//! request not yet answered. Then, when a timer is due, it reads the socket dry first,
//! unless this turn's read has just found it empty in a receive made after the clock was
//! read (at most 64 batches: after a stall, what the kernel already received counts),
//! fires due timers, sends what the core queued and carries out its TCP commands (writes and closes, on the sockets at
//! once; what they cause too, a few rounds deep).
//!
//! Then it asks its own [`Poller`] (one `epoll_wait`) what has come: without waiting
//! while it knows of more to do (a socket not read dry, a TCP socket to look at again,
//! TCP commands left over from the turn), so that a busy socket does not starve the
//! others; otherwise waiting for whichever comes first: a socket reported, the waker
//! woken (the shutdown signal, a question, a cluster input) or the next deadline (the
//! core's, a closed TCP socket's linger, the end of an accept pause), which is the wait's
//! own timeout. So a busy server goes from batch to batch in system calls of its own
//! (`recvmmsg`, `sendmmsg`, `accept`, `read`, `writev`) and one `epoll_wait` per turn.
//!
//! But while the UDP socket keeps the owner busy, the poller is asked about every
//! [`POLL_EVERY`]: a turn that left only the UDP socket not read dry reads on at once;
//! and when a turn read datagrams, no TCP connection is open and no deadline is near,
//! the next turn waits for its datagram in the UDP socket's own receive
//! ([`UdpPath::wait`], at most [`crate::udp::HOT_WAIT`]; single node, Linux) instead of
//! in the poller: one system call where the poller's wait is two (measured: 2–8 % of
//! the CPU per delivery of a relay). For as long as it does, the socket is out of the
//! poller ([`UdpPath::watch`]: a socket in a poller has the kernel call into it for
//! every datagram that comes and every one sent, 2.5 % of a 2-member delivery), and it is
//! put back before the next wait that needs it reported. A new TCP connection then
//! waits up to about a millisecond and a clock tick before it is accepted (a handshake
//! under way turns the socket wait off); a question or the shutdown signal, up to one
//! socket wait.
//! On shutdown it handles what is already waiting, tells every member, sends those
//! notices, and (cluster mode) gives what it owes Redis a second to get there.
//!
//! The loop blocks its thread and needs no executor: both shells run it the same way,
//! and differ only in where the cluster link's tasks run.

use crate::poller::{self, Poller};
use crate::tcp::TcpPath;
use crate::{errqueue, fd_limit, Driver, Inspection, Inspector, Options, Protocol, UdpPath};
use async_channel::Receiver;
use futures_lite::future::Future;
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

    /// Runs the owner loop on this thread until `shutdown` completes; `cluster`
    /// (cluster mode) carries the backend's answers and messages. Returns the core's
    /// counters. The loop blocks in its own [`Poller`]: `shutdown` and the channels are
    /// polled with its waker, so they may complete on any thread.
    pub fn serve(
        self,
        cluster: Option<ClusterLink>,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<Stats> {
        let Endpoint {
            tcp: listener,
            max_sockets,
            mut udp,
            mut driver,
            inspections,
            ..
        } = self;
        // The sockets are declared before the poller, so that on every way out the
        // poller goes first and no socket is closed while registered with it.
        let mut tcp = None;
        let mut poller = Poller::new()?;
        udp.watch(&poller, true)?;
        if let Some(listener) = listener {
            tcp = Some(TcpPath::new(listener, max_sockets, &poller)?);
        }
        // A single node listens to two closed channels: never ready, never in the way.
        let (answers, bus) = match &cluster {
            Some(link) => (link.answers().clone(), link.bus().clone()),
            None => (async_channel::bounded(1).1, async_channel::bounded(1).1),
        };
        if let Some(link) = cluster {
            driver.attach_cluster(link);
        }
        let waker = poller.waker();
        let cx = &mut Context::from_waker(&waker);
        let mut shutdown = pin!(shutdown);
        // Receivers are streams that keep their listener between waits; streams are pinned.
        let mut sources = Sources {
            inspections: pin!(inspections),
            answers: pin!(answers),
            bus: pin!(bus),
        };
        // The socket may have something already; after that, it is read while reads
        // come back full, and otherwise when the poller reports it.
        let mut udp_ready = true;
        // While datagrams keep coming the owner may wait for the next in the socket's
        // own receive instead of the poller (Linux, single node: a cluster link's inputs
        // would wait with the rest), for up to POLL_EVERY at a time.
        let hot_wait = cfg!(target_os = "linux") && driver.cluster().is_none();
        let mut udp_wait = false;
        let mut polled = Instant::now();
        loop {
            if shutdown.as_mut().poll(cx).is_ready() {
                break;
            }
            if udp_wait {
                udp.wait();
                driver.telemetry_mut().socket_waits += 1;
                udp_wait = false;
                udp_ready = true;
            }
            let now = Instant::now();
            while let Ok(question) = sources.inspections.try_recv() {
                question(&driver);
            }
            // Datagrams before TCP: one that waited in the kernel may have come before a
            // TCP request that depends on it (a member's first datagram, its address,
            // before another's join that it is to be told of), while none can depend on
            // a TCP request not yet answered (its token comes in the answer).
            let read = if udp_ready {
                udp.read_ready(&mut driver, now)
            } else {
                0
            };
            if let Some(tcp) = &mut tcp {
                tcp.handle_ready(&poller, &mut driver, now);
            }
            let answered = drain(&sources.answers, |Answer { id, answer }| {
                driver.handle_cluster(now, ClusterInput::Answer { id, answer })
            });
            let heard = drain(&sources.bus, |event| driver.handle_bus(now, event));
            // Due timers wait for what the kernel holds, unless this turn's read has
            // just found the socket empty, itself, after the clock was read (after a
            // stall the wait may end with nothing reported: interrupted, or timed out
            // first, or before the stall).
            let known_empty = udp_ready && udp.seen_empty_after_clock();
            if !known_empty && driver.poll_timeout().is_some_and(|at| at <= now) {
                read_before_timers(&mut udp, &mut driver, now);
            }
            udp_ready = !udp.drained();
            driver.handle_timeout(now);
            if let Some(tcp) = &mut tcp {
                tcp.expire(&poller, &mut driver, now);
            }
            let carried = send(&mut udp, tcp.as_mut(), &poller, &mut driver, now);
            driver.telemetry_mut().step(now.elapsed());
            // More to do at once: a socket not read dry, a TCP socket to look at again,
            // what the TCP commands caused, a channel with more than one turn's share.
            // Then the poller is only asked what else has come (a wait of no time), so
            // that a busy socket does not keep the others waiting; when only the UDP
            // socket is, at most every POLL_EVERY.
            let others_busy = tcp.as_ref().is_some_and(TcpPath::has_ready)
                || carried > 0
                || answered == CHANNEL_BATCH
                || heard == CHANNEL_BATCH;
            let deadline = if udp_ready || others_busy {
                if !others_busy && !poller_due(now, polled) {
                    continue;
                }
                Some(now)
            } else if shutdown.as_mut().poll(cx).is_ready() {
                break;
            } else if sources.poll(cx, &mut driver) {
                // Something came while the turn ran: what it caused goes out now, before
                // any socket is read again.
                send(&mut udp, tcp.as_mut(), &poller, &mut driver, Instant::now());
                Some(now)
            } else {
                // Nothing to do but wait: until a socket is reported, the waker is woken
                // (a question, a cluster input, shutdown) or the next deadline.
                let tcp_deadline = tcp.as_ref().and_then(TcpPath::poll_timeout);
                let deadline = driver.poll_timeout().into_iter().chain(tcp_deadline).min();
                // (not while a TCP connection is open: its handshake waits on the poller)
                let tcp_open = tcp.as_ref().is_some_and(|tcp| tcp.open() > 0);
                if hot_wait && !tcp_open && waits_in_socket(read, now, polled, deadline) {
                    // Out of the poller while the owner reads it on its own.
                    udp.watch(&poller, false)?;
                    udp_wait = true;
                    continue;
                }
                deadline
            };
            if !udp_ready {
                // The poller is to report the socket's next datagram.
                udp.watch(&poller, true)?;
            }
            polled = now;
            poller.wait(deadline, |key| match key {
                poller::UDP => udp_ready = true,
                key => {
                    if let Some(tcp) = &mut tcp {
                        tcp.mark_ready(key);
                    }
                }
            })?;
        }
        tracing::info!("shutting down");
        // What is already waiting is handled first (a bounded amount: the channel's
        // capacity and one read batch), so a member whose registration was in flight is
        // told too.
        let now = Instant::now();
        if let Some(tcp) = &mut tcp {
            tcp.handle_ready(&poller, &mut driver, now);
        }
        udp.read_ready(&mut driver, now);
        driver.shutdown(now);
        udp.flush(&mut driver, now);
        if let Some(tcp) = &mut tcp {
            // Answers written, sockets closed (the process is going: no linger).
            tcp.carry_out(&poller, &mut driver, now);
        }
        if let Some(link) = driver.cluster() {
            // The closing of the rooms hosted here, and their release, reach Redis.
            if !async_io::block_on(link.flush(std::time::Duration::from_secs(1))) {
                tracing::warn!("cluster: not everything reached Redis before exit");
            }
        }
        Ok(driver.stats().clone())
    }
}

/// How long the owner may go on without asking its poller while the UDP socket keeps it
/// busy, reading on or waiting for datagrams in the socket: it asks at the first turn
/// after this has passed, so what a new TCP connection waits is this plus one socket
/// wait ([`crate::udp::HOT_WAIT`], which ends at a clock tick) plus a turn. A question or
/// the shutdown signal is looked at every turn.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

/// How far off the next deadline must be for the owner to wait in the socket rather
/// than in the poller: beyond a wait rounded up to the coarsest clock tick (10 ms).
const HOT_GUARD: std::time::Duration = std::time::Duration::from_millis(25);

/// Whether the next turn waits for its datagram in the UDP socket rather than in the
/// poller: something came this turn (`read`: datagrams and queued errors), the poller
/// was last asked at `polled`, less than [`POLL_EVERY`] ago, and no deadline is within
/// [`HOT_GUARD`]. (The owner also checks that no TCP connection is open.)
fn waits_in_socket(read: usize, now: Instant, polled: Instant, deadline: Option<Instant>) -> bool {
    read > 0 && !poller_due(now, polled) && deadline.is_none_or(|at| at >= now + HOT_GUARD)
}

/// Whether the poller, last asked at `polled`, must be asked now, however busy the UDP
/// socket keeps the owner: [`POLL_EVERY`] has passed.
fn poller_due(now: Instant, polled: Instant) -> bool {
    now >= polled + POLL_EVERY
}

/// Most rounds of TCP commands carried out in one go (see [`send`]).
const CARRY_ROUNDS: usize = 3;

/// Sends the datagrams the core queued and carries out its TCP commands, and what those
/// cause (a connection closed for good is the core's to hear, and it may answer with
/// more) for up to [`CARRY_ROUNDS`] rounds, so that a connection's commands are carried
/// out before it is read again. Returns how many commands the last round carried out:
/// more than none, and there may be more.
fn send(
    udp: &mut UdpPath,
    mut tcp: Option<&mut TcpPath>,
    poller: &Poller,
    driver: &mut Driver,
    now: Instant,
) -> usize {
    udp.flush(driver, now);
    let Some(tcp) = tcp.as_mut() else {
        return 0;
    };
    let mut carried = 0;
    for _ in 0..CARRY_ROUNDS {
        carried = tcp.carry_out(poller, driver, now);
        if carried == 0 {
            break;
        }
        udp.flush(driver, now);
    }
    carried
}

/// Most datagram batches read before due timers fire (see [`read_before_timers`]).
const READS_BEFORE_TIMERS: usize = 64;

/// Reads the socket dry (at most [`READS_BEFORE_TIMERS`] batches, sending what they
/// cause in between) before timers due at `now` fire: after a stall (SIGSTOP, a VM's
/// steal time) a member whose datagrams were waiting in the kernel was heard, and must
/// not be evicted as idle. Bounded, so that a flood cannot hold the timers off.
fn read_before_timers(udp: &mut UdpPath, driver: &mut Driver, now: Instant) {
    for _ in 0..READS_BEFORE_TIMERS {
        udp.read_ready(driver, now);
        if udp.drained() {
            break;
        }
        udp.flush(driver, now);
    }
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

/// What else wakes the owner: an inspector's question, cluster mode's registry answers
/// and bus messages.
struct Sources<'a> {
    inspections: Pin<&'a mut Receiver<Inspection>>,
    answers: Pin<&'a mut Receiver<Answer>>,
    bus: Pin<&'a mut Receiver<BusEvent>>,
}

impl Sources<'_> {
    /// Handles what any of them holds now (at most one item each); if none holds
    /// anything, each will wake `cx` when it does. Returns whether it handled anything.
    /// A closed channel (no inspector left; a single node has no cluster) is never ready
    /// again: `Ready(None)` is ignored.
    fn poll(&mut self, cx: &mut Context<'_>, driver: &mut Driver) -> bool {
        let mut handled = false;
        if let Poll::Ready(Some(question)) = self.inspections.as_mut().poll_next(cx) {
            question(driver);
            handled = true;
        }
        if let Poll::Ready(Some(Answer { id, answer })) = self.answers.as_mut().poll_next(cx) {
            driver.handle_cluster(Instant::now(), ClusterInput::Answer { id, answer });
            handled = true;
        }
        if let Poll::Ready(Some(event)) = self.bus.as_mut().poll_next(cx) {
            driver.handle_bus(Instant::now(), event);
            handled = true;
        }
        handled
    }
}

fn bind_error(what: &str, addr: SocketAddr, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot bind {what} {addr}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_owner_waits_in_the_socket_only_while_datagrams_come_and_the_poller_was_just_asked() {
        let polled = Instant::now();
        let ms = Duration::from_millis;
        let soon = polled + POLL_EVERY / 2;
        // datagrams came, the poller was just asked, no deadline or a far one: yes
        assert!(waits_in_socket(3, soon, polled, None));
        assert!(waits_in_socket(3, soon, polled, Some(soon + HOT_GUARD)));
        // nothing came: the socket may stay quiet, the poller waits for everything
        assert!(!waits_in_socket(0, soon, polled, None));
        // the poller was asked POLL_EVERY ago or longer: it is asked now, however busy
        // the socket (what a stream with no pause would otherwise keep waiting forever)
        assert!(!waits_in_socket(3, polled + POLL_EVERY, polled, None));
        assert!(!waits_in_socket(3, polled + ms(500), polled, None));
        // the same rule for a socket that is not read dry: read on, but not for longer
        assert!(!poller_due(soon, polled));
        assert!(poller_due(polled + POLL_EVERY, polled));
        // a deadline nearer than a wait rounded up to a clock tick: the poller's timeout
        assert!(!waits_in_socket(
            3,
            soon,
            polled,
            Some(soon + HOT_GUARD - ms(1))
        ));
        assert!(!waits_in_socket(3, soon, polled, Some(soon)));
    }
}
