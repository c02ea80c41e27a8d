//! The rooms of a server, found by name (what a peer sends) or by the key a member
//! keeps.
//!
//! A room's name is chosen by a peer, so it is hashed with the keyed SipHash of
//! [`KeyedState`]. Names are hashed as bytes, so a datagram's room field is looked up
//! as it came, with no UTF-8 check first (every name held is UTF-8, so bytes that are
//! not match none). A chat message needs its sender's room on every datagram, so a
//! member keeps its room's [`RoomKey`]: the hash, computed once when the room was made,
//! and the room's own copy of its name. Found by that key, a room costs no hashing and
//! no string comparison (the name is compared by address: a later room of the same name
//! has another, so a member of a closed room finds nothing). One table holds the rooms
//! (hashbrown's `HashTable`, which takes the hash from its caller): no second map.

use super::membership::Room;
use crate::hash::KeyedState;
use hashbrown::hash_table::{Entry as TableEntry, HashTable};
use std::hash::BuildHasher;
use std::sync::Arc;

/// How a member finds its room: the hash of the room's name and the room's own name.
#[derive(Clone, Debug)]
pub(crate) struct RoomKey {
    hash: u64,
    name: Arc<str>,
}

impl RoomKey {
    /// The room's name (shared with the room).
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }
}

#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    room: Room,
}

/// Every room.
#[derive(Debug)]
pub(crate) struct Rooms {
    table: HashTable<Entry>,
    state: KeyedState,
}

impl Rooms {
    /// No rooms; names hashed with `state`.
    pub(crate) fn new(state: KeyedState) -> Rooms {
        Rooms {
            table: HashTable::new(),
            state,
        }
    }

    fn hash(&self, name: &[u8]) -> u64 {
        self.state.hash_one(name)
    }

    fn find(&self, name: &[u8]) -> Option<&Entry> {
        if self.table.is_empty() {
            return None; // no name to hash for (a flood of junk at an empty server)
        }
        let hash = self.hash(name);
        self.table.find(hash, |e| e.name.as_bytes() == name)
    }

    fn find_mut(&mut self, name: &[u8]) -> Option<&mut Entry> {
        let hash = self.hash(name);
        self.table.find_mut(hash, |e| e.name.as_bytes() == name)
    }

    /// Adds room `name`, which no room has: a caller checks first (a create is refused
    /// `ROOM_EXISTS`), since members of a replaced room would name a room that does not
    /// list them. A name taken anyway is a bug: `None`, nothing changed.
    pub(crate) fn insert(&mut self, name: Arc<str>, room: Room) -> Option<RoomKey> {
        let hash = self.hash(name.as_bytes());
        let state = self.state;
        let entry = self.table.entry(
            hash,
            |e| *e.name == *name,
            |e| state.hash_one(e.name.as_bytes()),
        );
        let TableEntry::Vacant(vacant) = entry else {
            debug_assert!(false, "a room of that name exists");
            return None;
        };
        vacant.insert(Entry {
            name: name.clone(),
            room,
        });
        Some(RoomKey { hash, name })
    }

