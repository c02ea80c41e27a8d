//! `ocm`: the Online Chat Messenger command line.
//!
//! ```text
//! ocm server [--runtime smol|async-std] [--protocol rooms|relay] [--tcp ADDR] [--udp ADDR] ...
//! ocm client [--server HOST[:PORT]] [--name NAME] (--create ROOM | --join ROOM) [--password-file F]
//! ocm client --protocol relay --server HOST[:PORT] --name NAME
//! ocm replay FILE [--compare]
//! ```
//!
//! `ocm --help` explains every option and lists the exit codes ([`exit`]).

#![forbid(unsafe_code)]

mod address;
mod chat;
mod cli;
mod client;
mod exit;
mod ops;
mod password;
mod pipe;
mod replay;
mod server;
mod signals;
mod tui;

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

/// Help and version go out as clap writes them; a mistake on the command line is
/// clap's full error (what is wrong, its suggestions and valid values, the usage line)
/// on stderr, with exit code 2.
fn usage_error(error: &clap::Error) -> u8 {
    let _ = error.print();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => exit::OK,
        _ => exit::USAGE,
    }
}
