//! The rooms of a server, found by name (what a peer sends) or by number (what a
//! member keeps).
//!
//! A room's name is chosen by a peer, so finding a room by name hashes it with the
//! keyed SipHash of a [`KeyedMap`]. A chat message needs its sender's room on every
//! datagram, so each room also gets a number when it is made, never reused: its members
//! keep it, and it finds the room in an [`IdMap`] with one multiplication and no string
//! comparison. Going through the rooms goes by the name map, so in the order a map of
//! names alone would give.

use super::membership::Room;
use crate::hash::{keyed_map, IdMap, KeyedMap, KeyedState};
use std::borrow::Borrow;
use std::hash::Hash;
use std::ops::Index;
use std::sync::Arc;

/// A room, named by a number never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RoomId(u64);

/// Every room, by name and by number.
#[derive(Debug)]
pub(crate) struct Rooms {
    ids: KeyedMap<Arc<str>, RoomId>,
    rooms: IdMap<RoomId, Room>,
    next: u64,
}

impl Rooms {
    /// No rooms; names hashed with `state`.
    pub(crate) fn new(state: KeyedState) -> Rooms {
        Rooms {
            ids: keyed_map(state),
            rooms: IdMap::default(),
            next: 0,
        }
    }

    /// Adds room `name`, or replaces the room of that name (which keeps its number).
    pub(crate) fn insert(&mut self, name: Arc<str>, room: Room) -> RoomId {
        let next = &mut self.next;
        let id = *self.ids.entry(name).or_insert_with(|| {
            *next += 1;
            RoomId(*next)
        });
        self.rooms.insert(id, room);
        id
    }

    /// The number of room `name`.
    pub(crate) fn id_of<Q>(&self, name: &Q) -> Option<RoomId>
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.ids.get(name).copied()
    }

    pub(crate) fn get<Q>(&self, name: &Q) -> Option<&Room>
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rooms.get(self.ids.get(name)?)
    }

    pub(crate) fn get_mut<Q>(&mut self, name: &Q) -> Option<&mut Room>
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.rooms.get_mut(self.ids.get(name)?)
    }

    /// Room `name` with its name as stored (shared with its members).
    pub(crate) fn get_key_value<Q>(&self, name: &Q) -> Option<(&Arc<str>, &Room)>
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (name, id) = self.ids.get_key_value(name)?;
        Some((name, &self.rooms[id]))
    }

    pub(crate) fn contains_key<Q>(&self, name: &Q) -> bool
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.ids.contains_key(name)
    }

    /// The room numbered `id`, while it lives.
    pub(crate) fn by_id(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id)
    }

    pub(crate) fn by_id_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(&id)
    }

    pub(crate) fn remove<Q>(&mut self, name: &Q) -> Option<Room>
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_entry(name).map(|(_, room)| room)
    }

    pub(crate) fn remove_entry<Q>(&mut self, name: &Q) -> Option<(Arc<str>, Room)>
    where
        Arc<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (name, id) = self.ids.remove_entry(name)?;
        let room = self.rooms.remove(&id).expect("a named room has a number");
        Some((name, room))
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.ids.keys()
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Room> {
        self.ids.values().map(|id| &self.rooms[id])
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Room)> {
        self.ids.iter().map(|(name, id)| (name, &self.rooms[id]))
    }

    /// Whether the two maps hold the same rooms (checked by [`crate::invariants`]).
    pub(crate) fn consistent(&self) -> bool {
        self.ids.len() == self.rooms.len()
            && self.ids.values().all(|id| self.rooms.contains_key(id))
    }
}

impl<Q> Index<&Q> for Rooms
where
    Arc<str>: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = Room;

    fn index(&self, name: &Q) -> &Room {
        self.get(name).expect("no room of that name")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    /// A room told apart from others by the size of its message bucket.
    fn room(burst: u32) -> Room {
        Room {
            password: None,
            source: None,
            members: Vec::new(),
            fanout: crate::rate::TokenBucket::new(1, burst),
            cluster: None,
        }
    }

    fn burst(room: Option<&Room>) -> Option<u32> {
        room.map(|r| r.fanout.burst())
    }

    fn rooms() -> Rooms {
        Rooms::new(KeyedState::new(&mut rand_chacha::ChaCha20Rng::from_seed(
            [7; 32],
        )))
    }

    #[test]
    fn a_room_is_found_by_name_and_by_number_until_removed() {
        let mut rooms = rooms();
        let lobby = rooms.insert("lobby".into(), room(1));
        let den = rooms.insert("den".into(), room(2));
        assert_ne!(lobby, den);
        assert_eq!(rooms.id_of("den"), Some(den));
        assert_eq!(rooms["den"].fanout.burst(), 2);
        assert_eq!(burst(rooms.by_id(lobby)), Some(1));
        rooms.by_id_mut(den).expect("den").fanout = crate::rate::TokenBucket::new(1, 5);
        assert_eq!(rooms["den"].fanout.burst(), 5);

        let (name, _) = rooms.remove_entry("den").expect("den was there");
        assert_eq!(&*name, "den");
        assert!(rooms.by_id(den).is_none() && rooms.get("den").is_none());
        assert_eq!(rooms.len(), 1);
        assert!(rooms.consistent());
    }

    #[test]
    fn a_number_is_never_handed_out_twice_even_for_the_same_name() {
        let mut rooms = rooms();
        let first = rooms.insert("lobby".into(), room(1));
        rooms.remove("lobby");
        let second = rooms.insert("lobby".into(), room(1));
        assert_ne!(first, second);
        // the old number finds nothing, not the new room of the same name
        assert!(rooms.by_id(first).is_none());
        assert!(rooms.by_id(second).is_some());
    }

    #[test]
    fn inserting_over_a_name_replaces_the_room_and_keeps_its_number() {
        let mut rooms = rooms();
        let first = rooms.insert("lobby".into(), room(1));
        let again = rooms.insert("lobby".into(), room(3));
        assert_eq!(first, again);
        assert_eq!(rooms.len(), 1);
        assert_eq!(burst(rooms.by_id(first)), Some(3));
        assert!(rooms.consistent());
    }
}
