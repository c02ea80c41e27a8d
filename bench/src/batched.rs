//! The batched raw relay, the plain-socket limit for one thread: what a careful engineer
//! writes with no protocol at all. It takes up to [`RECV_BATCH`] datagrams per
//! `recvmmsg(2)`; the first datagram from an address registers it; every datagram goes
//! to every other registered address, the whole fan-out of a batch handed to the kernel
//! in `sendmmsg(2)` calls of up to [`SEND_BATCH`]. Headers and buffers are allocated once.
//!
//! [`serve`] blocks in `recvmmsg`, which only a thread that serves nothing else can do.
//! [`serve_polled`] is the same relay as a thread that serves more than one socket must
//! be written: the socket registered once with `epoll(7)`, read without waiting, one
//! `epoll_wait` whenever a read comes back short (as `ocm server`'s owner loop does,
//! which serves UDP, TCP and timers on one thread). The difference between the two is
//! the cost of waiting in epoll.
//!
//! [`drain`] and [`drain_polled`] are the floor for a datagram that is dropped: the same
//! receive loops doing nothing with what they read.
//!
//! All run in a process of their own (`ocm-load --serve batched|drain|...`), like
//! `ocm server`, so their CPU time can be read from `/proc` the same way.

#![allow(unsafe_code)]

use crate::mmsg::{Addr, RecvBatch, SendBatch};
use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Most datagrams per `recvmmsg`, as in ocm.
pub const RECV_BATCH: usize = 32;

/// Most datagrams per `sendmmsg` (the kernel's `UIO_MAXIOV`).
pub const SEND_BATCH: usize = 1024;

/// Relays forever on `socket` (bound to an IPv4 address), blocking in `recvmmsg`,
/// doing `work` for each datagram.
pub fn serve(socket: UdpSocket, mut work: AnchorWork) -> io::Result<()> {
    let mut relay = Relay::new();
    loop {
        let n = receive(&socket, &mut relay.inbound)?;
        work.per_datagram(n);
        relay.fan_out(&socket, n);
    }
}

/// Relays forever on `socket`, waiting in `epoll_wait` whenever a read comes back short,
/// doing `work` for each datagram.
pub fn serve_polled(socket: UdpSocket, mut work: AnchorWork) -> io::Result<()> {
    let mut relay = Relay::new();
    let epoll = Epoll::new(&socket)?;
    loop {
        epoll.wait()?;
        loop {
            let n = match try_receive(&socket, &mut relay.inbound) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                other => other?,
            };
            work.per_datagram(n);
            relay.fan_out(&socket, n);
            if n < RECV_BATCH {
                break;
            }
        }
    }
}

/// Reads and discards forever on `socket`, blocking in `recvmmsg`.
pub fn drain(socket: UdpSocket) -> io::Result<()> {
    let mut inbound = RecvBatch::new(RECV_BATCH);
    loop {
        receive(&socket, &mut inbound)?;
    }
}

/// Reads and discards forever on `socket`, waiting in `epoll_wait` whenever a read comes
/// back short.
pub fn drain_polled(socket: UdpSocket) -> io::Result<()> {
    let mut inbound = RecvBatch::new(RECV_BATCH);
    let epoll = Epoll::new(&socket)?;
    loop {
        epoll.wait()?;
        loop {
            match try_receive(&socket, &mut inbound) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Ok(n) if n < RECV_BATCH => break,
                other => other?,
            };
        }
    }
}

/// User-space work a batched relay does for each datagram it reads, to tell what such
/// work costs a relay (none by default: the plain-socket limit). `ocm-load
/// --anchor-work` and `--anchor-footprint`.
#[derive(Debug, Default)]
pub struct AnchorWork {
    /// Rounds of [`busy_work`]: time in registers, touching no memory.
    pub rounds: u64,
    /// A buffer every cache line of which is read and written: a footprint in the
    /// core's data caches (the kernel's UDP path shares them), at little time.
    pub footprint: Vec<u8>,
}

/// The size of a cache line on the machines this runs on.
const CACHE_LINE: usize = 64;

impl AnchorWork {
    /// `rounds` of [`busy_work`] and a footprint of `kib` KiB per datagram.
    pub fn new(rounds: u64, kib: usize) -> AnchorWork {
        AnchorWork {
            rounds,
            footprint: vec![0; kib * 1024],
        }
    }

    /// The work for `n` datagrams.
    pub fn per_datagram(&mut self, n: usize) {
        busy_work(self.rounds * n as u64);
        if self.footprint.is_empty() {
            return;
        }
        for _ in 0..n {
            touch(&mut self.footprint);
        }
    }
}

