//! [`Poller`]: the owner loop's own readiness queue, so that a wait costs one system call.
//!
//! The owner loop owns its thread. It used to sleep in `async_io`'s reactor, where every
//! wait is about six system calls (arming a timerfd and re-registering it, the
//! `epoll_wait`, reading and re-registering the reactor's notifier, re-arming the
//! one-shot UDP registration): more than the `recvmmsg` and `sendmmsg` of the batch it
//! waited for. Here the sockets are registered once (edge-triggered, but for the
//! listener), the deadline is the wait's own timeout, and a wait is one `epoll_wait`.
//!
//! Edge-triggered means a source is reported when something new arrives, not while it
//! stays ready: the owner reads a reported socket until it would block (or keeps it on
//! its own list of sockets to look at again), and is then told again only of what comes
//! next. Registering a socket that is already ready reports it at the next wait, so a
//! socket registered only once a read would block loses nothing. The listener is the one
//! exception, level-triggered ([`Poller::add_level`]): reported at every wait while a
//! connection is queued, so the owner accepts what it takes in a turn (one connection
//! unless they queue up) and never calls an `accept` that would block only to learn that
//! the queue is empty (one system call in eight of a handshake); it is taken off the
//! poller while accepting is paused.
//!
//! What is not a socket (the shutdown signal, an inspector's question, cluster mode's
//! channels) wakes the owner through [`Poller::waker`]: a `Waker` that writes to an
//! `eventfd` the wait also watches, at most once until the owner has woken.
//!
//! That is the Linux backend, over `rustix`'s safe `epoll`. Elsewhere the same interface
//! is the `polling` crate in its edge- and level-triggered modes (kqueue on the BSDs and macOS),
//! whose waits cost what its backend costs; on Linux that backend is compiled for the
//! tests only, which hold both to the same behaviour.

use std::io;
use std::os::fd::AsFd;
use std::task::Waker;
use std::time::{Duration, Instant};

/// The listener's key (connection ids count up from 0). The keys are at the top of
/// `usize`, not `u64`, so that the portable backend's `usize` keys hold them on 32-bit
/// targets too (`usize::MAX` itself is `polling`'s own).
pub const LISTENER: u64 = usize::MAX as u64 - 1;
/// The UDP socket's key.
pub const UDP: u64 = usize::MAX as u64 - 2;

/// Most events taken from the kernel in one wait (more stay for the next).
const EVENTS: usize = 256;

/// Longest single wait: a deadline further off is waited for in steps (the kernel's
/// millisecond timeout is an `i32`).
const LONGEST_WAIT: Duration = Duration::from_secs(3600);

#[cfg(target_os = "linux")]
type Backend = epoll::Backend;
#[cfg(not(target_os = "linux"))]
type Backend = portable::Backend;

/// The owner loop's readiness queue and the waker that interrupts its waits.
#[derive(Debug)]
pub struct Poller {
    backend: Backend,
}

impl Poller {
    /// A new poller, with its waker.
    pub fn new() -> io::Result<Poller> {
        Ok(Poller {
            backend: Backend::new()?,
        })
    }

    /// Watches `source` under `key`, edge-triggered: reported when something arrives
    /// (data, a connection, the peer's close, an error), and when it gains room to write
    /// if `writable`. A source ready already is reported at the next wait. Before the
    /// source is closed, [`Poller::forget`] it (or drop the poller).
    pub fn add(&self, source: impl AsFd, key: u64, writable: bool) -> io::Result<()> {
        self.backend.add(source, key, writable)
    }

    /// Watches `source` under `key`, level-triggered and for reading only: reported at
    /// every wait while it has something to read (the listener: while a connection waits
    /// to be accepted, so that accepting one per report needs no `accept` that would
    /// block to learn the queue is empty). [`Poller::remove`] it while it is not to be
    /// read, or every wait ends at once.
    pub fn add_level(&self, source: impl AsFd, key: u64) -> io::Result<()> {
        self.backend.add_level(source, key)
    }

    /// Stops watching `source` (added before), which stays open; it can be added again.
    pub fn remove(&self, source: impl AsFd) -> io::Result<()> {
        self.backend.remove(source)
    }

    /// Changes whether `source` (added under `key`) is reported when it gains room to
    /// write. A source ready already is reported at the next wait.
    pub fn modify(&self, source: impl AsFd, key: u64, writable: bool) -> io::Result<()> {
        self.backend.modify(source, key, writable)
    }

