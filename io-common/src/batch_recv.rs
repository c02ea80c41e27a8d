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
    /// Source, buffer slot and length of each datagram of the last receive.
    received: Vec<(SocketAddr, usize, usize)>,
    #[cfg(target_os = "linux")]
    inner: linux::Headers,
}

impl Default for Receiver {
    fn default() -> Receiver {
        Receiver {
            bufs: vec![0; RECV_BATCH * DATAGRAM_BUFFER],
            received: Vec::with_capacity(RECV_BATCH),
            #[cfg(target_os = "linux")]
            inner: linux::Headers::default(),
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
        self.received.clear();
        #[cfg(target_os = "linux")]
        {
            self.inner
                .recv(socket, &mut self.bufs, &mut self.received)?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (len, from) = socket.recv_from(&mut self.bufs[..DATAGRAM_BUFFER])?;
            self.received.push((from, 0, len));
        }
        Ok(self.received.len())
    }

    /// Datagram `i` of the last [`Receiver::recv`]: its source and bytes.
    pub fn datagram(&self, i: usize) -> (SocketAddr, &[u8]) {
        let (from, slot, len) = self.received[i];
        let start = slot * DATAGRAM_BUFFER;
        (from, &self.bufs[start..start + len])
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

    /// Address slots the kernel writes, kept between calls.
    pub(super) struct Headers {
        addrs: Vec<libc::sockaddr_storage>,
    }

    impl std::fmt::Debug for Headers {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Headers(..)")
        }
    }

    impl Default for Headers {
        fn default() -> Headers {
            // SAFETY: `sockaddr_storage` is a plain C struct; all-zero bytes are valid.
            let zero: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            Headers {
                addrs: vec![zero; RECV_BATCH],
            }
        }
    }

    impl Headers {
        pub(super) fn recv(
            &mut self,
            socket: &UdpSocket,
            bufs: &mut [u8],
            received: &mut Vec<(SocketAddr, usize, usize)>,
        ) -> io::Result<()> {
            let mut iovecs: Vec<libc::iovec> = bufs
                .chunks_exact_mut(DATAGRAM_BUFFER)
                .map(|buf| libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                })
                .collect();
            let mut headers: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .zip(self.addrs.iter_mut())
                .map(|(iov, addr)| {
                    // SAFETY: `msghdr`/`mmsghdr` are plain C structs; all-zero is valid.
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                    header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
                    header.msg_hdr.msg_iov = iov;
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            // SAFETY: each header points at one iovec (a distinct DATAGRAM_BUFFER-sized
            // chunk of `bufs`) and one `sockaddr_storage` slot with its true size; all of
            // them are exclusively borrowed and outlive the call. The kernel writes at most
            // `iov_len` bytes into each buffer, at most `msg_namelen` into each address,
            // and the lengths into the headers, which are ours.
            let got = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    headers.len() as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if got < 0 {
                return Err(io::Error::last_os_error());
            }
            let filled = headers.iter().zip(&self.addrs).take(got as usize);
            for (slot, (header, addr)) in filled.enumerate() {
                // A UDP socket only hears from IPv4 and IPv6 sources; anything else is skipped.
                if let Some(from) = socket_addr(addr) {
                    received.push((from, slot, header.msg_len as usize));
                }
            }
            Ok(())
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
        let mut got = Vec::new();
        while got.len() < 3 {
            // the first call may find fewer than 3 waiting; none waiting is WouldBlock
            match receiver.recv(&socket) {
                Ok(n) => got.extend((0..n).map(|i| {
                    let (from, data) = receiver.datagram(i);
                    (from, data.to_vec())
                })),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        let from = a.local_addr().unwrap();
        assert_eq!(got[0], (from, b"one".to_vec()));
        assert_eq!(
            got[1].1.len(),
            DATAGRAM_BUFFER,
            "oversize is cut to 4097, not 4096"
        );
        assert_eq!(got[2], (from, Vec::new()));
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
            (sender.local_addr().unwrap(), &b"v6"[..])
        );
    }
}
