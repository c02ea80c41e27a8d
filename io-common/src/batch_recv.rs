//! Receiving many datagrams with one system call.
//!
//! On Linux [`Receiver::recv`] takes up to [`RECV_BATCH`] waiting datagrams in one
//! `recvmmsg(2)`; elsewhere it takes one with `recv_from`. Each buffer holds
//! [`DATAGRAM_BUFFER`] bytes, one more than the largest valid datagram, so an oversize
//! datagram shows as oversize instead of being truncated into a valid one.

use crate::DATAGRAM_BUFFER;
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Most datagrams taken from the kernel at once.
pub const RECV_BATCH: usize = 32;

/// Buffers for batched receives, reused between calls.
#[derive(Debug)]
pub struct Receiver {
    bufs: Vec<u8>,
    /// How many datagrams the last receive took: datagram `i` is in buffer slot `i`.
    got: usize,
    /// Their sources and lengths, read from the headers the kernel wrote.
    #[cfg(target_os = "linux")]
    inner: linux::Headers,
    /// The one datagram's source and length, where they are taken one at a time.
    #[cfg(not(target_os = "linux"))]
    one: Option<(SocketAddr, usize)>,
}

impl Default for Receiver {
    fn default() -> Receiver {
        Receiver {
            bufs: vec![0; RECV_BATCH * DATAGRAM_BUFFER],
            got: 0,
            #[cfg(target_os = "linux")]
            inner: linux::Headers::default(),
            #[cfg(not(target_os = "linux"))]
            one: None,
        }
    }
}

impl Receiver {
    /// A receiver with its buffers allocated.
    pub fn new() -> Receiver {
        Receiver::default()
    }

    /// Takes what is waiting, up to [`RECV_BATCH`] datagrams, without blocking; returns
    /// how many. `WouldBlock` when nothing is waiting.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.receive(socket, false)
    }

    /// As [`Receiver::recv`], but on Linux, if nothing is waiting, waits for the first
    /// datagram up to the socket's receive timeout (`SO_RCVTIMEO`; a socket left in
    /// blocking mode, see [`crate::udp`]); `WouldBlock` if none came. Elsewhere the same
    /// as `recv`.
    pub fn recv_waiting(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.receive(socket, true)
    }

    fn receive(&mut self, socket: &UdpSocket, wait: bool) -> io::Result<usize> {
        self.got = 0;
        #[cfg(target_os = "linux")]
        {
            self.got = self.inner.recv(socket, wait, &mut self.bufs)?;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = wait;
        #[cfg(not(target_os = "linux"))]
        {
            let (len, from) = socket.recv_from(&mut self.bufs[..DATAGRAM_BUFFER])?;
            self.one = Some((from, len));
            self.got = 1;
        }
        Ok(self.got)
    }

    /// True when the last receive took fewer datagrams than it had room for: the queue
    /// was empty then, and asking again at once would most likely find nothing. (Always
    /// false where datagrams are taken one at a time.)
    pub fn last_batch_short(&self) -> bool {
        cfg!(target_os = "linux") && self.got < RECV_BATCH
    }

    /// Datagram `i` of the last [`Receiver::recv`] (`i` below what it returned): its
    /// source and bytes. `None` past those, and for a source neither IPv4 nor IPv6 (a
    /// UDP socket hears no other), which is skipped.
    pub fn datagram(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        if i >= self.got {
            return None;
        }
        #[cfg(target_os = "linux")]
        let (from, len) = self.inner.datagram(i)?;
        #[cfg(not(target_os = "linux"))]
        let (from, len) = self.one?;
        let start = i * DATAGRAM_BUFFER;
        Some((from, &self.bufs[start..start + len.min(DATAGRAM_BUFFER)]))
    }
}