    /// Stops watching `source`, which is about to be closed (on Linux closing it is
    /// enough, and this costs nothing).
    pub fn forget(&self, source: impl AsFd) {
        self.backend.forget(source)
    }

    /// Wakes [`Poller::wait`] from any thread (and, given to a future, when it is ready).
    pub fn waker(&self) -> Waker {
        self.backend.waker()
    }

    /// Waits until a source is reported, the waker is woken, or `deadline` (at once if it
    /// has passed; `None`: no deadline). Calls `ready` with the key of each source
    /// reported. An interrupted wait returns as if woken.
    pub fn wait(&mut self, deadline: Option<Instant>, ready: impl FnMut(u64)) -> io::Result<()> {
        let timeout = deadline.map(|at| {
            at.saturating_duration_since(Instant::now())
                .min(LONGEST_WAIT)
        });
        match self.backend.wait(timeout, ready) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(()),
            other => other,
        }
    }
}

/// Linux: `epoll` (edge-triggered but for [`Poller::add_level`]), and an `eventfd` for
/// the waker.
#[cfg(target_os = "linux")]
mod epoll {
    use super::EVENTS;
    use rustix::event::{epoll, eventfd, EventfdFlags, Timespec};
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use std::time::Duration;

    /// The waker's key (never reported).
    const NOTIFY: u64 = usize::MAX as u64 - 3;

    pub struct Backend {
        epoll: OwnedFd,
        notify: Arc<Notify>,
        events: Vec<epoll::Event>,
    }

    impl std::fmt::Debug for Backend {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("epoll")
                .field("fd", &self.epoll)
                .field("notify", &self.notify)
                .finish_non_exhaustive()
        }
    }

    /// Wakes the owner from another thread: one write to the `eventfd`, until the owner
    /// has woken and read it.
    #[derive(Debug)]
    pub(super) struct Notify {
        fd: OwnedFd,
        pub(super) pending: AtomicBool,
    }

    impl Wake for Notify {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            if !self.pending.swap(true, Ordering::AcqRel) {
                // Fails only if the counter would overflow: it is read after every wake.
                let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
            }
        }
    }

    fn interest(writable: bool) -> epoll::EventFlags {
        let mut flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ET;
        if writable {
            flags |= epoll::EventFlags::OUT;
        }
        flags
    }

    impl Backend {
        pub fn new() -> io::Result<Backend> {
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            // Level-triggered: readable until the owner reads it.
            let data = epoll::EventData::new_u64(NOTIFY);
            epoll::add(&epoll, &fd, data, epoll::EventFlags::IN)?;
            let pending = AtomicBool::new(false);
            Ok(Backend {
                epoll,
                notify: Arc::new(Notify { fd, pending }),
                events: Vec::with_capacity(EVENTS),
            })
        }

        pub fn add(&self, source: impl AsFd, key: u64, writable: bool) -> io::Result<()> {
            let data = epoll::EventData::new_u64(key);
            Ok(epoll::add(&self.epoll, source, data, interest(writable))?)
        }

        pub fn add_level(&self, source: impl AsFd, key: u64) -> io::Result<()> {
            let data = epoll::EventData::new_u64(key);
            Ok(epoll::add(
                &self.epoll,
                source,
                data,
                epoll::EventFlags::IN,
            )?)
        }

        pub fn remove(&self, source: impl AsFd) -> io::Result<()> {
            Ok(epoll::delete(&self.epoll, source)?)
        }

        pub fn modify(&self, source: impl AsFd, key: u64, writable: bool) -> io::Result<()> {
            let data = epoll::EventData::new_u64(key);
            Ok(epoll::modify(
                &self.epoll,
                source,
                data,
                interest(writable),
            )?)
        }

        /// Closing a descriptor takes it off the interest list (none is duplicated).
        pub fn forget(&self, _source: impl AsFd) {}

        pub fn waker(&self) -> Waker {
            Waker::from(self.notify.clone())
        }

        #[cfg(test)]
        pub(super) fn notify(&self) -> &Notify {
            &self.notify
        }

        #[cfg(test)]
        pub(super) fn notify_counter(&self) -> io::Result<u64> {
            let mut count = [0; 8];
            rustix::io::read(&self.notify.fd, &mut count)?;
            Ok(u64::from_ne_bytes(count))
        }

        pub fn wait(
            &mut self,
            timeout: Option<Duration>,
            mut ready: impl FnMut(u64),
        ) -> io::Result<()> {
            let timeout = timeout.map(|wait| Timespec {
                tv_sec: wait.as_secs() as i64,
                tv_nsec: i64::from(wait.subsec_nanos()),
            });
            self.events.clear();
            let spare = rustix::buffer::spare_capacity(&mut self.events);
            epoll::wait(&self.epoll, spare, timeout.as_ref())?;
            for event in &self.events {
                let key = event.data.u64();
                if key == NOTIFY {
                    let mut count = [0; 8];
                    let _ = rustix::io::read(&self.notify.fd, &mut count);
                    // After the read: a wake from now on writes again.
                    self.notify.pending.store(false, Ordering::Release);
                } else {
                    ready(key);
                }
            }
            Ok(())
        }
    }
}

