//! What the `graver` binary does differently per OS, behind one contract: each
//! backend provides
//!
//! - `attach_console_for_command_line()`: makes a command-line run print where it
//!   was started from (a Windows release build is a GUI program without a console);
//! - `call_on_interrupt(action)`: runs `action` on the first Ctrl-C (or SIGTERM), so
//!   a write is cancelled cleanly instead of killed.
//!
//! Drives and devices are graver-drives' business, behind its own `os/` folder.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as backend;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as backend;

#[cfg(not(any(unix, windows)))]
mod unsupported;
#[cfg(not(any(unix, windows)))]
use unsupported as backend;

pub(crate) use backend::{attach_console_for_command_line, call_on_interrupt};
