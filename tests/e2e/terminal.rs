//! The interactive client in a real pseudo-terminal (`portable-pty`), its screen read
//! back through a terminal emulator (`vt100`): a partly typed line survives messages
//! that arrive while it is typed, with CJK text and emoji, and goes out whole on Enter.

use crate::common::{Runtime, TestServer, WAIT};
use portable_pty::{native_pty_system, CommandBuilder, PtySize};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

crate::on_both_runtimes!(a_partly_typed_line_survives_incoming_messages);

const ROWS: u16 = 24;
const COLS: u16 = 80;

/// The screen of a terminal that the client draws on.
struct Screen(Arc<Mutex<vt100::Parser>>);

impl Screen {
    fn rows(&self) -> Vec<String> {
        let parser = self.0.lock().unwrap();
        parser
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    fn cursor(&self) -> (u16, u16) {
        self.0.lock().unwrap().screen().cursor_position()
    }

    /// Waits until some row satisfies `check`.
    fn until(&self, what: &str, check: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !self.rows().iter().any(|row| check(row)) {
            assert!(
                Instant::now() < deadline,
                "not on screen within {WAIT:?}: {what}\n{}",
                self.rows().join("\n")
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn a_partly_typed_line_survives_incoming_messages(runtime: Runtime) {
    let server = TestServer::rooms(runtime);
    let alice = server.create("lobby", "alice");
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: ROWS,
            cols: COLS,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("a pseudo-terminal");
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_ocm"));
    let (tcp, udp) = (
        server.tcp().port().to_string(),
        server.udp.port().to_string(),
    );
    command.args([
        "client",
        "--server",
        "127.0.0.1",
        "--tcp-port",
        &tcp,
        "--udp-port",
        &udp,
        "--name",
        "bob",
        "--join",
        "lobby",
    ]);
    command.env("TERM", "xterm-256color");
    let mut child = pty.slave.spawn_command(command).expect("ocm starts");
    drop(pty.slave);
    let parser = Arc::new(Mutex::new(vt100::Parser::new(ROWS, COLS, 0)));
    let mut reader = pty.master.try_clone_reader().unwrap();
    {
        let parser = parser.clone();
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                parser.lock().unwrap().process(&buf[..n]);
            }
        });
    }
    let screen = Screen(parser);
    let mut keys = pty.master.take_writer().unwrap();
    screen.until("the welcome line", |row| {
        row.contains("you joined room \"lobby\"")
    });
    alice.expect(&["* bob joined"]);
    let input_row = usize::from(ROWS - 1);

    keys.write_all("ラーメン食べに行き".as_bytes()).unwrap();
    screen.until("the typed text", |row| row == "> ラーメン食べに行き");
    alice.say("どこにいるの？");
    alice.say("🍜?");
    screen.until("alice's second line", |row| row.ends_with("  alice: 🍜?"));
    let rows = screen.rows();
    assert_eq!(
        rows[input_row],
        "> ラーメン食べに行き",
        "{}",
        rows.join("\n")
    );
    assert!(rows.iter().any(|r| r.ends_with("  alice: どこにいるの？")));
    // The cursor is still at the end of the typed text: 2 + 9 double-width characters.
    assert_eq!(screen.cursor(), (ROWS - 1, 2 + 18));
    assert!(
        rows[input_row - 1].contains("room lobby") && rows[input_row - 1].contains("bob"),
        "the status line: {}",
        rows[input_row - 1]
    );

    keys.write_all("ませんか\r".as_bytes()).unwrap();
    alice.expect(&["bob: ラーメン食べに行きませんか"]);
    screen.until("bob's own line", |row| {
        row.ends_with("> bob: ラーメン食べに行きませんか")
    });
    screen.until("an empty input line", |row| row == ">");

    keys.write_all(b"/exit\r").unwrap();
    alice.expect(&["* bob left"]);
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the client did not exit after /exit"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
