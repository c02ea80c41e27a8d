//! Sending many datagrams with few system calls.
//!
//! A fan-out sends one payload to many members. On Linux [`Sender::send`] hands up to
//! [`SEND_BATCH`] of them to the kernel in one `sendmmsg(2)`; elsewhere it sends one
//! `send_to` at a time. Either way it returns how many datagrams went out; an error is
//! the error of the first datagram not sent, so the caller can attribute it.

use bytes::Bytes;
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Most datagrams handed to the kernel at once: the kernel's `UIO_MAXIOV`, so that a
/// 64-member fan-out and more go out in one call (at 64 a call, a 64-member room made
/// one `sendmmsg` a message: 3 % of the CPU per delivery, measured against 1024).
pub const SEND_BATCH: usize = 1024;

/// Reusable state for batched sends.
#[derive(Debug, Default)]
pub struct Sender {
    #[cfg(target_os = "linux")]
    inner: linux::Headers,
}

impl Sender {
    /// A sender with its buffers allocated.
    pub fn new() -> Sender {
        Sender::default()
    }

    /// Sends the first datagrams of `batch` (at least one, unless an error comes back
    /// for the first) from `socket`, bound to `local`: each destination in the form that
    /// socket sends to ([`crate::addr::to_socket`]). Returns how many were sent.
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        batch: &[(SocketAddr, Bytes)],
        local: SocketAddr,
    ) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            self.inner
                .send(socket, &batch[..batch.len().min(SEND_BATCH)], local)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (to, payload) = &batch[0];
            socket
                .send_to(payload, crate::addr::to_socket(*to, local))
                .map(|_| 1)
        }
    }
}

