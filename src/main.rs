//! `ocm`: the Online Chat Messenger command line.
//!
//! ```text
//! ocm server [--runtime smol|async-std] [--protocol rooms|relay] [--tcp ADDR] [--udp ADDR] ...
//! ocm client [--server HOST] [--name NAME] (--create ROOM | --join ROOM) [--password PW]
//! ocm client --protocol relay --server HOST:PORT --name NAME
//! ocm replay FILE [--compare]
//! ```
//!
//! `ocm --help` explains every option and lists the exit codes ([`exit`]).

#![forbid(unsafe_code)]

mod cli;
mod client;
mod exit;
mod replay;
mod server;
mod signals;

use clap::error::ErrorKind;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(usage_error(&error)),
    };
    let code = match cli.command {
        cli::Command::Server(args) => server::run(args),
        cli::Command::Client(args) => client::run(args),
        cli::Command::Replay(args) => replay::run(args),
    };
    ExitCode::from(code)
}

/// Help and version go out as clap writes them; a mistake on the command line is one
/// line on stderr (clap's first line, which names the flag and the value) with a pointer
/// to the help, and exit code 2.
fn usage_error(error: &clap::Error) -> u8 {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            exit::OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            exit::USAGE
        }
        _ => {
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let help = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
                Some(command) if ["server", "client", "replay"].contains(&command.as_str()) => {
                    format!("ocm {command} --help")
                }
                _ => "ocm --help".to_owned(),
            };
            eprintln!("ocm: error: {first} (see {help})");
            exit::USAGE
        }
    }
}
