//! The safety properties checked after every step, stated one by one as the issue lists
//! them, on top of the exact comparison with the model (`check.rs`).
//!
//! Each check looks at the server from outside: its outputs, its public accessors and
//! the model. A few overlap with the model comparison on purpose: they say in plain
//! words which rule broke, and they hold even where the model might be wrong.

use crate::model::{Model, Verdict};
use bytes::Bytes;
use ocm_core::{Machine, Output, RoomServer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Who could be reached where before the step: address → (room, username) of members.
pub type Reachable = BTreeMap<SocketAddr, Vec<(String, String)>>;

/// Snapshot of [`Reachable`] from the model.
pub fn reachable(model: &Model) -> Reachable {
    model
        .known_addresses()
        .into_iter()
        .map(|addr| (addr, model.members_at(addr)))
        .collect()
}

fn is_notice(payload: &Bytes) -> bool {
    payload.starts_with(b"* ")
}

/// Rules about the outputs of one input.
pub fn outputs(
    before: &Reachable,
    verdict: Option<&Verdict>,
    outputs: &[Output],
) -> Result<(), String> {
    for output in outputs {
        let Output::Datagram { to, payload } = output else {
            let refused = matches!(
                verdict,
                Some(Verdict::Refused | Verdict::ProbeRefused { .. })
            );
            if refused && !matches!(output, Output::Event(_)) {
                return Err(format!("a refused datagram caused {output:?}"));
            }
            continue;
        };
        if matches!(verdict, Some(Verdict::Refused)) {
            return Err(format!(
                "a refused datagram (bad token, IP or framing) caused a send to {to}"
            ));
        }
        if let Some(Verdict::ProbeRefused { from, len }) = verdict {
            if to != from || &payload[..] != b"* not a member" || payload.len() > *len {
                return Err(format!(
                    "a stranger's probe from {from} ({len} bytes) caused {payload:?} to {to}"
                ));
            }
            continue;
        }
        let sender_answered =
            matches!(verdict, Some(Verdict::Authorized { from, .. }) if from == to);
        let Some(receivers) = before.get(to) else {
            if sender_answered && is_notice(payload) {
                continue; // an answer to /who or a probe, at the address it just verified
            }
            return Err(format!(
                "datagram to {to}, which is no member's verified address"
            ));
        };
        if is_notice(payload) {
            continue;
        }
        let Some(Verdict::Authorized {
            room,
            username,
            message,
            ..
        }) = verdict
        else {
            return Err(format!(
                "chat line {payload:?} sent without a member's message"
            ));
        };
        if message.is_empty() || message == "/exit" {
            return Err(format!("a keepalive or /exit was relayed: {payload:?}"));
        }
        if !payload.starts_with(format!("{username}: ").as_bytes()) {
            return Err(format!(
                "relayed line does not name its sender {username:?}"
            ));
        }
        if !receivers.iter().any(|(r, u)| r == room && u != username) {
            return Err(format!(
                "{username:?}'s line in {room:?} went to {to} = {receivers:?}: not another member of the room"
            ));
        }
    }
    Ok(())
}

/// Rules about the state of the server after a step.
pub fn state(
    server: &RoomServer,
    model: &Model,
    base: Instant,
    now: Duration,
) -> Result<(), String> {
    // The server's own bookkeeping was checked by `ocm_core::invariants::check_step`
    // just before (`World::feed`).
    let cfg = &model.cfg;
    if server.config() != cfg {
        return Err(format!(
            "server reports limits {:?}, it was given {cfg:?}",
            server.config()
        ));
    }
    // Timers: nothing overdue (every due timer was handled, no deadline set in the past),
    // and the server asks to be woken no later than the model's next deadline.
    let wake = server
        .poll_timeout()
        .map(|at| at.saturating_duration_since(base));
    if wake.is_some_and(|at| at <= now) {
        return Err(format!(
            "server asks to be woken at {wake:?}, not after now ({now:?})"
        ));
    }
    if let Some(due) = model.next_deadline() {
        let late = match wake {
            Some(at) => at > due,
            None => true,
        };
        if late {
            return Err(format!(
                "server asks to be woken at {wake:?}, but a timer is due at {due:?}"
            ));
        }
    }
    let counts = server.counts();
    if counts.rooms > cfg.max_rooms
        || counts.members > cfg.max_members
        || counts.connections > cfg.max_handshakes
    {
        return Err(format!("server over its limits: {counts:?}"));
    }
    if server.stats() != &model.stats {
        return Err(format!(
            "server counters differ from the model\n  server: {:?}\n  model:  {:?}",
            server.stats(),
            model.stats
        ));
    }
    if counts.queued_outputs != 0 {
        return Err("outputs left queued after draining".into());
    }
    if counts.connections != model.conn_count() {
        return Err(format!(
            "server holds {} connections, the model {}",
            counts.connections,
            model.conn_count()
        ));
    }
    // Same rooms, and each with the same members in the same order.
    let names: Vec<String> = server.room_names().iter().map(|n| n.to_string()).collect();
    let expected: Vec<&String> = model.rooms.keys().collect();
    if names.iter().ne(expected.iter().copied()) {
        return Err(format!(
            "server has rooms {names:?}, the model {expected:?}"
        ));
    }
    for closed in &model.closed_rooms {
        if server.members_of(closed).is_some() {
            return Err(format!("closed room {closed:?} still holds members"));
        }
    }
    if counts.members != model.member_count() {
        return Err(format!(
            "server holds {} members (tokens), the model {}",
            counts.members,
            model.member_count()
        ));
    }
    for (name, room) in &model.rooms {
        let got = server.members_of(name).unwrap_or_default();
        if got.len() > cfg.max_members_per_room {
            return Err(format!("room {name:?} over max_members_per_room"));
        }
        let want: Vec<_> = room.members.iter().map(|id| &model.members[id]).collect();
        let same = got.len() == want.len()
            && got
                .iter()
                .zip(&want)
                .zip(&room.members)
                .all(|((g, w), id)| {
                    *g.username == *w.username
                        && g.ip == w.ip
                        && g.udp == w.udp
                        && g.is_host == (*id == room.host)
                });
        if !same {
            let want: Vec<_> = want.iter().map(|m| (&m.username, m.ip, m.udp)).collect();
            return Err(format!(
                "members of {name:?} differ\n  server: {got:?}\n  model:  {want:?}"
            ));
        }
        // After the idle timeout every silent member is gone.
        for member in &got {
            let seen = model.last_seen(name, &member.username).unwrap_or_default();
            if seen + cfg.idle_timeout <= now {
                return Err(format!(
                    "{:?} in {name:?} silent since {seen:?}, still a member at {now:?}",
                    member.username
                ));
            }
        }
    }
    Ok(())
}
