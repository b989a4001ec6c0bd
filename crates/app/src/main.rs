//! `graver`: write disk images verbatim to USB sticks and SD cards, and prove it.
//!
//! Without arguments it opens the desktop window; with a subcommand it is the
//! command-line flasher.

mod choose;
mod cli;
mod commands;
mod exit;
mod gui;
mod hashing;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let Some(command) = cli.command else {
        return match gui::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("graver: cannot open the window ({e}); the command line works without one:");
                let _ = cli::Cli::command().print_help();
                ExitCode::FAILURE
            }
        };
    };
    let code = match command {
        cli::Command::Write(args) => commands::write(&args),
        cli::Command::Hash(args) => commands::hash(&args),
        cli::Command::Verify(args) => commands::verify(&args),
        cli::Command::List(args) => commands::list(&args),
    };
    ExitCode::from(code as u8)
}