/// `recvmmsg(2)` over `libc`, with its safety stated here (see `batch` for why not nix).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use super::RECV_BATCH;
    use crate::DATAGRAM_BUFFER;
    use nix::libc;
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    /// Address slots the kernel writes, and the iovecs and headers pointing at them and
    /// at the buffers, all allocated once and kept between calls.
    pub(super) struct Headers {
        addrs: Vec<libc::sockaddr_storage>,
        iovecs: Vec<libc::iovec>,
        headers: Vec<libc::mmsghdr>,
        /// The buffers the iovecs point at, and their length (null until the first call).
        pointed_at: (*mut u8, usize),
        /// Headers whose name length the kernel may have cut in the last call.
        written: usize,
    }

    // The raw pointers in `iovecs`, `headers` and `pointed_at` point into this struct's
    // own heap slots and into the buffers of the `Receiver` that holds it, and are used
    // only within `recv`, through `&mut self`: moving both to another thread moves
    // nothing they point at.
    unsafe impl Send for Headers {}

    impl std::fmt::Debug for Headers {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Headers(..)")
        }
    }

    impl Default for Headers {
        fn default() -> Headers {
            // SAFETY: `sockaddr_storage`, `iovec` and `mmsghdr` are plain C structs; all-zero
            // bytes are a valid value for each (null pointers, zero lengths).
            let (addr, iov, header) = unsafe { std::mem::zeroed() };
            Headers {
                addrs: vec![addr; RECV_BATCH],
                iovecs: vec![iov; RECV_BATCH],
                headers: vec![header; RECV_BATCH],
                pointed_at: (std::ptr::null_mut(), 0),
                written: 0,
            }
        }
    }

    impl Headers {
        /// Receives into `bufs` (RECV_BATCH chunks of DATAGRAM_BUFFER bytes, datagram `i`
        /// in chunk `i`); returns how many the kernel returned.
        pub(super) fn recv(
            &mut self,
            socket: &UdpSocket,
            wait: bool,
            bufs: &mut [u8],
        ) -> io::Result<usize> {
            // The kernel reads the iovecs and the headers' pointers and writes only the
            // lengths: the headers are pointed at their slots when `bufs` is new (the
            // first call); after that only the name lengths the last call wrote get their
            // room back (on a UDP socket every source's name has the socket family's
            // size, so this is one store per datagram received, for safety's sake).
            let namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            if self.pointed_at != (bufs.as_mut_ptr(), bufs.len()) {
                let slots = self
                    .headers
                    .iter_mut()
                    .zip(self.iovecs.iter_mut())
                    .zip(self.addrs.iter_mut())
                    .zip(bufs.chunks_exact_mut(DATAGRAM_BUFFER));
                for (((header, iov), addr), buf) in slots {
                    *iov = libc::iovec {
                        iov_base: buf.as_mut_ptr().cast(),
                        iov_len: buf.len(),
                    };
                    header.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                    header.msg_hdr.msg_namelen = namelen;
                    header.msg_hdr.msg_iov = iov;
                    header.msg_hdr.msg_iovlen = 1;
                }
                self.pointed_at = (bufs.as_mut_ptr(), bufs.len());
            } else {
                for header in &mut self.headers[..self.written] {
                    header.msg_hdr.msg_namelen = namelen;
                }
            }
            // Waiting, the first datagram is waited for and what else is there taken.
            let flags = if wait {
                libc::MSG_WAITFORONE
            } else {
                libc::MSG_DONTWAIT
            };
            // SAFETY: each header points at one iovec (a distinct DATAGRAM_BUFFER-sized
            // chunk of `bufs`, which is where it was when they were set) and one
            // `sockaddr_storage` slot with its true size; the iovecs and slots are on the
            // heap, allocated once, so they stay where the headers point when `self` moves;
            // they are exclusively borrowed and outlive the call. The kernel
            // writes at most `iov_len` bytes into each buffer, at most `msg_namelen` into
            // each address, and the lengths into the headers, which are ours.
            let got = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    self.headers.len() as libc::c_uint,
                    flags,
                    std::ptr::null_mut(),
                )
            };
            // On an error none was received, but do not rely on the kernel having left
            // every length alone.
            self.written = usize::try_from(got).unwrap_or(RECV_BATCH);
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(got as usize)
        }

        /// The source and length the kernel wrote for datagram `i` of the last call
        /// (`i` below what it returned); `None` for a source neither IPv4 nor IPv6.
        pub(super) fn datagram(&self, i: usize) -> Option<(SocketAddr, usize)> {
            let header = self.headers.get(i)?;
            Some((socket_addr(&self.addrs[i])?, header.msg_len as usize))
        }
    }

    /// The source address the kernel wrote, for the two families a UDP socket can have.
    fn socket_addr(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(addr.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a `sockaddr_in`, which it is
                // large and aligned enough for.
                let sin = unsafe {
                    &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for `sockaddr_in6`.
                let sin6 = unsafe {
                    &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_arrives_whole_with_sources_and_oversize_shows() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"one", to).unwrap();
        a.send_to(&[7u8; 5000], to).unwrap();
        a.send_to(b"", to).unwrap();
        let mut receiver = Receiver::new();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // the first call may find fewer than 3 waiting
        let got = receive_n(&mut receiver, &socket, 3);
        let from = a.local_addr().unwrap();
        assert_eq!(got[0], (from, b"one".to_vec()));
        assert_eq!(
            got[1].1.len(),
            DATAGRAM_BUFFER,
            "oversize is cut to 4097, not 4096"
        );
        assert_eq!(got[2], (from, Vec::new()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_batch_is_not_short_and_the_rest_is() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..RECV_BATCH + 3 {
            a.send_to(i.to_string().as_bytes(), to).unwrap();
        }
        let mut receiver = Receiver::new();
        let mut counts: Vec<(usize, bool)> = Vec::new();
        while counts.iter().map(|(n, _)| n).sum::<usize>() < RECV_BATCH + 3 {
            match receiver.recv(&socket) {
                Ok(n) => counts.push((n, receiver.last_batch_short())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        // loopback delivers before send_to returns: all are waiting at the first call
        assert_eq!(counts, [(RECV_BATCH, false), (3, true)]);
    }

    #[test]
    fn ipv6_sources_come_back_as_sent() {
        let Ok(socket) = UdpSocket::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let sender = UdpSocket::bind("[::1]:0").unwrap();
        sender.send_to(b"v6", socket.local_addr().unwrap()).unwrap();
        let mut receiver = Receiver::new();
        let n = loop {
            match receiver.recv(&socket) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(n, 1);
        assert_eq!(
            receiver.datagram(0),
            Some((sender.local_addr().unwrap(), &b"v6"[..]))
        );
        // nothing past what the receive returned, though the buffers hold more
        assert_eq!(receiver.datagram(1), None);
    }

    /// Receives until `n` datagrams came, over as many calls as it takes (none waiting
    /// is `WouldBlock`, and another try).
    fn receive_n(
        receiver: &mut Receiver,
        socket: &UdpSocket,
        n: usize,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut got = Vec::new();
        while got.len() < n {
            match receiver.recv(socket) {
                Ok(k) => got.extend((0..k).map(|i| {
                    let (from, data) = receiver.datagram(i).expect("an IP source");
                    (from, data.to_vec())
                })),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[test]
    fn headers_pointed_once_give_whole_sources_call_after_call() {
        // A dual-stack socket hears IPv4 sources as mapped IPv6 names: full batches from
        // each kind in turn, through the same headers, come back with their sources whole.
        let Ok(socket) = UdpSocket::bind("[::]:0") else {
            eprintln!("skipped: no IPv6 here");
            return;
        };
        let port = socket.local_addr().unwrap().port();
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let Ok(v6) = UdpSocket::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let mut receiver = Receiver::new();
        for round in 0..3u8 {
            for _ in 0..RECV_BATCH {
                v4.send_to(&[round], ("127.0.0.1", port)).unwrap();
            }
            let got = receive_n(&mut receiver, &socket, RECV_BATCH);
            let mapped = match v4.local_addr().unwrap() {
                SocketAddr::V4(a) => SocketAddr::new(a.ip().to_ipv6_mapped().into(), a.port()),
                other => other,
            };
            assert!(got
                .iter()
                .all(|(from, data)| *from == mapped && *data == [round]));
            for _ in 0..RECV_BATCH {
                v6.send_to(&[round, 6], ("::1", port)).unwrap();
            }
            let got = receive_n(&mut receiver, &socket, RECV_BATCH);
            let from = v6.local_addr().unwrap();
            assert!(
                got.iter()
                    .all(|(f, data)| *f == from && *data == [round, 6]),
                "round {round}: {:?}",
                got[0]
            );
        }
    }
}
