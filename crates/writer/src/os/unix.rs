//! Linux and macOS: positional I/O on devices, and the worker's standard input,
//! a Unix socket that carries the image's descriptor.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::os::unix::net::UnixStream;

use crate::transport::{Plain, Receive};

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

/// Asks Linux to back `len` bytes at `ptr` (huge-page aligned, not yet touched) with
/// transparent huge pages, which most distributions give only to memory that asks
/// (`enabled = madvise`). A refusal is harmless: the memory works with small pages.
#[cfg(target_os = "linux")]
pub(crate) fn prefer_huge_pages(ptr: std::ptr::NonNull<u8>, len: usize) {
    // SAFETY: madvise only advises on the caller's own mapping and moves no memory.
    let _ = unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_HUGEPAGE) };
}

/// macOS has no hint for this; its allocator's large blocks are used as they come.
#[cfg(not(target_os = "linux"))]
pub(crate) fn prefer_huge_pages(_ptr: std::ptr::NonNull<u8>, _len: usize) {}
