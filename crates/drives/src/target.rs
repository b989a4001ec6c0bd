//! Opening a write target, whatever it is.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::os::plan::{self, Os};
use crate::{MIN_BLOCK_SIZE, io_error};

/// What a [`Target`] is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A whole raw block device.
    BlockDevice,
    /// A regular file, created or overwritten on request.
    File,
}

/// How a target is to be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open for writing (and reading back). A regular file that exists is
    /// refused unless `overwrite_file` is set.
    Write {
        /// Truncate an existing regular file instead of refusing it.
        overwrite_file: bool,
    },
    /// Open for reading only, to compare with an image.
    Read,
}

/// Everything that can go wrong while finding or opening a target.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// The path does not exist and the access does not create it.
    #[error("{}: no such device or file", .0.display())]
    NotFound(PathBuf),
    /// The path is something that cannot take an image (a directory, a character device, a socket).
    #[error("{}: not a block device or regular file ({kind})", .path.display())]
    NotWritable {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// A regular file exists and overwriting was not asked for.
    #[error(
        "{}: the file already exists; Graver never truncates a file silently (remove it or pass --overwrite)",
        .0.display()
    )]
    FileExists(PathBuf),
    /// The device is read-only (write-protect switch, `losetup -r`, or a read-only medium).
    #[error("{}: the drive is read-only (check its write-protect switch)", .0.display())]
    ReadOnly(PathBuf),
    /// Something holds the device: a mounted partition or another program.
    #[error(
        "{}: the drive is busy: a partition is still mounted or another program has it open; unmount it and try again",
        .0.display()
    )]
    Busy(PathBuf),
    /// Something holds the drive, and Graver found out what: the detail names it.
    #[error("{}: the drive is busy: {detail}", .path.display())]
    InUse {
        /// The drive.
        path: PathBuf,
        /// What holds it and what to do, e.g. "/media/stick is in use by bash (pid 412); close it and try again".
        detail: String,
    },
    /// The path names another drive than the one the user chose: it was unplugged,
    /// swapped, resized or (a loop device) re-attached since it was listed.
    #[error(
        "{}: the drive changed since you chose it (unplugged, swapped or re-attached); nothing was written, choose it again",
        .0.display()
    )]
    Changed(PathBuf),
    /// Opening raw devices needs rights the process does not have.
    #[error("{}: permission denied; writing to a drive needs administrator rights", .0.display())]
    PermissionDenied(PathBuf),
    /// The user dismissed the system's administrator prompt for opening the device (macOS).
    #[error("{}: cancelled at the administrator prompt; nothing was written", .0.display())]
    Cancelled(PathBuf),
    /// Raw devices on this operating system are not supported yet.
    #[error("{}: writing to raw devices is not supported on this OS yet", .0.display())]
    Unsupported(PathBuf),
    /// Any other I/O error, with the path it happened on.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// An opened target: a device or file ready for aligned positional I/O.
pub struct Target {
    file: File,
    path: PathBuf,
    kind: TargetKind,
    capacity: Option<u64>,
    block_size: usize,
    /// The drive is ejected right after [`Target::finish`].
    ejecting: bool,
    /// Whatever must stay alive while the target is written (volume locks on Windows).
    _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("capacity", &self.capacity)
            .field("block_size", &self.block_size)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A raw block device opened by the OS module, `block_size` raised to at least [`MIN_BLOCK_SIZE`].
    #[cfg_attr(not(any(target_os = "linux", target_os = "macos", windows)), allow(dead_code))]
    pub(crate) fn device(file: File, path: &Path, capacity: u64, block_size: usize) -> Self {
        Self {
            file,
            path: path.to_path_buf(),
            kind: TargetKind::BlockDevice,
            capacity: Some(capacity),
            block_size: block_size.max(MIN_BLOCK_SIZE).next_power_of_two(),
            ejecting: false,
            _guard: None,
        }
    }

    /// Whether the open device is still the drive `identity` names: the same size and,
    /// where the OS can tell from the open handle, the same attachment (Linux:
    /// `BLKGETDISKSEQ`). Checked after opening, because the node may have been given to
    /// another medium between listing and opening.
    ///
    /// # Errors
    /// [`DriveError::Changed`] when it is another drive.
    pub fn check_identity(&self, identity: &crate::Identity) -> Result<(), DriveError> {
        let same_size = self.capacity == Some(identity.size);
        let same_sequence = match (identity.sequence, crate::os::open_sequence(&self.file)) {
            (Some(chosen), Some(open)) => chosen == open,
            _ => true,
        };
        if same_size && same_sequence {
            Ok(())
        } else {
            Err(DriveError::Changed(self.path.clone()))
        }
    }

