//! [`MemberTable`]: a room server's members by [`MemberId`], in a slab.
//!
//! Every chat message looks its sender up and every recipient of it, so a lookup is an
//! index, not a hash and a probe: a member's id holds its slot. A slot is reused once
//! its member is gone, so an id also holds a serial number, drawn from a counter; a
//! slot answers only to the id of the member in it, so an id kept after its member went
//! (in a timer, say) finds nothing, even in a reused slot. An id is one word (it is
//! kept in the token map, the room's list, the address index and the timers): the slot
//! in the low 24 bits, so at most [`MAX_MEMBERS`] at once (`Config::validate`
//! holds `max_members` to it), the serial in the 40 above, which wrap only after 2^40
//! joins. Ids order by serial, which is join order. The slab is as long as the most
//! members there were at once.

use std::ops::Index;

use crate::config::MAX_MEMBERS;

/// Bits of a [`MemberId`] that say its slot.
const SLOT_BITS: u32 = 24;
const _: () = assert!(MAX_MEMBERS <= 1 << SLOT_BITS);

/// A member: a serial number (the high 40 bits) and the slot it sits in (the low 24).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct MemberId(u64);

impl MemberId {
    fn new(serial: u64, slot: u32) -> MemberId {
        MemberId(serial << SLOT_BITS | u64::from(slot))
    }

    fn slot(self) -> usize {
        (self.0 & ((1 << SLOT_BITS) - 1)) as usize
    }

    /// Member `n` (below [`MAX_MEMBERS`]), for tests of the tables that hold ids.
    #[cfg(test)]
    pub(crate) fn for_tests(n: u32) -> MemberId {
        MemberId::new(u64::from(n), n)
    }
}

#[derive(Debug)]
struct Slot<M> {
    /// The id of the member in the slot, or of the last one.
    id: MemberId,
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
    /// A new member; its id. There are fewer than [`MAX_MEMBERS`] (else a panic: the
    /// caller admits no more than `max_members`).
    pub(crate) fn insert(&mut self, member: M) -> MemberId {
        let serial = self.next_serial;
        self.next_serial = (serial + 1) & ((1 << (64 - SLOT_BITS)) - 1);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                assert!(self.slots.len() < MAX_MEMBERS, "more than MAX_MEMBERS");
                self.slots.push(Slot {
                    id: MemberId(0),
                    member: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let id = MemberId::new(serial, slot);
        self.slots[slot as usize] = Slot {
            id,
            member: Some(member),
        };
        self.len += 1;
        id
    }

    /// Member `id`, if it is still here.
    pub(crate) fn get(&self, id: &MemberId) -> Option<&M> {
        let slot = self.slots.get(id.slot())?;
        match slot.id == *id {
            true => slot.member.as_ref(),
            false => None,
        }
    }

    /// Member `id`, if it is still here, to change.
    pub(crate) fn get_mut(&mut self, id: &MemberId) -> Option<&mut M> {
        let slot = self.slots.get_mut(id.slot())?;
        match slot.id == *id {
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
        let slot = self.slots.get_mut(id.slot())?;
        if slot.id != *id {
            return None;
        }
        let member = slot.member.take()?;
        self.free.push(id.slot() as u32);
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
        assert_eq!(next.slot(), gone.slot(), "the slot is reused");
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
