//! The UDP hot path, shared by both shells: the owner task reads datagrams itself when
//! the socket is readable, many per system call where the platform allows
//! ([`crate::batch_recv`]), hands each to the [`Driver`] straight from the read buffer,
//! and sends what the core queued the same way ([`crate::batch`]).
//!
//! Reading in the owner task (rather than in a reader task feeding a channel) keeps a
//! datagram on one thread from socket to fan-out: no cross-thread wake-up per datagram.
//! The socket is watched by the owner's own [`Poller`], edge-triggered: the owner reads
//! while datagrams keep coming and waits once a read has found the queue empty.
//!
//! While datagrams keep coming, the owner may instead wait in the socket's own receive
//! ([`UdpPath::wait`]): one `recvmmsg` that sleeps until the next
//! datagram, where a wait in the poller is an `epoll_wait` and then the `recvmmsg`
//! (measured: a relay that waits in epoll costs 2–8 % more CPU per delivery than one
//! that blocks in `recvmmsg`; `bench/src/batched.rs`). So on Linux the socket is left in
//! blocking mode with a receive timeout of [`HOT_WAIT`], and every other call on it says
//! `MSG_DONTWAIT`; elsewhere it is non-blocking and never waited on.

use crate::metrics::FanoutMark;
use crate::poller::{self, Poller};
use crate::{addr, batch, batch_recv, errqueue, Driver};
use bytes::Bytes;
use ocm_core::{Input, SendFailure};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

/// Most datagrams read before the owner looks at its other inputs again.
pub const READ_BATCH: usize = 64;

/// Longest wait in the socket's own receive (its `SO_RCVTIMEO`; the kernel counts it in
/// clock ticks, so a wait ends at the next tick after this: up to one tick, 1–10 ms).
pub const HOT_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// The server's UDP socket and its buffers.
#[derive(Debug)]
pub struct UdpPath {
    socket: UdpSocket,
    /// The last read found the queue empty: what comes next is reported by the poller (or
    /// taken by a wait in the socket, [`UdpPath::wait`]).
    drained: bool,
    /// The last receive [`UdpPath::read_ready`] handled was the one [`UdpPath::wait`]
    /// made, before the owner read its clock ([`UdpPath::seen_empty_after_clock`]).
    last_from_wait: bool,
    receiver: batch_recv::Receiver,
    /// What [`UdpPath::wait`] received, for the next read to handle.
    received: Option<io::Result<usize>>,
    /// Where the socket is bound (destinations are mapped for its family).
    local: SocketAddr,
    sender: batch::Sender,
    /// The socket is in the poller (see [`UdpPath::watch`]).
    watched: bool,
}

impl UdpPath {
    /// Wraps a bound socket: on Linux in blocking mode with a receive timeout of
    /// [`HOT_WAIT`] (every call but a waiting receive says `MSG_DONTWAIT`), elsewhere
    /// non-blocking.
    pub fn new(socket: UdpSocket) -> io::Result<UdpPath> {
        let local = socket.local_addr()?;
        Ok(UdpPath {
            socket: {
                if cfg!(target_os = "linux") {
                    socket.set_nonblocking(false)?;
                    socket.set_read_timeout(Some(HOT_WAIT))?;
                } else {
                    socket.set_nonblocking(true)?;
                }
                socket
            },
            drained: false,
            last_from_wait: false,
            receiver: batch_recv::Receiver::new(),
            received: None,
            local,
            sender: batch::Sender::new(),
            watched: false,
        })
    }

    /// Whether the socket is in `poller` (under [`poller::UDP`], reported when a
    /// datagram or a queued error arrives), putting it in or taking it out if it is not
    /// as asked. A socket in a poller has a waiter the kernel wakes for every datagram
    /// that comes and for every datagram sent once the kernel frees it (its write-space
    /// callback: a lock and a call into the poller each, about 2.5 % of the CPU samples
    /// of a 2-member delivery in `ocm-load --profile perf-record`, gone once out): the
    /// owner takes it out while it reads the socket without the poller
    /// ([`UdpPath::wait`]). Put back in, a socket with datagrams waiting is reported at
    /// the next wait.
    pub fn watch(&mut self, poller: &Poller, watched: bool) -> io::Result<()> {
        if self.watched != watched {
            if watched {
                poller.add(&self.socket, poller::UDP, false)?;
            } else {
                poller.remove(&self.socket)?;
            }
            self.watched = watched;
        }
        Ok(())
    }

