//! The UDP socket's kernel buffers, sized by the server itself.
//!
//! With the kernel's default receive buffer (about 208 KiB on Linux), a burst of junk
//! datagrams fills it while the owner task is busy, and the kernel drops whatever comes
//! next, members' chat included: a 100 000-datagram flood cost 2-8 % of two members'
//! lines, where an 8 MiB buffer lost nothing. So the server asks for
//! [`DEFAULT_BUFFER`] (flag `--udp-buffer`) for both directions: `SO_RCVBUFFORCE` /
//! `SO_SNDBUFFORCE` first (which may exceed `net.core.rmem_max`, with
//! `CAP_NET_ADMIN`), then the plain options, which the kernel caps at its maximum.
//! The effective sizes are logged, and a warning says when the kernel gave less.

use std::io;
use std::net::UdpSocket;

/// The buffer size asked for by default: 8 MiB each way.
pub const DEFAULT_BUFFER: usize = 8 * 1024 * 1024;

/// What the kernel granted (as it reports it: Linux doubles the value set, for its
/// bookkeeping, and reports the doubled figure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granted {
    /// The receive buffer.
    pub receive: usize,
    /// The send buffer.
    pub send: usize,
}

/// Asks for `size` bytes each way; returns what the kernel reports.
#[cfg(target_os = "linux")]
pub fn size(socket: &UdpSocket, size: usize) -> io::Result<Granted> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    if setsockopt(socket, sockopt::RcvBufForce, &size).is_err() {
        setsockopt(socket, sockopt::RcvBuf, &size)?;
    }
    if setsockopt(socket, sockopt::SndBufForce, &size).is_err() {
        setsockopt(socket, sockopt::SndBuf, &size)?;
    }
    Ok(Granted {
        receive: getsockopt(socket, sockopt::RcvBuf)?,
        send: getsockopt(socket, sockopt::SndBuf)?,
    })
}

/// Elsewhere, the portable options only.
#[cfg(all(unix, not(target_os = "linux")))]
pub fn size(socket: &UdpSocket, size: usize) -> io::Result<Granted> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    let _ = setsockopt(socket, sockopt::RcvBuf, &size);
    let _ = setsockopt(socket, sockopt::SndBuf, &size);
    Ok(Granted {
        receive: getsockopt(socket, sockopt::RcvBuf)?,
        send: getsockopt(socket, sockopt::SndBuf)?,
    })
}

/// Elsewhere: not sized (the kernel's defaults stay).
#[cfg(not(unix))]
pub fn size(_socket: &UdpSocket, _size: usize) -> io::Result<Granted> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Sizes the socket's buffers and logs the outcome; a failure is only a warning (the
/// server still works with the kernel's defaults).
pub fn apply(socket: &UdpSocket, wanted: usize) -> Option<Granted> {
    match size(socket, wanted) {
        Ok(granted) => {
            // Linux reports twice what it keeps for data; anything under what was
            // asked for means the kernel capped it.
            if granted.receive < wanted || granted.send < wanted {
                tracing::warn!(
                    wanted,
                    receive = granted.receive,
                    send = granted.send,
                    "udp buffers capped by the kernel (raise net.core.rmem_max and wmem_max, or run with CAP_NET_ADMIN): bursts may be dropped"
                );
            } else {
                tracing::info!(
                    receive = granted.receive,
                    send = granted.send,
                    "udp buffers"
                );
            }
            Some(granted)
        }
        Err(error) => {
            tracing::warn!(%error, "cannot size the UDP buffers; the kernel's defaults stay");
            None
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_bigger_buffer_is_granted_or_reported_capped() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let before =
            nix::sys::socket::getsockopt(&socket, nix::sys::socket::sockopt::RcvBuf).unwrap();
        let wanted = 4 * 1024 * 1024;
        let granted = size(&socket, wanted).unwrap();
        assert!(granted.receive > before, "{granted:?}, {before} before");
        let max = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0);
        // Either the size took (forced, as root), or the kernel's cap did.
        assert!(
            granted.receive >= wanted || granted.receive >= 2 * max,
            "{granted:?}"
        );
    }
}
