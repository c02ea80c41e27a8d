//! The state of the full-screen client, without a terminal: the chat lines, the
//! roster, the input line, the connection state and the scroll position. Keys and
//! client events come in (with the time as `HH:MM`), [`Action`]s go out; `view` draws
//! it. Everything here is tested with plain values.

use super::editor::{Edit, Editor};
use crate::chat::command::{self, Command};
use crate::chat::entry::{Entry, Source};
use crate::chat::roster::Roster;
use ocm_core::client::Incoming;
use ocm_core::wire::notice::{read_member_list, Notice};
use ocm_smol::client::ClientEvent;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::cell::Cell;
use std::collections::VecDeque;

/// Most chat lines kept for scrolling back.
pub const SCROLLBACK: usize = 5_000;

/// What the status line says about where we are.
#[derive(Clone, Debug)]
pub struct Place {
    /// The server, as given.
    pub server: String,
    /// The room (`None` in relay mode).
    pub room: Option<String>,
    /// Our username.
    pub me: String,
    /// True when we created the room.
    pub host: bool,
}

/// The connection as the user should see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// In the room.
    Connected,
    /// The membership is gone; joining again.
    Rejoining {
        /// Attempt number.
        attempt: u32,
    },
    /// The session is over (room closed, evicted): only leaving is left.
    Over,
}

/// What the caller must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing (redraw).
    None,
    /// Send this wire text.
    Send(String),
    /// Send the leave and wait for the session to end.
    Leave,
    /// Stop at once: there is no membership to leave.
    Quit,
}

/// The whole client state.
#[derive(Debug)]
pub struct App {
    /// Where we are.
    pub place: Place,
    /// Connection state.
    pub link: Link,
    /// Chat lines, oldest first.
    pub entries: VecDeque<Entry>,
    /// Who is in the room.
    pub roster: Roster,
    /// The input line.
    pub editor: Editor,
    /// Rows scrolled back from the bottom (0: following the chat).
    pub scroll: usize,
    /// Longest message this session can send, in bytes.
    pub max_len: usize,
    /// Size of the chat area at the last draw (columns, rows), for paging.
    pub viewport: Cell<(usize, usize)>,
}

impl App {
    /// A client in `place`, connected, sending at most `max_len` bytes a message.
    pub fn new(place: Place, max_len: usize) -> App {
        App {
            place,
            link: Link::Connected,
            entries: VecDeque::new(),
            roster: Roster::new(),
            editor: Editor::new(),
            scroll: 0,
            max_len,
            viewport: Cell::new((80, 20)),
        }
    }

    /// The first lines: where we are and how to get help.
    pub fn welcome(&mut self, time: &str) {
        let where_ = match &self.place.room {
            Some(room) if self.place.host => format!("you created room {room:?}"),
            Some(room) => format!("you joined room {room:?}"),
            None => "you are on the relay".to_owned(),
        };
        let text = format!(
            "{where_} as {:?} on {}. /help lists the commands, /exit leaves.",
            self.place.me, self.place.server
        );
        self.push(Entry::new(time, Source::Local, text));
    }

    /// Adds a line; when scrolled back, the view stays where it is.
    pub fn push(&mut self, entry: Entry) {
        if self.scroll > 0 {
            let (width, _) = self.viewport.get();
            self.scroll += super::view::rows(&entry, width).len();
        }
        self.entries.push_back(entry);
        if self.entries.len() > SCROLLBACK {
            self.entries.pop_front();
        }
    }

    fn local(&mut self, time: &str, text: impl Into<String>) {
        self.push(Entry::new(time, Source::Local, text));
    }

    /// A problem to show (from this client).
    pub fn problem(&mut self, time: &str, text: impl Into<String>) {
        self.push(Entry::new(time, Source::Problem, text));
    }