    /// The last read found the socket empty: there is nothing to read until the poller
    /// reports it.
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// The last read found the socket empty in a receive of its own, made after the
    /// clock it was given was read; not in what [`UdpPath::wait`] took before that (a
    /// stall between the wait and the clock, SIGSTOP or a VM's steal time, may have
    /// filled the socket since). What tells due timers that nothing the kernel holds
    /// was heard before them.
    pub fn seen_empty_after_clock(&self) -> bool {
        self.drained && !self.last_from_wait
    }

    /// Waits in the socket's own receive, up to [`HOT_WAIT`], until a datagram is there
    /// (Linux; elsewhere only looks), and takes what has come; the next
    /// [`UdpPath::read_ready`] handles it (so that the owner reads the clock after the
    /// wait, not before).
    pub fn wait(&mut self) {
        self.received = Some(self.receiver.recv_waiting(&self.socket));
    }

    /// Reads what is waiting, up to [`READ_BATCH`] datagrams, into the driver, without
    /// waiting (what [`UdpPath::wait`] took first); returns how many datagrams and
    /// queued errors it handled (0: nothing was there). A receive that comes back with
    /// less than a full batch found the queue empty, so reading stops there instead of
    /// asking again only to hear `WouldBlock`. Errors queued on the socket become send
    /// failures.
    pub fn read_ready(&mut self, driver: &mut Driver, now: Instant) -> usize {
        let mut handled = 0;
        self.drained = false;
        while handled < READ_BATCH {
            let (received, from_wait) = match self.received.take() {
                Some(received) => (received, true),
                None => (self.receiver.recv(&self.socket), false),
            };
            self.last_from_wait = from_wait;
            match received {
                Ok(n) => {
                    for i in 0..n {
                        let Some((from, data)) = self.receiver.datagram(i) else {
                            continue;
                        };
                        let mark = FanoutMark::of(driver.stats());
                        driver.handle(now, Input::Datagram { from, data });
                        driver.note_fanout(mark);
                    }
                    handled += n.max(1);
                    if self.receiver.last_batch_short() {
                        self.drained = true;
                        break;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    self.drained = true;
                    break;
                }
                // A wait in the socket cut short by a signal (a socket with a receive
                // timeout is not restarted): nothing was taken; the next receive looks.
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    let mut failed = Vec::new();
                    self.queued_failures(&mut failed);
                    if failed.is_empty() {
                        // The socket's pending error (say an ICMP error that a full
                        // receive buffer had no room to queue) fails one receive and is
                        // cleared by it: datagrams may still be waiting, and with an
                        // edge-triggered poller nothing would report them again. The
                        // next receive says; the batch bounds the retries.
                        tracing::debug!(%error, "recv_from failed");
                        handled += 1;
                        continue;
                    }
                    handled += failed.len();
                    for (to, cause) in failed {
                        driver.handle(now, Input::SendFailed { to, cause });
                    }
                }
            }
        }
        handled
    }

    /// Sends every datagram the core has queued, in batches taken from where the core
    /// queued them ([`Driver::front_datagrams`]), waiting for the socket to be writable
    /// when its buffer is full (the owner blocks: nothing is read meanwhile, which is the
    /// back-pressure a full send buffer asks for). Failed sends are reported to the core
    /// as of `now`, which may queue more (eviction notices): those are sent too. If
    /// waiting to send fails, what is left stays queued for the next flush.
    pub fn flush(&mut self, driver: &mut Driver, now: Instant) {
        loop {
            let batch = driver.front_datagrams(batch::SEND_BATCH);
            if batch.is_empty() {
                return;
            }
            // Empty, and so not allocated, unless a send fails.
            let mut failures = Vec::new();
            let (done, stuck) = self.send_batch(batch, &mut failures);
            driver.datagrams_sent(done);
            for (to, cause) in failures {
                driver.handle(now, Input::SendFailed { to, cause });
            }
            if stuck {
                return;
            }
        }
    }

