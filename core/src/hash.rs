//! Hash maps keyed from the server's seed.
//!
//! `std`'s default hasher seeds itself from the OS, which would make iteration order
//! (and so a simulation trace) differ between runs. Core maps use SipHash-1-3 with keys
//! drawn from the caller's seed instead: deterministic for a given seed, and still
//! unpredictable to an outsider who does not know the seed (no hash flooding).

use rand_core::RngCore;
use siphasher::sip::SipHasher13;
use std::collections::HashMap;
use std::hash::BuildHasher;

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