/// `sendmmsg(2)` over `libc`. nix wraps it too, but its only way to read the count of
/// datagrams sent walks address slots that a send never writes; the call itself is small
/// enough to state its safety here. Addresses, iovecs and headers are allocated once; a
/// send writes each datagram's address (16 or 28 bytes, not a 128-byte
/// `sockaddr_storage`) and points its header at it.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use super::SEND_BATCH;
    use bytes::Bytes;
    use nix::libc;
    use std::io;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    /// A socket address in the C layout the kernel reads, for either family.
    #[derive(Clone, Copy)]
    #[repr(C)]
    union RawAddr {
        v4: libc::sockaddr_in,
        v6: libc::sockaddr_in6,
    }

    /// `addr` in C layout, with its length.
    fn raw(addr: &SocketAddr) -> (RawAddr, libc::socklen_t) {
        match addr {
            SocketAddr::V4(a) => (
                RawAddr {
                    v4: libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: a.port().to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(*a.ip()).to_be(),
                        },
                        sin_zero: [0; 8],
                    },
                },
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            SocketAddr::V6(a) => (
                RawAddr {
                    v6: libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: a.port().to_be(),
                        sin6_flowinfo: a.flowinfo(),
                        sin6_addr: libc::in6_addr {
                            s6_addr: a.ip().octets(),
                        },
                        sin6_scope_id: a.scope_id(),
                    },
                },
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }

    /// Buffers reused between calls (their contents are rewritten every time).
    pub(super) struct Headers {
        addrs: Vec<RawAddr>,
        iovecs: Vec<libc::iovec>,
        headers: Vec<libc::mmsghdr>,
    }

    impl Default for Headers {
        fn default() -> Headers {
            // SAFETY: plain C structs (and a union of two); all-zero bytes are a valid
            // value for each (null pointers, zero lengths).
            let (addr, iov, header) = unsafe { std::mem::zeroed() };
            Headers {
                addrs: vec![addr; SEND_BATCH],
                iovecs: vec![iov; SEND_BATCH],
                headers: vec![header; SEND_BATCH],
            }
        }
    }

    impl std::fmt::Debug for Headers {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Headers(..)")
        }
    }

    // `iovecs` and `headers` hold raw pointers; they are only written and used within `send`.
    unsafe impl Send for Headers {}

    impl Headers {
        pub(super) fn send(
            &mut self,
            socket: &UdpSocket,
            batch: &[(SocketAddr, Bytes)],
            local: SocketAddr,
        ) -> io::Result<usize> {
            debug_assert!(batch.len() <= SEND_BATCH);
            let slots = self
                .headers
                .iter_mut()
                .zip(self.iovecs.iter_mut())
                .zip(self.addrs.iter_mut())
                .zip(batch);
            for (((header, iov), addr), (to, payload)) in slots {
                let len;
                (*addr, len) = raw(&crate::addr::to_socket(*to, local));
                *iov = libc::iovec {
                    iov_base: payload.as_ptr() as *mut libc::c_void,
                    iov_len: payload.len(),
                };
                header.msg_hdr.msg_name = (addr as *mut RawAddr).cast();
                header.msg_hdr.msg_namelen = len;
                header.msg_hdr.msg_iov = iov;
                header.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the first `batch.len()` headers point at an address in `self.addrs`
            // (written above, with its true length) and an iovec in `self.iovecs`, whose
            // buffers are the payloads in `batch`; all of them outlive the call, and the
            // kernel only reads them (it writes `msg_len`, which is ours).
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers.as_mut_ptr(),
                    batch.len() as libc::c_uint,
                    // never blocks, whatever the socket's mode (see `crate::udp`)
                    libc::MSG_DONTWAIT,
                )
            };
            if sent < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(sent as usize)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reaches_every_destination_in_order() {
        let receivers: Vec<UdpSocket> = (0..3)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        for r in &receivers {
            r.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
        }
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = Bytes::from_static(b"fan-out");
        let mut batch: Vec<(SocketAddr, Bytes)> = Vec::new();
        for (i, r) in receivers.iter().enumerate() {
            batch.push((r.local_addr().unwrap(), payload.clone()));
            batch.push((r.local_addr().unwrap(), Bytes::from(format!("second {i}"))));
        }
        let mut sender = Sender::new();
        let mut done = 0;
        while done < batch.len() {
            done += sender
                .send(&socket, &batch[done..], socket.local_addr().unwrap())
                .unwrap();
        }
        for (i, r) in receivers.iter().enumerate() {
            let mut buf = [0u8; 64];
            let n = r.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"fan-out");
            let n = r.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("second {i}").as_bytes());
        }
    }

    #[test]
    fn ipv6_destinations_are_reached_too() {
        let Ok(receiver) = UdpSocket::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let socket = UdpSocket::bind("[::1]:0").unwrap();
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        let batch = [
            (receiver.local_addr().unwrap(), Bytes::from_static(b"six")),
            (receiver.local_addr().unwrap(), Bytes::from_static(b"again")),
        ];
        let mut sender = Sender::new();
        let mut done = 0;
        while done < batch.len() {
            done += sender
                .send(&socket, &batch[done..], socket.local_addr().unwrap())
                .unwrap();
        }
        let mut buf = [0u8; 16];
        let (n, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"six"[..], socket.local_addr().unwrap())
        );
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"again");
        // and an IPv4 one from an IPv4 socket, in the same sender
        let to_v4 = [(v4.local_addr().unwrap(), Bytes::from_static(b"four"))];
        let from_v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(
            sender
                .send(&from_v4, &to_v4, from_v4.local_addr().unwrap())
                .unwrap(),
            1
        );
        v4.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let n = v4.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"four");
    }

    #[test]
    fn more_than_one_batch_is_sent_in_pieces() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let batch: Vec<(SocketAddr, Bytes)> = (0..SEND_BATCH + 5)
            .map(|i| (to, Bytes::from(i.to_string())))
            .collect();
        let mut sender = Sender::new();
        let first = sender
            .send(&socket, &batch, socket.local_addr().unwrap())
            .unwrap();
        assert!((1..=SEND_BATCH).contains(&first));
    }
}
