//! Drawing the full-screen client with ratatui: the chat (wrapped, scrolled), the
//! status line, the input line.
//!
//! Each chat row starts with the time and a one-column mark that only this client
//! writes: `*` a server notice, `>` your own line, `-` a note from this client, `!` a
//! problem, blank for members. Members' text starts after it, so whatever a member
//! sends can never sit where a notice's mark is; received control characters are
//! drawn as escapes, in reverse video. Names get a colour from a fixed hash, the same
//! in every session.

use super::app::{App, Link};
use crate::chat::entry::{Entry, Source};
use crate::chat::escape::{pieces, Piece};
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

/// Columns before the text of every row: `HH:MM` and a space, the mark and a space.
pub const INDENT: usize = 8;

const PALETTE: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightMagenta,
    Color::LightBlue,
    Color::LightCyan,
    Color::Red,
];

/// A name's colour: FNV-1a of its bytes, so the same in every session and on every
/// machine. Yellow (notices) is never used.
pub fn name_colour(name: &str) -> Color {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    PALETTE[hash as usize % PALETTE.len()]
}

fn escaped_style() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// The spans of one entry, before wrapping.
fn spans(entry: &Entry) -> Vec<(String, Style)> {
    let dim = Style::new().fg(Color::DarkGray);
    let (mark, mark_style) = match entry.source {
        Source::Server => (
            "*",
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        Source::Own(_) | Source::OwnAction(_) => (">", Style::new().add_modifier(Modifier::BOLD)),
        Source::Local => ("-", Style::new().fg(Color::Cyan)),
        Source::Problem => (
            "!",
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
        Source::Member(_) | Source::Action(_) => (" ", Style::new()),
    };
    let mut out = vec![
        (format!("{:<5} ", entry.time), dim),
        (format!("{mark} "), mark_style),
    ];
    let text_style = match &entry.source {
        Source::Server => Style::new().fg(Color::Yellow),
        Source::Local => Style::new().fg(Color::Cyan),
        Source::Problem => Style::new().fg(Color::Red),
        Source::Action(_) | Source::OwnAction(_) => Style::new().add_modifier(Modifier::ITALIC),
        Source::Member(_) | Source::Own(_) => Style::new(),
    };
    let add_text = |out: &mut Vec<(String, Style)>, text: &str, style: Style| {
        for piece in pieces(text) {
            match piece {
                Piece::Text(t) => out.push((t.to_owned(), style)),
                Piece::Escaped(e) => out.push((e, escaped_style())),
            }
        }
    };
    match &entry.source {
        Source::Member(name) | Source::Action(name) => {
            let style = Style::new()
                .fg(name_colour(name))
                .add_modifier(Modifier::BOLD);
            add_text(&mut out, name, style);
        }
        Source::Own(name) | Source::OwnAction(name) => {
            let style = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
            add_text(&mut out, name, style);
        }
        _ => {}
    }
    match &entry.source {
        Source::Member(_) | Source::Own(_) => out.push((": ".into(), Style::new())),
        Source::Action(_) | Source::OwnAction(_) => out.push((" ".into(), text_style)),
        _ => {}
    }
    add_text(&mut out, &entry.text, text_style);
    out
}

/// The rows an entry takes at `width` columns: wrapped at spaces where it can, else
/// by grapheme, by display width; continuation rows are indented past the time and the
/// mark.
pub fn rows(entry: &Entry, width: usize) -> Vec<Line<'static>> {
    let width = width.max(INDENT + 4);
    let mut rows: Vec<Vec<(String, Style)>> = Vec::new();
    let mut row: Vec<(String, Style)> = Vec::new();
    let mut used = 0;
    for (text, style) in spans(entry) {
        for grapheme in text.graphemes(true) {
            let w = grapheme.width();
            if used + w > width {
                // Carry the word being written to the next row, if a space before it
                // (past the indent) leaves something on this one.
                let start = if rows.is_empty() { 0 } else { INDENT };
                // A word too long for a row of its own is cut instead, and so is
                // CJK text, which breaks between any two characters.
                let room = width - INDENT - w;
                let carried = match row.iter().rposition(|(g, _)| g == " ") {
                    Some(space)
                        if space > start
                            && !is_gutter(&rows, space)
                            && cells_width(&row[space + 1..]) <= room
                            && row[space + 1..].iter().all(|(g, _)| g.width() < 2) =>
                    {
                        row.split_off(space + 1)
                    }
                    _ => Vec::new(),
                };
                rows.push(std::mem::take(&mut row));
                row.push((" ".repeat(INDENT), Style::new()));
                used = INDENT + cells_width(&carried);
                row.extend(carried);
            }
            row.push((grapheme.to_owned(), style));
            used += w;
        }
    }
    rows.push(row);
    rows.into_iter().map(line_of).collect()
}

fn cells_width(cells: &[(String, Style)]) -> usize {
    cells.iter().map(|(g, _)| g.width()).sum()
}

/// True when the space at `index` of the first row is part of the time and mark.
fn is_gutter(rows: &[Vec<(String, Style)>], index: usize) -> bool {
    rows.is_empty() && index < INDENT
}

/// Cells merged into spans of one style.
fn line_of(cells: Vec<(String, Style)>) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_style = Style::new();
    for (text, style) in cells {
        if style != run_style && !run.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut run), run_style));
        }
        run_style = style;
        run.push_str(&text);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, run_style));
    }
    Line::from(spans)
}

