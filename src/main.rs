//! `ocm`: the Online Chat Messenger command line.
//!
//! ```text
//! ocm server [--runtime smol|async-std] [--protocol rooms|relay] [--tcp ADDR] [--udp ADDR] ...
//! ocm client [--server HOST] [--name NAME] (--create ROOM | --join ROOM) [--password PW]
//! ocm client --protocol relay --server HOST:PORT --name NAME
//! ```
//!
//! `ocm --help` explains every option and lists the exit codes ([`exit`]).

#![forbid(unsafe_code)]

mod cli;
mod client;
mod exit;
mod server;
mod signals;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        cli::Command::Server(args) => server::run(args),
        cli::Command::Client(args) => client::run(args),
    };
    ExitCode::from(code)
}