    /// Something happened in the session.
    pub fn on_event(&mut self, time: &str, event: ClientEvent) {
        match event {
            ClientEvent::Ready {
                max_message_len,
                rejoined,
                ..
            } => {
                self.max_len = max_message_len;
                self.link = Link::Connected;
                if rejoined {
                    self.roster.clear();
                    self.local(time, "back in: joined again");
                }
            }
            ClientEvent::Message(Incoming::Line(line)) => {
                let roster = &self.roster;
                let entry = Entry::received(time, &line, |name| roster.contains(name));
                if let Source::Member(name) | Source::Action(name) = &entry.source {
                    self.roster.heard(name);
                }
                self.push(entry);
            }
            ClientEvent::Message(Incoming::Notice(notice)) => self.on_notice(time, notice),
            ClientEvent::RoomSize(n) => self.roster.set_count(n),
            ClientEvent::NoLiveness => self.local(
                time,
                "this server does not answer liveness checks: a restart will not be noticed",
            ),
            ClientEvent::Unsent(error) => self.problem(time, format!("not sent: {error}")),
            ClientEvent::BadInput => {}
            ClientEvent::Lost(reason) => {
                self.link = Link::Rejoining { attempt: 0 };
                self.problem(time, format!("connection lost: {reason}"));
            }
            ClientEvent::Retrying { attempt, after } => {
                self.link = Link::Rejoining { attempt };
                self.local(
                    time,
                    format!(
                        "joining again in {} (attempt {attempt}; /exit gives up)",
                        humantime::format_duration(after)
                    ),
                );
            }
            ClientEvent::RetryFailed(error) => {
                self.problem(time, format!("could not join again: {error}"))
            }
        }
    }

    fn on_notice(&mut self, time: &str, notice: Notice) {
        match &notice {
            Notice::Joined(name) => self.roster.joined(name),
            Notice::Left(name) | Notice::WasDisconnected(name) => self.roster.gone(name),
            Notice::Members(list) => {
                let (names, more) = read_member_list(list);
                let names: Vec<String> = names.into_iter().map(|(name, _)| name).collect();
                self.roster.set_members(&names, more);
            }
            Notice::RoomClosed(_) | Notice::Disconnected(_) => self.link = Link::Over,
            Notice::Alive(n) => return self.roster.set_count(*n),
            Notice::NotMember | Notice::Other(_) => {}
        }
        self.push(Entry::new(time, Source::Server, notice.body()));
    }

    /// Text pasted (bracketed paste) goes into the input line.
    pub fn on_paste(&mut self, text: &str) {
        self.editor.apply(Edit::Insert(text.to_owned()));
    }

    /// A key was pressed.
    pub fn on_key(&mut self, time: &str, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let edit = match key.code {
            KeyCode::Enter => return self.submit(time),
            KeyCode::Char('c') if ctrl => return self.leave(),
            KeyCode::Char('d') if ctrl && self.editor.is_empty() => return self.leave(),
            KeyCode::Char('d') if ctrl => Edit::Delete,
            KeyCode::Char('a') if ctrl => Edit::Home,
            KeyCode::Char('e') if ctrl => Edit::End,
            KeyCode::Char('b') if ctrl => Edit::Left,
            KeyCode::Char('f') if ctrl => Edit::Right,
            KeyCode::Char('w') if ctrl => Edit::DeleteWordBack,
            KeyCode::Char('u') if ctrl => Edit::DeleteToStart,
            KeyCode::Char('k') if ctrl => Edit::DeleteToEnd,
            KeyCode::Char('p') if ctrl => Edit::HistoryUp,
            KeyCode::Char('n') if ctrl => Edit::HistoryDown,
            KeyCode::Char('b') if alt => Edit::WordLeft,
            KeyCode::Char('f') if alt => Edit::WordRight,
            KeyCode::Char(_) if ctrl => return Action::None,
            KeyCode::Char(c) => Edit::Insert(c.to_string()),
            KeyCode::Backspace if alt || ctrl => Edit::DeleteWordBack,
            KeyCode::Backspace => Edit::Backspace,
            KeyCode::Delete => Edit::Delete,
            KeyCode::Left if alt || ctrl => Edit::WordLeft,
            KeyCode::Right if alt || ctrl => Edit::WordRight,
            KeyCode::Left => Edit::Left,
            KeyCode::Right => Edit::Right,
            KeyCode::Home => Edit::Home,
            KeyCode::End => Edit::End,
            KeyCode::Up => Edit::HistoryUp,
            KeyCode::Down => Edit::HistoryDown,
            KeyCode::PageUp => {
                self.page(true);
                return Action::None;
            }
            KeyCode::PageDown => {
                self.page(false);
                return Action::None;
            }
            _ => return Action::None,
        };
        self.editor.apply(edit);
        Action::None
    }

