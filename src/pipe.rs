//! The line-in/line-out front end, for pipes and scripts (stdin or stdout not a
//! terminal): each stdin line is a message or a command, stdout carries only what was
//! received (one line each, control characters escaped, flushed), and everything else
//! (the banner, connection state, errors) goes to stderr.

use crate::chat::command::{self, Command};
use crate::chat::escape::escape;
use ocm_smol::client::ClientEvent;
use smol::io::{AsyncBufReadExt, BufReader};
use smol::stream::Stream;
use std::io::{self, Write};
use std::task::Poll;

/// The wire text for an input line, or `None` after dealing with it locally (the
/// note, if any, goes to stderr).
pub fn outgoing(line: &str) -> Option<String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    match command::parse(line) {
        Command::Nothing => None,
        Command::Say(text) | Command::Act(text) => Some(text),
        Command::Leave => Some(command::EXIT.to_owned()),
        Command::Who => Some(command::WHO.to_owned()),
        Command::Help => {
            for line in command::help_lines() {
                eprintln!("{line}");
            }
            None
        }
        Command::Unknown(name) => {
            eprintln!(
                "ocm: unknown command /{name}, not sent (/help lists them; // sends a literal /)"
            );
            None
        }
        Command::Invalid(why) => {
            eprintln!("ocm: {why}");
            None
        }
    }
}

/// Stdin lines turned into wire texts, with Ctrl-C or SIGTERM read as `/exit` (leave
/// like /exit does); ends at the end of stdin.
pub fn input(
    stop: Option<async_channel::Receiver<()>>,
) -> impl Stream<Item = io::Result<String>> + Unpin {
    let mut stdin = Box::pin(BufReader::new(smol::Unblock::new(std::io::stdin())).lines());
    let mut stop = stop.map(Box::pin);
    smol::stream::poll_fn(move |cx| {
        if let Some(stop) = stop.as_mut() {
            if let Poll::Ready(Some(())) = stop.as_mut().poll_next(cx) {
                return Poll::Ready(Some(Ok(command::EXIT.to_owned())));
            }
        }
        loop {
            match stdin.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(line))) => {
                    if let Some(text) = outgoing(&line) {
                        return Poll::Ready(Some(Ok(text)));
                    }
                }
                other => return other,
            }
        }
    })
}

/// Shows one event: received text on stdout, the rest on stderr.
pub fn show(event: ClientEvent, place: &str) {
    match event {
        ClientEvent::Message(incoming) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{}", escape(&incoming.to_string()));
            let _ = stdout.flush();
        }
        // On stderr, so stdout carries only what was received; scripts can wait for it.
        ClientEvent::Ready {
            rejoined: false, ..
        } => eprintln!("* {place}"),
        ClientEvent::Ready { rejoined: true, .. } => eprintln!("* back {place}"),
        ClientEvent::RoomSize(_) => {}
        ClientEvent::NoLiveness => eprintln!(
            "ocm: the server does not answer liveness checks; a restart will not be noticed"
        ),
        ClientEvent::Unsent(error) => eprintln!("ocm: message not sent: {error}"),
        ClientEvent::BadInput => eprintln!("ocm: skipped a line that is not valid UTF-8"),
        ClientEvent::Lost(reason) => eprintln!("ocm: connection lost: {reason}"),
        ClientEvent::Retrying { attempt, after } => eprintln!(
            "ocm: joining again in {} (attempt {attempt})",
            humantime::format_duration(after)
        ),
        ClientEvent::RetryFailed(error) => eprintln!("ocm: could not join again: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piped_lines_become_wire_texts() {
        assert_eq!(outgoing("hello\r").as_deref(), Some("hello"));
        assert_eq!(outgoing("/quit ").as_deref(), Some("/exit"));
        assert_eq!(outgoing("/who").as_deref(), Some("/who"));
        assert_eq!(outgoing("//x").as_deref(), Some("/x"));
        assert_eq!(outgoing("/me waves").as_deref(), Some("/me waves"));
        assert_eq!(outgoing(""), None);
        assert_eq!(outgoing("/help"), None);
        assert_eq!(outgoing("/nope"), None);
    }
}
