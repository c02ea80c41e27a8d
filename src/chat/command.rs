//! What a typed (or piped) line means: a message to send, or a local command.
//!
//! A line starting with `/` and a letter is a command: `/help`, `/exit` and `/quit`
//! (leave), `/who` (ask the server for the member list), `/me ACTION`. Trailing spaces
//! do not matter. `//` sends a literal `/` (`//shrug` sends `/shrug`), except for the
//! texts the server itself reads as commands (`/exit`, `/who`), which cannot be sent as
//! a message. Any other line is sent as it is; an empty line is not sent.

/// The wire text of a leave; a message of exactly this leaves the room.
pub const EXIT: &str = "/exit";
/// The wire text of a member-list request (an ocm extension; see docs/PROTOCOL.md).
pub const WHO: &str = "/who";
/// How an action starts on the wire: `/me waves` shows as `bob waves`.
pub const ME_PREFIX: &str = "/me ";

/// The in-chat commands, as `/help` and `ocm client --help` list them.
pub const HELP: &[(&str, &str)] = &[
    ("/help", "this list"),
    ("/who", "who is in the room"),
    ("/me ACTION", "say what you do (shown as: bob waves)"),
    ("/exit, /quit", "leave (Ctrl-D on an empty line, Ctrl-C)"),
    ("//text", "send text starting with a single /"),
];

/// The help as text lines (for `/help` in a pipe and for `--help`).
pub fn help_lines() -> Vec<String> {
    HELP.iter()
        .map(|(command, what)| format!("{command:<13} {what}"))
        .collect()
}

/// What a line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Nothing to do (an empty line).
    Nothing,
    /// Send this text as a message.
    Say(String),
    /// Send this action (`/me ...`); the text is the wire form.
    Act(String),
    /// Leave the room.
    Leave,
    /// Ask the server for the member list.
    Who,
    /// Show the commands.
    Help,
    /// A command this client does not know.
    Unknown(String),
    /// A usage mistake, explained.
    Invalid(String),
}

/// Reads one line.
pub fn parse(line: &str) -> Command {
    if line.is_empty() {
        return Command::Nothing;
    }
    if let Some(literal) = line.strip_prefix("//") {
        let text = format!("/{literal}");
        return match text.as_str() {
            EXIT | WHO => Command::Invalid(format!(
                "{text} cannot be sent as a message: the server reads it as a command"
            )),
            _ => Command::Say(text),
        };
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Command::Say(line.to_owned());
    };
    if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Command::Say(line.to_owned());
    }
    let rest = rest.trim_end();
    let (name, argument) = match rest.split_once(' ') {
        Some((name, argument)) => (name, argument.trim_start()),
        None => (rest, ""),
    };
    match (name, argument) {
        ("exit" | "quit", "") => Command::Leave,
        ("who", "") => Command::Who,
        ("help", "") => Command::Help,
        ("me", "") => Command::Invalid("/me needs an action: /me waves".into()),
        ("me", action) => Command::Act(format!("{ME_PREFIX}{action}")),
        ("exit" | "quit" | "who" | "help", _) => {
            Command::Invalid(format!("/{name} takes no argument"))
        }
        (name, _) => Command::Unknown(name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaving_ignores_trailing_spaces() {
        for line in ["/exit", "/exit ", "/quit", "/quit  \t"] {
            assert_eq!(parse(line), Command::Leave, "{line:?}");
        }
        assert_eq!(
            parse("/exit now"),
            Command::Invalid("/exit takes no argument".into())
        );
    }

    #[test]
    fn local_commands_are_never_sent() {
        assert_eq!(parse("/help"), Command::Help);
        assert_eq!(parse("/who "), Command::Who);
        assert_eq!(
            parse("/frobnicate x"),
            Command::Unknown("frobnicate".into())
        );
        assert_eq!(
            parse("/me"),
            Command::Invalid("/me needs an action: /me waves".into())
        );
    }

    #[test]
    fn actions_go_out_in_their_wire_form() {
        assert_eq!(parse("/me waves  "), Command::Act("/me waves".into()));
        assert_eq!(parse("/me  eats 🍜"), Command::Act("/me eats 🍜".into()));
    }

    #[test]
    fn a_double_slash_sends_a_literal_slash() {
        assert_eq!(parse("//shrug"), Command::Say("/shrug".into()));
        assert_eq!(parse("//"), Command::Say("/".into()));
        assert_eq!(parse("//exit now"), Command::Say("/exit now".into()));
        assert!(matches!(parse("//exit"), Command::Invalid(_)));
        assert!(matches!(parse("//who"), Command::Invalid(_)));
    }

    #[test]
    fn other_lines_are_messages_as_typed() {
        assert_eq!(parse(""), Command::Nothing);
        assert_eq!(parse("  "), Command::Say("  ".into()));
        assert_eq!(parse("hi /exit"), Command::Say("hi /exit".into()));
        assert_eq!(
            parse("/ not a command"),
            Command::Say("/ not a command".into())
        );
        assert_eq!(parse("/:)"), Command::Say("/:)".into()));
        assert_eq!(parse("ラーメン"), Command::Say("ラーメン".into()));
    }

    #[test]
    fn help_names_every_command() {
        let help = help_lines().join("\n");
        for command in ["/help", "/who", "/me", "/exit", "/quit", "//"] {
            assert!(help.contains(command), "{command}");
        }
    }
}
