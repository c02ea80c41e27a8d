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

use rand_core::RngCore;
use siphasher::sip::SipHasher13;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

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

#[cfg(test)]
mod tests {
    use super::*;
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
}
