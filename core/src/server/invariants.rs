//! The server's own consistency checks, for tests, the simulator and the fuzzers.
//!
//! [`Server::check_invariants`] walks every table and confirms they agree with each
//! other and with the configured limits. A violation is always a bug in the server,
//! never the fault of an input.

use super::{canonical_ip, Server};
use std::collections::HashSet;

/// Which rule of the server's bookkeeping was found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvariantViolation(pub &'static str);

impl std::fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "server invariant broken: {}", self.0)
    }
}

impl std::error::Error for InvariantViolation {}

fn ensure(ok: bool, rule: &'static str) -> Result<(), InvariantViolation> {
    if ok {
        Ok(())
    } else {
        Err(InvariantViolation(rule))
    }
}

impl Server {
    /// Checks limits, token ↔ member ↔ room agreement, the address index and the
    /// per-IP connection counts. Cost is linear in what the server holds.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let c = &self.config;
        ensure(self.rooms.len() <= c.max_rooms, "more rooms than max_rooms")?;
        ensure(
            self.members.len() <= c.max_members,
            "more members than max_members",
        )?;
        ensure(
            self.conns.len() <= c.max_handshakes,
            "more connections than max_handshakes",
        )?;

        ensure(
            self.tokens.len() == self.members.len(),
            "tokens and members differ in number",
        )?;
        for (token, id) in &self.tokens {
            let member = self.members.get(id);
            ensure(
                member.is_some_and(|m| m.token == *token),
                "token names a missing or other member",
            )?;
        }

        let mut listed = 0;
        for (name, room) in &self.rooms {
            ensure(
                room.members.len() <= c.max_members_per_room,
                "room over max_members_per_room",
            )?;
            ensure(
                room.members.first() == Some(&room.host),
                "host is not the room's first member",
            )?;
            let mut usernames = HashSet::new();
            for id in &room.members {
                let member = self
                    .members
                    .get(id)
                    .ok_or(InvariantViolation("room lists a missing member"))?;
                ensure(
                    member.room == *name,
                    "member's room differs from the room listing it",
                )?;
                ensure(
                    usernames.insert(&member.username),
                    "username twice in one room",
                )?;
            }
            listed += room.members.len();
        }
        ensure(
            listed == self.members.len(),
            "a member is in no room or in two",
        )?;

        let mut indexed = 0;
        for (addr, ids) in &self.by_addr {
            ensure(!ids.is_empty(), "empty address index entry")?;
            for id in ids {
                let member = self.members.get(id);
                ensure(
                    member.is_some_and(|m| m.udp == Some(*addr)),
                    "address index disagrees with member",
                )?;
                ensure(
                    member.is_some_and(|m| m.ip == canonical_ip(addr.ip())),
                    "member receives at an IP other than its own",
                )?;
            }
            indexed += ids.len();
        }
        let with_udp = self.members.values().filter(|m| m.udp.is_some()).count();
        ensure(indexed == with_udp, "address index misses a member")?;
        ensure(
            self.members
                .values()
                .all(|m| m.failures < c.max_send_failures),
            "member kept after max_send_failures",
        )?;

        let members_by_ip: usize = self.members_per_ip.values().sum();
        ensure(
            members_by_ip == self.members.len(),
            "per-IP member counts disagree",
        )?;
        ensure(
            self.members_per_ip
                .values()
                .all(|n| (1..=c.max_members_per_ip).contains(n)),
            "per-IP member count out of range",
        )?;
        for (ip, n) in &self.members_per_ip {
            let actual = self.members.values().filter(|m| m.ip == *ip).count();
            ensure(actual == *n, "per-IP member count is not the members' own")?;
        }

        let per_ip: usize = self.conns_per_ip.values().sum();
        ensure(
            per_ip == self.conns.len(),
            "per-IP connection counts disagree",
        )?;
        ensure(
            self.conns_per_ip
                .values()
                .all(|n| (1..=c.max_handshakes_per_ip).contains(n)),
            "per-IP connection count out of range",
        )?;
        Ok(())
    }
}
