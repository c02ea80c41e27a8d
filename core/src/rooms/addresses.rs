//! The address index: which members receive at each UDP address, to find them when a
//! send there fails. Nearly always one member per address, so one is kept inline and
//! only a shared address (members behind one NAT port, or one client in two rooms)
//! takes a vector: no allocation per member.

use super::membership::MemberId;
use crate::hash::{keyed_map, KeyedMap, KeyedState};
use std::net::SocketAddr;

/// The members at one address (never none).
#[derive(Debug)]
enum AtAddr {
    One(MemberId),
    Many(Vec<MemberId>),
}

impl AtAddr {
    fn ids(&self) -> &[MemberId] {
        match self {
            AtAddr::One(id) => std::slice::from_ref(id),
            AtAddr::Many(ids) => ids,
        }
    }
}

/// Members by the address they receive at.
#[derive(Debug)]
pub(crate) struct AddressIndex(KeyedMap<SocketAddr, AtAddr>);

impl AddressIndex {
    /// Empty; addresses hashed with `state` (a peer chooses them).
    pub(crate) fn new(state: KeyedState) -> AddressIndex {
        AddressIndex(keyed_map(state))
    }

    /// Member `id` now receives at `addr`.
    pub(crate) fn add(&mut self, addr: SocketAddr, id: MemberId) {
        match self.0.get_mut(&addr) {
            None => {
                self.0.insert(addr, AtAddr::One(id));
            }
            Some(AtAddr::Many(ids)) => ids.push(id),
            Some(at @ AtAddr::One(_)) => *at = AtAddr::Many(vec![at.ids()[0], id]),
        }
    }

    /// Member `id` no longer receives at `addr`; an address left with none is dropped.
    pub(crate) fn remove(&mut self, addr: SocketAddr, id: MemberId) {
        let Some(at) = self.0.get_mut(&addr) else {
            return;
        };
        match at {
            AtAddr::One(one) if *one == id => {
                self.0.remove(&addr);
            }
            AtAddr::One(_) => {}
            AtAddr::Many(ids) => {
                ids.retain(|m| *m != id);
                match ids[..] {
                    [] => {
                        self.0.remove(&addr);
                    }
                    [one] => *at = AtAddr::One(one),
                    _ => {}
                }
            }
        }
    }

    /// The members at `addr`, in the order they came.
    pub(crate) fn get(&self, addr: SocketAddr) -> &[MemberId] {
        self.0.get(&addr).map_or(&[], AtAddr::ids)
    }

    /// Every address with its members.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[MemberId])> {
        self.0.iter().map(|(addr, at)| (*addr, at.ids()))
    }

    /// Every address.
    pub(crate) fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.0.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn members_come_and_go_at_shared_and_single_addresses() {
        let state = KeyedState::new(&mut rand_chacha::ChaCha20Rng::from_seed([2; 32]));
        let mut index = AddressIndex::new(state);
        let (a, b): (SocketAddr, SocketAddr) = (
            "10.0.0.1:4000".parse().unwrap(),
            "10.0.0.2:4000".parse().unwrap(),
        );
        let [m1, m2, m3] = [
            MemberId::for_tests(1),
            MemberId::for_tests(2),
            MemberId::for_tests(3),
        ];
        index.add(a, m1);
        index.add(a, m2);
        index.add(a, m3);
        index.add(b, m2);
        assert_eq!(index.get(a), [m1, m2, m3]);
        index.remove(a, m2);
        assert_eq!(index.get(a), [m1, m3]);
        index.remove(a, m1);
        assert_eq!(index.get(a), [m3]);
        // removing one that is not there changes nothing
        index.remove(a, m1);
        assert_eq!(index.get(a), [m3]);
        index.remove(a, m3);
        assert!(index.get(a).is_empty());
        assert_eq!(index.addrs().collect::<Vec<_>>(), [b]);
        assert_eq!(index.iter().map(|(_, ids)| ids.len()).sum::<usize>(), 1);
    }
}
