//! `graver-writer`: Graver's privileged worker. It links no GUI code, is started
//! by the front end (directly, through pkexec or UAC), speaks the protocol of
//! `graver_writer::protocol` and exits when the front end goes away.
//!
//! Usage: `graver-writer (--serve | --serve-unsafe) --token HEX [--connect-pipe NAME]`.
//! Without `--connect-pipe` (Windows only) it speaks on its standard input and output.
//!
//! The first argument is the mode, and nothing else is accepted there: on Linux each
//! mode is its own polkit action, told apart by `org.freedesktop.policykit.exec.argv1`
//! (`--serve-unsafe` asks for the administrator's password every time), and pkexec
//! checks that annotation only for the action that sets it, so any other first
//! argument could otherwise pass under the lighter action.

// On Windows, release builds are GUI-subsystem programs, which get no console.
// The front end starts the worker through UAC (ShellExecuteExW "runas", nShow
// SW_HIDE, graver-client's src/os/windows.rs) and talks to it over a named pipe, so a console
// would only be an empty window. SW_HIDE hides a classic conhost window, but with
// Windows Terminal as the default terminal (Windows 11) the hint is not honoured
// (microsoft/terminal#12464): a console-subsystem worker would flash a terminal
// window or taskbar button on every write. Nothing is lost: standard handles
// given by a parent (pipes, as in `Launch::Subprocess` and `--version | more`)
// still work, the exit code still reaches the front end, and stderr went to that
// hidden console, seen by nobody, anyway. Debug builds, which the tests start as a
// child process with pipes, stay console programs (either subsystem works there).
#![cfg_attr(all(windows, not(debug_assertions), not(test)), windows_subsystem = "windows")]

use std::process::ExitCode;

use graver_writer::os;
use graver_writer::worker::{Policy, serve};

/// The first argument of a normal worker.
const SERVE: &str = "--serve";
/// The first argument of a worker that may touch system drives (each with its name typed).
const SERVE_UNSAFE: &str = "--serve-unsafe";

struct Args {
    /// A privileged worker never writes regular files: with root's rights that would
    /// let a user overwrite any file on the system.
    policy: Policy,
    token: String,
    /// Where to connect back to (the value of `os::CONNECT_OPTION`); without it, standard input and output.
    #[cfg(windows)]
    connect: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut token = None;
    #[cfg(windows)]
    let mut connect = None;
    let mut args = std::env::args().skip(1);
    let unsafe_mode = match args.next().as_deref() {
        Some(SERVE) => false,
        Some(SERVE_UNSAFE) => true,
        Some("--version") => {
            println!("graver-writer {}", env!("CARGO_PKG_VERSION"));
            std::process::exit(0);
        }
        other => {
            return Err(format!(
                "the first argument must be {SERVE} or {SERVE_UNSAFE}, not {other:?}; this program is started by Graver"
            ));
        }
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--token" => token = Some(value()?),
            #[cfg(windows)]
            option if option == os::CONNECT_OPTION => connect = Some(value()?),
            other => return Err(format!("unknown argument {other:?}; this program is started by Graver")),
        }
    }
    let token = token.ok_or("missing --token; this program is started by Graver")?;
    Ok(Args {
        policy: Policy {
            allow_files: false,
            unsafe_mode,
        },
        token,
        #[cfg(windows)]
        connect,
    })
}

fn run(args: &Args) -> Result<(), String> {
    #[cfg(windows)]
    if let Some(peer) = &args.connect {
        let (reader, writer) = os::connect_back(peer).map_err(|e| format!("{peer}: {e}"))?;
        return serve(reader, writer, &args.token, args.policy).map_err(|e| e.to_string());
    }
    let input = os::standard_input().map_err(|e| format!("standard input: {e}"))?;
    serve(input, std::io::stdout(), &args.token, args.policy).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("graver-writer: {message}");
            ExitCode::FAILURE
        }
    }
}
