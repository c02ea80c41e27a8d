//! Safe display: text received from the network, made harmless for a terminal.
//!
//! Every control character (Unicode `Cc`: C0, DEL, C1), every bidirectional formatting
//! character (the embeddings, overrides and isolates, LRM, RLM, ALM) and the two Unicode
//! line breaks (U+2028, U+2029) is shown as an escape such as `\x1b` or `\u{202e}`,
//! never written raw. So a member cannot clear the screen, move the cursor, start a
//! new line that looks like a notice (`x\r* room closed`), or reverse the text after
//! it. Emoji sequences (ZWJ, variation selectors) and combining marks stay as they are.

/// True for a character that is shown escaped.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// The escape shown for an unsafe character: `\t`, `\n`, `\r`, `\xHH` below U+0100,
/// `\u{HHHH}` above.
pub fn escape_char(c: char) -> String {
    match c {
        '\t' => "\\t".to_owned(),
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        c if (c as u32) < 0x100 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{{{:04x}}}", c as u32),
    }
}

/// A run of received text: shown as it is, or one unsafe character shown escaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text without unsafe characters.
    Text(&'a str),
    /// The escape of one unsafe character.
    Escaped(String),
}

/// Cuts `text` into safe runs and escapes, in order.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, c) in text.char_indices() {
        if is_unsafe(c) {
            if start < at {
                out.push(Piece::Text(&text[start..at]));
            }
            out.push(Piece::Escaped(escape_char(c)));
            start = at + c.len_utf8();
        }
    }
    if start < text.len() {
        out.push(Piece::Text(&text[start..]));
    }
    out
}

/// `text` with every unsafe character escaped: one line, safe to print.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Escaped(e) => out.push_str(&e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_escaped() {
        assert_eq!(escape("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");
        assert_eq!(
            escape("x\r* room closed: host left"),
            "x\\r* room closed: host left"
        );
        assert_eq!(escape("a\tb\nc\x00\x7f"), "a\\tb\\nc\\x00\\x7f");
        // C1: CSI (U+009B) and NEL (U+0085) start sequences and lines on some terminals.
        assert_eq!(escape("\u{9b}2J\u{85}"), "\\x9b2J\\x85");
    }

    #[test]
    fn bidi_overrides_and_line_separators_are_shown_escaped() {
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        for c in [
            '\u{202a}', '\u{2066}', '\u{2069}', '\u{200f}', '\u{61c}', '\u{2028}',
        ] {
            assert!(escape(&c.to_string()).starts_with("\\u{"), "{c:?}");
        }
    }

    #[test]
    fn text_people_write_is_left_alone() {
        for text in [
            "ラーメン食べに行きませんか",
            "🍜?",
            "👩‍👩‍👧 family",
            "❤️ e\u{301}",
            "* not a notice",
            "back\\slash",
        ] {
            assert_eq!(escape(text), text);
            assert_eq!(pieces(text), vec![Piece::Text(text)]);
        }
    }

    #[test]
    fn pieces_keep_the_order_of_text_and_escapes() {
        assert_eq!(
            pieces("\x07hi\x1b"),
            vec![
                Piece::Escaped("\\x07".into()),
                Piece::Text("hi"),
                Piece::Escaped("\\x1b".into())
            ]
        );
        assert_eq!(pieces(""), vec![]);
    }
}
