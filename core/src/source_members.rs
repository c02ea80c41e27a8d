//! The sources members come from: how many members each has (for the per-source member
//! limit) and the message bucket they share ([`crate::rate`]): a room server's members,
//! a relay's clients (each IP a source of its own).
//!
//! A source is looked up by its address, hashed with the keyed SipHash of a
//! [`KeyedMap`], when a member comes and goes and when a newcomer's seat is checked. Every chat message charges its source's
//! bucket, so each source also gets a number, never reused, that its members keep and
//! that finds the entry in an [`IdMap`] with one multiplication. An entry lives while
//! the source has members, so there are never more entries than members.

use crate::hash::{keyed_map, IdMap, KeyedMap, KeyedState};
use crate::rate::TokenBucket;
use crate::source::Source;

/// A source with members, named by a number never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SourceId(u64);

#[derive(Debug)]
struct Entry {
    source: Source,
    members: u32,
    bucket: TokenBucket,
}

/// Every source with members, by address and by number.
#[derive(Debug)]
pub(crate) struct SourceMembers {
    ids: KeyedMap<Source, SourceId>,
    entries: IdMap<SourceId, Entry>,
    next: u64,
}

impl SourceMembers {
    /// No sources; addresses hashed with `state`.
    pub(crate) fn new(state: KeyedState) -> SourceMembers {
        SourceMembers {
            ids: keyed_map(state),
            entries: IdMap::default(),
            next: 0,
        }
    }

    /// How many members `source` has.
    pub(crate) fn get(&self, source: Source) -> usize {
        let entry = self.ids.get(&source).and_then(|id| self.entries.get(id));
        entry.map_or(0, |e| e.members as usize)
    }

    /// One more member from `source`; a source new here gets the bucket `bucket` makes.
    pub(crate) fn add(&mut self, source: Source, bucket: impl FnOnce() -> TokenBucket) -> SourceId {
        let next = &mut self.next;
        let id = *self.ids.entry(source).or_insert_with(|| {
            *next += 1;
            SourceId(*next)
        });
        let entry = self.entries.entry(id).or_insert_with(|| Entry {
            source,
            members: 0,
            bucket: bucket(),
        });
        entry.members += 1;
        id
    }

    /// One member fewer from source `id`; its last takes the entry, bucket and all.
    pub(crate) fn remove(&mut self, id: SourceId) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        entry.members -= 1;
        if entry.members == 0 {
            let source = entry.source;
            self.entries.remove(&id);
            self.ids.remove(&source);
        }
    }

    /// Forgets every source.
    pub(crate) fn clear(&mut self) {
        self.ids.clear();
        self.entries.clear();
    }

    /// The message bucket of source `id`, while it has members.
    pub(crate) fn bucket_mut(&mut self, id: SourceId) -> Option<&mut TokenBucket> {
        self.entries.get_mut(&id).map(|e| &mut e.bucket)
    }

    /// The number of `source`, while it has members.
    pub(crate) fn id_of(&self, source: Source) -> Option<SourceId> {
        self.ids.get(&source).copied()
    }

    /// Every source with its count of members.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Source, usize)> + '_ {
        self.entries
            .values()
            .map(|e| (e.source, e.members as usize))
    }

    /// Whether the two maps hold the same sources (checked by [`crate::invariants`]).
    pub(crate) fn consistent(&self) -> bool {
        self.ids.len() == self.entries.len()
            && self.ids.iter().all(|(source, id)| {
                self.entries
                    .get(id)
                    .is_some_and(|e| e.source == *source && e.members > 0)
            })
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
    fn members_of_one_source_share_its_number_and_bucket_until_the_last_goes() {
        let mut s = sources();
        let a = s.add(source("10.0.0.1"), || TokenBucket::new(1, 3));
        let b = s.add(source("10.0.0.1"), || TokenBucket::new(1, 99));
        let other = s.add(source("10.0.0.2"), || TokenBucket::new(1, 5));
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(s.get(source("10.0.0.1")), 2);
        // the second member found the first one's bucket, not a new one
        assert_eq!(s.bucket_mut(a).map(|b| b.burst()), Some(3));
        assert!(s.consistent());

        s.remove(a);
        assert_eq!(s.get(source("10.0.0.1")), 1);
        assert!(s.bucket_mut(a).is_some());
        s.remove(b);
        assert_eq!(s.get(source("10.0.0.1")), 0);
        assert!(s.bucket_mut(a).is_none() && s.id_of(source("10.0.0.1")).is_none());
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(source("10.0.0.2"), 1)]);
        assert!(s.consistent());
    }

    #[test]
    fn a_source_that_comes_back_gets_a_new_number_and_a_full_bucket() {
        let mut s = sources();
        let first = s.add(source("2001:db8::1"), || TokenBucket::new(1, 3));
        s.remove(first);
        let second = s.add(source("2001:db8::2"), || TokenBucket::new(1, 4));
        assert_ne!(first, second);
        assert!(s.bucket_mut(first).is_none());
        assert_eq!(s.bucket_mut(second).map(|b| b.burst()), Some(4));
    }
}
