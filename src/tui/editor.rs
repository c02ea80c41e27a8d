//! The input line: a text with a cursor, edited grapheme by grapheme (so `👩‍👩‍👧` and
//! `が` move and delete as one), with readline's keys and a history.
//!
//! Widths come from `unicode-width`: CJK and most emoji take two columns, so the cursor
//! lands where the terminal draws it. The editor knows nothing of terminals: keys come
//! in as [`Edit`]s, and [`Editor::view`] gives the part to show for a width.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Most lines kept in the history.
pub const HISTORY_LEN: usize = 1_000;

/// One editing step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Insert text at the cursor (typing or a paste; line breaks become spaces).
    Insert(String),
    /// Move left one grapheme.
    Left,
    /// Move right one grapheme.
    Right,
    /// Move to the start of the previous word.
    WordLeft,
    /// Move past the end of the next word.
    WordRight,
    /// Move to the start.
    Home,
    /// Move to the end.
    End,
    /// Delete the grapheme before the cursor.
    Backspace,
    /// Delete the grapheme under the cursor.
    Delete,
    /// Delete the word before the cursor (Ctrl-W, Alt-Backspace).
    DeleteWordBack,
    /// Delete from the start to the cursor (Ctrl-U).
    DeleteToStart,
    /// Delete from the cursor to the end (Ctrl-K).
    DeleteToEnd,
    /// The previous line of the history.
    HistoryUp,
    /// The next line of the history (or back to the draft).
    HistoryDown,
}

/// The line being typed, its cursor and the history of lines entered.
#[derive(Debug, Default)]
pub struct Editor {
    text: String,
    /// Byte offset, always on a grapheme boundary.
    cursor: usize,
    history: Vec<String>,
    /// Position while browsing the history; `None` on the draft.
    browsing: Option<usize>,
    draft: String,
}

impl Editor {
    /// An empty editor.
    pub fn new() -> Editor {
        Editor::default()
    }

    /// The text typed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Applies one step.
    pub fn apply(&mut self, edit: Edit) {
        match edit {
            Edit::Insert(text) => {
                let text: String = text
                    .chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                    .collect();
                self.text.insert_str(self.cursor, &text);
                self.cursor += text.len();
                self.snap();
            }
            Edit::Left => self.cursor = self.prev_boundary(self.cursor),
            Edit::Right => self.cursor = self.next_boundary(self.cursor),
            Edit::WordLeft => self.cursor = self.word_start_before(self.cursor),
            Edit::WordRight => self.cursor = self.word_end_after(self.cursor),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = self.text.len(),
            Edit::Backspace => {
                let start = self.prev_boundary(self.cursor);
                self.remove(start, self.cursor);
            }
            Edit::Delete => {
                let end = self.next_boundary(self.cursor);
                self.remove(self.cursor, end);
            }
            Edit::DeleteWordBack => {
                let start = self.word_start_before(self.cursor);
                self.remove(start, self.cursor);
            }
            Edit::DeleteToStart => self.remove(0, self.cursor),
            Edit::DeleteToEnd => self.remove(self.cursor, self.text.len()),
            Edit::HistoryUp => self.browse_up(),
            Edit::HistoryDown => self.browse_down(),
        }
    }

    /// Takes the line for sending: the editor is emptied and the line goes into the
    /// history (unless it is empty or repeats the last one).
    pub fn take(&mut self) -> String {
        let line = std::mem::take(&mut self.text);
        self.cursor = 0;
        self.browsing = None;
        self.draft.clear();
        if !line.is_empty() && self.history.last() != Some(&line) {
            if self.history.len() == HISTORY_LEN {
                self.history.remove(0);
            }
            self.history.push(line.clone());
        }
        line
    }

    /// What to show in `width` columns: the visible part of the text and the cursor's
    /// column in it. The text scrolls sideways to keep the cursor in view.
    pub fn view(&self, width: usize) -> (String, usize) {
        let width = width.max(2);
        let graphemes: Vec<(usize, &str)> = self.text.grapheme_indices(true).collect();
        let at = graphemes
            .iter()
            .position(|(i, _)| *i >= self.cursor)
            .unwrap_or(graphemes.len());
        // Walk left from the cursor while it fits, leaving one column for the cursor.
        let mut start = at;
        let mut used = 0;
        while start > 0 {
            let w = graphemes[start - 1].1.width();
            if used + w > width - 1 {
                break;
            }
            used += w;
            start -= 1;
        }
        let mut shown = String::new();
        let mut total = 0;
        for (_, g) in &graphemes[start..] {
            let w = g.width();
            if total + w > width {
                break;
            }
            shown.push_str(g);
            total += w;
        }
        (shown, used)
    }

    fn remove(&mut self, start: usize, end: usize) {
        if start < end {
            self.text.replace_range(start..end, "");
            self.cursor = start;
        }
    }

    /// Keeps the cursor on a grapheme boundary after an insert joined graphemes
    /// (a combining mark typed after a letter).
    fn snap(&mut self) {
        if !self.text.is_char_boundary(self.cursor) || !self.is_boundary(self.cursor) {
            self.cursor = self.next_boundary(self.cursor);
        }
    }

    fn is_boundary(&self, at: usize) -> bool {
        at == self.text.len() || self.text.grapheme_indices(true).any(|(i, _)| i == at)
    }

    fn prev_boundary(&self, at: usize) -> usize {
        self.text
            .grapheme_indices(true)
            .map(|(i, _)| i)
            .take_while(|i| *i < at)
            .last()
            .unwrap_or(0)
    }

