//! Helpers for the hostile-client tests: sockets from other loopback IPs, a seeded
//! generator for junk, bounded questions to the server, and checks that a socket was
//! closed or received nothing.

use super::WAIT;
use ocm_io::{Driver, Inspector};
use std::io::{self, ErrorKind, Read};
#[cfg(not(unix))]
use std::net::Ipv4Addr;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Whether this system lets a socket bind `ip` (Linux: all of 127/8; macOS: only
/// 127.0.0.1 unless aliased).
pub fn ip_available(ip: &str) -> bool {
    UdpSocket::bind((ip, 0)).is_ok()
}

/// A TCP connection to `server` from `ip` (any port): bound before it connects, so the
/// server sees that source address. IPv4 or IPv6, as `server` is.
#[cfg(unix)]
pub fn tcp_from(ip: impl Into<IpAddr>, server: SocketAddr) -> io::Result<TcpStream> {
    use nix::sys::socket::{
        bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn, SockaddrIn6,
    };
    use std::net::{SocketAddrV4, SocketAddrV6};
    use std::os::fd::AsRawFd;
    let flags = SockFlag::SOCK_CLOEXEC;
    let fd = match (ip.into(), server) {
        (IpAddr::V4(ip), SocketAddr::V4(server)) => {
            let fd = socket(AddressFamily::Inet, SockType::Stream, flags, None)?;
            bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(ip, 0)))?;
            connect(fd.as_raw_fd(), &SockaddrIn::from(server))?;
            fd
        }
        (IpAddr::V6(ip), SocketAddr::V6(server)) => {
            let fd = socket(AddressFamily::Inet6, SockType::Stream, flags, None)?;
            let local = SocketAddrV6::new(ip, 0, 0, 0);
            bind(fd.as_raw_fd(), &SockaddrIn6::from(local))?;
            connect(fd.as_raw_fd(), &SockaddrIn6::from(server))?;
            fd
        }
        _ => return Err(io::Error::new(ErrorKind::Unsupported, "mixed families")),
    };
    Ok(TcpStream::from(fd))
}

/// Elsewhere only 127.0.0.1 is sure to work, and there the plain connect does.
#[cfg(not(unix))]
pub fn tcp_from(ip: impl Into<IpAddr>, server: SocketAddr) -> io::Result<TcpStream> {
    if ip.into() != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        return Err(io::Error::new(
            ErrorKind::Unsupported,
            "no bind before connect",
        ));
    }
    TcpStream::connect(server)
}

/// Asks the running server, within [`WAIT`].
pub fn ask<T: Send + 'static>(
    inspector: &Inspector,
    f: impl FnOnce(&Driver) -> T + Send + 'static,
) -> T {
    let question = async { inspector.inspect(f).await };
    let timeout = async {
        smol::Timer::after(WAIT).await;
        None
    };
    smol::block_on(smol::future::or(question, timeout))
        .unwrap_or_else(|| panic!("the server did not answer within {WAIT:?}"))
}

/// Waits until `check` holds on the running server, asking every 2 ms, within [`WAIT`].
pub fn wait_for(
    inspector: &Inspector,
    what: &str,
    check: impl Fn(&Driver) -> bool + Send + Clone + 'static,
) {
    let deadline = Instant::now() + WAIT;
    while !ask(inspector, check.clone()) {
        assert!(Instant::now() < deadline, "not within {WAIT:?}: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How a connection ended, as its client saw it.
#[derive(Debug)]
pub struct Closed {
    /// Bytes the server sent before closing.
    pub received: Vec<u8>,
    /// When the close was seen.
    pub at: Instant,
}

/// Reads until the server closes (EOF or reset), within `wait`; panics if it stays open.
pub fn wait_closed(stream: &mut TcpStream, wait: Duration) -> Closed {
    let deadline = Instant::now() + wait;
    let mut received = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the connection was still open after {wait:?}"
        );
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break, // reset: closed too
        }
    }
    Closed {
        received,
        at: Instant::now(),
    }
}

/// Polls a non-blocking connection once: true when the server has closed it (EOF or
/// reset), false while it is open. Bytes it sent are added to `received`.
pub fn poll_closed(stream: &mut TcpStream, received: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Datagrams waiting on `socket` right now (it is left non-blocking).
pub fn pending_datagrams(socket: &UdpSocket) -> usize {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4097];
    let mut n = 0;
    while socket.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// A small seeded generator (xorshift64*): the same junk every run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A well-formed token (32 lowercase hex characters) that nobody was given.
    pub fn token(&mut self) -> Vec<u8> {
        format!("{:016x}{:016x}", self.next(), self.next()).into_bytes()
    }
}

/// The system-wide count of UDP datagrams the kernel dropped for want of receive
/// buffer (Linux `/proc/net/snmp`, `Udp: RcvbufErrors`), or `None` elsewhere. Other
/// processes count too: a figure to report, not to assert.
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

/// Sends `count` forged ICMP "port unreachable" errors to 127.0.0.1, each quoting a UDP
/// datagram from `from` to `to`, as an off-path attacker would. Needs a raw socket
/// (root or CAP_NET_RAW): `Err` when the system forbids one, so the caller can skip.
#[cfg(target_os = "linux")]
pub fn forge_icmp_unreachable(from: SocketAddr, to: SocketAddr, count: usize) -> io::Result<()> {
    use nix::sys::socket::{
        sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
    };
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        return Err(io::Error::other("IPv4 addresses only"));
    };
    let raw = socket(
        AddressFamily::Inet,
        SockType::Raw,
        SockFlag::empty(),
        SockProtocol::Icmp,
    )?;
    // The quoted datagram: an IPv4 header and the first 8 bytes (the UDP header).
    let mut inner = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0];
    inner.extend(from.ip().octets());
    inner.extend(to.ip().octets());
    let ip_sum = checksum(&inner);
    inner[10..12].copy_from_slice(&ip_sum.to_be_bytes());
    inner.extend(from.port().to_be_bytes());
    inner.extend(to.port().to_be_bytes());
    inner.extend([0, 8, 0, 0]);
    let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
    icmp.extend(inner);
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let target = SockaddrIn::from(std::net::SocketAddrV4::new(*from.ip(), 0));
    use std::os::fd::AsRawFd;
    for _ in 0..count {
        sendto(raw.as_raw_fd(), &icmp, &target, MsgFlags::empty())?;
    }
    Ok(())
}

/// The Internet checksum (RFC 1071).
#[cfg(target_os = "linux")]
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
