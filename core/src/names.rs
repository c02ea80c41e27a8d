//! The rules for room names and usernames.
//!
//! Both are 1..=255 bytes of UTF-8 without control characters (C0, DEL, C1) and without
//! format characters (Unicode category Cf: zero-width spaces and joiners, bidi
//! overrides and isolates, the soft hyphen, tags), which would let a name look like
//! another or reorder the text around it (PRECIS, RFC 8265, disallows both). A username
//! must not start with `*`: server notices start with `* `, so no relayed line can be
//! mistaken for one. Names compare byte for byte (no case folding, no normalization).
//!
//! A chat message may hold anything but control characters other than TAB
//! ([`message`]): a message cannot move the cursor, clear a screen, or start a new line
//! that looks like a server notice on a terminal that prints it raw.

use crate::output::DropReason;

/// Why a name was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    /// Zero bytes.
    Empty,
    /// More than 255 bytes.
    TooLong,
    /// Not valid UTF-8.
    NotUtf8,
    /// Contains a control character (C0, DEL or C1).
    ControlCharacter,
    /// Contains a format character (Unicode Cf: zero-width, bidi controls, ...).
    FormatCharacter,
    /// A username starting with `*`.
    StartsWithStar,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameError::Empty => "name is empty",
            NameError::TooLong => "name is longer than 255 bytes",
            NameError::NotUtf8 => "name is not valid UTF-8",
            NameError::ControlCharacter => "name contains a control character",
            NameError::FormatCharacter => {
                "name contains an invisible format character (zero-width or bidi)"
            }
            NameError::StartsWithStar => "username starts with '*'",
        })
    }
}

impl std::error::Error for NameError {}

/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Checks a room name.
pub fn room_name(bytes: &[u8]) -> Result<&str, NameError> {
    if bytes.is_empty() {
        return Err(NameError::Empty);
    }
    if bytes.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| NameError::NotUtf8)?;
    if printable_ascii(bytes) {
        // no control character, and every format character is outside ASCII
        return Ok(text);
    }
    if text.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    if text.chars().any(is_format) {
        return Err(NameError::FormatCharacter);
    }
    Ok(text)
}

/// True when every byte is printable ASCII (space to `~`) or TAB (if `tab`): text that
/// holds no control character (C1 controls are two bytes in UTF-8) and no format
/// character, told apart without decoding a char. The common case, every byte
/// printable, is told by one maximum ([`highest_above_space`]); only text with a byte
/// outside (a TAB, say) is looked at byte by byte.
fn printable_ascii_or(bytes: &[u8], tab: bool) -> bool {
    // ' '..='~' is 0x20..=0x7E: subtracting 0x20 maps it onto 0..=0x5E, and every
    // other byte above that
    const PRINTABLE: u8 = b'~' - b' ';
    highest_above_space(bytes) <= PRINTABLE
        || tab
            && bytes
                .iter()
                .all(|&b| b.wrapping_sub(b' ') <= PRINTABLE || b == b'\t')
}

/// The highest of `bytes` less 0x20 (wrapping: the bytes below the space come out
/// highest), 0 if empty. Whole 32-byte chunks go through [`chunks_above_space`]; the
/// bytes they leave over go through it again inside one last chunk that ends where
/// `bytes` does (a byte counted twice does not change a maximum), not one by one.
fn highest_above_space(bytes: &[u8]) -> u8 {
    let Some(start) = bytes.len().checked_sub(32) else {
        return fold_above_space(bytes);
    };
    let (whole, rest) = bytes.as_chunks::<32>();
    let high = chunks_above_space(whole);
    match rest.is_empty() {
        true => high,
        false => high.max(chunks_above_space(bytes[start..].as_chunks::<32>().0)),
    }
}

/// [`highest_above_space`] of whole chunks: a fold with no early exit, which the
/// compiler takes 32 bytes a step (`paddb` and `pmaxub` on SSE2). Not inlined, so that
/// the whole chunks and the last one run the same loop.
#[inline(never)]
fn chunks_above_space(chunks: &[[u8; 32]]) -> u8 {
    fold_above_space(chunks.as_flattened())
}

/// The fold itself: the highest of `bytes` less 0x20, wrapping.
fn fold_above_space(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0, |high, &b| high.max(b.wrapping_sub(b' ')))
}

fn printable_ascii(bytes: &[u8]) -> bool {
    printable_ascii_or(bytes, false)
}

/// The code points of Unicode's general category Cf (format), as of Unicode 15.1.
const FORMAT: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// True for a format character (category Cf).
pub fn is_format(c: char) -> bool {
    let c = u32::from(c);
    FORMAT.iter().any(|&(low, high)| (low..=high).contains(&c))
}

/// True when `bytes` are printable ASCII or TAB: a chat message that is UTF-8 and passes
/// [`message`], told in one pass over the bytes (the common case, which then needs
/// neither a UTF-8 check nor a look at each character).
pub fn plain_message(bytes: &[u8]) -> bool {
    printable_ascii_or(bytes, true)
}

/// Checks a chat message as it came in a datagram, the same in rooms and relay mode:
/// UTF-8 (else [`DropReason::NotUtf8`]) with no control character but TAB (else
/// [`DropReason::ControlCharacter`]). Printable ASCII, the common case, is told in one
/// pass ([`plain_message`]).
pub(crate) fn check_message(bytes: &[u8]) -> Result<(), DropReason> {
    if !plain_message(bytes) {
        let text = std::str::from_utf8(bytes).map_err(|_| DropReason::NotUtf8)?;
        message(text).map_err(|_| DropReason::ControlCharacter)?;
    }
    Ok(())
}

