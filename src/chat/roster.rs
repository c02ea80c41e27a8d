//! Who is in the room, as far as this client can tell: from the join and leave
//! notices, the senders of lines, the `/who` answer and the liveness answer's count.

use std::collections::BTreeSet;

/// The members this client knows of, and the room's size when the server said it.
#[derive(Debug, Default)]
pub struct Roster {
    names: BTreeSet<String>,
    count: Option<usize>,
}

impl Roster {
    /// An empty roster (size unknown).
    pub fn new() -> Roster {
        Roster::default()
    }

    /// True if `name` is known to be in the room.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// How many members the room has, you included, if known.
    pub fn count(&self) -> Option<usize> {
        self.count
    }

    /// A member joined.
    pub fn joined(&mut self, name: &str) {
        if self.names.insert(name.to_owned()) {
            self.count = self.count.map(|n| n + 1);
        }
    }

    /// A member left or was disconnected.
    pub fn gone(&mut self, name: &str) {
        self.names.remove(name);
        self.count = self.count.map(|n| n.saturating_sub(1).max(1));
    }

    /// A member was heard from (a line): known, without changing the count.
    pub fn heard(&mut self, name: &str) {
        if !name.is_empty() {
            self.names.insert(name.to_owned());
        }
    }

    /// The server told the size of the room.
    pub fn set_count(&mut self, count: usize) {
        self.count = Some(count);
    }

    /// The server listed the members (`hidden` more were left out of the list).
    pub fn set_members(&mut self, names: &[String], hidden: usize) {
        self.names = names.iter().cloned().collect();
        self.count = Some(names.len() + hidden);
    }

    /// A new session (after a rejoin): nothing is known any more.
    pub fn clear(&mut self) {
        *self = Roster::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_leaves_adjust_a_known_count() {
        let mut roster = Roster::new();
        roster.joined("bob");
        assert_eq!(roster.count(), None, "unknown until the server says");
        roster.set_count(2);
        roster.joined("carol");
        roster.joined("carol");
        assert_eq!(roster.count(), Some(3), "a repeated join counts once");
        roster.gone("bob");
        assert_eq!(roster.count(), Some(2));
        assert!(!roster.contains("bob") && roster.contains("carol"));
    }

    #[test]
    fn a_member_list_replaces_what_was_known() {
        let mut roster = Roster::new();
        roster.heard("old");
        roster.set_members(&["alice".into(), "bob".into()], 3);
        assert_eq!(roster.count(), Some(5));
        assert!(!roster.contains("old") && roster.contains("alice"));
        roster.clear();
        assert_eq!(roster.count(), None);
    }
}
