//! `recvmmsg(2)` and `sendmmsg(2)` for IPv4 sockets with every header built once: the
//! tightest plain-socket batching, for the baselines and the junk flood (Linux only).
//!
//! [`RecvBatch`] and [`SendBatch`] own their buffers, addresses, iovecs and headers,
//! allocated once; each call only points the headers in use at their slots (two stores a
//! datagram) and makes the system call. A push writes one address and one (pointer,
//! length) pair, nothing else.

#![allow(unsafe_code)]

use libc::{c_uint, iovec, mmsghdr, sockaddr_in};
use std::io;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Size of a receive buffer: one byte more than ocm's largest datagram.
pub const BUFFER: usize = 4097;

/// A `sockaddr_in` as a value that compares cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addr {
    ip: u32,
    port: u16,
}

impl Addr {
    fn from_raw(raw: &sockaddr_in) -> Addr {
        Addr {
            ip: raw.sin_addr.s_addr,
            port: raw.sin_port,
        }
    }

    fn to_raw(self) -> sockaddr_in {
        // SAFETY: `sockaddr_in` is a plain C struct; all-zero bytes are a valid value.
        let mut raw: sockaddr_in = unsafe { std::mem::zeroed() };
        raw.sin_family = libc::AF_INET as libc::sa_family_t;
        raw.sin_addr.s_addr = self.ip;
        raw.sin_port = self.port;
        raw
    }
}

impl From<SocketAddrV4> for Addr {
    fn from(addr: SocketAddrV4) -> Addr {
        Addr {
            ip: u32::from(*addr.ip()).to_be(),
            port: addr.port().to_be(),
        }
    }
}

/// Buffers for up to `capacity` datagrams per `recvmmsg`.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<sockaddr_in>,
    iovecs: Vec<iovec>,
    headers: Vec<mmsghdr>,
}

impl RecvBatch {
    /// Buffers for `capacity` datagrams.
    pub fn new(capacity: usize) -> RecvBatch {
        // SAFETY: plain C structs; all-zero is a valid value (null pointers, zero lengths).
        let (addr, iov, header) = unsafe { std::mem::zeroed() };
        RecvBatch {
            bufs: vec![0u8; capacity * BUFFER],
            addrs: vec![addr; capacity],
            iovecs: vec![iov; capacity],
            headers: vec![header; capacity],
        }
    }

    /// Waits for at least one datagram (`MSG_WAITFORONE`) and takes what is waiting, up to
    /// the capacity. Returns how many.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.recv_with(socket, libc::MSG_WAITFORONE)
    }

    /// Takes what is waiting, up to the capacity, without waiting (`MSG_DONTWAIT`: a
    /// blocking socket stays blocking for its sends); `WouldBlock` if nothing is.
    pub fn try_recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.recv_with(socket, libc::MSG_WAITFORONE | libc::MSG_DONTWAIT)
    }

    fn recv_with(&mut self, socket: &UdpSocket, flags: libc::c_int) -> io::Result<usize> {
        let slots = self
            .headers
            .iter_mut()
            .zip(self.iovecs.iter_mut())
            .zip(self.addrs.iter_mut())
            .zip(self.bufs.chunks_exact_mut(BUFFER));
        for (((header, iov), addr), buf) in slots {
            *iov = iovec {
                iov_base: buf.as_mut_ptr().cast(),
                iov_len: BUFFER,
            };
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = (addr as *mut sockaddr_in).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<sockaddr_in>() as _;
        }
        // SAFETY: every header points at its own address slot (with its true size) and
        // its own iovec, which points at a distinct BUFFER-sized chunk of `bufs`; all are
        // owned by `self` and borrowed exclusively for the call. The kernel writes at most
        // those sizes, and the lengths into the headers.
        let got = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                self.headers.len() as c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(got as usize)
    }

    /// Datagram `i` of the last receive: its source and bytes.
    pub fn datagram(&self, i: usize) -> (Addr, &[u8]) {
        let len = self.headers[i].msg_len as usize;
        let start = i * BUFFER;
        (
            Addr::from_raw(&self.addrs[i]),
            &self.bufs[start..start + len],
        )
    }
}

