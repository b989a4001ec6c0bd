//! `graver`: write disk images verbatim to USB sticks and SD cards, and prove it.
//!
//! With a subcommand it is the command-line flasher; the desktop window comes
//! with a later release, so without one it prints its help.

mod choose;
mod cli;
mod commands;
mod exit;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let Some(command) = cli.command else {
        // Until the desktop window exists, starting the app shows what it can do.
        let _ = cli::Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    let code = match command {
        cli::Command::Write(args) => commands::write(&args),
        cli::Command::Hash(args) => commands::hash(&args),
        cli::Command::Verify(args) => commands::verify(&args),
        cli::Command::List(args) => commands::list(&args),
    };
    ExitCode::from(code as u8)
}