    fn page(&mut self, up: bool) {
        let (width, height) = self.viewport.get();
        let step = height.saturating_sub(1).max(1);
        if up {
            let total: usize = self
                .entries
                .iter()
                .map(|e| super::view::rows(e, width).len())
                .sum();
            self.scroll = (self.scroll + step).min(total.saturating_sub(height));
        } else {
            self.scroll = self.scroll.saturating_sub(step);
        }
    }

    /// Leave if there is a membership, else stop at once.
    pub fn leave(&mut self) -> Action {
        match self.link {
            Link::Connected => Action::Leave,
            Link::Rejoining { .. } | Link::Over => Action::Quit,
        }
    }

    fn submit(&mut self, time: &str) -> Action {
        let command = command::parse(self.editor.text());
        let text = match command {
            Command::Nothing => return Action::None,
            Command::Leave => {
                self.editor.take();
                return self.leave();
            }
            Command::Help => {
                self.editor.take();
                self.local(time, "commands:");
                for line in command::help_lines() {
                    self.local(time, format!("  {line}"));
                }
                self.local(time, "keys: PageUp/PageDown scroll back, Up/Down history");
                return Action::None;
            }
            Command::Unknown(name) => {
                self.problem(
                    time,
                    format!("unknown command /{name}, not sent (/help lists them; // sends a literal /)"),
                );
                return Action::None;
            }
            Command::Invalid(why) => {
                self.problem(time, why);
                return Action::None;
            }
            Command::Who => command::WHO.to_owned(),
            Command::Say(text) | Command::Act(text) => text,
        };
        if self.link != Link::Connected {
            self.problem(
                time,
                "not connected: the line stays here until the room is back",
            );
            return Action::None;
        }
        if text.len() > self.max_len {
            self.problem(
                time,
                format!(
                    "too long to send: {} bytes, at most {}",
                    text.len(),
                    self.max_len
                ),
            );
            return Action::None;
        }
        self.editor.take();
        self.scroll = 0;
        if text != command::WHO {
            self.push(Entry::sent(time, &self.place.me, &text));
        }
        Action::Send(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocm_smol::client::LostReason;
    use std::time::Duration;

    fn app() -> App {
        App::new(
            Place {
                server: "127.0.0.1:8000".into(),
                room: Some("lobby".into()),
                me: "bob".into(),
                host: false,
            },
            100,
        )
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            assert_eq!(app.on_key("12:00", key(KeyCode::Char(c))), Action::None);
        }
    }

    #[test]
    fn enter_sends_and_shows_the_line_as_yours() {
        let mut app = app();
        type_text(&mut app, "ラーメン");
        assert_eq!(
            app.on_key("12:01", key(KeyCode::Enter)),
            Action::Send("ラーメン".into())
        );
        assert!(app.editor.is_empty());
        let last = app.entries.back().unwrap();
        assert_eq!(last.source, Source::Own("bob".into()));
        assert_eq!(last.time, "12:01");
    }

    #[test]
    fn incoming_lines_leave_the_typed_line_alone() {
        let mut app = app();
        type_text(&mut app, "ラーメン食べに行き");
        app.on_event(
            "12:02",
            ClientEvent::Message(Incoming::Line("alice: どこにいるの？".into())),
        );
        app.on_event(
            "12:02",
            ClientEvent::Message(Incoming::Line("alice: 🍜?".into())),
        );
        assert_eq!(app.editor.text(), "ラーメン食べに行き");
        type_text(&mut app, "ませんか");
        assert_eq!(
            app.on_key("12:03", key(KeyCode::Enter)),
            Action::Send("ラーメン食べに行きませんか".into())
        );
    }

    #[test]
    fn commands_are_local_and_never_sent_as_text() {
        let mut app = app();
        type_text(&mut app, "/help");
        assert_eq!(app.on_key("12:00", key(KeyCode::Enter)), Action::None);
        assert!(app.entries.iter().any(|e| e.text.contains("/who")));
        type_text(&mut app, "/who ");
        assert_eq!(
            app.on_key("12:00", key(KeyCode::Enter)),
            Action::Send("/who".into())
        );
        type_text(&mut app, "/frob");
        assert_eq!(app.on_key("12:00", key(KeyCode::Enter)), Action::None);
        assert_eq!(
            app.editor.text(),
            "/frob",
            "a mistyped command stays to be fixed"
        );
        assert_eq!(app.entries.back().unwrap().source, Source::Problem);
        app.on_key("12:00", ctrl('u'));
        type_text(&mut app, "/exit ");
        assert_eq!(app.on_key("12:00", key(KeyCode::Enter)), Action::Leave);
    }

    #[test]
    fn a_lost_connection_keeps_the_line_and_quits_without_a_leave() {
        let mut app = app();
        app.on_event("12:00", ClientEvent::Lost(LostReason::Unreachable));
        app.on_event(
            "12:00",
            ClientEvent::Retrying {
                attempt: 1,
                after: Duration::from_millis(500),
            },
        );
        assert_eq!(app.link, Link::Rejoining { attempt: 1 });
        type_text(&mut app, "hello");
        assert_eq!(app.on_key("12:00", key(KeyCode::Enter)), Action::None);
        assert_eq!(app.editor.text(), "hello");
        assert_eq!(app.on_key("12:00", ctrl('c')), Action::Quit);
        app.on_event(
            "12:01",
            ClientEvent::Ready {
                local: "127.0.0.1:1".parse().unwrap(),
                max_message_len: 100,
                rejoined: true,
            },
        );
        assert_eq!(app.link, Link::Connected);
        assert_eq!(
            app.on_key("12:01", key(KeyCode::Enter)),
            Action::Send("hello".into())
        );
    }

    #[test]
    fn a_message_too_long_is_refused_before_sending() {
        let mut app = app();
        app.max_len = 4;
        type_text(&mut app, "hello");
        assert_eq!(app.on_key("12:00", key(KeyCode::Enter)), Action::None);
        assert_eq!(app.editor.text(), "hello");
    }

    #[test]
    fn the_roster_follows_notices_and_the_server_count() {
        let mut app = app();
        app.on_event("12:00", ClientEvent::RoomSize(2));
        app.on_event(
            "12:00",
            ClientEvent::Message(Incoming::Notice(Notice::Joined("carol".into()))),
        );
        assert_eq!(app.roster.count(), Some(3));
        app.on_event(
            "12:00",
            ClientEvent::Message(Incoming::Notice(Notice::Members(
                "alice (host), bob, carol, and 2 more".into(),
            ))),
        );
        assert_eq!(app.roster.count(), Some(5));
        assert_eq!(app.entries.back().unwrap().source, Source::Server);
    }

    #[test]
    fn ctrl_d_leaves_on_an_empty_line_and_deletes_otherwise() {
        let mut app = app();
        type_text(&mut app, "ab");
        app.on_key("12:00", key(KeyCode::Home));
        assert_eq!(app.on_key("12:00", ctrl('d')), Action::None);
        assert_eq!(app.editor.text(), "b");
        app.on_key("12:00", ctrl('d'));
        assert_eq!(app.on_key("12:00", ctrl('d')), Action::Leave);
    }

    #[test]
    fn history_comes_back_with_up() {
        let mut app = app();
        type_text(&mut app, "first");
        app.on_key("12:00", key(KeyCode::Enter));
        app.on_key("12:00", key(KeyCode::Up));
        assert_eq!(app.editor.text(), "first");
    }
}
