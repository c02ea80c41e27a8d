//! Address mapping from core to sockets.
//!
//! A dual-stack IPv6 socket reports an IPv4 peer as `[::ffff:a.b.c.d]:port`; core takes
//! either form and keys members by plain IPv4 (`ocm_core::rooms::canonical_addr`), so
//! every destination core names is put back into the socket's family before `send_to`
//! ([`to_socket`]).

use std::net::{IpAddr, SocketAddr};

/// The form a socket bound to `local` can send to: an IPv4 destination becomes
/// `::ffff:a.b.c.d` when the socket is IPv6.
pub fn to_socket(addr: SocketAddr, local: SocketAddr) -> SocketAddr {
    match (addr.ip(), local) {
        (IpAddr::V4(v4), SocketAddr::V6(_)) => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_round_trip() {
        let v6_socket: SocketAddr = "[::]:8001".parse().unwrap();
        let v4_socket: SocketAddr = "0.0.0.0:8001".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let plain: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(to_socket(plain, v6_socket), mapped);
        assert_eq!(to_socket(plain, v4_socket), plain);
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(to_socket(v6, v6_socket), v6);
    }
}
