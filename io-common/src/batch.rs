//! Sending many datagrams with few system calls.
//!
//! A fan-out sends one payload to many members. On Linux [`Sender::send`] hands up to
//! [`SEND_BATCH`] of them to the kernel in one `sendmmsg(2)`; elsewhere it sends one
//! `send_to` at a time. Either way it returns how many datagrams went out; an error is
//! the error of the first datagram not sent, so the caller can attribute it.

use bytes::Bytes;
use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Most datagrams handed to the kernel at once.
pub const SEND_BATCH: usize = 64;

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
    /// for the first). Returns how many were sent.
    pub fn send(&mut self, socket: &UdpSocket, batch: &[(SocketAddr, Bytes)]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            self.inner
                .send(socket, &batch[..batch.len().min(SEND_BATCH)])
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (to, payload) = &batch[0];
            socket.send_to(payload, to).map(|_| 1)
        }
    }
}

/// `sendmmsg(2)` over `libc`. nix wraps it too, but its only way to read the count of
/// datagrams sent walks address slots that a send never writes; the call itself is small
/// enough to state its safety here.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod linux {
    use super::SEND_BATCH;
    use bytes::Bytes;
    use nix::libc;
    use nix::sys::socket::{SockaddrLike, SockaddrStorage};
    use std::io;
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    /// Buffers reused between calls (their contents are rewritten every time).
    #[derive(Debug, Default)]
    pub(super) struct Headers {
        addrs: Vec<SockaddrStorage>,
        iovecs: Vec<libc::iovec>,
    }

    // `libc::iovec` holds raw pointers; they are only written and used within `send`.
    unsafe impl Send for Headers {}

    impl Headers {
        pub(super) fn send(
            &mut self,
            socket: &UdpSocket,
            batch: &[(SocketAddr, Bytes)],
        ) -> io::Result<usize> {
            debug_assert!(batch.len() <= SEND_BATCH);
            self.addrs.clear();
            self.addrs
                .extend(batch.iter().map(|(to, _)| SockaddrStorage::from(*to)));
            self.iovecs.clear();
            self.iovecs
                .extend(batch.iter().map(|(_, payload)| libc::iovec {
                    iov_base: payload.as_ptr() as *mut libc::c_void,
                    iov_len: payload.len(),
                }));
            let mut headers: Vec<libc::mmsghdr> = self
                .addrs
                .iter()
                .zip(self.iovecs.iter_mut())
                .map(|(addr, iov)| {
                    // SAFETY: `msghdr` and `mmsghdr` are plain C structs for which all-zero
                    // bytes are a valid value (null pointers, zero lengths).
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_name = addr.as_ptr() as *mut libc::c_void;
                    header.msg_hdr.msg_namelen = addr.len();
                    header.msg_hdr.msg_iov = iov;
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            // SAFETY: every header points at an address in `self.addrs` and an iovec in
            // `self.iovecs`, whose buffers are the payloads in `batch`; all of them outlive
            // the call, and the kernel only reads them (it writes `msg_len`, which is ours).
            // `headers.len()` is the number of initialized headers.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    headers.as_mut_ptr(),
                    headers.len() as libc::c_uint,
                    0,
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
            done += sender.send(&socket, &batch[done..]).unwrap();
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
    fn more_than_one_batch_is_sent_in_pieces() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let batch: Vec<(SocketAddr, Bytes)> = (0..SEND_BATCH + 5)
            .map(|i| (to, Bytes::from(i.to_string())))
            .collect();
        let mut sender = Sender::new();
        let first = sender.send(&socket, &batch).unwrap();
        assert!((1..=SEND_BATCH).contains(&first));
    }
}
