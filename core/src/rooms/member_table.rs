//! [`MemberTable`]: a room server's members by [`MemberId`], in a slab.
//!
//! Every chat message looks its sender up and every recipient of it, so a lookup is an
//! index, not a hash and a probe: a member's id holds its slot. A slot is reused once
//! its member is gone, so an id also holds a serial number, drawn from a counter and
//! never reused; a slot answers only to the serial of the member in it, so an id kept
//! after its member went (in a timer, say) finds nothing, even in a reused slot. Ids
//! order by serial, which is join order. The slab is as long as the most members there
//! were at once.

use std::ops::Index;

/// A member, named by a serial number never reused and the slot it sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MemberId {
    serial: u64,
    slot: u32,
}

#[cfg(test)]
impl MemberId {
    /// Member `n`, for tests of the tables that hold ids.
    pub(crate) fn for_tests(n: u32) -> MemberId {
        MemberId {
            serial: u64::from(n),
            slot: n,
        }
    }
}

#[derive(Debug)]
struct Slot<M> {
    /// The serial of the member in the slot, or of the last one.
    serial: u64,
    member: Option<M>,
}

/// The members, each in a slot (`M` is [`super::membership::Member`]).
#[derive(Debug)]
pub(crate) struct MemberTable<M> {
    slots: Vec<Slot<M>>,
    /// The empty slots, the latest emptied last.
    free: Vec<u32>,
    len: usize,
    next_serial: u64,
}

impl<M> Default for MemberTable<M> {
    fn default() -> MemberTable<M> {
        MemberTable {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            next_serial: 0,
        }
    }
}

impl<M> MemberTable<M> {
    /// A new member; its id.
    pub(crate) fn insert(&mut self, member: M) -> MemberId {
        let serial = self.next_serial;
        self.next_serial += 1;
        let filled = Slot {
            serial,
            member: Some(member),
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = filled;
                slot
            }
            None => {
                self.slots.push(filled);
                u32::try_from(self.slots.len() - 1).expect("fewer members than 2^32")
            }
        };
        self.len += 1;
        MemberId { serial, slot }
    }

    /// Member `id`, if it is still here.
    pub(crate) fn get(&self, id: &MemberId) -> Option<&M> {
        let slot = self.slots.get(id.slot as usize)?;
        match slot.serial == id.serial {
            true => slot.member.as_ref(),
            false => None,
        }
    }

    /// Member `id`, if it is still here, to change.
    pub(crate) fn get_mut(&mut self, id: &MemberId) -> Option<&mut M> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        match slot.serial == id.serial {
            true => slot.member.as_mut(),
            false => None,
        }
    }

    /// Whether member `id` is still here.
    pub(crate) fn contains_key(&self, id: &MemberId) -> bool {
        self.get(id).is_some()
    }

    /// Member `id` taken out; its slot is free for the next.
    pub(crate) fn remove(&mut self, id: &MemberId) -> Option<M> {
        let slot = self.slots.get_mut(id.slot as usize)?;
        if slot.serial != id.serial {
            return None;
        }
        let member = slot.member.take()?;
        self.free.push(id.slot);
        self.len -= 1;
        Some(member)
    }

    /// How many members there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every member, in slot order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &M> + '_ {
        self.slots.iter().filter_map(|s| s.member.as_ref())
    }

    /// Whether the free list is the empty slots, each once, and the count the full ones
    /// (checked by [`crate::invariants`]).
    pub(crate) fn slots_match(&self) -> bool {
        let mut free = self.free.clone();
        free.sort_unstable();
        free.dedup();
        let empty = self.slots.iter().filter(|s| s.member.is_none()).count();
        free.len() == self.free.len()
            && free.len() == empty
            && free
                .iter()
                .all(|&s| self.slots[s as usize].member.is_none())
            && self.len + empty == self.slots.len()
    }
}

impl<M> Index<&MemberId> for MemberTable<M> {
    type Output = M;

    fn index(&self, id: &MemberId) -> &M {
        self.get(id).expect("a member of the table")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn an_id_kept_after_its_member_went_finds_nothing_in_the_reused_slot() {
        let mut t = MemberTable::default();
        let gone = t.insert("ann");
        assert_eq!(t.remove(&gone), Some("ann"));
        let next = t.insert("bob");
        assert_eq!(next.slot, gone.slot, "the slot is reused");
        assert!(t.get(&gone).is_none() && !t.contains_key(&gone));
        assert!(t.remove(&gone).is_none());
        assert_eq!(t[&next], "bob");
        assert!(gone < next, "ids order by serial: join order");
        assert_eq!(t.len(), 1);
    }

    #[derive(Clone, Debug)]
    enum Step {
        Insert,
        /// Removes the member at this index of those ever inserted.
        Remove(prop::sample::Index),
    }

    proptest! {
        /// The table is a map from id to member: the same answers as a `BTreeMap` for
        /// every id ever handed out, present or gone.
        #[test]
        fn the_table_answers_as_a_map_of_ids(
            steps in proptest::collection::vec(
                prop_oneof![Just(Step::Insert), any::<prop::sample::Index>().prop_map(Step::Remove)],
                1..80,
            ),
        ) {
            let mut t = MemberTable::default();
            let mut model = BTreeMap::new();
            let mut ids = Vec::new();
            let mut most = 0;
            for (n, step) in steps.into_iter().enumerate() {
                match step {
                    Step::Insert => {
                        let id = t.insert(n);
                        prop_assert!(ids.last().is_none_or(|last| *last < id));
                        model.insert(id, n);
                        ids.push(id);
                    }
                    Step::Remove(at) if !ids.is_empty() => {
                        let id = ids[at.index(ids.len())];
                        prop_assert_eq!(t.remove(&id), model.remove(&id));
                    }
                    Step::Remove(_) => {}
                }
                most = most.max(model.len());
                prop_assert!(t.slots_match());
                prop_assert_eq!(t.len(), model.len());
                for id in &ids {
                    prop_assert_eq!(t.get(id), model.get(id));
                }
                let mut listed: Vec<usize> = t.values().copied().collect();
                listed.sort();
                prop_assert_eq!(listed, model.values().copied().collect::<Vec<_>>());
                prop_assert_eq!(t.slots.len(), most);
            }
        }
    }
}
