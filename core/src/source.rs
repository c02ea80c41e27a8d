//! [`Source`]: what the per-source limits count under. One IPv4 address is one source;
//! an IPv6 address counts as its network prefix, a /64 by default
//! (`Config::ipv6_source_prefix`), because a /64 is what one host (one home, one VM)
//! gets: to an attacker it is one machine, to a per-address limit 2^64 of them.
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are the IPv4 source they carry.
//!
//! ```
//! use ocm_core::source::Source;
//! let a = Source::of("2001:db8:1:2::1".parse().unwrap(), 64);
//! let b = Source::of("2001:db8:1:2:ffff::9".parse().unwrap(), 64);
//! assert_eq!(a, b);
//! assert_eq!(a.to_string(), "2001:db8:1:2::/64");
//! assert_ne!(a, Source::of("2001:db8:1:3::1".parse().unwrap(), 64));
//! ```

use crate::hash::{keyed_map, KeyedMap, KeyedState};
use crate::rooms::canonical_ip;
use std::net::{IpAddr, Ipv6Addr};

/// The longest IPv6 prefix: 128 makes every IPv6 address a source of its own.
pub const MAX_IPV6_PREFIX: u8 = 128;

/// A source: an IPv4 address, or an IPv6 network of a configured prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    network: IpAddr,
    prefix: u8,
}

impl Source {
    /// The source `ip` belongs to, IPv6 addresses cut to their first `ipv6_prefix` bits
    /// (at most [`MAX_IPV6_PREFIX`]).
    pub fn of(ip: IpAddr, ipv6_prefix: u8) -> Source {
        match canonical_ip(ip) {
            IpAddr::V4(v4) => Source {
                network: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => {
                let prefix = ipv6_prefix.min(MAX_IPV6_PREFIX);
                let mask = u128::MAX
                    .checked_shl(u32::from(MAX_IPV6_PREFIX - prefix))
                    .unwrap_or(0);
                Source {
                    network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                    prefix,
                }
            }
        }
    }

    /// The network address (an IPv4 address, or the first address of the IPv6 prefix).
    pub fn network(&self) -> IpAddr {
        self.network
    }
}

impl std::fmt::Display for Source {
    /// `a.b.c.d` or `network/prefix`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.network {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{}", self.prefix),
        }
    }
}

/// A count per source (connections, members, rooms) that keeps no zero entries, so it
/// holds no more sources than there are things counted. Counts are kept in 32 bits (an
/// entry of 24 bytes, not 32: a table entry per source is much of a small member's
/// cost); more than 2³² of anything would not fit in memory first.
#[derive(Clone, Debug)]
pub(crate) struct SourceCounts(KeyedMap<Source, u32>);

impl SourceCounts {
    pub(crate) fn new(state: KeyedState) -> SourceCounts {
        SourceCounts(keyed_map(state))
    }

    /// How many `source` has.
    pub(crate) fn get(&self, source: Source) -> usize {
        self.0.get(&source).map_or(0, |n| *n as usize)
    }

    pub(crate) fn add(&mut self, source: Source) {
        *self.0.entry(source).or_insert(0) += 1;
    }

    pub(crate) fn remove(&mut self, source: Source) {
        if let Some(n) = self.0.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.0.remove(&source);
            }
        }
    }

    /// Every source with its count.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Source, usize)> + '_ {
        self.0.iter().map(|(source, n)| (*source, *n as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_addresses_are_sources_of_their_own_and_mapped_ones_too() {
        let a = Source::of(ip("10.0.0.1"), 64);
        assert_ne!(a, Source::of(ip("10.0.0.2"), 64));
        assert_eq!(a, Source::of(ip("::ffff:10.0.0.1"), 64));
        assert_eq!(a.to_string(), "10.0.0.1");
        assert_eq!(a.network(), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_addresses_count_as_their_prefix() {
        let s = Source::of(ip("2001:db8:aa:bb:1:2:3:4"), 64);
        assert_eq!(s.network(), ip("2001:db8:aa:bb::"));
        assert_eq!(s, Source::of(ip("2001:db8:aa:bb:ffff:ffff:ffff:ffff"), 64));
        assert_ne!(s, Source::of(ip("2001:db8:aa:bc::1"), 64));
        // Other prefixes: a /48 spans many /64s, 128 is the address, 0 all of IPv6.
        let wide = Source::of(ip("2001:db8:aa:bb::1"), 48);
        assert_eq!(wide, Source::of(ip("2001:db8:aa:ffff::1"), 48));
        assert_eq!(wide.to_string(), "2001:db8:aa::/48");
        assert_ne!(
            Source::of(ip("::1"), 128),
            Source::of(ip("::2"), 128),
            "/128: one address, one source"
        );
        assert_eq!(Source::of(ip("::1"), 0), Source::of(ip("ff00::1"), 0));
        assert_eq!(Source::of(ip("::1"), 200), Source::of(ip("::1"), 128));
    }
}
