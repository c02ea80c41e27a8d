//! The rooms server's bookkeeping: every table agrees with the others and with the
//! configured limits.

use super::{ensure, InvariantViolation};
use crate::output::ConnId;
use crate::rooms::{canonical_ip, RoomServer};
use crate::source::Source;
use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

/// Checks limits, token ↔ member ↔ room agreement, the address index and the
/// per-source counts of connections, members and rooms. Cost is linear in what the
/// server holds (the per-source checks: sources × what they count).
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
                member.is_some_and(|m| crate::token::TokenText::of(&m.token) == *token),
                "token names a missing or other member",
            )?;
        }

        let mut listed = 0;
        for (name, room) in s.rooms.iter() {
            ensure(
                room.members.len() <= c.max_members_per_room,
                "room over max_members_per_room",
            )?;
            ensure(!room.members.is_empty(), "a room without its host")?;
            let addressed = room
                .members
                .iter()
                .filter(|id| s.members.get(id).is_some_and(|m| m.udp.is_some()));
            ensure(
                addressed.count() == room.addressed as usize,
                "a room's count of members with an address is off",
            )?;
            let mut usernames = HashSet::new();
            for id in &room.members {
                let member = s
                    .members
                    .get(id)
                    .ok_or(InvariantViolation("room lists a missing member"))?;
                ensure(
                    **member.room.name() == **name,
                    "member's room differs from the room listing it",
                )?;
                ensure(
                    s.rooms.is_key_of(&member.room, name),
                    "member's room key finds another room",
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
        for (addr, ids) in s.by_addr.iter() {
            ensure(!ids.is_empty(), "empty address index entry")?;
            for id in ids {
                let member = s.members.get(id);
                ensure(
                    member.is_some_and(|m| m.udp == Some(addr)),
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

        let members = s.members.values().map(|m| s.source(m.ip));
        counts_match(
            s.members_per_source.iter(),
            members,
            c.max_members_per_ip,
            "per-source member counts are not the members' own",
        )?;
        counts_match(
            s.rooms_per_source.iter(),
            s.rooms.values().filter_map(|r| r.source),
            c.max_rooms_per_source,
            "per-source room counts are not the rooms' own",
        )?;
        ensure(
            s.members
                .values()
                .all(|m| s.members_per_source.is_key_of(m.source_key, s.source(m.ip))),
            "member's source key is not its source's",
        )?;
        ensure(
            s.members.slots_match(),
            "the member slots disagree with the members",
        )?;
        ensure(
            s.members_per_source.slots_match(),
            "the source bucket slots disagree with the sources",
        )?;
        for room in s.rooms.values() {
            let Some(source) = room.source else { continue };
            let host = room.members.first().and_then(|id| s.members.get(id));
            ensure(
                host.is_some_and(|h| s.source(h.ip) == source),
                "a room counts under another source than its host's",
            )?;
        }

        ensure(
            s.password_sources.len() <= crate::throttle::MAX_ENTRIES
                && s.password_rooms.len() <= crate::throttle::MAX_ENTRIES,
            "password throttle over its bound",
        )?;

        counts_match(
            s.conns_per_source.iter(),
            s.conns.values().map(|conn| conn.source),
            c.max_handshakes_per_ip,
            "per-source connection counts are not the connections' own",
        )?;
        ensure(
            s.incomplete.iter().all(|(_, id)| s.conns.contains_key(id)),
            "an unfinished connection that is not open",
        )?;
        // Exactly the connections still reading their request are displaceable and hold
        // request bytes (not one waiting for the registry, the port, or lingering).
        let reading: BTreeSet<(Instant, ConnId)> = s
            .conns
            .iter()
            .filter(|(_, conn)| conn.reads_request())
            .map(|(id, conn)| (conn.accepted(), *id))
            .collect();
        ensure(
            s.incomplete == reading,
            "the unfinished connections are not those reading their request",
        )?;
        ensure(
            s.conns
                .values()
                .all(|conn| conn.reads_request() || conn.held == 0),
            "a connection done with its request still holds request bytes",
        )?;
        let holding: BTreeSet<(usize, Reverse<(Instant, ConnId)>)> = s
            .conns
            .iter()
            .filter(|(_, conn)| conn.held > 0)
            .map(|(id, conn)| (conn.held, Reverse((conn.accepted(), *id))))
            .collect();
        ensure(
            s.holders == holding,
            "the largest-holder index disagrees with the connections",
        )?;
        let held: usize = s.conns.values().map(|conn| conn.held).sum();
        ensure(
            held == s.request_bytes,
            "request bytes held disagree with the connections'",
        )?;
        ensure(
            s.request_bytes <= c.request_budget,
            "unfinished requests hold more than the request budget",
        )?;
        Ok(())
    }
}

/// `counts` holds, for every source, how many of `items` count under it, each between 1
/// and `max`.
fn counts_match(
    counts: impl Iterator<Item = (Source, usize)>,
    items: impl Iterator<Item = Source>,
    max: usize,
    rule: &'static str,
) -> Result<(), InvariantViolation> {
    let mut actual: HashMap<Source, usize> = HashMap::new();
    for source in items {
        *actual.entry(source).or_insert(0) += 1;
    }
    let listed: HashMap<Source, usize> = counts.collect();
    ensure(listed == actual, rule)?;
    ensure(
        actual.values().all(|n| *n <= max),
        "a per-source count over its limit",
    )
}
