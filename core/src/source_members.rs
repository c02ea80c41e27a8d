//! The sources members come from: how many members each has (for the per-source member
//! limit) and the message bucket they share ([`crate::rate`]): a room server's members,
//! a relay's clients (each IP a source of its own).
//!
//! A source's address is chosen by a peer, so it is hashed with the keyed SipHash of
//! [`KeyedState`] when a member comes and goes and when a newcomer's seat is checked.
//! One table holds the entries (hashbrown's `HashTable`, which takes the hash from its
//! caller); an entry lives while the source has members.
//!
//! Every chat message charges its source's bucket, so the bucket is not in the table:
//! it sits in a slot of a slab, and a member keeps its source's [`SourceKey`], the slot
//! and half the hash computed when it came, and reaches the bucket by index, without
//! hashing or probing. A slot is its source's while the source has members, then free
//! for the next new source; a key finds a bucket only in a slot that holds its own
//! hash, so a key kept after its source went finds nothing (but for one chance in 2^32
//! that the next source's hash has the same low half; and a member's key is its
//! source's while it is a member, which [`crate::invariants`] check). The bucket is made when one of the
//! source's members first sends a message (a member that never chats costs its source
//! no bucket). The slab is as long as the most sources there were at once.

use crate::hash::KeyedState;
use crate::rate::TokenBucket;
use crate::source::Source;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};
use std::hash::BuildHasher;

/// How a member finds its source's bucket: the slot, and the low half of the source's
/// hash, which the slot must hold (one word in every member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceKey {
    slot: u32,
    check: u32,
}

impl SourceKey {
    fn new(hash: u64, slot: u32) -> SourceKey {
        SourceKey {
            slot,
            check: hash as u32,
        }
    }
}

#[derive(Debug)]
struct Entry {
    source: Source,
    members: u32,
    slot: u32,
}

/// A source's slot: its hash, and its bucket once made (boxed: most sources in a large
/// server hold one member that may never chat, and a slot is then 24 bytes, its `Option`
/// included).
#[derive(Debug)]
struct Slot {
    hash: u64,
    bucket: Option<Box<TokenBucket>>,
}

/// Every source with members.
#[derive(Debug)]
pub(crate) struct SourceMembers {
    table: HashTable<Entry>,
    /// One per source with members (`None`: free).
    slots: Vec<Option<Slot>>,
    /// The free slots, the latest freed last.
    free: Vec<u32>,
    state: KeyedState,
}

impl SourceMembers {
    /// No sources; addresses hashed with `state`.
    pub(crate) fn new(state: KeyedState) -> SourceMembers {
        SourceMembers {
            table: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            state,
        }
    }

    fn hash(&self, source: Source) -> u64 {
        self.state.hash_one(source)
    }

    /// How many members `source` has.
    pub(crate) fn get(&self, source: Source) -> usize {
        if self.table.is_empty() {
            return 0;
        }
        let entry = self.table.find(self.hash(source), |e| e.source == source);
        entry.map_or(0, |e| e.members as usize)
    }

