//! What Linux and macOS share: reading a value out of a block-device ioctl.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Calls an ioctl that fills in one `T` (a size, a block count, a block size).
///
/// # Errors
/// Whatever the ioctl reports.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
pub(crate) fn ioctl_read<T: Copy + Default>(file: &File, request: libc::c_ulong) -> io::Result<T> {
    let mut value = T::default();
    // SAFETY: every caller passes a request that writes exactly one T into `value`,
    // which outlives the call; the descriptor is open for its duration.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request, &raw mut value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Whether `metadata` (of a path with symlinks followed) is a block or character device
/// (macOS's raw nodes `/dev/rdiskN` are character devices).
pub(crate) fn is_device(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_block_device() || metadata.file_type().is_char_device()
}