    /// Keeps `guard` alive as long as the target (Windows keeps its volume locks this way).
    #[cfg_attr(not(windows), allow(dead_code))]
    pub(crate) fn with_guard(mut self, guard: impl std::any::Any + Send + Sync) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// The open file or device handle.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a device or a regular file.
    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// How many bytes fit: the device size, or `None` for a file, which grows.
    pub fn capacity(&self) -> Option<u64> {
        self.capacity
    }

    /// The unit every write offset and length is a multiple of (at least [`MIN_BLOCK_SIZE`]).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Says whether the drive will be ejected right after [`Target::finish`]. Windows
    /// then leaves the new partitions unmounted, so it writes nothing into them.
    pub fn set_ejecting(&mut self, ejecting: bool) {
        self.ejecting = ejecting;
    }

    /// Makes everything written so far durable, with the calls this OS and kind
    /// of target need (on macOS a raw disk refuses the `F_FULLFSYNC` that
    /// [`File::sync_data`] sends, so it gets `fsync` and a cache flush instead).
    ///
    /// # Errors
    /// Whatever the OS reports, except a flush the device does not support.
    pub fn sync(&self) -> io::Result<()> {
        for &step in plan::sync_steps(Os::CURRENT, self.kind) {
            match crate::os::sync_step(&self.file, step) {
                Err(e) if plan::sync_error_is_harmless(Os::CURRENT, step, e.raw_os_error()) => {}
                outcome => outcome?,
            }
        }
        Ok(())
    }

    /// Ends a write: a file is cut to `image_len` (the engine pads the last block),
    /// a device has its partition table re-read so the new partitions appear
    /// (on Windows not when the drive is ejected next, see [`Target::set_ejecting`]).
    ///
    /// # Errors
    /// When truncating the file fails. A failed re-read of the partition table
    /// is not an error: the data is on the device, and the kernel reads the
    /// table again the next time the drive is plugged in.
    pub fn finish(&self, image_len: u64) -> Result<(), DriveError> {
        match self.kind {
            TargetKind::File => self
                .file
                .set_len(image_len)
                .and_then(|()| self.file.sync_all())
                .map_err(|e| io_error(&self.path, e)),
            TargetKind::BlockDevice => {
                if plan::reread_on_finish(Os::CURRENT, self.ejecting) {
                    crate::os::reread_partitions(&self.file);
                }
                Ok(())
            }
        }
    }
}

/// Opens `path` as a target for `access`.
///
/// # Errors
/// A specific [`DriveError`] for a missing path, a directory, an existing file
/// without `overwrite_file`, a read-only or busy device, missing rights, a dismissed
/// administrator prompt (macOS opens devices through `authopen` unless root), or an
/// OS whose raw devices are not supported yet.
pub fn open_target(path: &Path, access: Access) -> Result<Target, DriveError> {
    if crate::os::is_physical_drive_path(path) {
        return open_device(path, access);
    }
    let metadata = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(path, e)),
    };
    let Some(metadata) = metadata else {
        return match access {
            // A device that has gone (a stick pulled, a partition re-read away) must not
            // silently become a new regular file in the device directory.
            Access::Write { .. } if crate::is_device_name(path) => Err(DriveError::NotFound(path.to_path_buf())),
            Access::Write { .. } => open_new_file(path),
            Access::Read => Err(DriveError::NotFound(path.to_path_buf())),
        };
    };
    if metadata.is_file() {
        return open_existing_file(path, access, metadata.len());
    }
    if metadata.is_dir() {
        return Err(DriveError::NotWritable {
            path: path.to_path_buf(),
            kind: "a directory",
        });
    }
    if crate::os::is_block_device(path, &metadata) {
        return open_device(path, access);
    }
    Err(DriveError::NotWritable {
        path: path.to_path_buf(),
        kind: "a special file",
    })
}

fn open_new_file(path: &Path) -> Result<Target, DriveError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    Ok(file_target(file, path, None))
}

fn open_existing_file(path: &Path, access: Access, len: u64) -> Result<Target, DriveError> {
    let file = match access {
        Access::Read => File::open(path).map_err(|e| io_error(path, e))?,
        Access::Write { overwrite_file: false } => return Err(DriveError::FileExists(path.to_path_buf())),
        Access::Write { overwrite_file: true } => OpenOptions::new()
            .read(true)
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io_error(path, e))?,
    };
    let capacity = matches!(access, Access::Read).then_some(len);
    Ok(file_target(file, path, capacity))
}

fn file_target(file: File, path: &Path, capacity: Option<u64>) -> Target {
    Target {
        file,
        path: path.to_path_buf(),
        kind: TargetKind::File,
        capacity,
        block_size: MIN_BLOCK_SIZE,
        ejecting: false,
        _guard: None,
    }
}

fn open_device(path: &Path, access: Access) -> Result<Target, DriveError> {
    crate::os::open_device(path, matches!(access, Access::Write { .. }))
}
