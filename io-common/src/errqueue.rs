//! ICMP errors for an unconnected UDP socket, through the socket's error queue.
//!
//! On Linux an unconnected UDP socket hears nothing of the "port unreachable" that a
//! closed client port answers with, unless `IP_RECVERR` (`IPV6_RECVERR`) is set. Then
//! each error is queued on the socket; `recvmsg(MSG_ERRQUEUE)` returns it with the
//! *original destination* as its address, which is the member to count a failed send
//! for. A pending error also makes the next `recv_from` or `send_to` on the socket fail
//! once (with `ECONNREFUSED` and the like), whatever its address: so a shell drains the
//! queue whenever one of those calls fails, and retries a send that failed that way.
//!
//! Elsewhere [`enable`] does nothing and [`drain`] finds nothing; only the errors
//! `send_to` itself returns are counted.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Most entries read in one [`drain`], so a flood of errors cannot starve the caller.
const DRAIN_LIMIT: usize = 256;

/// Turns on the error queue for this socket (Linux; a no-op elsewhere).
pub fn enable(socket: &UdpSocket) -> io::Result<()> {
    imp::enable(socket)
}

/// Reads, without blocking, the errors queued on the socket, and returns the
/// destinations that could not be reached, in core's address form. Entries that are
/// not ICMP errors (local errors) are read and ignored.
#[cfg(unix)]
pub fn drain(socket: &impl std::os::fd::AsRawFd) -> Vec<SocketAddr> {
    imp::drain(socket.as_raw_fd())
}

/// Nothing is queued on this platform.
#[cfg(not(unix))]
pub fn drain<S>(_socket: &S) -> Vec<SocketAddr> {
    Vec::new()
}

/// True when a `send_to` error is the report of an earlier ICMP error for some other
/// destination rather than a failure of this send: the queue holds the real one, and
/// the send is worth retrying once.
pub fn is_deferred(error: &io::Error) -> bool {
    cfg!(target_os = "linux") && error.kind() == io::ErrorKind::ConnectionRefused
}

#[cfg(target_os = "linux")]
mod imp {
    use super::DRAIN_LIMIT;
    use nix::libc;
    use nix::sys::socket::{
        recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrLike, SockaddrStorage,
    };
    use std::io::{self, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::RawFd;

    pub(super) fn enable(socket: &UdpSocket) -> io::Result<()> {
        if socket.local_addr()?.is_ipv6() {
            setsockopt(socket, sockopt::Ipv6RecvErr, &true)?;
            // IPv4 peers of a dual-stack socket report through the IPv4 option;
            // a v6-only socket may refuse it, which is fine.
            let _ = setsockopt(socket, sockopt::Ipv4RecvErr, &true);
        } else {
            setsockopt(socket, sockopt::Ipv4RecvErr, &true)?;
        }
        Ok(())
    }

    pub(super) fn drain(fd: RawFd) -> Vec<SocketAddr> {
        let mut failed = Vec::new();
        let mut payload = [0u8; 64];
        let mut control = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
        for _ in 0..DRAIN_LIMIT {
            let mut iov = [IoSliceMut::new(&mut payload)];
            let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
            let Ok(msg) = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut control), flags)
            else {
                break; // EAGAIN: the queue is empty
            };
            let icmp = msg.cmsgs().into_iter().flatten().any(|cmsg| match cmsg {
                ControlMessageOwned::Ipv4RecvErr(err, _)
                | ControlMessageOwned::Ipv6RecvErr(err, _) => {
                    err.ee_origin == libc::SO_EE_ORIGIN_ICMP
                        || err.ee_origin == libc::SO_EE_ORIGIN_ICMP6
                }
                _ => false,
            });
            match msg.address.as_ref().and_then(socket_addr) {
                Some(to) if icmp => failed.push(to),
                to => tracing::debug!(?to, "ignored a non-ICMP entry of the socket error queue"),
            }
        }
        failed
    }

    fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
        match addr.family()? {
            nix::sys::socket::AddressFamily::Inet => addr
                .as_sockaddr_in()
                .map(|a| SocketAddr::V4(SocketAddrV4::from(*a))),
            nix::sys::socket::AddressFamily::Inet6 => addr
                .as_sockaddr_in6()
                .map(|a| SocketAddr::V6(SocketAddrV6::from(*a))),
            _ => None,
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    pub(super) fn enable(_socket: &UdpSocket) -> io::Result<()> {
        Ok(())
    }

    #[cfg(unix)]
    pub(super) fn drain(_fd: std::os::fd::RawFd) -> Vec<SocketAddr> {
        Vec::new()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A send to a closed loopback port comes back through the queue with its address.
    #[test]
    fn a_closed_port_is_reported_with_its_address() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        enable(&socket).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = closed.local_addr().unwrap();
        drop(closed);
        socket.send_to(b"hello", to).unwrap();
        // The queued error wakes a blocked receive, which fails once.
        let error = socket.recv_from(&mut [0; 16]).unwrap_err();
        assert!(is_deferred(&error), "{error}");
        assert_eq!(drain(&socket), vec![to]);
        assert!(drain(&socket).is_empty(), "the queue is empty once drained");
    }
}
