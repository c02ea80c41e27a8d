//! Address mapping between core and sockets.
//!
//! Core keys members by the address it was given. A dual-stack IPv6 socket reports an
//! IPv4 peer as `[::ffff:a.b.c.d]:port`, while the port step of the handshake gives core
//! plain IPv4. So everything handed to core is made canonical ([`to_core`]: mapped
//! addresses become IPv4), and every destination core names is put back into the
//! socket's family before `send_to` ([`to_socket`]).

use std::net::{IpAddr, SocketAddr};

/// The form core sees: IPv4-mapped IPv6 addresses become plain IPv4.
pub fn to_core(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(ocm_core::canonical_ip(addr.ip()), addr.port())
}

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
        assert_eq!(to_core(mapped), plain);
        assert_eq!(to_core(plain), plain);
        assert_eq!(to_socket(plain, v6_socket), mapped);
        assert_eq!(to_socket(plain, v4_socket), plain);
        let v6: SocketAddr = "[::1]:5000".parse().unwrap();
        assert_eq!(to_core(v6), v6);
        assert_eq!(to_socket(v6, v6_socket), v6);
    }
}
