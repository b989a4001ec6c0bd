//! Graver's knowledge of drives: what a write target is and how to open it.
//!
//! A *target* is where an image goes. It is either a whole raw block device
//! (`/dev/sdX`, `/dev/mmcblkN`, `/dev/loopN` on Linux) or a regular file, which
//! is handy for decompressing an image without writing a stick.
//!
//! Opening a target is where the operating system's rules live, so the engine
//! in `graver-writer` never sees them:
//!
//! - Linux: the device is opened with `O_DIRECT | O_EXCL`, so the page cache is
//!   bypassed (read-back verification then proves what the device holds) and the
//!   kernel refuses the open while a partition is mounted or another program
//!   holds the device exclusively. The capacity comes from `BLKGETSIZE64`, the
//!   logical block size from `BLKSSZGET`, and [`Target::finish`] asks the kernel
//!   to re-read the partition table (`BLKRRPART`) once the image is on it.
//! - A regular file is created fresh. An existing file is never truncated
//!   unless the caller asked for it with [`Access::Write`]`{ overwrite_file: true }`.
//! - macOS and Windows raw devices are not supported yet; opening one returns
//!   [`DriveError::Unsupported`] rather than guessing.
//!
//! Every error names the path and says what to do, because the CLI and the GUI
//! show it to the user as is.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(target_os = "linux")]
mod linux;

mod target;

pub use crate::target::{Access, DriveError, Target, TargetKind, describe, open_target};

/// Smallest alignment Graver uses for buffers and writes, whatever a device reports.
pub const MIN_BLOCK_SIZE: usize = 4096;

/// Maps an [`io::Error`] from opening or using `path` to a [`DriveError`].
fn io_error(path: &Path, source: io::Error) -> DriveError {
    DriveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Returns the file's size by seeking, which works for block devices on every OS.
fn size_by_seek(file: &File) -> io::Result<u64> {
    use std::io::Seek;
    let mut handle = file;
    let end = handle.seek(io::SeekFrom::End(0))?;
    handle.seek(io::SeekFrom::Start(0))?;
    Ok(end)
}

/// Reads a short text attribute (sysfs style) and trims it; `None` when absent or empty.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn read_attr(path: PathBuf) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
