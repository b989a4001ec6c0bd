//! What the worker needs from the OS beyond graver-drives, one file per OS:
//!
//! - `write_all_at` and `read_full_at`: positional I/O on an open device;
//! - `prefer_huge_pages`: a hint that a large transfer buffer be backed by huge pages;
//! - Windows: `CONNECT_OPTION` and `connect_back`, how an elevated worker reaches the
//!   front end that started it (a named pipe, whose overlapped halves are in `pipe.rs`);
//! - [`standard_input`], the stream of a worker started without one (Linux: a Unix
//!   socket, through pkexec); both carry the job's image file (see [`transport`](crate::transport)).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::standard_input;
#[cfg(unix)]
pub(crate) use unix::{prefer_huge_pages, read_full_at, write_all_at};

#[cfg(windows)]
pub mod pipe;
#[cfg(windows)]
pub use pipe::{CONNECT_OPTION, connect_back, standard_input};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{prefer_huge_pages, read_full_at, write_all_at};

/// The two halves of the stream to the front end the worker connected back to.
#[cfg(windows)]
pub type Halves = (Box<dyn crate::transport::Receive>, Box<dyn std::io::Write + Send>);
