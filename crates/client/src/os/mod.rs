//! Starting the worker with the rights to open raw devices, the way each OS asks
//! for them. Each OS's file gives:
//!
//! - `launch_elevated(worker, token) -> Result<Connection, LaunchError>`: the
//!   prompt, then the worker connected to us (`linux.rs`: pkexec, `windows.rs`: UAC
//!   and a named pipe); macOS elevates nothing (`macos.rs`: each drive is opened
//!   through the system's `authopen` instead, by a worker on a thread of the front end);
//! - `installed_worker()`: the worker an installation puts where only an
//!   administrator can change it, the only one elevated (see `launch::elevated_worker`);
//!   not on macOS;
//! - `has_device_rights()`: whether this process may open raw devices already;
//! - `worker_input()`: a child worker's standard input, able to carry the image file
//!   (a Unix socket; on Windows a pipe that carries the handle's value);
//! - `exit_signal(status)`: the signal that ended a child, where the OS has signals;
//! - `explain_prompt_exit(how, status, stderr)`: what the exit of an elevation
//!   program that started the worker (pkexec) says, when it speaks of the prompt.
//!
//! The command lines, scripts and what failures mean are plain functions beside
//! them (`pkexec.rs`, `windows_commands.rs`), compiled and tested on every OS.

#[cfg(any(target_os = "linux", test))]
mod pkexec;
#[cfg(any(windows, test))]
mod windows_commands;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::{exit_signal, has_device_rights, worker_input};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{explain_prompt_exit, installed_worker, launch_elevated};

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
pub(crate) use macos::explain_prompt_exit;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{
    exit_signal, explain_prompt_exit, has_device_rights, installed_worker, launch_elevated, worker_input,
};

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod other;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub(crate) use other::{explain_prompt_exit, installed_worker, launch_elevated};