/// Reads and writes one byte of each cache line of `buffer`.
fn touch(buffer: &mut [u8]) {
    for line in buffer.chunks_mut(CACHE_LINE) {
        line[0] = std::hint::black_box(line[0]).wrapping_add(1);
    }
}

/// `rounds` dependent multiplications (about a nanosecond each), in registers only: user
/// time that touches no memory, for `ocm-load --anchor-work`.
pub fn busy_work(rounds: u64) {
    let mut x = 1u64;
    for _ in 0..rounds {
        x = std::hint::black_box(x).wrapping_mul(3);
    }
    std::hint::black_box(x);
}

/// The relay's state: its buffers and the registered members.
struct Relay {
    inbound: RecvBatch,
    outbound: SendBatch,
    members: Vec<Addr>,
    /// For each datagram of a batch, how many members were registered when it came.
    registered: Vec<usize>,
}

impl Relay {
    fn new() -> Relay {
        Relay {
            inbound: RecvBatch::new(RECV_BATCH),
            outbound: SendBatch::new(SEND_BATCH),
            members: Vec::new(),
            registered: Vec::with_capacity(RECV_BATCH),
        }
    }

    /// Registers the senders of the `n` datagrams just received and sends each to every
    /// other member registered by then.
    fn fan_out(&mut self, socket: &UdpSocket, n: usize) {
        self.registered.clear();
        for i in 0..n {
            let (from, _) = self.inbound.datagram(i);
            if !self.members.contains(&from) {
                self.members.push(from);
            }
            self.registered.push(self.members.len());
        }
        let (inbound, members, registered) = (&self.inbound, &self.members, &self.registered);
        let fan_out = (0..n).flat_map(|i| {
            let (from, data) = inbound.datagram(i);
            members[..registered[i]]
                .iter()
                .filter(move |to| **to != from)
                .map(move |to| (*to, data))
        });
        self.outbound.send_all(socket, fan_out);
    }
}

/// One socket registered, level-triggered, with an epoll instance of its own.
struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new(socket: &UdpSocket) -> io::Result<Epoll> {
        // SAFETY: plain system calls; the new descriptor is owned at once.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned to us and is not owned by anything else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; `event` is a valid struct for the call.
        let done = unsafe {
            libc::epoll_ctl(
                fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                socket.as_raw_fd(),
                &mut event,
            )
        };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll { fd })
    }

    /// Waits until the socket is readable.
    fn wait(&self) -> io::Result<()> {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        loop {
            // SAFETY: room for one event, which the kernel may write.
            let got = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), &mut event, 1, -1) };
            if got >= 0 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

fn receive(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    loop {
        match batch.recv(socket) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn try_receive(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<usize> {
    loop {
        match batch.try_recv(socket) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_datagram_reaches_every_other_registered_address() {
        relays_to_every_other_member(|socket| serve(socket, AnchorWork::default()));
    }

    #[test]
    fn a_working_relay_relays_the_same() {
        relays_to_every_other_member(|socket| serve(socket, AnchorWork::new(10, 4)));
    }

    #[test]
    fn the_footprint_touches_every_cache_line_once_a_datagram() {
        let mut work = AnchorWork::new(0, 2);
        work.per_datagram(3);
        for (i, byte) in work.footprint.iter().enumerate() {
            let expected = if i % CACHE_LINE == 0 { 3 } else { 0 };
            assert_eq!(*byte, expected, "byte {i}");
        }
    }

    #[test]
    fn the_relay_in_epoll_relays_the_same() {
        relays_to_every_other_member(|socket| serve_polled(socket, AnchorWork::default()));
    }

    fn relays_to_every_other_member(relay: fn(UdpSocket) -> io::Result<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (serve, relay) = (relay, socket.local_addr().unwrap());
        std::thread::spawn(move || serve(socket));
        let clients: Vec<UdpSocket> = (0..3)
            .map(|_| {
                let c = UdpSocket::bind("127.0.0.1:0").unwrap();
                c.connect(relay).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                c
            })
            .collect();
        let mut buf = [0u8; 64];
        // each registers in turn; the earlier ones hear the newcomer's first datagram
        for (i, c) in clients.iter().enumerate() {
            c.send(format!("hello {i}").as_bytes()).unwrap();
            for earlier in &clients[..i] {
                let n = earlier.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], format!("hello {i}").as_bytes());
            }
        }
        clients[1].send(b"to all").unwrap();
        for (i, c) in clients.iter().enumerate() {
            if i != 1 {
                let n = c.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], b"to all");
            }
        }
        clients[1]
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert!(clients[1].recv(&mut buf).is_err(), "not back to the sender");
    }
}