    fn next_boundary(&self, at: usize) -> usize {
        self.text
            .grapheme_indices(true)
            .map(|(i, g)| i + g.len())
            .find(|end| *end > at)
            .unwrap_or(self.text.len())
    }

    fn word_start_before(&self, at: usize) -> usize {
        let before: Vec<(usize, &str)> = self.text[..at].grapheme_indices(true).collect();
        let mut i = before.len();
        while i > 0 && is_space(before[i - 1].1) {
            i -= 1;
        }
        while i > 0 && !is_space(before[i - 1].1) {
            i -= 1;
        }
        before
            .get(i)
            .map_or(at.min(before.len()), |(offset, _)| *offset)
            .min(at)
    }

    fn word_end_after(&self, at: usize) -> usize {
        let mut end = at;
        let mut seen_word = false;
        for (i, g) in self.text[at..].grapheme_indices(true) {
            if is_space(g) && seen_word {
                break;
            }
            seen_word |= !is_space(g);
            end = at + i + g.len();
        }
        end
    }

    fn browse_up(&mut self) {
        let next = match self.browsing {
            None if self.history.is_empty() => return,
            None => {
                self.draft = self.text.clone();
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.browsing = Some(next);
        self.show(self.history[next].clone());
    }

    fn browse_down(&mut self) {
        match self.browsing {
            None => {}
            Some(i) if i + 1 < self.history.len() => {
                self.browsing = Some(i + 1);
                self.show(self.history[i + 1].clone());
            }
            Some(_) => {
                self.browsing = None;
                let draft = std::mem::take(&mut self.draft);
                self.show(draft);
            }
        }
    }

    fn show(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }
}

fn is_space(grapheme: &str) -> bool {
    grapheme.chars().all(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(text: &str) -> Editor {
        let mut editor = Editor::new();
        editor.apply(Edit::Insert(text.into()));
        editor
    }

    fn apply(editor: &mut Editor, edits: &[Edit]) {
        for edit in edits {
            editor.apply(edit.clone());
        }
    }

    #[test]
    fn cursor_keys_move_over_cjk_and_emoji_as_one_character() {
        let mut editor = typed("ラーメン👩‍👩‍👧!");
        apply(
            &mut editor,
            &[Edit::Left, Edit::Left, Edit::Insert("食".into())],
        );
        assert_eq!(editor.text(), "ラーメン食👩‍👩‍👧!");
        apply(&mut editor, &[Edit::Right, Edit::Backspace]);
        assert_eq!(editor.text(), "ラーメン食!", "the family emoji goes as one");
        apply(
            &mut editor,
            &[
                Edit::Home,
                Edit::Delete,
                Edit::End,
                Edit::Insert("?".into()),
            ],
        );
        assert_eq!(editor.text(), "ーメン食!?");
    }

    #[test]
    fn a_combining_mark_joins_the_letter_before_it() {
        let mut editor = typed("e");
        editor.apply(Edit::Insert("\u{301}".into()));
        editor.apply(Edit::Backspace);
        assert_eq!(editor.text(), "");
    }

    #[test]
    fn word_keys_and_kills() {
        let mut editor = typed("hello big  world");
        editor.apply(Edit::DeleteWordBack);
        assert_eq!(editor.text(), "hello big  ");
        editor.apply(Edit::DeleteWordBack);
        assert_eq!(editor.text(), "hello ");
        let mut editor = typed("one two three");
        apply(
            &mut editor,
            &[Edit::WordLeft, Edit::WordLeft, Edit::DeleteToEnd],
        );
        assert_eq!(editor.text(), "one ");
        let mut editor = typed("one two three");
        apply(
            &mut editor,
            &[Edit::Home, Edit::WordRight, Edit::DeleteToStart],
        );
        assert_eq!(editor.text(), " two three");
    }

    #[test]
    fn history_browses_back_and_returns_to_the_draft() {
        let mut editor = Editor::new();
        for line in ["first", "second", "second"] {
            editor.apply(Edit::Insert(line.into()));
            assert_eq!(editor.take(), line);
        }
        editor.apply(Edit::Insert("dra".into()));
        editor.apply(Edit::HistoryUp);
        assert_eq!(editor.text(), "second");
        editor.apply(Edit::HistoryUp);
        assert_eq!(editor.text(), "first", "a repeated line is kept once");
        editor.apply(Edit::HistoryUp);
        assert_eq!(editor.text(), "first");
        editor.apply(Edit::HistoryDown);
        editor.apply(Edit::HistoryDown);
        assert_eq!(editor.text(), "dra");
        editor.apply(Edit::Insert("ft".into()));
        assert_eq!(editor.take(), "draft");
    }

    #[test]
    fn the_view_keeps_the_cursor_visible_in_columns() {
        let editor = typed("ラーメン");
        assert_eq!(editor.view(20), ("ラーメン".to_owned(), 8));
        let (shown, cursor) = editor.view(5);
        assert_eq!(
            (shown.as_str(), cursor),
            ("メン", 4),
            "scrolled to the cursor"
        );
        let mut editor = typed("abcdefgh");
        editor.apply(Edit::Home);
        assert_eq!(editor.view(4), ("abcd".to_owned(), 0));
    }

    #[test]
    fn pasted_line_breaks_become_spaces() {
        assert_eq!(typed("a\nb\r\nc").text(), "a b  c");
    }
}
