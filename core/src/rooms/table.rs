//! The rooms of a server, found by name (what a peer sends) or by number (what a
//! member keeps).
//!
//! A room's name is chosen by a peer, so finding a room by name hashes it with the
//! keyed SipHash of a [`KeyedMap`]. Names are keyed as bytes, so a datagram's room
//! field is looked up as it came, with no UTF-8 check first (every name held is
//! UTF-8, so bytes that are not match none). A chat message needs its sender's room on
//! every datagram, so each room also gets a number when it is made, never reused: its
//! members keep it, and it finds the room in an [`IdMap`] with one multiplication and
//! no string comparison. Going through the rooms goes by the name map.

use super::membership::Room;
use crate::hash::{keyed_map, IdMap, KeyedMap, KeyedState};
use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Index;
use std::sync::Arc;

/// A room, named by a number never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RoomId(u64);

/// A room's name as a key: hashed and compared as its bytes, so that it can be found
/// by bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Name(Arc<str>);

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl Borrow<[u8]> for Name {
    fn borrow(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Every room, by name and by number.
#[derive(Debug)]
pub(crate) struct Rooms {
    ids: KeyedMap<Name, RoomId>,
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

    /// Adds room `name`, which no room has: a caller checks first (a create is refused
    /// `ROOM_EXISTS`), since members of a replaced room would name a room that does not
    /// list them. A name taken anyway is a bug: `None`, nothing changed.
    pub(crate) fn insert(&mut self, name: Arc<str>, room: Room) -> Option<RoomId> {
        let std::collections::hash_map::Entry::Vacant(entry) = self.ids.entry(Name(name)) else {
            debug_assert!(false, "a room of that name exists");
            return None;
        };
        self.next += 1;
        let id = RoomId(self.next);
        entry.insert(id);
        self.rooms.insert(id, room);
        Some(id)
    }

    /// The number of room `name`.
    pub(crate) fn id_of(&self, name: &str) -> Option<RoomId> {
        self.ids.get(name.as_bytes()).copied()
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Room> {
        self.rooms.get(self.ids.get(name.as_bytes())?)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Room> {
        self.rooms.get_mut(self.ids.get(name.as_bytes())?)
    }

    /// Room `name` with its name as stored (shared with its members).
    pub(crate) fn get_key_value(&self, name: &str) -> Option<(&Arc<str>, &Room)> {
        let (name, id) = self.ids.get_key_value(name.as_bytes())?;
        Some((&name.0, &self.rooms[id]))
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.contains_bytes(name.as_bytes())
    }

    /// Whether a room is named `name`, given as bytes (not UTF-8: none is).
    pub(crate) fn contains_bytes(&self, name: &[u8]) -> bool {
        self.ids.contains_key(name)
    }

    /// The room numbered `id`, while it lives.
    pub(crate) fn by_id(&self, id: RoomId) -> Option<&Room> {
        self.rooms.get(&id)
    }

    pub(crate) fn by_id_mut(&mut self, id: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(&id)
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Room> {
        self.remove_entry(name).map(|(_, room)| room)
    }

    pub(crate) fn remove_entry(&mut self, name: &str) -> Option<(Arc<str>, Room)> {
        let (name, id) = self.ids.remove_entry(name.as_bytes())?;
        let room = self.rooms.remove(&id).expect("a named room has a number");
        Some((name.0, room))
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.ids.keys().map(|name| &name.0)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Room> {
        self.ids.values().map(|id| &self.rooms[id])
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Room)> {
        self.ids.iter().map(|(name, id)| (&name.0, &self.rooms[id]))
    }

    /// Whether the two maps hold the same rooms (checked by [`crate::invariants`]).
    pub(crate) fn consistent(&self) -> bool {
        self.ids.len() == self.rooms.len()
            && self.ids.values().all(|id| self.rooms.contains_key(id))
    }
}

impl Index<&str> for Rooms {
    type Output = Room;

    fn index(&self, name: &str) -> &Room {
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
            addressed: 0,
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
        let lobby = rooms.insert("lobby".into(), room(1)).expect("new");
        let den = rooms.insert("den".into(), room(2)).expect("new");
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
    fn names_are_found_by_their_bytes_and_bytes_that_are_not_utf8_find_nothing() {
        let mut rooms = rooms();
        rooms.insert("café".into(), room(1));
        assert!(rooms.contains_bytes("café".as_bytes()));
        assert!(rooms.contains_key("café"));
        assert!(!rooms.contains_bytes(b"caf"));
        // "café" in Latin-1: the same letters, not the same bytes
        assert!(!rooms.contains_bytes(b"caf\xe9"));
    }

    #[test]
    fn a_number_is_never_handed_out_twice_even_for_the_same_name() {
        let mut rooms = rooms();
        let first = rooms.insert("lobby".into(), room(1)).expect("new");
        rooms.remove("lobby");
        let second = rooms.insert("lobby".into(), room(1)).expect("new");
        assert_ne!(first, second);
        // the old number finds nothing, not the new room of the same name
        assert!(rooms.by_id(first).is_none());
        assert!(rooms.by_id(second).is_some());
    }

    #[test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "a room of that name exists")
    )]
    fn a_name_taken_is_not_taken_over() {
        let mut rooms = rooms();
        let first = rooms.insert("lobby".into(), room(1)).expect("new");
        // a bug in the caller: caught in debug builds; in release, nothing changes
        assert_eq!(rooms.insert("lobby".into(), room(3)), None);
        assert_eq!(rooms.len(), 1);
        assert_eq!(burst(rooms.by_id(first)), Some(1));
        assert!(rooms.consistent());
    }
}
