//! Linux and macOS: positional I/O on devices, and the Unix socket the worker
//! connects back over.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
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

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(buf, offset)
}

/// Reads at `offset` until `buf` is full or the file ends; returns how much was read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    graver_image::fill_with(buf, |rest, done| file.read_at(rest, offset + done as u64))
}