/// Up to `capacity` datagrams queued for one `sendmmsg`.
pub struct SendBatch {
    addrs: Vec<sockaddr_in>,
    iovecs: Vec<iovec>,
    headers: Vec<mmsghdr>,
    len: usize,
}

impl SendBatch {
    /// Room for `capacity` datagrams (at most `UIO_MAXIOV`, 1024).
    pub fn new(capacity: usize) -> SendBatch {
        // SAFETY: plain C structs; all-zero is a valid value (null pointers, zero lengths).
        let (addr, iov, header) = unsafe { std::mem::zeroed() };
        SendBatch {
            addrs: vec![addr; capacity],
            iovecs: vec![iov; capacity],
            headers: vec![header; capacity],
            len: 0,
        }
    }

    /// Sends every `(destination, payload)` of `datagrams`, up to the capacity per
    /// `sendmmsg`. A datagram whose send fails (an ICMP error reported late, say) is
    /// skipped: loss is counted by whoever should have received it.
    pub fn send_all<'a>(
        &mut self,
        socket: &UdpSocket,
        datagrams: impl IntoIterator<Item = (Addr, &'a [u8])>,
    ) {
        for (to, payload) in datagrams {
            if self.len == self.headers.len() {
                self.flush(socket);
            }
            self.addrs[self.len] = to.to_raw();
            self.iovecs[self.len] = iovec {
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
            self.len += 1;
        }
        self.flush(socket);
    }

    /// Sends what is queued. Only called by `send_all`, while every payload pointer
    /// queued borrows a slice of its iterator, alive for the whole call.
    fn flush(&mut self, socket: &UdpSocket) {
        let slots = self.headers[..self.len]
            .iter_mut()
            .zip(self.iovecs.iter_mut())
            .zip(self.addrs.iter_mut());
        for ((header, iov), addr) in slots {
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = (addr as *mut sockaddr_in).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<sockaddr_in>() as _;
        }
        let mut done = 0;
        while done < self.len {
            // SAFETY: headers `done..len` point at their own address and iovec slots (set
            // just above, borrowed for the call); each iovec points at a payload that
            // `send_all`'s caller lends for the whole of `send_all`. The kernel only reads
            // them, and writes `msg_len`, which is ours.
            let sent = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.headers[done..].as_mut_ptr(),
                    (self.len - done) as c_uint,
                    0,
                )
            };
            done += if sent > 0 { sent as usize } else { 1 };
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn v4(socket: &UdpSocket) -> Addr {
        match socket.local_addr().unwrap() {
            SocketAddr::V4(addr) => Addr::from(addr),
            SocketAddr::V6(_) => unreachable!("bound to 127.0.0.1"),
        }
    }

    fn receive(socket: &UdpSocket, batch: &mut RecvBatch, count: usize) -> Vec<(Addr, Vec<u8>)> {
        let mut got = Vec::new();
        while got.len() < count {
            let n = batch.recv(socket).unwrap();
            got.extend((0..n).map(|i| {
                let (from, data) = batch.datagram(i);
                (from, data.to_vec())
            }));
        }
        got
    }

    #[test]
    fn what_one_side_sends_the_other_receives_in_order_with_its_source() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (one, two) = (b"one".to_vec(), vec![7u8; 3000]);
        let to = v4(&b);
        SendBatch::new(4).send_all(&a, [(to, &one[..]), (to, &two[..]), (to, &b""[..])]);
        let got = receive(&b, &mut RecvBatch::new(8), 3);
        assert_eq!(got, [(v4(&a), one), (v4(&a), two), (v4(&a), Vec::new())]);
    }

    #[test]
    fn more_than_the_capacity_goes_out_in_several_calls_and_small_batches_receive_it() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payloads: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 5]).collect();
        let to = v4(&b);
        SendBatch::new(3).send_all(&a, payloads.iter().map(|p| (to, &p[..])));
        let got: Vec<Vec<u8>> = receive(&b, &mut RecvBatch::new(4), 10)
            .into_iter()
            .map(|(_, data)| data)
            .collect();
        assert_eq!(got, payloads);
    }
}
