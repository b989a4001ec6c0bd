//! Linux and macOS: positional I/O on devices, and the Unix socket the worker
//! connects back over.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::os::unix::net::UnixStream;

use super::Halves;
use crate::transport::{Plain, Receive};

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

/// The worker's standard input: the socket the front end made it (Linux: pkexec passes
/// it through), over which the image's descriptor comes with each job. Any other
/// standard input carries no files, and every job sent over it is refused.
///
/// # Errors
/// When standard input cannot be duplicated.
pub fn standard_input() -> io::Result<Box<dyn Receive>> {
    let stdin = io::stdin().as_fd().try_clone_to_owned()?;
    let socket = File::from(stdin.try_clone()?)
        .metadata()
        .is_ok_and(|m| m.file_type().is_socket());
    Ok(if socket {
        Box::new(UnixStream::from(stdin))
    } else {
        Box::new(Plain(File::from(stdin)))
    })
}

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    file.write_all_at(buf, offset)
}

/// Reads at `offset` until `buf` is full or the file ends; returns how much was read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    graver_image::fill_with(buf, |rest, done| file.read_at(rest, offset + done as u64))
}