    /// Sends `batch` (destinations in the core's form), pushing every destination found
    /// unreachable onto `failures`. Returns how many datagrams are done with (sent, or
    /// failed), and whether the socket could not be waited for (then fewer).
    fn send_batch(
        &mut self,
        batch: &[(SocketAddr, Bytes)],
        failures: &mut Vec<(SocketAddr, SendFailure)>,
    ) -> (usize, bool) {
        let mut done = 0;
        while done < batch.len() {
            let asked = (batch.len() - done).min(batch::SEND_BATCH);
            match self.sender.send(&self.socket, &batch[done..], self.local) {
                Ok(sent) => {
                    done += sent;
                    if sent < asked {
                        // A `sendmmsg` cut short by an error returns the count sent and
                        // drops the error: a pending ICMP error (the socket's, cleared by
                        // the send it failed) whose report waits in the error queue, or a
                        // full buffer (then the queue is empty: one call for nothing).
                        // The queue is drained now; nothing else would report it.
                        self.queued_failures(failures);
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(error) = wait_writable(&self.socket) {
                        tracing::debug!(%error, "waiting to send failed");
                        return (done, true);
                    }
                }
                Err(error) => {
                    let (to, payload) = &batch[done];
                    self.send_failed(addr::to_socket(*to, self.local), payload, &error, failures);
                    done += 1;
                }
            }
        }
        (done, false)
    }

    /// The destinations of the ICMP errors the socket's error queue holds.
    fn queued_failures(&self, failures: &mut Vec<(SocketAddr, SendFailure)>) {
        let queued = errqueue::drain(&self.socket);
        failures.extend(queued.into_iter().map(|to| (to, SendFailure::Icmp)));
    }

    /// The send of `payload` to `to` failed with `error`: drain the error queue (the
    /// error may be an earlier ICMP error for another member), retry once if so.
    fn send_failed(
        &self,
        to: SocketAddr,
        payload: &[u8],
        error: &io::Error,
        failures: &mut Vec<(SocketAddr, SendFailure)>,
    ) {
        self.queued_failures(failures);
        let deferred = errqueue::is_deferred(error);
        if deferred && send_now(&self.socket, payload, to).is_ok() {
            return;
        }
        tracing::debug!(%to, %error, "send_to failed");
        // A refused send on Linux is the report of an ICMP error: a hint, like the queue's.
        let cause = if deferred {
            SendFailure::Icmp
        } else {
            SendFailure::Refused
        };
        failures.push((to, cause));
    }
}

/// One datagram, without waiting for room (the socket may be in blocking mode).
#[cfg(target_os = "linux")]
fn send_now(socket: &UdpSocket, payload: &[u8], to: SocketAddr) -> io::Result<usize> {
    use rustix::net::{sendto, SendFlags};
    Ok(sendto(socket, payload, SendFlags::DONTWAIT, &to)?)
}

#[cfg(not(target_os = "linux"))]
fn send_now(socket: &UdpSocket, payload: &[u8], to: SocketAddr) -> io::Result<usize> {
    socket.send_to(payload, to)
}

/// Blocks until `socket` has room to send (`poll(2)`, not the owner's poller: nothing
/// else is served meanwhile).
#[cfg(target_os = "linux")]
fn wait_writable(socket: &UdpSocket) -> io::Result<()> {
    use rustix::event::{poll, PollFd, PollFlags};
    loop {
        let mut fds = [PollFd::new(socket, PollFlags::OUT)];
        match poll(&mut fds, None) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => {}
            Err(error) => return Err(error.into()),
        }
    }
}

