//! `ocm client`: asks for what is missing (when stdin is a terminal), resolves the
//! server, joins (asking for a password, hidden, when the room needs one), then runs
//! the chat under the full-screen UI (`tui`, when stdin and stdout are terminals) or
//! line in, line out (`pipe`). Errors are one line on stderr with a documented exit
//! code.

use crate::address;
use crate::cli::{ClientArgs, Protocol};
use crate::exit;
use crate::tui::app::Place;
use ocm_core::{Operation, Status};
use ocm_smol::client::{self, ClientError, ClientOptions, Connection, Outcome, Target};
use std::io::{BufRead, IsTerminal, Write};

/// A problem found before anything was sent, with its exit code.
struct Early(u8, String);

/// Default ports of `ocm server`.
const TCP_PORT: u16 = 8000;
const UDP_PORT: u16 = 8001;

/// Runs the client command and returns the exit code.
pub fn run(args: ClientArgs) -> u8 {
    let can_ask = std::io::stdin().is_terminal();
    let full_screen = can_ask && std::io::stdout().is_terminal();
    let (mut options, place) = match options(&args, can_ask) {
        Ok(found) => found,
        Err(Early(code, message)) => {
            eprintln!("ocm: error: {message}");
            return code;
        }
    };
    let stop = crate::signals::install().ok();
    let connection = match join(&mut options, can_ask) {
        Ok(connection) => connection,
        Err(Early(code, message)) => {
            eprintln!("ocm: error: {message}");
            return code;
        }
    };
    let outcome = if full_screen {
        crate::tui::run(connection, place, stop)
    } else {
        let banner = banner(&options, can_ask);
        crate::pipe::show(connection.ready(false), &banner);
        smol::block_on(connection.run(crate::pipe::input(stop), |event| {
            crate::pipe::show(event, &banner)
        }))
    };
    match outcome {
        Ok(Outcome::Left) => exit::OK,
        Ok(Outcome::Disconnected) => exit::DISCONNECTED,
        Ok(Outcome::RoomClosed) => exit::ROOM_CLOSED,
        Ok(Outcome::Lost(reason)) => {
            eprintln!("ocm: error: connection lost: {reason}");
            exit::DISCONNECTED
        }
        Err(error) => {
            let (code, message) = failure(&error, &options);
            eprintln!("ocm: error: {message}");
            code
        }
    }
}

/// The first join; a room that needs a password, asked on a terminal, is tried again.
fn join(options: &mut ClientOptions, can_ask: bool) -> Result<Connection, Early> {
    let mut asked = 0;
    loop {
        match smol::block_on(client::connect(options)) {
            Ok(connection) => return Ok(connection),
            Err(ClientError::Refused {
                status: Status::InvalidPassword,
                room,
                ..
            }) if can_ask && (password_of(options).is_none() || asked > 0) && asked < 3 => {
                if asked > 0 {
                    eprintln!("wrong password, try again");
                }
                asked += 1;
                let password = crate::password::ask(&room).map_err(|e| Early(exit::ERROR, e))?;
                if let Target::Room { password: slot, .. } = &mut options.target {
                    *slot = Some(password);
                }
            }
            Err(error) => {
                let (code, message) = failure(&error, options);
                return Err(Early(code, message));
            }
        }
    }
}

fn password_of(options: &ClientOptions) -> Option<&str> {
    match &options.target {
        Target::Room { password, .. } => password.as_deref(),
        Target::Relay { .. } => None,
    }
}

/// The exit code and the line to show for an error.
fn failure(error: &ClientError, options: &ClientOptions) -> (u8, String) {
    let code = match error {
        ClientError::InvalidName(_) => exit::USAGE,
        ClientError::Refused { .. } => exit::REFUSED,
        ClientError::Timeout(..) => exit::TIMEOUT,
        _ => exit::ERROR,
    };
    let message = match error {
        ClientError::Refused {
            status: Status::InvalidPassword,
            room,
            ..
        } if password_of(options).is_none() => format!(
            "room {room:?} needs a password: give it with --password-file FILE or \
             OCM_PASSWORD (or --password), or run on a terminal to be asked"
        ),
        error => error.to_string(),
    };
    (code, message)
}