/// The status line's text.
pub fn status_text(app: &App) -> String {
    let place = &app.place;
    let mut parts = Vec::new();
    if app.scroll > 0 {
        parts.push(format!("scrolled back {} rows (PageDown)", app.scroll));
    }
    parts.push(format!("ocm {}", place.server));
    parts.push(match &place.room {
        Some(room) => format!("room {}", crate::chat::escape::escape(room)),
        None => "relay".to_owned(),
    });
    let host = if place.host { " (host)" } else { "" };
    parts.push(format!("{}{host}", crate::chat::escape::escape(&place.me)));
    parts.push(match app.roster.count() {
        Some(1) => "1 member".to_owned(),
        Some(n) => format!("{n} members"),
        None => "? members".to_owned(),
    });
    parts.push(match app.link {
        Link::Connected => "connected".to_owned(),
        Link::Rejoining { attempt: 0 } => "connection lost".to_owned(),
        Link::Rejoining { attempt } => format!("rejoining (attempt {attempt})"),
        Link::Over => "session over: /exit".to_owned(),
    });
    format!(" {}", parts.join(" │ "))
}

/// Draws the whole screen.
pub fn render(app: &App, frame: &mut Frame) {
    let [chat, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let (width, height) = (usize::from(chat.width), usize::from(chat.height));
    app.viewport.set((width, height));
    // Wrap from the newest entry back until the screen and the scroll are covered.
    let want = height + app.scroll;
    let mut lines: Vec<Line<'static>> = Vec::new();
    for entry in app.entries.iter().rev() {
        let mut entry_rows = rows(entry, width);
        entry_rows.extend(lines);
        lines = entry_rows;
        if lines.len() >= want {
            break;
        }
    }
    let end = lines.len().saturating_sub(app.scroll);
    let start = end.saturating_sub(height);
    let mut shown: Vec<Line<'static>> = lines[start..end].to_vec();
    // Keep the newest line at the bottom, next to the input.
    while shown.len() < height {
        shown.insert(0, Line::raw(""));
    }
    frame.render_widget(Paragraph::new(shown), chat);

    let status_style = match app.link {
        Link::Connected => Style::new().fg(Color::Black).bg(Color::Cyan),
        _ => Style::new().fg(Color::White).bg(Color::Red),
    };
    frame.render_widget(Paragraph::new(status_text(app)).style(status_style), status);

    let prompt = "> ";
    let field = usize::from(input.width).saturating_sub(prompt.len());
    let (text, cursor) = app.editor.view(field);
    let line = Line::from(vec![
        Span::styled(prompt, Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(text),
    ]);
    frame.render_widget(Paragraph::new(line), input);
    let x = input.x + (prompt.len() + cursor).min(usize::from(input.width)) as u16;
    frame.set_cursor_position(Position::new(x, input.y));
}

#[cfg(test)]
mod tests {
    use super::super::app::Place;
    use super::*;
    use ocm_core::client::Incoming;
    use ocm_smol::client::ClientEvent;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn app() -> App {
        App::new(
            Place {
                server: "127.0.0.1:8000".into(),
                room: Some("lobby".into()),
                me: "bob".into(),
                host: false,
            },
            4000,
        )
    }

    fn screen(app: &App, width: u16, height: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| render(app, frame)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let rows = (0..height)
            .map(|y| {
                let mut row = String::new();
                let mut x = 0;
                while x < width {
                    let cell = &buffer[(x, y)];
                    row.push_str(cell.symbol());
                    x += cell.symbol().width().max(1) as u16;
                }
                row.trim_end().to_owned()
            })
            .collect();
        (rows, buffer)
    }

    fn line(app: &mut App, text: &str) {
        app.on_event("09:41", ClientEvent::Message(Incoming::Line(text.into())));
    }

    #[test]
    fn rows_show_time_mark_name_and_text() {
        let mut app = app();
        line(&mut app, "alice: hi bob");
        app.push(Entry::sent("09:42", "bob", "hi alice"));
        app.on_event(
            "09:43",
            ClientEvent::Message(Incoming::Notice(ocm_core::wire::notice::Notice::Joined(
                "carol".into(),
            ))),
        );
        let (rows, _) = screen(&app, 60, 8);
        assert_eq!(rows[3], "09:41   alice: hi bob");
        assert_eq!(rows[4], "09:42 > bob: hi alice");
        assert_eq!(rows[5], "09:43 * carol joined");
        assert!(
            rows[6].contains("room lobby") && rows[6].contains("bob"),
            "{}",
            rows[6]
        );
        assert_eq!(rows[7], ">");
    }

    #[test]
    fn a_member_cannot_draw_a_notice_or_control_the_terminal() {
        let mut app = app();
        line(&mut app, "mallory: x\r* room closed: host left");
        line(&mut app, "mallory: \x1b[2J\x1b[Hgone");
        line(&mut app, "mallory: abc\u{202e}fed");
        let (rows, buffer) = screen(&app, 60, 6);
        assert_eq!(rows[1], "09:41   mallory: x\\r* room closed: host left");
        assert_eq!(rows[2], "09:41   mallory: \\x1b[2J\\x1b[Hgone");
        assert_eq!(rows[3], "09:41   mallory: abc\\u{202e}fed");
        // The escape is drawn in reverse video, the text around it is not.
        let x = "09:41   mallory: x".len() as u16;
        assert!(buffer[(x, 1)].modifier.contains(Modifier::REVERSED));
        assert!(!buffer[(x + 2, 1)].modifier.contains(Modifier::REVERSED));
        for row in &rows {
            assert!(!row.chars().any(crate::chat::escape::is_unsafe));
        }
    }

    #[test]
    fn long_lines_wrap_at_spaces_under_the_text() {
        let entry = Entry::new(
            "10:00",
            Source::Member("a".into()),
            "one two three four five",
        );
        let texts: Vec<String> = rows(&entry, 24).iter().map(|l| l.to_string()).collect();
        assert_eq!(texts, ["10:00   a: one two ", "        three four five"]);
        let long = Entry::new("10:00", Source::Member("a".into()), "x".repeat(40));
        let texts: Vec<String> = rows(&long, 24).iter().map(|l| l.to_string()).collect();
        assert_eq!(texts[0], "10:00   a: ", "a long word starts a row");
        assert_eq!(
            texts[1],
            format!("        {}", "x".repeat(16)),
            "and is cut there"
        );
    }

    #[test]
    fn long_cjk_lines_wrap_under_the_text_at_character_boundaries() {
        let entry = Entry::new("10:00", Source::Member("a".into()), "ラーメン".repeat(4));
        let wrapped = rows(&entry, 20);
        let texts: Vec<String> = wrapped.iter().map(|l| l.to_string()).collect();
        assert_eq!(texts[0], "10:00   a: ラーメン");
        assert!(texts[1].starts_with("        ラ"), "{texts:?}");
        for text in &texts {
            assert!(text.width() <= 20, "{text:?} is {} wide", text.width());
        }
    }

    #[test]
    fn names_keep_their_colour() {
        assert_eq!(name_colour("alice"), name_colour("alice"));
        let colours: std::collections::HashSet<_> = ["alice", "bob", "carol", "dave", "erin"]
            .iter()
            .map(|n| name_colour(n))
            .collect();
        assert!(colours.len() >= 3, "names are told apart by colour");
        assert!(!colours.contains(&Color::Yellow));
        let mut app = app();
        line(&mut app, "alice: hi");
        let (_, buffer) = screen(&app, 40, 4);
        assert_eq!(buffer[(8, 1)].fg, name_colour("alice"));
    }

    #[test]
    fn page_up_scrolls_back_and_new_lines_do_not_move_the_view() {
        let mut app = app();
        for i in 0..30 {
            line(&mut app, &format!("alice: line {i}"));
        }
        let (rows, _) = screen(&app, 40, 7);
        assert_eq!(rows[4], "09:41   alice: line 29");
        app.on_key("09:41", key(ratatui::crossterm::event::KeyCode::PageUp));
        let (rows, _) = screen(&app, 40, 7);
        assert_eq!(rows[4], "09:41   alice: line 25");
        assert!(rows[5].contains("scrolled back"));
        line(&mut app, "alice: line 30");
        let (rows, _) = screen(&app, 40, 7);
        assert_eq!(rows[4], "09:41   alice: line 25", "the view stays");
        app.on_key("09:41", key(ratatui::crossterm::event::KeyCode::PageDown));
        let (rows, _) = screen(&app, 40, 7);
        assert_eq!(rows[4], "09:41   alice: line 29", "one page down");
        app.on_key("09:41", key(ratatui::crossterm::event::KeyCode::PageDown));
        let (rows, _) = screen(&app, 40, 7);
        assert_eq!(rows[4], "09:41   alice: line 30", "back at the bottom");
        assert!(!rows[5].contains("scrolled back"));
    }

    #[test]
    fn the_input_line_keeps_its_text_and_cursor_while_lines_arrive() {
        let mut app = app();
        for c in "ラーメン食べに行き".chars() {
            app.on_key("09:41", key(ratatui::crossterm::event::KeyCode::Char(c)));
        }
        line(&mut app, "alice: どこにいるの？");
        line(&mut app, "alice: 🍜?");
        let mut terminal = Terminal::new(TestBackend::new(40, 6)).unwrap();
        terminal.draw(|frame| render(&app, frame)).unwrap();
        let (rows, _) = screen(&app, 40, 6);
        assert_eq!(rows[5], "> ラーメン食べに行き");
        assert_eq!(rows[3], "09:41   alice: 🍜?");
        let cursor = terminal.get_cursor_position().unwrap();
        assert_eq!((cursor.x, cursor.y), (2 + 18, 5));
    }

    fn key(code: ratatui::crossterm::event::KeyCode) -> ratatui::crossterm::event::KeyEvent {
        ratatui::crossterm::event::KeyEvent::new(
            code,
            ratatui::crossterm::event::KeyModifiers::NONE,
        )
    }

    #[test]
    fn the_status_line_counts_members_and_tells_the_link() {
        let mut app = app();
        assert!(status_text(&app).contains("? members"));
        app.on_event("09:41", ClientEvent::RoomSize(3));
        let text = status_text(&app);
        for part in [
            "127.0.0.1:8000",
            "room lobby",
            "bob",
            "3 members",
            "connected",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
        app.on_event(
            "09:41",
            ClientEvent::Lost(ocm_smol::client::LostReason::Unreachable),
        );
        assert!(status_text(&app).contains("connection lost"));
    }
}
