//! `graver`: write disk images verbatim to USB sticks and SD cards, and prove it.
//!
//! Without arguments it opens the desktop window; with a subcommand it is the
//! command-line flasher.

// Release builds on Windows open no console window beside the app's own; as a
// command-line tool it attaches to the console it was started from instead (see
// `os/windows.rs`). Debug builds and test programs stay console programs.
#![cfg_attr(all(windows, not(debug_assertions), not(test)), windows_subsystem = "windows")]

mod choose;
mod cli;
mod commands;
mod exit;
mod gui;
mod os;
mod output;
mod wording;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    os::attach_console_for_command_line();
    let cli = cli::Cli::parse();
    let Some(subcommand) = cli.subcommand else {
        return match gui::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("graver: cannot open the window ({e}); the command line works without one:");
                let _ = cli::Cli::command().print_help();
                ExitCode::FAILURE
            }
        };
    };
    let code = match subcommand {
        cli::Subcommand::Write(args) => commands::write(&args),
        cli::Subcommand::Hash(args) => commands::hash(&args),
        cli::Subcommand::Verify(args) => commands::verify(&args),
        cli::Subcommand::List(args) => commands::list(&args),
    };
    ExitCode::from(code as u8)
}