    /// One more member from `source`; its key, for the member to keep.
    pub(crate) fn add(&mut self, source: Source) -> SourceKey {
        let hash = self.hash(source);
        let state = self.state;
        let entry = self
            .table
            .entry(hash, |e| e.source == source, |e| state.hash_one(e.source));
        let slot = match entry {
            TableEntry::Occupied(mut occupied) => {
                occupied.get_mut().members += 1;
                occupied.get().slot
            }
            TableEntry::Vacant(vacant) => {
                let fresh = Some(Slot { hash, bucket: None });
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.slots[slot as usize] = fresh;
                        slot
                    }
                    None => {
                        self.slots.push(fresh);
                        u32::try_from(self.slots.len() - 1).expect("fewer sources than 2^32")
                    }
                };
                vacant.insert(Entry {
                    source,
                    members: 1,
                    slot,
                });
                slot
            }
        };
        SourceKey::new(hash, slot)
    }

    /// One member fewer from `source` (of key `key`); its last takes the entry and frees
    /// the slot, bucket and all.
    pub(crate) fn remove(&mut self, key: SourceKey, source: Source) {
        let hash = self.hash(source);
        let found = self
            .table
            .find_entry(hash, |e| e.source == source && e.slot == key.slot);
        let Ok(mut found) = found else {
            return;
        };
        let entry = found.get_mut();
        entry.members -= 1;
        if entry.members == 0 {
            let slot = entry.slot;
            found.remove();
            self.slots[slot as usize] = None;
            self.free.push(slot);
        }
    }

    /// Forgets every source.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.free.clear();
    }

    /// The message bucket of the source of key `key`, made by `make` on first use;
    /// `None` when that source has no members.
    pub(crate) fn bucket_mut(
        &mut self,
        key: SourceKey,
        make: impl FnOnce() -> TokenBucket,
    ) -> Option<&mut TokenBucket> {
        let slot = self.slots.get_mut(key.slot as usize)?.as_mut();
        let slot = slot.filter(|slot| SourceKey::new(slot.hash, key.slot) == key)?;
        Some(slot.bucket.get_or_insert_with(|| Box::new(make())))
    }

    /// Every source with its count of members.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Source, usize)> + '_ {
        self.table.iter().map(|e| (e.source, e.members as usize))
    }

    /// Whether `key` is the key of `source`, which has members (checked by
    /// [`crate::invariants`]).
    pub(crate) fn is_key_of(&self, key: SourceKey, source: Source) -> bool {
        let hash = self.hash(source);
        let entry = self.table.find(hash, |e| e.source == source);
        key == SourceKey::new(hash, key.slot) && entry.is_some_and(|e| e.slot == key.slot)
    }

    /// Whether the slab matches the table: every entry's slot holds its hash, every
    /// other slot is free and listed once as free (checked by [`crate::invariants`]).
    pub(crate) fn slots_match(&self) -> bool {
        let held = self.table.iter().all(|e| {
            let slot = self.slots.get(e.slot as usize).and_then(Option::as_ref);
            slot.is_some_and(|slot| slot.hash == self.hash(e.source))
        });
        let mut free: Vec<u32> = self.free.clone();
        free.sort_unstable();
        free.dedup();
        let all_free = free.iter().all(|&s| self.slots[s as usize].is_none());
        held && all_free
            && free.len() == self.free.len()
            && self.table.len() + free.len() == self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn a_sources_slot_takes_the_24_bytes_the_docs_say() {
        // docs/BENCHMARKS.md's memory figures: its hash and its boxed bucket, and the
        // `Option` that marks a free slot
        assert_eq!(std::mem::size_of::<Option<Slot>>(), 24);
    }

    fn sources() -> SourceMembers {
        SourceMembers::new(KeyedState::new(&mut rand_chacha::ChaCha20Rng::from_seed(
            [5; 32],
        )))
    }

    fn source(ip: &str) -> Source {
        Source::of(ip.parse().unwrap(), 64)
    }

    #[test]
    fn members_of_one_source_share_its_key_and_bucket_until_the_last_goes() {
        let mut s = sources();
        let one = source("10.0.0.1");
        let a = s.add(one);
        let b = s.add(one);
        let other = s.add(source("10.0.0.2"));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(s.get(one), 2);
        // the first use makes the bucket; the second member finds that one
        let made = s.bucket_mut(a, || TokenBucket::new(1, 3));
        assert_eq!(made.map(|b| b.burst()), Some(3));
        let found = s.bucket_mut(b, || TokenBucket::new(1, 99));
        assert_eq!(found.map(|b| b.burst()), Some(3));
        assert!(s.is_key_of(a, one) && !s.is_key_of(other, one));

        s.remove(a, one);
        assert_eq!(s.get(one), 1);
        assert!(s.bucket_mut(a, || TokenBucket::new(1, 7)).is_some());
        s.remove(b, one);
        assert_eq!(s.get(one), 0);
        assert!(s.bucket_mut(a, || TokenBucket::new(1, 7)).is_none());
        assert!(!s.is_key_of(a, one));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(source("10.0.0.2"), 1)]);
    }

    #[test]
    fn sources_stay_found_by_key_as_the_table_grows() {
        let mut s = sources();
        let ip = |i: u32| Source::of(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 64);
        let keys: Vec<SourceKey> = (0..1000).map(|i| s.add(ip(i))).collect();
        for (i, key) in (0u32..).zip(&keys) {
            let make = || TokenBucket::new(1, i + 1);
            assert_eq!(s.bucket_mut(*key, make).map(|b| b.burst()), Some(i + 1));
            assert!(s.is_key_of(*key, ip(i)));
            assert_eq!(s.get(ip(i)), 1);
        }
        for (i, key) in (0u32..).zip(&keys) {
            s.remove(*key, ip(i));
        }
        assert_eq!(s.iter().count(), 0);
    }

    #[test]
    fn a_source_that_comes_back_gets_a_full_bucket_and_a_key_alone_finds_nothing() {
        let mut s = sources();
        let net = source("2001:db8::1");
        let first = s.add(net);
        s.bucket_mut(first, || TokenBucket::new(1, 3))
            .expect("a member")
            .take(3);
        s.remove(first, net);
        let again = s.add(source("2001:db8::2")); // the same /64
        let bucket = s.bucket_mut(again, || TokenBucket::new(1, 4));
        assert_eq!(bucket.map(|b| b.burst()), Some(4));
        // the key kept from before is its source's key again: same hash, same slot
        assert_eq!(again, first);
    }

    #[test]
    fn a_key_kept_after_its_source_went_finds_no_bucket_in_its_reused_slot() {
        let mut s = sources();
        let (gone, other) = (source("10.0.0.1"), source("10.0.0.2"));
        let stale = s.add(gone);
        s.bucket_mut(stale, || TokenBucket::new(1, 3));
        s.remove(stale, gone);
        assert!(s.bucket_mut(stale, || TokenBucket::new(1, 1)).is_none());
        // the next source takes the freed slot; the stale key does not reach its bucket
        let key = s.add(other);
        assert!(s.slots_match());
        assert!(s.bucket_mut(stale, || TokenBucket::new(1, 1)).is_none());
        assert!(!s.is_key_of(stale, other));
        let bucket = s.bucket_mut(key, || TokenBucket::new(1, 5));
        assert_eq!(bucket.map(|b| b.burst()), Some(5));
    }

    #[test]
    fn slots_are_reused_and_the_slab_grows_only_to_the_most_sources_at_once() {
        let mut s = sources();
        let ip = |i: u32| Source::of(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 64);
        for round in 0..3 {
            let keys: Vec<SourceKey> = (0..10).map(|i| s.add(ip(round * 10 + i))).collect();
            assert!(s.slots_match());
            for (i, key) in (0..).zip(keys) {
                s.remove(key, ip(round * 10 + i));
            }
            assert!(s.slots_match());
        }
        assert_eq!(s.slots.len(), 10);
        s.clear();
        assert!(s.slots_match() && s.slots.is_empty());
    }
}
