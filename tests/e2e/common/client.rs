//! [`TestClient`]: the real client (`ocm_smol::client::run`) on its own thread, fed
//! lines by the test, with every read of what it received bounded by [`WAIT`].

use super::WAIT;
use ocm_smol::client::{ClientError, ClientEvent, ClientOptions, Outcome, Target};
use std::sync::mpsc;
use std::thread;

enum Seen {
    Line(String),
    Ended(Result<Outcome, ClientError>),
}

/// A real client (`ocm_smol::client::run`) on its own thread, fed lines by the test.
pub struct TestClient {
    name: String,
    lines: Option<async_channel::Sender<String>>,
    seen: mpsc::Receiver<Seen>,
}

impl TestClient {
    /// Starts a client and waits until it is in the room, or returns why it is not.
    pub fn start(options: ClientOptions) -> Result<TestClient, ClientError> {
        let name = match &options.target {
            Target::Room { username, .. } | Target::Relay { username, .. } => username.clone(),
        };
        let (lines, input) = async_channel::unbounded::<String>();
        let (seen_tx, seen) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        thread::spawn(move || {
            let events = seen_tx.clone();
            let on_event = move |event: ClientEvent| match event {
                ClientEvent::Ready { .. } => {
                    let _ = ready_tx.send(());
                }
                ClientEvent::Message(incoming) => {
                    let _ = events.send(Seen::Line(incoming.to_string()));
                }
                ClientEvent::Unsent(error) => panic!("a test line was not sent: {error}"),
                ClientEvent::BadInput => panic!("a test line was not UTF-8"),
                _ => {}
            };
            let input = Box::pin(smol::stream::StreamExt::map(input, Ok));
            let outcome = smol::block_on(ocm_smol::client::run(&options, input, on_event));
            let _ = seen_tx.send(Seen::Ended(outcome));
        });
        let client = TestClient {
            name,
            lines: Some(lines),
            seen,
        };
        match ready.recv_timeout(WAIT) {
            Ok(()) => Ok(client),
            Err(_) => match client.seen.recv_timeout(WAIT) {
                Ok(Seen::Ended(Err(error))) => Err(error),
                Ok(Seen::Ended(Ok(outcome))) => {
                    panic!("the session ended before it started: {outcome:?}")
                }
                Ok(Seen::Line(line)) => panic!("a line before the session started: {line}"),
                Err(_) => panic!("the client neither started nor failed within {WAIT:?}"),
            },
        }
    }

    /// The username.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one line, as typed.
    pub fn say(&self, text: &str) {
        let lines = self.lines.as_ref().expect("input is open");
        lines
            .try_send(text.to_owned())
            .expect("the client is running");
    }

    /// The next line received (message or notice), within [`WAIT`].
    pub fn line(&self) -> String {
        match self.seen.recv_timeout(WAIT) {
            Ok(Seen::Line(line)) => line,
            Ok(Seen::Ended(outcome)) => panic!("the session ended instead: {outcome:?}"),
            Err(_) => panic!("no line within {WAIT:?}"),
        }
    }

    /// Asserts the next lines, in order.
    pub fn expect(&self, lines: &[&str]) {
        for expected in lines {
            assert_eq!(self.line(), *expected);
        }
    }

    /// Reads lines until `last` arrives and returns those before it.
    pub fn lines_until(&self, last: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line == last {
                return before;
            }
            before.push(line);
        }
    }

    /// How the session ended, waiting for it (lines not yet read are skipped).
    pub fn outcome(self) -> Outcome {
        loop {
            match self.seen.recv_timeout(WAIT) {
                Ok(Seen::Line(_)) => {}
                Ok(Seen::Ended(Ok(outcome))) => return outcome,
                Ok(Seen::Ended(Err(error))) => panic!("the client failed: {error}"),
                Err(_) => panic!("the session did not end within {WAIT:?}"),
            }
        }
    }

    /// Ends the input (EOF): the client leaves.
    pub fn close_input(&mut self) {
        self.lines = None;
    }
}