fn banner(options: &ClientOptions, can_ask: bool) -> String {
    let place = match &options.target {
        Target::Room { room, username, .. } => format!("in room {room:?} as {username:?}"),
        Target::Relay { username, .. } => format!("on the relay as {username:?}"),
    };
    let hint = if can_ask {
        ": type a message and Enter; /help lists the commands, /exit or Ctrl-D leaves"
    } else {
        ""
    };
    format!("{place}{hint}")
}

fn options(args: &ClientArgs, can_ask: bool) -> Result<(ClientOptions, Place), Early> {
    let usage = |message: String| Early(exit::USAGE, message);
    let server = address::parse(&args.server).map_err(|e| usage(format!("--server: {e}")))?;
    let password = crate::password::given(args.password.as_deref(), args.password_file.as_deref())
        .map_err(|e| Early(exit::ERROR, e))?;
    let username = given_or_asked(&args.name, "username", can_ask)?;
    let resolve = |port| address::resolve(&server.host, port).map_err(|e| Early(exit::ERROR, e));
    let (target, place) = match args.protocol {
        Protocol::Relay => {
            if args.tcp_port.is_some() {
                return Err(usage(
                    "--tcp-port applies to rooms; relay mode is UDP only".into(),
                ));
            }
            let port = one_port(server.port, args.udp_port, "--udp-port")?.unwrap_or(UDP_PORT);
            let udp = resolve(port)?;
            let place = Place {
                server: udp.to_string(),
                room: None,
                me: username.clone(),
                host: false,
            };
            (Target::Relay { udp, username }, place)
        }
        Protocol::Rooms => {
            let tcp_port = one_port(server.port, args.tcp_port, "--tcp-port")?.unwrap_or(TCP_PORT);
            let (operation, room) = match (&args.create, &args.join) {
                (Some(room), _) => (Operation::Create, room.clone()),
                (None, Some(room)) => (Operation::Join, room.clone()),
                (None, None) => ask_room(can_ask)?,
            };
            let tcp = resolve(tcp_port)?;
            let udp = resolve(args.udp_port.unwrap_or(UDP_PORT))?;
            let place = Place {
                server: tcp.to_string(),
                room: Some(room.clone()),
                me: username.clone(),
                host: operation == Operation::Create,
            };
            let target = Target::Room {
                tcp,
                udp,
                operation,
                room,
                username,
                password,
            };
            (target, place)
        }
    };
    let mut options = ClientOptions::new(target);
    options.timeout = args.timeout;
    options.keepalive = args.keepalive;
    options.reconnect = !args.no_reconnect;
    options.lines_per_sec = args.rate;
    options.burst = args.rate.min(ocm_core::rate::CLIENT_BURST);
    Ok((options, place))
}

/// The port from `--server` or from its own flag, not both.
fn one_port(in_server: Option<u16>, flag: Option<u16>, name: &str) -> Result<Option<u16>, Early> {
    match (in_server, flag) {
        (Some(a), Some(b)) if a != b => Err(Early(
            exit::USAGE,
            format!("--server gives port {a} and {name} gives {b}: give one"),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

fn given_or_asked(given: &Option<String>, what: &str, can_ask: bool) -> Result<String, Early> {
    match given {
        Some(value) => Ok(value.clone()),
        None if can_ask => ask(&format!("{what}: ")),
        None => Err(Early(
            exit::USAGE,
            format!("no {what} given (--name), and stdin is not a terminal to ask on"),
        )),
    }
}

fn ask_room(can_ask: bool) -> Result<(Operation, String), Early> {
    if !can_ask {
        return Err(Early(
            exit::USAGE,
            "no room given (--create ROOM or --join ROOM), and stdin is not a terminal to ask on"
                .into(),
        ));
    }
    loop {
        match ask("create or join a room? [c/j]: ")?
            .to_lowercase()
            .as_str()
        {
            "c" | "create" => return Ok((Operation::Create, ask("room to create: ")?)),
            "j" | "join" => return Ok((Operation::Join, ask("room to join: ")?)),
            _ => eprintln!("please answer c or j"),
        }
    }
}

fn ask(prompt: &str) -> Result<String, Early> {
    loop {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) => return Err(Early(exit::USAGE, "no answer (end of input)".into())),
            Ok(_) => {
                let answer = line.trim();
                if !answer.is_empty() {
                    return Ok(answer.to_owned());
                }
            }
            Err(e) => return Err(Early(exit::ERROR, format!("cannot read stdin: {e}"))),
        }
    }
}
