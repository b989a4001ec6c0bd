//! Linux and macOS: the worker connects back over a Unix socket.

use std::io;
use std::os::unix::net::UnixStream;

use super::Halves;

/// The worker's option naming the socket to connect to.
pub const CONNECT_OPTION: &str = "--connect-unix";

/// Connects to the front end's socket at `path`.
///
/// # Errors
/// When nothing listens there or the socket cannot be shared by two threads.
pub fn connect_back(path: &str) -> io::Result<Halves> {
    let stream = UnixStream::connect(path)?;
    let reader = stream.try_clone()?;
    Ok((Box::new(reader), Box::new(stream)))
}
