//! The TCP side of both shells, served by the owner loop itself: [`TcpPath`] accepts,
//! reads and writes non-blocking sockets on the owner's thread, feeding the driver
//! straight from its read buffer and carrying out the core's [`ConnCmd`]s as soon as
//! they are queued. No task per connection, no channel between a socket and the core:
//! a handshake costs the system calls it needs and no wake-up of another thread.
//!
//! Readiness comes from the owner's [`Poller`], edge-triggered for connections: a socket that has to
//! wait is registered once, and each report puts its id on the ready list, so a turn
//! looks at the sockets that have something and at no other. A turn handles at most
//! [`TURN_BATCH`] of them; the rest wait for the next turn. A socket that never has to
//! wait (most handshakes: the request is there when it is first read) is never
//! registered at all (`Socket`). Since a report comes only for what is new, a socket
//! is read until it would block, or stays on the ready list. The listener is
//! level-triggered instead: each report accepts one connection (more, in doubling bursts,
//! while they queue up turn after turn), the next wait reports it again while more are
//! queued, and no `accept` is made only to learn that none is. A connection accepted is
//! read in the same turn, last, once the core's answers to the accept and to the turn's
//! other reads are carried out: most handshakes are accepted, answered and closed in
//! one turn.
//!
//! A connection's commands are carried out in order, and before it is read again (the
//! owner loop carries out what the core's inputs caused, and what that causes, before
//! it reads another socket; only a chain of more than a few rounds waits a turn, and
//! the core itself ignores what comes for a connection it has closed). What is read
//! after an answer is the bounded linger (until the core's deadline, `Config::linger`,
//! and at most [`LINGER_BYTES`]); a connection that lingered is reported closed
//! ([`Input::TcpClosed`]) when its socket is, since until then the core counts it
//! against the connection limits. A connection closed without
//! an answer, or whose peer has closed already, closes at once.
//!
//! At most `max_sockets` connection sockets are open at once (the core's
//! `max_handshakes` plus [`crate::fd_limit::ACCEPT_SLACK`] for those accepted and not
//! yet refused): at that many the listener is taken off the poller until one closes,
//! and new connections wait in the kernel's backlog, holding no descriptor. An `accept`
//! error (out of descriptors, say) pauses accepting the same way, from 10 ms doubling to
//! 1 s, and is logged at most once a second.

use crate::poller::{self, Poller};
use crate::{ConnCmd, Driver, LINGER_BYTES, TCP_READ_BUFFER};
use bytes::{Buf, Bytes};
use ocm_core::hash::IdMap;
use ocm_core::{ConnId, Input};
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Most sockets on the ready list (the listener counts as one) handled in one turn of
/// the owner loop; the connections the listener's turn accepts come on top.
pub const TURN_BATCH: usize = 64;

/// Most connections accepted in one turn (see [`TcpPath::accept`]).
const ACCEPT_BATCH: usize = 64;

/// Writes gathered into one `writev`.
const WRITE_SLICES: usize = 8;

/// What a connection still has to do, in the order the core said it.
#[derive(Debug)]
enum Op {
    Write(Bytes),
    ShutdownWrite,
    Close,
}

/// A connection's socket, registered with the poller only once it has had to wait.
/// Most handshakes never do (the request is there when the socket is first read, the
/// peer's FIN when it is read again), and save the `epoll_ctl` call that adds it.
#[derive(Debug)]
enum Socket {
    Plain(TcpStream),
    /// Registered; `writable`: reported when it gains room to write too.
    Watched {
        stream: TcpStream,
        writable: bool,
    },
    /// Registering failed: the socket is closed.
    Lost,
}

