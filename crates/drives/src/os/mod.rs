//! Everything specific to one operating system, behind one contract.
//!
//! Each backend (`linux.rs`, `macos.rs`, `windows.rs`, and `unsupported.rs` for the
//! rest) provides the same functions, re-exported below under the same names, so the
//! rest of the crate never names an OS:
//!
//! - `list()` and `fingerprint()`: the drives, and a cheap value that changes when they do;
//! - `drives_holding(path)`, `drives_holding_file(file)`: the drives a file is stored on;
//! - `open_sequence(file)`: the attachment number of an open disk, where the OS has one;
//! - `prepare(drive)`, `open_device(path, write)`, `sync_step(file, step)`,
//!   `reread_partitions(file)` and `eject(drive)`: a write's system calls;
//! - `is_device(metadata)`, `is_block_device(path, metadata)`,
//!   `is_physical_drive_path(path)` and `has_medium(path)`: what a path is, for the
//!   resolver and for opening targets.
//!
//! `fallback.rs` holds the answers of a backend that cannot tell more. The pure halves — `linux_parse.rs`, `macos_parse.rs`, `windows_map.rs` and
//! `plan.rs` (retry schedules, sync sequences, which errors are harmless) — hold
//! every decision that can be separated from a system call, and are compiled and
//! tested on every OS.

use std::fs::File;
use std::io;

pub(crate) mod plan;

#[cfg(any(target_os = "linux", test, feature = "fuzzing"))]
pub(crate) mod linux_parse;
#[cfg(any(target_os = "macos", test, feature = "fuzzing"))]
pub(crate) mod macos_parse;
#[cfg(any(windows, test, feature = "fuzzing"))]
pub(crate) mod windows_map;

#[cfg(unix)]
pub(crate) mod unix;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod fallback;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as backend;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as backend;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as backend;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
use unsupported as backend;

pub(crate) use backend::{
    drives_holding, drives_holding_file, eject, fingerprint, has_medium, is_block_device, is_device,
    is_physical_drive_path, list, open_device, open_sequence, prepare, reread_partitions, sync_step,
};

/// Returns the file's size by seeking, which works for block devices on every OS.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) fn size_by_seek(file: &File) -> io::Result<u64> {
    use std::io::Seek;
    let mut handle = file;
    let end = handle.seek(io::SeekFrom::End(0))?;
    handle.seek(io::SeekFrom::Start(0))?;
    Ok(end)
}
