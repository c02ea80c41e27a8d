//! The full-screen client, for a terminal (stdin and stdout both terminals): ratatui
//! over crossterm, the chat above, a status line, the input line at the bottom.
//!
//! Three threads: the session (`ocm_smol` client) runs on its own, the terminal's
//! keys are read on another, and this one owns the [`app::App`] and draws after each
//! batch of events, so incoming lines never touch the line being typed.

pub mod app;
pub mod editor;
pub mod view;

use crate::chat::entry::Source;
use app::{Action, App, Place};
use ocm_smol::client::{ClientError, ClientEvent, Connection, Outcome};
use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste, Event};
use ratatui::crossterm::execute;
use std::io;
use std::thread;

enum Input {
    Key(Event),
    Client(ClientEvent),
    Ended(Result<Outcome, ClientError>),
    Stop,
}

/// The time as the chat shows it, local.
pub fn clock() -> String {
    jiff::ZonedDateTime::now().strftime("%H:%M").to_string()
}

/// Runs the session `connection` under the full-screen UI until it ends.
pub fn run(
    connection: Connection,
    place: Place,
    stop: Option<async_channel::Receiver<()>>,
) -> Result<Outcome, ClientError> {
    let ClientEvent::Ready {
        max_message_len, ..
    } = connection.ready(false)
    else {
        unreachable!("ready() gives Ready")
    };
    let (inputs_tx, inputs) = async_channel::unbounded::<Input>();
    let (lines_tx, lines) = async_channel::bounded::<io::Result<String>>(64);
    {
        let inputs_tx = inputs_tx.clone();
        thread::spawn(move || {
            let events = inputs_tx.clone();
            let outcome = smol::block_on(connection.run(Box::pin(lines), move |event| {
                let _ = events.try_send(Input::Client(event));
            }));
            let _ = inputs_tx.try_send(Input::Ended(outcome));
        });
    }
    {
        let inputs_tx = inputs_tx.clone();
        thread::spawn(move || {
            while let Ok(event) = event::read() {
                if inputs_tx.send_blocking(Input::Key(event)).is_err() {
                    break;
                }
            }
        });
    }
    if let Some(stop) = stop {
        let inputs_tx = inputs_tx.clone();
        thread::spawn(move || {
            while stop.recv_blocking().is_ok() {
                if inputs_tx.send_blocking(Input::Stop).is_err() {
                    break;
                }
            }
        });
    }
    let mut app = App::new(place, max_message_len);
    app.welcome(&clock());
    let mut terminal = ratatui::init();
    let _ = execute!(io::stdout(), EnableBracketedPaste);
    let result = smol::block_on(async {
        let mut leaving = false;
        loop {
            if let Err(e) = terminal.draw(|frame| view::render(&app, frame)) {
                return Err(ClientError::Io(e));
            }
            let Ok(first) = inputs.recv().await else {
                return Ok(Outcome::Left);
            };
            // Take everything that is already there before drawing again.
            let mut batch = vec![first];
            while let Ok(more) = inputs.try_recv() {
                batch.push(more);
            }
            for input in batch {
                let time = clock();
                let action = match input {
                    Input::Key(Event::Key(key)) => app.on_key(&time, key),
                    Input::Key(Event::Paste(text)) => {
                        app.on_paste(&text);
                        Action::None
                    }
                    Input::Key(_) => Action::None,
                    Input::Client(event) => {
                        app.on_event(&time, event);
                        Action::None
                    }
                    Input::Ended(result) => return result,
                    Input::Stop if leaving => return Ok(Outcome::Left),
                    Input::Stop => app.leave(),
                };
                match action {
                    Action::None => {}
                    Action::Send(text) => {
                        if lines_tx.try_send(Ok(text)).is_err() {
                            app.problem(&time, "not sent: sending faster than the pace allows");
                        }
                    }
                    Action::Leave if !leaving => {
                        leaving = true;
                        // Closing the input leaves, as the end of a pipe does.
                        lines_tx.close();
                    }
                    Action::Leave => {}
                    Action::Quit => return Ok(Outcome::Left),
                }
            }
        }
    });
    let _ = execute!(io::stdout(), DisableBracketedPaste);
    ratatui::restore();
    // The full screen is gone: say on the normal one why the session ended.
    if matches!(result, Ok(Outcome::RoomClosed | Outcome::Disconnected)) {
        let last = app
            .entries
            .iter()
            .rev()
            .find(|e| e.source == Source::Server);
        if let Some(entry) = last {
            eprintln!("* {}", crate::chat::escape::escape(&entry.text));
        }
    }
    result
}
