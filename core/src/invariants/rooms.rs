//! The rooms server's bookkeeping: every table agrees with the others and with the
//! configured limits.

use super::{ensure, InvariantViolation};
use crate::rooms::{canonical_ip, RoomServer};
use std::collections::HashSet;

/// Checks limits, token ↔ member ↔ room agreement, the address index and the per-IP
/// connection counts. Cost is linear in what the server holds.
pub(crate) fn check(server: &RoomServer) -> Result<(), InvariantViolation> {
    let s = server;
    {
        let c = &s.config;
        ensure(s.rooms.len() <= c.max_rooms, "more rooms than max_rooms")?;
        ensure(
            s.members.len() <= c.max_members,
            "more members than max_members",
        )?;
        ensure(
            s.conns.len() <= c.max_handshakes,
            "more connections than max_handshakes",
        )?;

        ensure(
            s.tokens.len() == s.members.len(),
            "tokens and members differ in number",
        )?;
        for (token, id) in &s.tokens {
            let member = s.members.get(id);
            ensure(
                member.is_some_and(|m| m.token == *token),
                "token names a missing or other member",
            )?;
        }

        let mut listed = 0;
        for (name, room) in &s.rooms {
            ensure(
                room.members.len() <= c.max_members_per_room,
                "room over max_members_per_room",
            )?;
            ensure(!room.members.is_empty(), "a room without its host")?;
            let mut usernames = HashSet::new();
            for id in &room.members {
                let member = s
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
            listed == s.members.len(),
            "a member is in no room or in two",
        )?;

        let mut indexed = 0;
        for (addr, ids) in &s.by_addr {
            ensure(!ids.is_empty(), "empty address index entry")?;
            for id in ids {
                let member = s.members.get(id);
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
        let with_udp = s.members.values().filter(|m| m.udp.is_some()).count();
        ensure(indexed == with_udp, "address index misses a member")?;
        ensure(
            s.members
                .values()
                .all(|m| m.liveness.failures() < c.max_send_failures),
            "member kept after max_send_failures",
        )?;

        let members_by_ip: usize = s.members_per_ip.values().sum();
        ensure(
            members_by_ip == s.members.len(),
            "per-IP member counts disagree",
        )?;
        ensure(
            s.members_per_ip
                .values()
                .all(|n| (1..=c.max_members_per_ip).contains(n)),
            "per-IP member count out of range",
        )?;
        for (ip, n) in &s.members_per_ip {
            let actual = s.members.values().filter(|m| m.ip == *ip).count();
            ensure(actual == *n, "per-IP member count is not the members' own")?;
        }

        ensure(
            s.password_sources.len() <= crate::throttle::MAX_ENTRIES
                && s.password_rooms.len() <= crate::throttle::MAX_ENTRIES,
            "password throttle over its bound",
        )?;

        let per_ip: usize = s.conns_per_ip.values().sum();
        ensure(per_ip == s.conns.len(), "per-IP connection counts disagree")?;
        ensure(
            s.conns_per_ip
                .values()
                .all(|n| (1..=c.max_handshakes_per_ip).contains(n)),
            "per-IP connection count out of range",
        )?;
        Ok(())
    }
}
