//! Windows: positional I/O on devices (the worker's end of the named pipe is in `pipe.rs`).

use std::fs::File;
use std::io;
use std::os::windows::fs::FileExt;

/// Writes all of `buf` at `offset`.
pub(crate) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match file.seek_write(&buf[done..], offset + done as u64) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads at `offset` until `buf` is full or the file ends; returns how much was read.
pub(crate) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    graver_image::fill_with(buf, |rest, done| file.seek_read(rest, offset + done as u64))
}

/// Windows gives large pages only to processes holding `SeLockMemoryPrivilege`, which
/// no flasher should ask for; the buffers use ordinary pages.
pub(crate) fn prefer_huge_pages(_ptr: std::ptr::NonNull<u8>, _len: usize) {}
