//! `ocm client`: asks for what is missing (when stdin is a terminal), resolves the
//! server, and runs the chat: stdin lines out, received messages on stdout, one per
//! line, flushed. Errors are one line on stderr with a documented exit code.

use crate::cli::{ClientArgs, Protocol};
use crate::exit;
use ocm_core::Operation;
use ocm_smol::client::{self, ClientError, ClientEvent, ClientOptions, Outcome, Target};
use smol::io::{AsyncBufReadExt, BufReader};
use smol::stream::Stream;
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::Poll;

/// A problem found before anything was sent, with its exit code.
struct Early(u8, String);

/// Runs the client command and returns the exit code.
pub fn run(args: ClientArgs) -> u8 {
    let interactive = std::io::stdin().is_terminal();
    let options = match options(&args, interactive) {
        Ok(options) => options,
        Err(Early(code, message)) => {
            eprintln!("ocm: error: {message}");
            return code;
        }
    };
    let lines = input(crate::signals::install().ok());
    let outcome = smol::block_on(client::run(&options, lines, |event| {
        show(event, interactive, &options)
    }));
    match outcome {
        Ok(Outcome::Left) => exit::OK,
        Ok(Outcome::Disconnected) => exit::DISCONNECTED,
        Ok(Outcome::RoomClosed) => exit::ROOM_CLOSED,
        Err(error) => {
            eprintln!("ocm: error: {error}");
            match error {
                ClientError::InvalidName(_) => exit::USAGE,
                ClientError::Refused { .. } => exit::REFUSED,
                ClientError::Timeout(..) => exit::TIMEOUT,
                _ => exit::ERROR,
            }
        }
    }
}

/// Stdin lines, with Ctrl-C or SIGTERM read as `/exit` (leave like /exit does); ends
/// at the end of stdin.
fn input(
    stop: Option<async_channel::Receiver<()>>,
) -> impl Stream<Item = io::Result<String>> + Unpin {
    let mut stdin = Box::pin(BufReader::new(smol::Unblock::new(std::io::stdin())).lines());
    let mut stop = stop.map(Box::pin);
    smol::stream::poll_fn(move |cx| {
        if let Some(stop) = stop.as_mut() {
            if let Poll::Ready(Some(())) = stop.as_mut().poll_next(cx) {
                return Poll::Ready(Some(Ok("/exit".to_owned())));
            }
        }
        stdin.as_mut().poll_next(cx)
    })
}

fn show(event: ClientEvent, interactive: bool, options: &ClientOptions) {
    match event {
        ClientEvent::Message(incoming) => {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{incoming}");
            let _ = stdout.flush();
        }
        ClientEvent::Ready { .. } => {
            // On stderr, so stdout carries only what was received; scripts can wait for it.
            let place = match &options.target {
                Target::Room { room, username, .. } => format!("in room {room:?} as {username:?}"),
                Target::Relay { username, .. } => format!("on the relay as {username:?}"),
            };
            let hint = if interactive {
                ": type a message and Enter; /exit or Ctrl-D leaves"
            } else {
                ""
            };
            eprintln!("* {place}{hint}");
        }
        ClientEvent::Unsent(error) => eprintln!("ocm: message not sent: {error}"),
        ClientEvent::BadInput => eprintln!("ocm: skipped a line that is not valid UTF-8"),
    }
}

fn options(args: &ClientArgs, interactive: bool) -> Result<ClientOptions, Early> {
    let username = given_or_asked(&args.name, "username", interactive)?;
    let target = match args.protocol {
        Protocol::Relay => Target::Relay {
            udp: resolve_relay(&args.server, args.udp_port)?,
            username,
        },
        Protocol::Rooms => {
            let (operation, room) = match (&args.create, &args.join) {
                (Some(room), _) => (Operation::Create, room.clone()),
                (None, Some(room)) => (Operation::Join, room.clone()),
                (None, None) => ask_room(interactive)?,
            };
            Target::Room {
                tcp: resolve(&args.server, args.tcp_port)?,
                udp: resolve(&args.server, args.udp_port)?,
                operation,
                room,
                username,
                password: args.password.clone(),
            }
        }
    };
    Ok(ClientOptions {
        target,
        timeout: args.timeout,
        keepalive: args.keepalive,
    })
}

fn given_or_asked(given: &Option<String>, what: &str, interactive: bool) -> Result<String, Early> {
    match given {
        Some(value) => Ok(value.clone()),
        None if interactive => ask(&format!("{what}: ")),
        None => Err(Early(
            exit::USAGE,
            format!("no {what} given (--name), and stdin is not a terminal to ask on"),
        )),
    }
}

fn ask_room(interactive: bool) -> Result<(Operation, String), Early> {
    if !interactive {
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

/// `HOST` (a name, an IPv4 or IPv6 address, brackets allowed) and a port.
fn resolve(host: &str, port: u16) -> Result<SocketAddr, Early> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| Early(exit::ERROR, format!("cannot resolve {host:?}: {e} (--server takes a host; ports are --tcp-port and --udp-port)")))?
        .next()
        .ok_or_else(|| Early(exit::ERROR, format!("{host:?} has no address")))
}

/// Relay mode takes `HOST:PORT`, or `HOST` with `--udp-port`.
fn resolve_relay(server: &str, udp_port: u16) -> Result<SocketAddr, Early> {
    if let Ok(mut addrs) = server.to_socket_addrs() {
        if let Some(addr) = addrs.next() {
            return Ok(addr);
        }
    }
    resolve(server, udp_port)
}