/// Elsewhere (and in Linux's tests): the `polling` crate, edge-triggered but for
/// [`Poller::add_level`].
#[cfg(any(not(target_os = "linux"), test))]
#[allow(unsafe_code)]
mod portable {
    use super::EVENTS;
    use polling::{Event, Events, PollMode};
    use std::io;
    use std::num::NonZeroUsize;
    use std::os::fd::{AsFd, AsRawFd};
    use std::sync::Arc;
    use std::task::{Wake, Waker};
    use std::time::Duration;

    #[derive(Debug)]
    pub struct Backend {
        poller: Arc<polling::Poller>,
        events: Events,
    }

    struct Notify(Arc<polling::Poller>);

    impl Wake for Notify {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            // polling coalesces notifications itself.
            let _ = self.0.notify();
        }
    }

    fn interest(key: u64, writable: bool) -> Event {
        let key = key as usize;
        match writable {
            true => Event::all(key),
            false => Event::readable(key),
        }
    }

    impl Backend {
        pub fn new() -> io::Result<Backend> {
            let events = NonZeroUsize::new(EVENTS).expect("not zero");
            Ok(Backend {
                poller: Arc::new(polling::Poller::new()?),
                events: Events::with_capacity(events),
            })
        }

        pub fn add(&self, source: impl AsFd, key: u64, writable: bool) -> io::Result<()> {
            let fd = source.as_fd().as_raw_fd();
            // SAFETY: the owner forgets a connection's socket before it closes it, and
            // declares the sockets it keeps to the end (the UDP socket, the listener)
            // before the poller, which is therefore dropped first on every way out.
            unsafe {
                self.poller
                    .add_with_mode(fd, interest(key, writable), PollMode::Edge)
            }
        }

        pub fn add_level(&self, source: impl AsFd, key: u64) -> io::Result<()> {
            let fd = source.as_fd().as_raw_fd();
            // SAFETY: as in `add`; the listener, the one source added this way, is
            // declared before the poller.
            unsafe {
                self.poller
                    .add_with_mode(fd, interest(key, false), PollMode::Level)
            }
        }

        pub fn remove(&self, source: impl AsFd) -> io::Result<()> {
            self.poller.delete(source)
        }

        pub fn modify(&self, source: impl AsFd, key: u64, writable: bool) -> io::Result<()> {
            self.poller
                .modify_with_mode(source, interest(key, writable), PollMode::Edge)
        }

        pub fn forget(&self, source: impl AsFd) {
            let _ = self.poller.delete(source);
        }

        pub fn waker(&self) -> Waker {
            Waker::from(Arc::new(Notify(self.poller.clone())))
        }

        pub fn wait(
            &mut self,
            timeout: Option<Duration>,
            mut ready: impl FnMut(u64),
        ) -> io::Result<()> {
            self.events.clear();
            self.poller.wait(&mut self.events, timeout)?;
            for event in self.events.iter() {
                ready(event.key as u64);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn keys<F: FnMut(Option<Duration>, &mut dyn FnMut(u64)) -> io::Result<()>>(
        wait: &mut F,
        timeout: Duration,
    ) -> Vec<u64> {
        let mut keys = Vec::new();
        wait(Some(timeout), &mut |key| keys.push(key)).unwrap();
        keys
    }

    /// Both backends: a socket is reported once per arrival, and a ready one when added.
    macro_rules! edge_triggered {
        ($name:ident, $backend:path) => {
            #[test]
            fn $name() {
                let mut backend = <$backend>::new().unwrap();
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.set_nonblocking(true).unwrap();
                let to = socket.local_addr().unwrap();
                let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
                // Ready before it is added: reported at the first wait.
                peer.send_to(b"one", to).unwrap();
                std::thread::sleep(Duration::from_millis(10));
                backend.add(&socket, 7, false).unwrap();
                let mut wait = |t, f: &mut dyn FnMut(u64)| backend.wait(t, f);
                let soon = Duration::from_millis(50);
                assert_eq!(keys(&mut wait, soon), [7]);
                // Not read, nothing new: not reported again.
                assert_eq!(keys(&mut wait, soon), Vec::<u64>::new());
                // Something new: reported, though the first is still unread.
                peer.send_to(b"two", to).unwrap();
                assert_eq!(keys(&mut wait, soon), [7]);
                // Asked for room to write, which it has: reported at once.
                backend.modify(&socket, 7, true).unwrap();
                let mut wait = |t, f: &mut dyn FnMut(u64)| backend.wait(t, f);
                assert_eq!(keys(&mut wait, soon), [7]);
                assert_eq!(keys(&mut wait, soon), Vec::<u64>::new());
                // A wake ends a wait with nothing reported; a far deadline is not waited for.
                let started = Instant::now();
                let waker = backend.waker();
                let thread = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    waker.wake_by_ref();
                    waker.wake_by_ref();
                });
                let mut wait = |t, f: &mut dyn FnMut(u64)| backend.wait(t, f);
                assert_eq!(keys(&mut wait, Duration::from_secs(30)), Vec::<u64>::new());
                assert!(started.elapsed() < Duration::from_secs(30));
                thread.join().unwrap();
                backend.forget(&socket);
            }
        };
    }

    /// Both backends: a level-triggered listener is reported at every wait while a
    /// connection is queued, not once it is accepted or while it is removed.
    macro_rules! level_triggered {
        ($name:ident, $backend:path) => {
            #[test]
            fn $name() {
                let mut backend = <$backend>::new().unwrap();
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.set_nonblocking(true).unwrap();
                backend.add_level(&listener, 5).unwrap();
                let soon = Duration::from_millis(50);
                let mut wait = |t, f: &mut dyn FnMut(u64)| backend.wait(t, f);
                assert_eq!(keys(&mut wait, Duration::ZERO), Vec::<u64>::new());
                let _client = std::net::TcpStream::connect(listener.local_addr().unwrap());
                // Queued and not accepted: reported at every wait, not only the first.
                assert_eq!(keys(&mut wait, soon), [5]);
                assert_eq!(keys(&mut wait, soon), [5]);
                // Removed: not reported, though still queued; added again: reported.
                backend.remove(&listener).unwrap();
                let mut wait = |t, f: &mut dyn FnMut(u64)| backend.wait(t, f);
                assert_eq!(keys(&mut wait, soon), Vec::<u64>::new());
                backend.add_level(&listener, 5).unwrap();
                let mut wait = |t, f: &mut dyn FnMut(u64)| backend.wait(t, f);
                assert_eq!(keys(&mut wait, soon), [5]);
                // Accepted: the queue is empty, nothing is reported.
                let _accepted = listener.accept().unwrap();
                assert_eq!(keys(&mut wait, soon), Vec::<u64>::new());
                backend.forget(&listener);
            }
        };
    }

    level_triggered!(
        epoll_reports_a_queued_connection_at_every_wait,
        epoll::Backend
    );
    level_triggered!(
        polling_reports_a_queued_connection_at_every_wait,
        portable::Backend
    );
    edge_triggered!(epoll_reports_each_arrival_and_wakes, epoll::Backend);
    edge_triggered!(polling_reports_each_arrival_and_wakes, portable::Backend);

    #[test]
    fn wakes_coalesce_into_one_eventfd_write_that_the_wait_reads() {
        let mut backend = epoll::Backend::new().unwrap();
        let waker = backend.waker();
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert!(backend
            .notify()
            .pending
            .load(std::sync::atomic::Ordering::Acquire));
        backend
            .wait(Some(Duration::ZERO), |_| panic!("nothing is registered"))
            .unwrap();
        // The wait read the one write; a wake from now on writes again.
        let empty = backend.notify_counter().unwrap_err();
        assert_eq!(empty.kind(), io::ErrorKind::WouldBlock);
        assert!(!backend
            .notify()
            .pending
            .load(std::sync::atomic::Ordering::Acquire));
        waker.wake();
        assert_eq!(backend.notify_counter().unwrap(), 1);
    }
}