/// Elsewhere: a millisecond's pause before the next try.
#[cfg(not(target_os = "linux"))]
fn wait_writable(_socket: &UdpSocket) -> io::Result<()> {
    std::thread::sleep(std::time::Duration::from_millis(1));
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::Options;
    use std::time::Duration;

    /// A UDP path on a fresh loopback socket (set up by `setup` first), its driver and
    /// address.
    fn path(setup: impl FnOnce(&UdpSocket)) -> (UdpPath, Driver, SocketAddr) {
        let options = Options {
            stats_interval: None,
            ..Options::default()
        };
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        setup(&socket);
        let driver = Driver::new(&options, [3; 32], to).unwrap();
        (UdpPath::new(socket).unwrap(), driver, to)
    }

    #[test]
    fn a_wait_in_the_socket_takes_what_comes_and_gives_up_when_nothing_does() {
        let (mut udp, mut driver, to) = path(|_| ());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Something waiting: the wait takes it, the read after it hands it over.
        peer.send_to(&[0; 40], to).unwrap();
        peer.send_to(&[0; 40], to).unwrap();
        udp.wait();
        assert_eq!(udp.read_ready(&mut driver, Instant::now()), 2);
        assert!(udp.drained());
        assert_eq!(driver.stats().datagrams_received, 2);
        // A datagram sent while the owner waits is taken when it comes.
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            peer.send_to(&[0; 40], to).unwrap();
        });
        // The socket's wait is short (HOT_WAIT, a clock tick): wait until it is there.
        let (mut read, give_up) = (0, Instant::now() + Duration::from_secs(10));
        while read == 0 {
            assert!(
                Instant::now() < give_up,
                "the datagram never came out of a wait"
            );
            udp.wait();
            read = udp.read_ready(&mut driver, Instant::now());
            assert!(read == 0 || read == 1, "{read}");
            assert!(udp.drained());
        }
        sender.join().unwrap();
        assert_eq!(driver.stats().datagrams_received, 3);
        // Nothing comes: the wait gives up, the read finds nothing and says so.
        udp.wait();
        assert_eq!(udp.read_ready(&mut driver, Instant::now()), 0);
        assert!(udp.drained());
    }

    /// A wait that gave up, then a stall before the owner reads the clock, in which a
    /// member's datagram comes: the wait's "nothing" does not say the socket is empty
    /// after that clock, so due timers must not fire before a receive of its own.
    #[test]
    fn a_wait_that_found_nothing_before_the_clock_does_not_clear_timers_to_fire() {
        let (mut udp, mut driver, to) = path(|_| ());
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.wait();
        // (the stall: the datagram comes after the wait gave up)
        peer.send_to(&[0; 40], to).unwrap();
        let now = Instant::now();
        assert_eq!(udp.read_ready(&mut driver, now), 0, "the wait's result");
        assert!(udp.drained());
        assert!(!udp.seen_empty_after_clock());
        assert_eq!(udp.read_ready(&mut driver, now), 1);
        assert!(udp.seen_empty_after_clock());
        // A wait that took something, then a read of its own that found the rest empty.
        peer.send_to(&[0; 40], to).unwrap();
        udp.wait();
        assert_eq!(udp.read_ready(&mut driver, Instant::now()), 1);
        assert!(udp.drained());
        assert!(!udp.seen_empty_after_clock(), "a short batch in the wait");
        assert_eq!(udp.read_ready(&mut driver, Instant::now()), 0);
        assert!(udp.seen_empty_after_clock());
    }

    /// The socket is in blocking mode (for [`UdpPath::wait`]): every other call on it
    /// must not wait. Here its receive timeout is lifted, so a call that waited would
    /// wait forever; a watchdog fails the test instead.
    #[test]
    fn nothing_but_the_wait_waits_on_the_blocking_socket() {
        let (udp, mut driver, _) = path(|socket| errqueue::enable(socket).unwrap());
        udp.socket.set_read_timeout(None).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut udp = udp;
            // an empty socket: the read finds nothing, the error queue is empty
            assert_eq!(udp.read_ready(&mut driver, Instant::now()), 0);
            assert!(udp.drained());
            assert!(errqueue::drain(&udp.socket).is_empty());
            // a send (to a closed port) and its retry path
            let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
            let gone = closed.local_addr().unwrap();
            drop(closed);
            assert!(send_now(&udp.socket, b"x", gone).is_ok());
            std::thread::sleep(Duration::from_millis(20));
            // the ICMP error is queued: the read reports it and does not wait after it
            udp.read_ready(&mut driver, Instant::now());
            assert!(udp.drained());
            done.send(()).unwrap();
        });
        finished
            .recv_timeout(Duration::from_secs(10))
            .expect("a call on the blocking socket waited");
    }

    /// An ICMP error that comes back while the receive queue is full sets the socket's
    /// pending error but cannot be queued (the error queue shares the receive buffer):
    /// the next receive fails with nothing in the error queue. That is not an empty
    /// socket: were it taken for one, the edge-triggered poller would never report the
    /// full queue again (found in review).
    #[test]
    fn a_receive_failed_by_an_unqueued_error_does_not_leave_datagrams_unread() {
        let (mut udp, mut driver, to) = path(|socket| {
            errqueue::enable(socket).unwrap();
            nix::sys::socket::setsockopt(socket, nix::sys::socket::sockopt::RcvBuf, &4096).unwrap();
        });
        // Fill the receive queue (what does not fit is dropped by the kernel).
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..64 {
            peer.send_to(&[0; 200], to).unwrap();
        }
        // A send to a closed port: its ICMP error comes back to the full socket.
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let gone = closed.local_addr().unwrap();
        drop(closed);
        udp.socket.send_to(b"x", gone).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        // Until the socket is read dry, the owner must not think it is.
        for _ in 0..16 {
            udp.read_ready(&mut driver, Instant::now());
            let waiting = udp.socket.peek_from(&mut [0; 512]).is_ok();
            assert!(
                !(udp.drained() && waiting),
                "datagrams are waiting, and the owner takes the socket for empty"
            );
            if udp.drained() {
                break;
            }
        }
        assert!(udp.drained(), "read dry in the end");
        assert!(driver.stats().datagrams_received > 0);
    }

    /// A `sendmmsg` whose later datagram fails (here on an ICMP error that the first
    /// one's loopback delivery raised within the same call) returns the count sent and
    /// drops the error; the error queue's report of it must still reach the core, and
    /// the rest of the batch still go out (found in review). The kernel may hold an ICMP
    /// error back (its global rate limit, shared with every other test): a few tries.
    #[test]
    fn an_error_that_cuts_a_batch_short_is_still_reported() {
        let reported = (0..10).any(|_| {
            let (mut udp, _driver, _) = path(|socket| errqueue::enable(socket).unwrap());
            let live = UdpSocket::bind("127.0.0.1:0").unwrap();
            live.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
            let gone = closed.local_addr().unwrap();
            drop(closed);
            let payload = Bytes::from_static(b"hello");
            let to = live.local_addr().unwrap();
            let mut batch = vec![(gone, payload.clone())];
            batch.extend((0..3).map(|_| (to, payload.clone())));
            let mut failures = Vec::new();
            assert_eq!(udp.send_batch(&batch, &mut failures), (4, false));
            for _ in 0..3 {
                assert_eq!(live.recv(&mut [0; 16]).unwrap(), 5, "the batch went out");
            }
            let left = errqueue::drain(&udp.socket).is_empty();
            std::thread::sleep(Duration::from_millis(50));
            failures == [(gone, SendFailure::Icmp)] && left
        });
        assert!(reported, "the ICMP error was left in the queue");
    }

    /// Out of the poller, a datagram is not reported; back in, the one that came
    /// meanwhile is. Asking for the state the socket is in already changes nothing
    /// (epoll refuses a second add and a remove of what it does not hold).
    #[test]
    fn a_socket_out_of_the_poller_is_reported_what_came_once_back_in() {
        let (mut udp, mut driver, to) = path(|_| ());
        let mut poller = Poller::new().unwrap();
        let reported = |poller: &mut Poller| {
            let mut keys = Vec::new();
            let soon = Instant::now() + Duration::from_millis(50);
            poller.wait(Some(soon), |key| keys.push(key)).unwrap();
            keys == [poller::UDP]
        };
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.watch(&poller, true).unwrap();
        udp.watch(&poller, true).unwrap();
        peer.send_to(&[0; 40], to).unwrap();
        assert!(reported(&mut poller));
        assert_eq!(udp.read_ready(&mut driver, Instant::now()), 1);
        udp.watch(&poller, false).unwrap();
        udp.watch(&poller, false).unwrap();
        peer.send_to(&[0; 40], to).unwrap();
        assert!(!reported(&mut poller), "out of the poller, and reported");
        udp.watch(&poller, true).unwrap();
        assert!(
            reported(&mut poller),
            "what came meanwhile was not reported"
        );
        assert_eq!(udp.read_ready(&mut driver, Instant::now()), 1);
    }
}