impl Socket {
    fn stream(&self) -> io::Result<&TcpStream> {
        match self {
            Socket::Plain(stream) | Socket::Watched { stream, .. } => Ok(stream),
            Socket::Lost => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream()?.read(buf)
    }

    fn write_vectored(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.stream()?.write_vectored(slices)
    }

    fn shutdown_write(&self) {
        if let Ok(stream) = self.stream() {
            let _ = stream.shutdown(Shutdown::Write);
        }
    }

    /// Makes sure `poller` reports the socket (under `key`) when something arrives, and
    /// when it has room to write if `writable`: registered the first time it has to
    /// wait, changed when it first waits for room. A socket that is ready already is
    /// reported at the next wait. An error (registering failed) means the socket is gone.
    fn watch(&mut self, poller: &Poller, key: u64, writable: bool) -> io::Result<()> {
        match self {
            Socket::Plain(stream) => {
                if let Err(error) = poller.add(&*stream, key, writable) {
                    *self = Socket::Lost;
                    return Err(error);
                }
                let Socket::Plain(stream) = std::mem::replace(self, Socket::Lost) else {
                    unreachable!("matched above");
                };
                *self = Socket::Watched { stream, writable };
                Ok(())
            }
            Socket::Watched {
                stream,
                writable: watched,
            } => {
                if writable && !*watched {
                    poller.modify(&*stream, key, true)?;
                    *watched = true;
                }
                Ok(())
            }
            Socket::Lost => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

/// An open connection socket.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    socket: Socket,
    ops: VecDeque<Op>,
    /// The peer has not closed: what is read goes to the core.
    reading: bool,
    /// The core wrote to it (a close then lingers instead of resetting).
    answered: bool,
    /// The core closed it: the socket goes by then, whatever it is doing.
    close_by: Option<Instant>,
    /// Lingering: bytes read and discarded since the close.
    discarded: Option<usize>,
    /// On the ready list.
    queued: bool,
}

/// What became of a connection after it was driven.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    Open,
    /// Close the socket; `told`: the core hears [`Input::TcpClosed`] then.
    Gone {
        told: bool,
    },
}

impl Conn {
    /// Carries out the commands, then reads (or, lingering, discards) until the socket
    /// would block (then it is watched by `poller`), or once when it delivered data (the
    /// core's answer to it comes before the next read: `again` is set). Inputs go to
    /// `feed`.
    fn drive(
        &mut self,
        poller: &Poller,
        buf: &mut [u8],
        again: &mut bool,
        feed: &mut impl FnMut(Input<&[u8]>),
    ) -> Fate {
        if let Some(fate) = self.run_ops(poller, feed) {
            return fate;
        }
        if !self.ops.is_empty() {
            // A write is waiting for room: nothing is read meanwhile.
            return Fate::Open;
        }
        if let Some(discarded) = &mut self.discarded {
            loop {
                match self.socket.read(buf) {
                    Ok(0) => return Fate::Gone { told: true },
                    Ok(n) => {
                        *discarded += n;
                        if *discarded > LINGER_BYTES {
                            return Fate::Gone { told: true };
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return match self.socket.watch(poller, self.id.0, false) {
                            Ok(()) => Fate::Open,
                            Err(_) => Fate::Gone { told: true },
                        };
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Fate::Gone { told: true },
                }
            }
        }
        if !self.reading {
            return Fate::Open;
        }
        let conn = self.id;
        match self.socket.read(buf) {
            Ok(n @ 1..) => {
                feed(Input::TcpData {
                    conn,
                    data: &buf[..n],
                });
                *again = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                match self.socket.watch(poller, conn.0, false) {
                    Ok(()) => {}
                    // Unwatchable: as good as closed.
                    Err(_) => {
                        self.reading = false;
                        feed(Input::TcpClosed { conn });
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => *again = true,
            // EOF or an error: the peer is gone, the core decides what that means.
            Ok(0) | Err(_) => {
                self.reading = false;
                feed(Input::TcpClosed { conn });
            }
        }
        Fate::Open
    }

    /// Works through the commands until one would block (`None`, the rest waits for
    /// the socket to be writable) or the connection is done with.
    fn run_ops(&mut self, poller: &Poller, feed: &mut impl FnMut(Input<&[u8]>)) -> Option<Fate> {
        while let Some(op) = self.ops.front() {
            match op {
                Op::Write(_) => match self.write_some() {
                    Ok(true) => {}
                    Ok(false) => {
                        // Still the front: go on when there is room.
                        if self.socket.watch(poller, self.id.0, true).is_err() {
                            return Some(Fate::Gone {
                                told: self.answered,
                            });
                        }
                        return None;
                    }
                    Err(_) => {
                        self.ops.pop_front();
                        if self.reading {
                            self.reading = false;
                            feed(Input::TcpClosed { conn: self.id });
                        }
                    }
                },
                Op::ShutdownWrite => {
                    self.socket.shutdown_write();
                    self.ops.pop_front();
                }
                Op::Close => {
                    self.ops.clear();
                    // Nothing to protect (no answer) or nobody to protect it from (the
                    // peer closed): the socket goes now.
                    if !self.answered || !self.reading {
                        return Some(Fate::Gone { told: false });
                    }
                    self.socket.shutdown_write();
                    self.discarded = Some(0);
                    return None;
                }
            }
        }
        None
    }

    /// Writes the leading writes in one `writev`; `Ok(true)` when it wrote something,
    /// `Ok(false)` when the socket has no room.
    fn write_some(&mut self) -> io::Result<bool> {
        let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
        let mut count = 0;
        for op in self.ops.iter().take(WRITE_SLICES) {
            let Op::Write(data) = op else { break };
            slices[count] = IoSlice::new(data);
            count += 1;
        }
        let mut written = loop {
            match self.socket.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        while written > 0 {
            let Some(Op::Write(data)) = self.ops.front_mut() else {
                break;
            };
            if written >= data.len() {
                written -= data.len();
                self.ops.pop_front();
            } else {
                data.advance(written);
                written = 0;
            }
        }
        Ok(true)
    }
}

/// The listener and the open connections, served by the owner loop.
#[derive(Debug)]
pub struct TcpPath {
    listener: TcpListener,
    conns: IdMap<ConnId, Conn>,
    next_id: u64,
    max_sockets: usize,
    /// The sockets to look at (ids, [`poller::LISTENER`]), first come first served, each
    /// at most once ([`Conn::queued`], `listener_queued`): reported by the poller, or
    /// left with something to do by an earlier turn.
    ready: VecDeque<u64>,
    listener_queued: bool,
    /// Connections on the ready list ([`Conn::queued`]); the list may also hold the ids
    /// of connections closed since, which a turn skips.
    queued_conns: usize,
    /// The listener is on the poller (level-triggered): off it while accepting is
    /// paused, at `max_sockets` or after an `accept` error.
    listening: bool,
    /// At `max_sockets`: accepting waits until a socket closes.
    starved: bool,
    backoff: Backoff,
    /// After an `accept` error: when to try again.
    paused_until: Option<Instant>,
    /// Closed connections by the time their socket must go (`Config::linger` after the
    /// close, so in order); an entry whose connection is gone already is skipped.
    closing: VecDeque<(Instant, ConnId)>,
    buf: Box<[u8]>,
    /// This turn's share of the ready list.
    turn: Vec<u64>,
    commands: Vec<(ConnId, ConnCmd)>,
    /// The connections that [`TcpPath::carry_out`] gave commands to.
    touched: Vec<u64>,
    /// The connections this turn accepted.
    accepted: Vec<ConnId>,
    /// How many connections the listener's next report accepts at most, if it comes in
    /// the turn after `full_accepts_on`, the last whose accepts all succeeded.
    accept_burst: usize,
    full_accepts_on: Option<u64>,
    /// Turns so far ([`TcpPath::handle_ready`] calls).
    turns: u64,
}

impl TcpPath {
    /// Serves `listener` (made non-blocking, watched by `poller`), with at most
    /// `max_sockets` connections open at once.
    pub fn new(listener: TcpListener, max_sockets: usize, poller: &Poller) -> io::Result<TcpPath> {
        listener.set_nonblocking(true)?;
        poller.add_level(&listener, poller::LISTENER)?;
        Ok(TcpPath {
            listener,
            conns: IdMap::default(),
            next_id: 0,
            max_sockets: max_sockets.max(1),
            // Connections may be waiting already.
            ready: VecDeque::from([poller::LISTENER]),
            listener_queued: true,
            queued_conns: 0,
            listening: true,
            starved: false,
            backoff: Backoff::default(),
            paused_until: None,
            closing: VecDeque::new(),
            buf: vec![0; TCP_READ_BUFFER].into_boxed_slice(),
            turn: Vec::new(),
            commands: Vec::new(),
            touched: Vec::new(),
            accepted: Vec::new(),
            accept_burst: 1,
            full_accepts_on: None,
            turns: 0,
        })
    }

    /// Connection sockets open now.
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// The poller reported the socket under `key` (a connection id or
    /// [`poller::LISTENER`]): the next turn looks at it.
    pub fn mark_ready(&mut self, key: u64) {
        if key == poller::LISTENER {
            if !std::mem::replace(&mut self.listener_queued, true) {
                self.ready.push_back(key);
            }
        } else if let Some(conn) = self.conns.get_mut(&ConnId(key)) {
            if !std::mem::replace(&mut conn.queued, true) {
                self.ready.push_back(key);
                self.queued_conns += 1;
            }
        }
    }

    /// A socket is waiting to be looked at: the next turn has something to do.
    pub fn has_ready(&self) -> bool {
        self.listener_queued || self.queued_conns > 0
    }

    /// When [`TcpPath::expire`] has something to do: the first closed socket's
    /// deadline, or the end of an accept pause.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let closing = self.closing.front().map(|(at, _)| *at);
        closing.into_iter().chain(self.paused_until).min()
    }

    /// Accepts and serves the sockets that are ready, in the order they became so (at
    /// most [`TURN_BATCH`]; the rest stay first in line for the next turn), feeding what
    /// they read to `driver`. The connections it accepts are read last: once the
    /// core's answers to their accepts (a refusal, say) and to this turn's other reads
    /// are carried out ([`TcpPath::carry_out`]), so that no socket is read twice
    /// before what the core said to its first read is done. Returns how many sockets it
    /// looked at.
    pub fn handle_ready(&mut self, poller: &Poller, driver: &mut Driver, now: Instant) -> usize {
        self.turns += 1;
        if self.ready.is_empty() {
            return 0;
        }
        let count = self.ready.len().min(TURN_BATCH);
        let mut turn = std::mem::take(&mut self.turn);
        turn.extend(self.ready.drain(..count));
        let mut accepted = std::mem::take(&mut self.accepted);
        for &id in &turn {
            if id == poller::LISTENER {
                self.listener_queued = false;
                self.accept(poller, driver, now, &mut accepted);
            } else {
                // Ids are not reused: a connection listed is queued unless it is gone.
                if let Some(conn) = self.conns.get_mut(&ConnId(id)) {
                    if std::mem::replace(&mut conn.queued, false) {
                        self.queued_conns -= 1;
                    }
                }
                self.drive(poller, ConnId(id), driver, now);
            }
        }
        if !accepted.is_empty() {
            self.carry_out(poller, driver, now);
            for &id in &accepted {
                self.drive(poller, id, driver, now);
            }
        }
        let handled = turn.len() + accepted.len();
        accepted.clear();
        self.accepted = accepted;
        self.turn = turn;
        self.turn.clear();
        handled
    }

    /// Carries out the TCP commands the driver has collected from the core's outputs,
    /// each connection's in order, as far as its socket allows now. Returns how many.
    pub fn carry_out(&mut self, poller: &Poller, driver: &mut Driver, now: Instant) -> usize {
        driver.take_tcp_commands(&mut self.commands);
        let count = self.commands.len();
        let mut commands = std::mem::take(&mut self.commands);
        let mut touched = std::mem::take(&mut self.touched);
        for (id, cmd) in commands.drain(..) {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let op = match cmd {
                ConnCmd::Send(data) => {
                    conn.answered = true;
                    Op::Write(data)
                }
                ConnCmd::ShutdownWrite => Op::ShutdownWrite,
                ConnCmd::Close { linger_until } => {
                    conn.close_by = Some(linger_until);
                    self.closing.push_back((linger_until, id));
                    Op::Close
                }
            };
            conn.ops.push_back(op);
            if touched.last() != Some(&id.0) {
                touched.push(id.0);
            }
        }
        self.commands = commands;
        touched.sort_unstable();
        touched.dedup();
        for &id in &touched {
            self.drive(poller, ConnId(id), driver, now);
        }
        touched.clear();
        self.touched = touched;
        count
    }

    /// Closes the sockets whose linger has run out (whatever they were doing) and ends
    /// an accept pause that is over. Returns how many sockets it closed.
    pub fn expire(&mut self, poller: &Poller, driver: &mut Driver, now: Instant) -> usize {
        if self.paused_until.is_some_and(|at| at <= now) {
            self.paused_until = None;
            self.listen(poller, now);
        }
        let mut closed = 0;
        while let Some(&(at, id)) = self.closing.front() {
            if at > now {
                break;
            }
            self.closing.pop_front();
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            if conn.close_by == Some(at) {
                let told = conn.answered;
                self.remove(poller, id, told, driver, now);
                closed += 1;
            }
        }
        closed
    }

    fn drive(&mut self, poller: &Poller, id: ConnId, driver: &mut Driver, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let mut again = false;
        let fate = conn.drive(poller, &mut self.buf, &mut again, &mut |input| {
            driver.handle(now, input)
        });
        match fate {
            Fate::Gone { told } => self.remove(poller, id, told, driver, now),
            Fate::Open if again => self.mark_ready(id.0),
            Fate::Open => {}
        }
    }

    fn remove(
        &mut self,
        poller: &Poller,
        id: ConnId,
        told: bool,
        driver: &mut Driver,
        now: Instant,
    ) {
        if let Some(conn) = self.conns.remove(&id) {
            if conn.queued {
                debug_assert!(self.queued_conns > 0);
                self.queued_conns = self.queued_conns.saturating_sub(1);
            }
            if let Socket::Watched { stream, .. } = &conn.socket {
                poller.forget(stream);
            }
        }
        if told {
            driver.handle(now, Input::TcpClosed { conn: id });
        }
        if std::mem::take(&mut self.starved) {
            self.listen(poller, now);
        }
    }

    /// Accepting resumes: the listener goes back on the poller and is looked at next
    /// turn. If it cannot be added, accepting pauses as after an `accept` error.
    fn listen(&mut self, poller: &Poller, now: Instant) {
        if !self.listening {
            if let Err(error) = poller.add_level(&self.listener, poller::LISTENER) {
                self.pause(error, now);
                return;
            }
            self.listening = true;
        }
        self.mark_ready(poller::LISTENER);
    }

    /// Accepting waits (at `max_sockets`, or paused): the listener is taken off the
    /// poller, or its queued connections would end every wait at once.
    fn stop_listening(&mut self, poller: &Poller) {
        if !self.listening {
            return;
        }
        match poller.remove(&self.listener) {
            Ok(()) => self.listening = false,
            // Still watched: the owner loop turns without waiting until accepting resumes.
            Err(error) => tracing::error!(%error, "could not take the listener off the poller"),
        }
    }

    /// After a failure (`accept`, or adding the listener to the poller): no accepting
    /// until the backoff's delay is over.
    fn pause(&mut self, error: io::Error, now: Instant) {
        let (delay, report) = self.backoff.failed(now);
        if let Some(failures) = report {
            tracing::warn!(%error, failures, ?delay, "accept failed; backing off");
        }
        self.paused_until = Some(now + delay);
    }

    /// Accepts connections while there is room for them, adding their ids to
    /// `accepted`: one, or more when they queue up. The listener is level-triggered, so
    /// the next wait reports it again while more are queued: one accept per report costs
    /// no `accept` that would block. When the listener is ready turn after turn and
    /// every accept of the last turn succeeded, the burst doubles (to [`ACCEPT_BATCH`]);
    /// once an accept would block it is one again. So connections that come one at a
    /// time cost one wait each and no failed accept, and a queue of them one wait per
    /// batch.
    fn accept(
        &mut self,
        poller: &Poller,
        driver: &mut Driver,
        now: Instant,
        accepted: &mut Vec<ConnId>,
    ) {
        let burst = match self.full_accepts_on == Some(self.turns.wrapping_sub(1)) {
            true => self.accept_burst,
            false => 1,
        };
        self.accept_burst = 1;
        for _ in 0..burst {
            if self.paused_until.is_some() {
                return;
            }
            if self.conns.len() >= self.max_sockets {
                self.starved = true;
                self.stop_listening(poller);
                return;
            }
            match accept_nonblocking(&self.listener) {
                Ok((stream, peer)) => {
                    self.backoff.succeeded();
                    let id = ConnId(self.next_id);
                    self.next_id += 1;
                    self.conns.insert(
                        id,
                        Conn {
                            id,
                            socket: Socket::Plain(stream),
                            ops: VecDeque::new(),
                            reading: true,
                            answered: false,
                            close_by: None,
                            discarded: None,
                            queued: false,
                        },
                    );
                    driver.handle(now, Input::TcpAccepted { conn: id, peer });
                    accepted.push(id);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    return self.mark_ready(poller::LISTENER)
                }
                Err(error) => {
                    self.pause(error, now);
                    self.stop_listening(poller);
                    return;
                }
            }
        }
        self.accept_burst = (burst * 2).min(ACCEPT_BATCH);
        self.full_accepts_on = Some(self.turns);
    }
}

/// Accepts one connection, its socket non-blocking from the start (on Linux `accept4`
/// with `SOCK_NONBLOCK`: one system call, not two).
fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    #[cfg(target_os = "linux")]
    {
        use rustix::net::{acceptfrom_with, SocketFlags};
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let (fd, peer) = acceptfrom_with(listener, flags)?;
        let peer = peer
            .and_then(|peer| SocketAddr::try_from(peer).ok())
            .ok_or_else(|| io::Error::other("accepted a connection with no IP address"))?;
        Ok((TcpStream::from(fd), peer))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (stream, peer) = listener.accept()?;
        stream.set_nonblocking(true)?;
        Ok((stream, peer))
    }
}

/// How long accepting pauses after a failed `accept`, and when it says so.
#[derive(Debug, Default)]
struct Backoff {
    /// Failures in a row.
    failures: u32,
    /// Failures not yet reported.
    unreported: u64,
    last_report: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    /// One more failure at `now`: how long to wait, and the count to report (at most
    /// once a second).
    fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        let delay = Self::FIRST
            .saturating_mul(1 << self.failures.min(7))
            .min(Self::MAX);
        self.failures += 1;
        self.unreported += 1;
        let due = match self.last_report {
            Some(at) => now.duration_since(at) >= Duration::from_secs(1),
            None => true,
        };
        let report = due.then(|| {
            self.last_report = Some(now);
            std::mem::take(&mut self.unreported)
        });
        (delay, report)
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use ocm_core::client::Handshake;

    /// A driver for a rooms server (its UDP socket is never used here) and a TCP path on
    /// a fresh loopback listener of at most `max_sockets` connections.
    fn path(max_sockets: usize) -> (Driver, TcpPath, Poller, SocketAddr) {
        let options = Options {
            stats_interval: None,
            ..Options::default()
        };
        let driver = Driver::new(&options, [3; 32], "127.0.0.1:9".parse().unwrap()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poller = Poller::new().unwrap();
        let tcp = TcpPath::new(listener, max_sockets, &poller).unwrap();
        (driver, tcp, poller, addr)
    }

    /// Runs owner turns (TCP only) until `done`, waiting for the poller (at most 20 ms)
    /// between turns with nothing left to do; fails after 5 s.
    fn turn_until(
        driver: &mut Driver,
        tcp: &mut TcpPath,
        poller: &mut Poller,
        done: impl Fn(&TcpPath) -> bool,
    ) {
        let give_up = Instant::now() + Duration::from_secs(5);
        while !done(tcp) {
            assert!(Instant::now() < give_up, "gave up: {}", driver.summary());
            let now = Instant::now();
            tcp.handle_ready(poller, driver, now);
            while driver.poll_datagram().is_some() {}
            tcp.carry_out(poller, driver, now);
            tcp.expire(poller, driver, now);
            let deadline = match tcp.has_ready() {
                true => now,
                false => now + Duration::from_millis(20),
            };
            poller
                .wait(Some(deadline), |key| tcp.mark_ready(key))
                .unwrap();
        }
    }

    #[test]
    fn at_the_socket_limit_accepting_waits_and_resumes_when_a_socket_closes() {
        let (mut driver, mut tcp, mut poller, addr) = path(2);
        let mut clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| tcp.open() == 2);
        // A few more turns: the third connection stays in the kernel's backlog.
        for _ in 0..3 {
            turn_until(&mut driver, &mut tcp, &mut poller, |_| true);
            let now = Instant::now();
            tcp.handle_ready(&poller, &mut driver, now);
        }
        assert_eq!((tcp.open(), tcp.next_id), (2, 2));
        // The listener, level-triggered, is off the poller meanwhile: the queued
        // connection does not end every wait.
        let mut reported = Vec::new();
        poller
            .wait(Some(Instant::now() + Duration::from_millis(30)), |key| {
                reported.push(key)
            })
            .unwrap();
        assert!(!reported.contains(&poller::LISTENER), "{reported:?}");
        // The first client goes: the core closes its connection, and the third is taken.
        drop(clients.remove(0));
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| tcp.next_id == 3);
        assert_eq!(tcp.open(), 2);
    }

    /// A client connected to `addr` that has sent alice's create of room "room", reads
    /// time out after 5 s.
    fn alice_creates(addr: SocketAddr) -> (Handshake, TcpStream) {
        let handshake = Handshake::create("room", "alice", None).unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(handshake.request()).unwrap();
        (handshake, client)
    }

    #[test]
    fn an_answered_connection_lingers_until_the_peer_closes_and_is_released_then() {
        let (mut driver, mut tcp, mut poller, addr) = path(8);
        let (mut handshake, mut client) = alice_creates(addr);
        // A port step too long to be one: the core answers and closes at once.
        client.write_all(&[0; 3]).unwrap();
        // The answer comes and the server closes its write side, while the client's
        // side is still open: the socket lingers, counted by the core.
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| {
            tcp.conns.values().any(|c| c.discarded.is_some())
        });
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        assert!(matches!(handshake.handle_data(&answer), Ok(Some(_))));
        assert_eq!(driver.counts().connections, 1, "held while it lingers");
        // What the client sends now is discarded, not a request.
        client.write_all(&[0; 100]).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| tcp.open() == 0);
        assert_eq!(
            driver.counts().connections,
            0,
            "released when the socket is"
        );
        assert_eq!(
            driver.stats().handshakes(ocm_core::wire::tcrp::Status::Ok),
            1
        );
    }

    #[test]
    fn a_connection_is_read_in_the_turn_that_accepts_it_and_not_listed_once_closed() {
        let (mut driver, mut tcp, mut poller, addr) = path(8);
        let (mut handshake, mut client) = alice_creates(addr);
        client.shutdown(Shutdown::Write).unwrap();
        // The wait that reports the connection (the turn's first look at the listener
        // may come before the client's connect).
        let mut turns = 0;
        while tcp.open() == 0 {
            turns += 1;
            assert!(turns < 100, "never accepted");
            let now = Instant::now();
            tcp.handle_ready(&poller, &mut driver, now);
            if tcp.open() > 0 {
                break;
            }
            poller
                .wait(Some(now + Duration::from_millis(50)), |key| {
                    tcp.mark_ready(key)
                })
                .unwrap();
        }
        // That one turn read the request: the core has answered it.
        assert_eq!(
            driver.stats().handshakes(ocm_core::wire::tcrp::Status::Ok),
            1
        );
        // Carrying out the answer reads the client's FIN too and closes the socket:
        // nothing is left to look at, so the owner would wait.
        let now = Instant::now();
        for _ in 0..3 {
            while driver.poll_datagram().is_some() {}
            tcp.carry_out(&poller, &mut driver, now);
        }
        assert_eq!(tcp.open(), 0);
        assert!(!tcp.has_ready(), "a closed connection is not work");
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).unwrap();
        assert!(matches!(handshake.handle_data(&answer), Ok(Some(_))));
    }

    /// One owner turn as far as the listener goes: the poller's reports (no waiting),
    /// then the ready sockets. Returns how many connections are open.
    fn listener_turn(driver: &mut Driver, tcp: &mut TcpPath, poller: &mut Poller) -> usize {
        poller
            .wait(Some(Instant::now()), |key| tcp.mark_ready(key))
            .unwrap();
        tcp.handle_ready(poller, driver, Instant::now());
        tcp.open()
    }

    #[test]
    fn queued_connections_are_accepted_in_bursts_that_double_turn_after_turn() {
        let (mut driver, mut tcp, mut poller, addr) = path(64);
        let connect = |n| -> Vec<_> {
            let clients = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(20));
            clients
        };
        let _first = connect(3);
        // One, then two: every accept succeeded, so the next burst is four.
        let opened: Vec<_> = (0..2)
            .map(|_| listener_turn(&mut driver, &mut tcp, &mut poller))
            .collect();
        assert_eq!((opened, tcp.accept_burst), (vec![1, 3], 4));
        // A turn without the listener, then a queue again: it starts from one.
        tcp.handle_ready(&poller, &mut driver, Instant::now());
        let _second = connect(4);
        assert_eq!(listener_turn(&mut driver, &mut tcp, &mut poller), 4);
        // Then two, then one more, where the second accept would block: one again.
        assert_eq!(listener_turn(&mut driver, &mut tcp, &mut poller), 6);
        assert_eq!(listener_turn(&mut driver, &mut tcp, &mut poller), 7);
        assert_eq!(tcp.accept_burst, 1);
    }

    #[test]
    fn after_a_pause_the_listener_is_watched_again_and_accepts() {
        let (mut driver, mut tcp, mut poller, addr) = path(8);
        let now = Instant::now();
        tcp.paused_until = Some(now + Duration::from_millis(10));
        tcp.stop_listening(&poller);
        let _client = TcpStream::connect(addr).unwrap();
        // Paused: off the poller, and not accepting even if asked to.
        let mut reported = Vec::new();
        poller
            .wait(Some(now + Duration::from_millis(30)), |key| {
                reported.push(key)
            })
            .unwrap();
        assert!(!reported.contains(&poller::LISTENER), "{reported:?}");
        tcp.mark_ready(poller::LISTENER);
        tcp.handle_ready(&poller, &mut driver, Instant::now());
        assert_eq!(tcp.open(), 0);
        // The pause ends: watched again, and the queued connection is taken.
        tcp.expire(&poller, &mut driver, Instant::now());
        assert!(tcp.listening);
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| tcp.open() == 1);
    }

