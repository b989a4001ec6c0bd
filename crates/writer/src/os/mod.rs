//! What the worker needs from the OS beyond graver-drives, one file per OS:
//!
//! - `as_invoking_user(f)`: runs `f` with file access checked as the user who asked
//!   for elevation, where the OS can do that per thread;
//! - `write_all_at` and `read_full_at`: positional I/O on an open device;
//! - [`CONNECT_OPTION`] and [`connect_back`]: how an elevated worker reaches the
//!   front end that started it (a Unix socket on Linux and macOS, a named pipe on
//!   Windows, whose overlapped halves are in `pipe.rs`).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::as_invoking_user;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub(crate) use other::as_invoking_user;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{CONNECT_OPTION, connect_back};
#[cfg(unix)]
pub(crate) use unix::{read_full_at, write_all_at};

#[cfg(windows)]
pub mod pipe;
#[cfg(windows)]
pub use pipe::{CONNECT_OPTION, connect_back};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{read_full_at, write_all_at};

/// The two halves of the stream to the front end.
pub type Halves = (Box<dyn std::io::Read + Send>, Box<dyn std::io::Write + Send>);
