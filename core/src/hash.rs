//! Hash maps keyed from the server's seed.
//!
//! `std`'s default hasher seeds itself from the OS, which would make iteration order
//! (and so a simulation trace) differ between runs. Core maps use SipHash-1-3 with keys
//! drawn from the caller's seed instead: deterministic for a given seed, and still
//! unpredictable to an outsider who does not know the seed (no hash flooding).
//!
//! A map whose keys the server numbers itself, never a peer, cannot be flooded: an
//! [`IdMap`] hashes such a key with one multiplication ([`IdState`]), for the lookups
//! made once per recipient of every message. So can one keyed by tokens: the server
//! draws them from its secret ChaCha20 stream, a peer can only look one up, never insert
//! one of its choosing, and their text is folded into one well-spread word
//! ([`crate::token::TokenText`]).
//!
//! A map keyed by a peer's address (relay mode's clients, looked up for every datagram)
//! keeps SipHash but takes the address as one word ([`AddrKey`]) instead of the four
//! writes of `SocketAddr`'s derived `Hash`.

use rand_core::RngCore;
use siphasher::sip::SipHasher13;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;

/// Builds SipHash-1-3 hashers with fixed secret keys.
#[derive(Clone, Copy, Debug)]
pub struct KeyedState {
    k0: u64,
    k1: u64,
}

impl KeyedState {
    /// Draws the two keys from `rng`.
    pub fn new(rng: &mut impl RngCore) -> KeyedState {
        KeyedState {
            k0: rng.next_u64(),
            k1: rng.next_u64(),
        }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// A `HashMap` with a [`KeyedState`] hasher.
pub type KeyedMap<K, V> = HashMap<K, V, KeyedState>;

/// An empty [`KeyedMap`].
pub fn keyed_map<K, V>(state: KeyedState) -> KeyedMap<K, V> {
    HashMap::with_hasher(state)
}

/// Hashes numbers the server hands out itself (never chosen by a peer) with one
/// multiplication by an odd constant: consecutive numbers land in distinct buckets
/// (the low bits are a permutation) and the high bits hashbrown uses as tags are
/// well mixed. Deterministic, like [`KeyedState`].
#[derive(Clone, Copy, Debug, Default)]
pub struct IdState;

/// The hasher of [`IdState`].
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

/// 2^64 / the golden ratio, odd (Fibonacci hashing).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(GOLDEN);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(GOLDEN);
    }
}

impl BuildHasher for IdState {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher::default()
    }
}

/// A `HashMap` keyed by server-assigned numbers, with an [`IdState`] hasher.
pub type IdMap<K, V> = HashMap<K, V, IdState>;

/// A socket address as a map key, hashed in one write for IPv4 (address and port in
/// one word) and two for IPv6 (the derived `Hash` of `SocketAddr` makes four, each a
/// step of SipHash's buffering). Equal addresses hash the same (an IPv6 address's flow
/// label and scope, which `==` also compares, are left out of the hash only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrKey(pub SocketAddr);

impl Hash for AddrKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.0 {
            SocketAddr::V4(v4) => {
                state.write_u64(u64::from(v4.ip().to_bits()) << 16 | u64::from(v4.port()))
            }
            SocketAddr::V6(v6) => {
                state.write_u128(v6.ip().to_bits());
                state.write_u16(v6.port());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn consecutive_ids_fill_distinct_buckets_and_vary_in_their_top_bits() {
        let hash = |n: u64| IdState.hash_one(n);
        // the low 10 bits of 1024 consecutive ids are all different
        let low: HashSet<u64> = (5000..6024).map(|n| hash(n) & 1023).collect();
        assert_eq!(low.len(), 1024);
        // hashbrown's 7-bit tags take the top bits: all 128 values show up
        let tags: HashSet<u64> = (0..4096).map(|n| hash(n) >> 57).collect();
        assert_eq!(tags.len(), 128);
        // and the same id always hashes the same
        assert_eq!(hash(42), hash(42));
    }

    #[test]
    fn addresses_that_differ_in_any_part_hash_apart() {
        let state = KeyedState::new(&mut rand_chacha::ChaCha20Rng::from_seed([3; 32]));
        let hash = |a: &str| state.hash_one(AddrKey(a.parse().unwrap()));
        let addrs = [
            "10.0.0.1:4000",
            "10.0.0.1:4001",
            "10.0.0.2:4000",
            "0.0.0.0:0",
            "[::]:0",
            "[::1]:4000",
            "[::1]:4001",
            "[::2]:4000",
            "[::a00:1]:4000", // 10.0.0.1's bits as IPv6
            "[::ffff:10.0.0.1]:4000",
        ];
        let hashes: HashSet<u64> = addrs.iter().map(|a| hash(a)).collect();
        assert_eq!(hashes.len(), addrs.len());
        // the port is not mixed into the address's bits: 0.0.1.0:0 is not 0.0.0.1:256
        assert_ne!(hash("0.0.1.0:0"), hash("0.0.0.1:256"));
        assert_eq!(hash("10.0.0.1:4000"), hash("10.0.0.1:4000"));
        // and the keys matter: another seed, another hash
        let other = KeyedState::new(&mut rand_chacha::ChaCha20Rng::from_seed([4; 32]));
        let addr = AddrKey("10.0.0.1:4000".parse().unwrap());
        assert_ne!(state.hash_one(addr), other.hash_one(addr));
    }
}
