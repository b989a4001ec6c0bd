//! Graver's knowledge of drives: which ones there are, which may be written,
//! and how to get one ready for raw writing.
//!
//! The user picks a drive the way the NixOS manual tells them to find one with
//! `lsblk` or `diskutil list`: by size, name and bus. This crate gives that list
//! and decides, once, what is safe:
//!
//! - [`list`] returns every whole-disk device with the path the engine opens
//!   (`/dev/sdX`, `/dev/mmcblkN`, `/dev/nvmeXnY`, `/dev/rdiskN`,
//!   `\\.\PhysicalDriveN`), size, vendor and model, bus, removable and read-only
//!   state, block sizes, and partitions with their mount points. A drive that
//!   holds the running system carries the reason in [`Drive::system`].
//! - [`resolve`] says what a path names: a listed drive, a partition of one, a
//!   regular file, or a device Graver does not write to (or that is gone).
//! - [`judge`] is the policy: a drive, the [`ImageFacts`] of the image meant for it
//!   and the user's [`Consent`] give a [`Verdict`]: refused, or allowed once the user
//!   typed the name of a system drive and confirmed the warnings. [`classify`] lists
//!   the [`Finding`]s it decides on — system, holds the source, too small, read-only,
//!   large, non-removable — each with a sentence the GUI and CLI show as is.
//! - [`prepare`] unmounts every partition and opens the raw device for direct,
//!   exclusive I/O; [`eject`] powers the drive off or ejects it once written.
//! - [`Watcher`] notices drives arriving and leaving and sends each new list over
//!   a channel, re-listing only when something changed.
//!
//! A *target* is where an image goes: a whole raw device or a regular file,
//! opened by [`open_target`] (or [`prepare`] for a listed drive):
//!
//! - Linux: `O_DIRECT | O_EXCL`, so the page cache is bypassed (read-back
//!   verification then proves what the device holds) and the kernel refuses the
//!   open while a partition is mounted. The capacity comes from `BLKGETSIZE64`,
//!   the logical block size from `BLKSSZGET`, and [`Target::finish`] asks the
//!   kernel to re-read the partition table (`BLKRRPART`).
//! - macOS: the raw node `/dev/rdiskN` with `F_NOCACHE`, after `diskutil unmountDisk
//!   force` on the disk and on every APFS container stored on it; [`Target::sync`]
//!   uses `fsync` and `DKIOCSYNCHRONIZECACHE`, since a raw node rejects `F_FULLFSYNC`.
//! - Windows: `\\.\PhysicalDriveN` with `FILE_FLAG_NO_BUFFERING |
//!   FILE_FLAG_WRITE_THROUGH`, shared for reading only, after every volume on it is
//!   locked and dismounted; the locks are held by the [`Target`] until it is dropped.
//! - A regular file is created fresh. An existing file is never truncated
//!   unless the caller asked for it with [`Access::Write`]`{ overwrite_file: true }`.
//!
//! Every error names the path and says what to do, because the CLI and the GUI
//! show it to the user as is.

use std::io;
use std::path::Path;

mod drive;
mod os;
mod policy;
mod resolve;
mod target;
mod watcher;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use crate::drive::{Bus, Drive, Identity, Partition};
pub use crate::policy::{
    Ask, Consent, Finding, Hazard, ImageFacts, LARGE_DRIVE_BYTES, Refusal, Severity, Verdict, classify, is_flashable,
    judge, sentences,
};
pub use crate::resolve::{PathKind, Resolved, chosen, path_kind, resolve};
pub use crate::target::{Access, DriveError, Target, TargetKind, open_target};
pub use crate::watcher::Watcher;

#[cfg(unix)]
pub use crate::os::unix::{receive_with_files, send_with_file};

/// Smallest alignment Graver uses for buffers and writes, whatever a device reports.
pub const MIN_BLOCK_SIZE: usize = 4096;

/// What [`eject`] managed to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Ejected {
    /// The drive was ejected or powered off: it is safe to remove.
    Ejected,
    /// The OS cannot eject this drive; the sentence says what was done instead.
    NotSupported(String),
}

/// Every whole-disk device, system drives and loop devices included.
///
/// # Errors
/// When the OS's device list cannot be read at all.
pub fn list() -> Result<Vec<Drive>, DriveError> {
    os::list()
}

/// The [`Drive::name`]s of the drives the file at `path` is stored on: none when it is
/// on no local drive, several when its file system spans several (RAID, btrfs, ZFS).
pub fn drives_holding(path: &Path) -> Vec<String> {
    os::drives_holding(path)
}

/// [`drives_holding`] for a file already open: the drives its own file system is on,
/// whatever path it was opened by (the worker has no path it can trust).
pub fn drives_holding_file(file: &std::fs::File) -> Vec<String> {
    os::drives_holding_file(file)
}

/// Unmounts every partition of `drive` and opens it for raw writing (on macOS, unless
/// this process is root, through the system's `authopen` and its administrator prompt).
///
/// # Errors
/// [`DriveError::Busy`] naming what still holds the drive, [`DriveError::ReadOnly`],
/// [`DriveError::PermissionDenied`], [`DriveError::Cancelled`] when macOS's prompt was
/// dismissed, or an I/O error.
pub fn prepare(drive: &Drive) -> Result<Target, DriveError> {
    os::prepare(drive)
}

/// Ejects or powers off a written drive so it is safe to remove.
///
/// # Errors
/// When the OS refuses to eject a drive that supports it.
pub fn eject(drive: &Drive) -> Result<Ejected, DriveError> {
    os::eject(drive)
}

/// Whether `path` names a device node by where it lives (`/dev/sdz`,
/// `/dev/disk/by-id/…`, `\\.\PhysicalDrive3`), even when no such device exists
/// (unplugged): such a path must never become a new regular file. Files in
/// tmpfs under `/dev/shm` are files.
pub(crate) fn is_device_name(path: &Path) -> bool {
    if path.to_string_lossy().starts_with(r"\\.\") {
        return true;
    }
    path.parent()
        .is_some_and(|dir| dir == Path::new("/dev") || dir.starts_with("/dev/disk"))
}

/// Maps an [`io::Error`] from opening or using `path` to a [`DriveError`].
fn io_error(path: &Path, source: io::Error) -> DriveError {
    DriveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_told_from_files_by_where_they_live() {
        for device in [
            "/dev/sdz",
            "/dev/mmcblk0",
            "/dev/disk/by-id/usb-SanDisk_Cruzer-0:0",
            r"\\.\PhysicalDrive3",
        ] {
            assert!(is_device_name(Path::new(device)), "{device}");
        }
        for file in ["/dev/shm/copy.img", "/tmp/out.img", "out.img", "/home/user/dev/sdb"] {
            assert!(!is_device_name(Path::new(file)), "{file}");
        }
    }
}
