//! Linux: raw block devices through `O_DIRECT | O_EXCL` and the block ioctls.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::{DriveError, io_error, read_attr, size_by_seek};

// From <linux/fs.h>: _IO(0x12, 104), _IO(0x12, 95) and _IOR(0x12, 114, size_t).
const BLKSSZGET: libc::c_ulong = 0x1268;
const BLKRRPART: libc::c_ulong = 0x125f;
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;

/// The `/sys/block/<name>` directory of a device node, following symlinks such as `/dev/disk/by-id/…`.
fn sys_dir(path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let name = real.file_name()?.to_str()?;
    let dir = Path::new("/sys/class/block").join(name);
    dir.exists().then_some(dir)
}

/// Vendor, model and size of a device for confirmations, e.g. "SanDisk Cruzer Blade".
pub(crate) fn model(path: &Path) -> Option<String> {
    let dir = sys_dir(path)?;
    let vendor = read_attr(dir.join("device/vendor"));
    let model = read_attr(dir.join("device/model"));
    let name = match (vendor, model) {
        (Some(v), Some(m)) => format!("{v} {m}"),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => {
            let backing = read_attr(dir.join("loop/backing_file"))?;
            format!("loop device backed by {backing}")
        }
    };
    Some(name)
}

fn is_read_only(path: &Path) -> bool {
    sys_dir(path)
        .and_then(|dir| read_attr(dir.join("ro")))
        .is_some_and(|ro| ro == "1")
}

/// Opens a whole block device for direct, exclusive I/O; returns it with its capacity and logical block size.
pub(crate) fn open_device(path: &Path, write: bool) -> Result<(File, u64, usize), DriveError> {
    if write && is_read_only(path) {
        return Err(DriveError::ReadOnly(path.to_path_buf()));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT | libc::O_EXCL)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => DriveError::Busy(path.to_path_buf()),
            Some(libc::EROFS) => DriveError::ReadOnly(path.to_path_buf()),
            Some(libc::EACCES | libc::EPERM) => DriveError::PermissionDenied(path.to_path_buf()),
            _ => io_error(path, e),
        })?;
    let capacity = ioctl_u64(&file, BLKGETSIZE64).or_else(|_| size_by_seek(&file));
    let capacity = capacity.map_err(|e| io_error(path, e))?;
    let logical = ioctl_int(&file, BLKSSZGET).unwrap_or(512);
    Ok((file, capacity, logical))
}

/// Asks the kernel to re-read the partition table; failure (busy, no table) is harmless.
pub(crate) fn reread_partitions(file: &File) {
    // SAFETY: BLKRRPART takes no argument; the descriptor is open for the call's duration.
    let _ = unsafe { libc::ioctl(file.as_raw_fd(), BLKRRPART, 0) };
}

fn ioctl_u64(file: &File, request: libc::c_ulong) -> io::Result<u64> {
    let mut value: u64 = 0;
    // SAFETY: the request writes one u64 into `value`, which outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request, &raw mut value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn ioctl_int(file: &File, request: libc::c_ulong) -> io::Result<usize> {
    let mut value: libc::c_int = 0;
    // SAFETY: the request writes one int into `value`, which outlives the call.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request, &raw mut value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(value).map_err(|_| io::Error::other("negative block size"))
}