/// Checks a chat message's text: no control character but TAB.
pub fn message(text: &str) -> Result<&str, NameError> {
    if printable_ascii_or(text.as_bytes(), true) {
        return Ok(text);
    }
    if text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(NameError::ControlCharacter);
    }
    Ok(text)
}

/// Checks a username: a room name's rules, and no leading `*`.
pub fn username(bytes: &[u8]) -> Result<&str, NameError> {
    let text = room_name(bytes)?;
    if text.starts_with('*') {
        return Err(NameError::StartsWithStar);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_chunked_check_is_the_byte_by_byte_rule(
            // lengths past three 32-byte chunks, with and without bytes left over
            bytes in proptest::collection::vec(any::<u8>(), 0..140),
            printable in proptest::collection::vec(0x20u8..0x7f, 0..140),
            at in any::<prop::sample::Index>(),
            odd in any::<u8>(),
            tab: bool,
        ) {
            let rule = |bytes: &[u8]| {
                bytes.iter().all(|&b| (0x20..=0x7e).contains(&b) || (tab && b == b'\t'))
            };
            prop_assert_eq!(printable_ascii_or(&bytes, tab), rule(&bytes));
            // mostly printable, one byte anywhere that may not be
            let mut one_odd = printable.clone();
            if !one_odd.is_empty() {
                one_odd[at.index(printable.len())] = odd;
            }
            prop_assert_eq!(printable_ascii_or(&one_odd, tab), rule(&one_odd));
        }
    }

    #[test]
    fn accepts_plain_and_multibyte_names() {
        assert_eq!(room_name("lobby".as_bytes()), Ok("lobby"));
        assert_eq!(username("さくら".as_bytes()), Ok("さくら"));
        assert_eq!(room_name(&[b'a'; 255]).map(str::len), Ok(255));
        assert_eq!(username("a*b".as_bytes()), Ok("a*b"));
    }

    #[test]
    fn refuses_each_bad_name() {
        assert_eq!(room_name(b""), Err(NameError::Empty));
        assert_eq!(room_name(&[b'a'; 256]), Err(NameError::TooLong));
        assert_eq!(room_name(&[0xff, 0xfe]), Err(NameError::NotUtf8));
        assert_eq!(room_name(b"a\nb"), Err(NameError::ControlCharacter));
        assert_eq!(room_name(b"a\x7fb"), Err(NameError::ControlCharacter));
        assert_eq!(
            room_name("a\u{85}".as_bytes()),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(username(b"*admin"), Err(NameError::StartsWithStar));
        assert_eq!(room_name(b"*room"), Ok("*room"));
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused_in_names() {
        for name in [
            "ad\u{200B}min", // zero-width space: looks like "admin"
            "alice\u{200D}", // zero-width joiner
            "\u{202E}nimda", // right-to-left override
            "bob\u{2066}x",  // left-to-right isolate
            "so\u{00AD}ft",  // soft hyphen
            "\u{FEFF}bom",   // byte order mark
            "tag\u{E0041}",  // a tag character
        ] {
            assert_eq!(
                username(name.as_bytes()),
                Err(NameError::FormatCharacter),
                "{name:?}"
            );
        }
        // Visible marks and scripts stay allowed.
        assert_eq!(username("Zoë ✓ جميل".as_bytes()), Ok("Zoë ✓ جميل"));
    }

    #[test]
    fn the_ascii_shortcut_agrees_with_the_char_rules_for_every_byte() {
        for b in 0u8..0x80 {
            let name = [b'a', b, b'z'];
            let by_chars = std::str::from_utf8(&name)
                .unwrap()
                .chars()
                .any(|c| c.is_control() || is_format(c));
            assert_eq!(room_name(&name).is_err(), by_chars, "byte {b:#x} in a name");
            let text = std::str::from_utf8(&name).unwrap();
            let by_chars = text.chars().any(|c| c.is_control() && c != '\t');
            assert_eq!(message(text).is_err(), by_chars, "byte {b:#x} in a message");
        }
        // a C1 control and a format character are caught past an ASCII prefix
        let long = "x".repeat(200);
        assert_eq!(
            message(&format!("{long}\u{85}")),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(
            room_name(format!("{}\u{200B}", &long[..100]).as_bytes()),
            Err(NameError::FormatCharacter)
        );
    }

    #[test]
    fn messages_refuse_control_characters_but_tab() {
        assert_eq!(message("a\tb ✓ \u{200B}"), Ok("a\tb ✓ \u{200B}"));
        for text in [
            "\u{1b}[2J\u{1b}[H",
            "x\r* room closed: host left",
            "a\nb",
            "\u{7f}",
            "\u{9b}31m",
        ] {
            assert_eq!(message(text), Err(NameError::ControlCharacter), "{text:?}");
        }
    }

    #[test]
    fn a_plain_message_is_exactly_one_that_is_ascii_and_passes_the_full_check() {
        // Every byte alone and after a printable one: the fast path says yes only for
        // what the UTF-8 and character checks accept, and for all such ASCII.
        for b in 0..=255u8 {
            for bytes in [vec![b], vec![b'a', b], vec![b; 9]] {
                let full = std::str::from_utf8(&bytes).is_ok_and(|t| message(t).is_ok());
                assert_eq!(plain_message(&bytes), full && bytes.is_ascii(), "{bytes:?}");
            }
        }
        assert!(plain_message(b""));
        assert!(!plain_message("\u{9b}31m".as_bytes()));
        assert!(
            !plain_message("caf\u{e9}".as_bytes()),
            "not ASCII: the full check decides"
        );
    }
}