    /// The key of room `name`, for its members.
    pub(crate) fn key_of(&self, name: &str) -> Option<RoomKey> {
        let hash = self.hash(name.as_bytes());
        let entry = self.table.find(hash, |e| *e.name == *name)?;
        Some(RoomKey {
            hash,
            name: entry.name.clone(),
        })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Room> {
        self.find(name.as_bytes()).map(|e| &e.room)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Room> {
        self.find_mut(name.as_bytes()).map(|e| &mut e.room)
    }

    /// Room `name` with its name as stored (shared with its members).
    pub(crate) fn get_key_value(&self, name: &str) -> Option<(&Arc<str>, &Room)> {
        self.find(name.as_bytes()).map(|e| (&e.name, &e.room))
    }

    pub(crate) fn contains_key(&self, name: &str) -> bool {
        self.contains_bytes(name.as_bytes())
    }

    /// Whether a room is named `name`, given as bytes (not UTF-8: none is).
    pub(crate) fn contains_bytes(&self, name: &[u8]) -> bool {
        self.find(name).is_some()
    }

    /// The room of `key`, while it lives.
    pub(crate) fn by_key(&self, key: &RoomKey) -> Option<&Room> {
        let found = self
            .table
            .find(key.hash, |e| Arc::ptr_eq(&e.name, &key.name));
        found.map(|e| &e.room)
    }

    pub(crate) fn by_key_mut(&mut self, key: &RoomKey) -> Option<&mut Room> {
        let found = self
            .table
            .find_mut(key.hash, |e| Arc::ptr_eq(&e.name, &key.name));
        found.map(|e| &mut e.room)
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<Room> {
        self.remove_entry(name).map(|(_, room)| room)
    }

    pub(crate) fn remove_entry(&mut self, name: &str) -> Option<(Arc<str>, Room)> {
        let hash = self.hash(name.as_bytes());
        let found = self.table.find_entry(hash, |e| *e.name == *name).ok()?;
        let (entry, _) = found.remove();
        Some((entry.name, entry.room))
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &Arc<str>> {
        self.table.iter().map(|e| &e.name)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Room> {
        self.table.iter().map(|e| &e.room)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Room)> {
        self.table.iter().map(|e| (&e.name, &e.room))
    }

    /// Whether `key` is the key of room `name` (checked by [`crate::invariants`]).
    pub(crate) fn is_key_of(&self, key: &RoomKey, name: &str) -> bool {
        key.hash == self.hash(name.as_bytes())
            && self
                .find(name.as_bytes())
                .is_some_and(|e| Arc::ptr_eq(&e.name, &key.name))
    }
}

impl std::ops::Index<&str> for Rooms {
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
    fn a_room_is_found_by_name_and_by_key_until_removed() {
        let mut rooms = rooms();
        let lobby = rooms.insert("lobby".into(), room(1)).expect("new");
        let den = rooms.insert("den".into(), room(2)).expect("new");
        assert!(rooms.is_key_of(&den, "den") && !rooms.is_key_of(&den, "lobby"));
        assert!(rooms.is_key_of(&rooms.key_of("den").expect("den"), "den"));
        assert_eq!(rooms["den"].fanout.burst(), 2);
        assert_eq!(burst(rooms.by_key(&lobby)), Some(1));
        rooms.by_key_mut(&den).expect("den").fanout = crate::rate::TokenBucket::new(1, 5);
        assert_eq!(rooms["den"].fanout.burst(), 5);

        let (name, _) = rooms.remove_entry("den").expect("den was there");
        assert_eq!(&*name, "den");
        assert!(rooms.by_key(&den).is_none() && rooms.get("den").is_none());
        assert_eq!(rooms.len(), 1);
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
    fn rooms_stay_found_by_name_and_key_as_the_table_grows_and_shrinks() {
        let mut rooms = rooms();
        let name = |i: u32| format!("room-{i}");
        let keys: Vec<RoomKey> = (0..1000)
            .map(|i| rooms.insert(name(i).into(), room(i + 1)).expect("new"))
            .collect();
        for (i, key) in (0u32..).zip(&keys) {
            assert_eq!(burst(rooms.get(&name(i))), Some(i + 1));
            assert_eq!(burst(rooms.by_key(key)), Some(i + 1));
            assert!(rooms.is_key_of(key, &name(i)));
            assert!(rooms.contains_bytes(name(i).as_bytes()));
        }
        for i in (0..1000).step_by(2) {
            rooms.remove(&name(i)).expect("there");
        }
        for (i, key) in (0u32..).zip(&keys) {
            assert_eq!(rooms.by_key(key).is_some(), i % 2 == 1, "room {i}");
        }
        assert_eq!(rooms.len(), 500);
    }

    #[test]
    fn the_key_of_a_closed_room_finds_nothing_even_when_its_name_is_taken_again() {
        let mut rooms = rooms();
        let first = rooms.insert("lobby".into(), room(1)).expect("new");
        rooms.remove("lobby");
        let second = rooms.insert("lobby".into(), room(2)).expect("new");
        // the same name, the same hash: not the same room
        assert!(rooms.by_key(&first).is_none());
        assert!(!rooms.is_key_of(&first, "lobby"));
        assert_eq!(burst(rooms.by_key(&second)), Some(2));
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
        assert!(rooms.insert("lobby".into(), room(3)).is_none());
        assert_eq!(rooms.len(), 1);
        assert_eq!(burst(rooms.by_key(&first)), Some(1));
    }
}
