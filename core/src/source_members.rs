//! The sources members come from: how many members each has (for the per-source member
//! limit) and the message bucket they share ([`crate::rate`]): a room server's members,
//! a relay's clients (each IP a source of its own).
//!
//! A source's address is chosen by a peer, so it is hashed with the keyed SipHash of
//! [`KeyedState`] when a member comes and goes and when a newcomer's seat is checked.
//! Every chat message charges its source's bucket, so a member keeps its source's
//! [`SourceKey`], the hash computed when it came, and finds the entry with it and its
//! own source (its IP, cut to the prefix) without hashing again. One table holds the
//! entries (hashbrown's `HashTable`, which takes the hash from its caller); an entry
//! lives while the source has members, and its bucket is made when one of them first
//! sends a message (a member that never chats costs its source no bucket).

use crate::hash::KeyedState;
use crate::rate::TokenBucket;
use crate::source::Source;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};
use std::hash::BuildHasher;

/// How a member finds its source's entry: the hash of the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceKey(u64);

#[derive(Debug)]
struct Entry {
    source: Source,
    members: u32,
    /// Boxed, and made on first use: most sources in a large server hold one member
    /// that may never chat.
    bucket: Option<Box<TokenBucket>>,
}

/// Every source with members.
#[derive(Debug)]
pub(crate) struct SourceMembers {
    table: HashTable<Entry>,
    state: KeyedState,
}

impl SourceMembers {
    /// No sources; addresses hashed with `state`.
    pub(crate) fn new(state: KeyedState) -> SourceMembers {
        SourceMembers {
            table: HashTable::new(),
            state,
        }
    }

    fn key(&self, source: Source) -> SourceKey {
        SourceKey(self.state.hash_one(source))
    }

    /// How many members `source` has.
    pub(crate) fn get(&self, source: Source) -> usize {
        if self.table.is_empty() {
            return 0;
        }
        let SourceKey(hash) = self.key(source);
        let entry = self.table.find(hash, |e| e.source == source);
        entry.map_or(0, |e| e.members as usize)
    }

    /// One more member from `source`; its key, for the member to keep.
    pub(crate) fn add(&mut self, source: Source) -> SourceKey {
        let key = self.key(source);
        let state = self.state;
        let entry = self
            .table
            .entry(key.0, |e| e.source == source, |e| state.hash_one(e.source));
        match entry {
            TableEntry::Occupied(mut occupied) => occupied.get_mut().members += 1,
            TableEntry::Vacant(vacant) => {
                vacant.insert(Entry {
                    source,
                    members: 1,
                    bucket: None,
                });
            }
        }
        key
    }

    /// One member fewer from `source` (of key `key`); its last takes the entry, bucket
    /// and all.
    pub(crate) fn remove(&mut self, key: SourceKey, source: Source) {
        let Ok(mut found) = self.table.find_entry(key.0, |e| e.source == source) else {
            return;
        };
        let entry = found.get_mut();
        entry.members -= 1;
        if entry.members == 0 {
            found.remove();
        }
    }

    /// Forgets every source.
    pub(crate) fn clear(&mut self) {
        self.table.clear();
    }

    /// The message bucket of `source` (of key `key`), made by `make` on first use;
    /// `None` when the source has no members.
    pub(crate) fn bucket_mut(
        &mut self,
        key: SourceKey,
        source: Source,
        make: impl FnOnce() -> TokenBucket,
    ) -> Option<&mut TokenBucket> {
        let entry = self.table.find_mut(key.0, |e| e.source == source)?;
        Some(entry.bucket.get_or_insert_with(|| Box::new(make())))
    }

    /// Every source with its count of members.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Source, usize)> + '_ {
        self.table.iter().map(|e| (e.source, e.members as usize))
    }

    /// Whether `key` is the key of `source`, which has members (checked by
    /// [`crate::invariants`]).
    pub(crate) fn is_key_of(&self, key: SourceKey, source: Source) -> bool {
        key == self.key(source) && self.get(source) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

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
        let made = s.bucket_mut(a, one, || TokenBucket::new(1, 3));
        assert_eq!(made.map(|b| b.burst()), Some(3));
        let found = s.bucket_mut(b, one, || TokenBucket::new(1, 99));
        assert_eq!(found.map(|b| b.burst()), Some(3));
        assert!(s.is_key_of(a, one) && !s.is_key_of(other, one));

        s.remove(a, one);
        assert_eq!(s.get(one), 1);
        assert!(s.bucket_mut(a, one, || TokenBucket::new(1, 7)).is_some());
        s.remove(b, one);
        assert_eq!(s.get(one), 0);
        assert!(s.bucket_mut(a, one, || TokenBucket::new(1, 7)).is_none());
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
            assert_eq!(
                s.bucket_mut(*key, ip(i), make).map(|b| b.burst()),
                Some(i + 1)
            );
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
        s.bucket_mut(first, net, || TokenBucket::new(1, 3))
            .expect("a member")
            .take(3);
        s.remove(first, net);
        let again = s.add(source("2001:db8::2")); // the same /64
        let bucket = s.bucket_mut(again, net, || TokenBucket::new(1, 4));
        assert_eq!(bucket.map(|b| b.burst()), Some(4));
        // the right hash with another source is not an entry
        assert!(s
            .bucket_mut(again, source("10.9.9.9"), || TokenBucket::new(1, 1))
            .is_none());
    }
}
