//! One line of the chat as shown: who said it (a member, you, the server, this
//! client) and the text, with the time it arrived.
//!
//! A received line is `NAME: MESSAGE`; names may contain `: ` themselves, so the split
//! prefers the longest name known to be in the room, then the first `: `. A message
//! `/me ACTION` is shown as an action.

use super::command::ME_PREFIX;

/// Who a line is from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A member of the room (or relay).
    Member(String),
    /// A member's `/me` action.
    Action(String),
    /// This client's user.
    Own(String),
    /// This client's user's `/me` action.
    OwnAction(String),
    /// The server (a notice).
    Server,
    /// This client itself (help, errors, connection state).
    Local,
    /// This client, reporting a mistake or a failure.
    Problem,
}

/// One line of the chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When it arrived or was sent, `HH:MM`.
    pub time: String,
    /// Who it is from.
    pub source: Source,
    /// The text (raw: escaped when drawn).
    pub text: String,
}

impl Entry {
    /// An entry.
    pub fn new(time: &str, source: Source, text: impl Into<String>) -> Entry {
        Entry {
            time: time.to_owned(),
            source,
            text: text.into(),
        }
    }

    /// A line received from a member, `NAME: MESSAGE`, split with the help of the
    /// names known to be in the room.
    pub fn received(time: &str, line: &str, is_known: impl Fn(&str) -> bool) -> Entry {
        let (name, message) = split_line(line, is_known);
        match message.strip_prefix(ME_PREFIX) {
            Some(action) => Entry::new(time, Source::Action(name.to_owned()), action),
            None => Entry::new(time, Source::Member(name.to_owned()), message),
        }
    }

    /// A line this user sent (its wire text).
    pub fn sent(time: &str, me: &str, text: &str) -> Entry {
        match text.strip_prefix(ME_PREFIX) {
            Some(action) => Entry::new(time, Source::OwnAction(me.to_owned()), action),
            None => Entry::new(time, Source::Own(me.to_owned()), text),
        }
    }
}

/// Splits `NAME: MESSAGE`: the longest known name followed by `: `, else at the first
/// `: `. A line without one (never sent by a server that follows the protocol) has no
/// name.
pub fn split_line(line: &str, is_known: impl Fn(&str) -> bool) -> (&str, &str) {
    let mut best = None;
    for (at, _) in line.match_indices(": ") {
        if best.is_none() || is_known(&line[..at]) {
            best = Some(at);
        }
    }
    match best {
        Some(at) => (&line[..at], &line[at + 2..]),
        None => ("", line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_first_separator_by_default() {
        assert_eq!(
            split_line("alice: hi: there", |_| false),
            ("alice", "hi: there")
        );
        assert_eq!(split_line("no separator", |_| false), ("", "no separator"));
        assert_eq!(split_line("bob: ", |_| false), ("bob", ""));
    }

    #[test]
    fn a_known_name_with_a_separator_in_it_wins() {
        let known = |name: &str| name == "dr: who";
        assert_eq!(split_line("dr: who: hello", known), ("dr: who", "hello"));
        assert_eq!(split_line("alice: dr: who", known), ("alice", "dr: who"));
    }

    #[test]
    fn actions_are_told_apart_from_messages() {
        let entry = Entry::received("12:00", "bob: /me waves", |_| false);
        assert_eq!(entry.source, Source::Action("bob".into()));
        assert_eq!(entry.text, "waves");
        let entry = Entry::received("12:00", "bob: /metal", |_| false);
        assert_eq!(entry.source, Source::Member("bob".into()));
        assert_eq!(
            Entry::sent("12:01", "me", "/me nods").source,
            Source::OwnAction("me".into())
        );
        assert_eq!(
            Entry::sent("12:01", "me", "hi").source,
            Source::Own("me".into())
        );
    }
}