    #[test]
    fn the_ready_list_is_first_come_first_served_and_holds_a_socket_once() {
        let (mut driver, mut tcp, mut poller, addr) = path(8);
        let _clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| tcp.open() == 3);
        // Let the accepted connections' first reads (nothing there yet) happen.
        turn_until(&mut driver, &mut tcp, &mut poller, |tcp| !tcp.has_ready());
        for key in [2, 0, 2, poller::LISTENER, 0, 99] {
            tcp.mark_ready(key);
        }
        // In order of arrival, each once; a connection that is not open is not listed.
        assert_eq!(Vec::from(tcp.ready.clone()), [2, 0, poller::LISTENER]);
        // A turn takes them, and a socket may be listed again after it was looked at.
        let now = Instant::now();
        tcp.handle_ready(&poller, &mut driver, now);
        tcp.mark_ready(0);
        assert_eq!(Vec::from(tcp.ready.clone()), [0]);
    }

    #[test]
    fn accept_failures_back_off_exponentially_to_a_second_and_report_once_a_second() {
        let t0 = Instant::now();
        let mut backoff = Backoff::default();
        let mut now = t0;
        let mut delays = Vec::new();
        let mut reports = Vec::new();
        for _ in 0..12 {
            let (delay, report) = backoff.failed(now);
            delays.push(delay.as_millis());
            reports.extend(report);
            now += delay;
        }
        assert_eq!(
            delays,
            [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000, 1000, 1000]
        );
        // 12 failures over about 7 s: the first at once, then one count a second.
        assert_eq!(reports.iter().sum::<u64>(), 12 - backoff.unreported);
        assert!(reports.len() <= 8, "{reports:?}");
        assert_eq!(reports[0], 1);
        backoff.succeeded();
        assert_eq!(
            backoff.failed(now).0,
            Backoff::FIRST,
            "a success starts over"
        );
    }
}
