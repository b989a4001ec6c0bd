//! What a backend answers about a path when its OS offers no finer way to tell
//! (Windows, where raw disks have no file metadata, and unsupported systems).

use std::path::Path;

/// Whether `metadata` (of a path with symlinks followed) is a device: anything that is
/// neither a regular file nor a directory.
pub(crate) fn is_device(metadata: &std::fs::Metadata) -> bool {
    !metadata.is_file() && !metadata.is_dir()
}

/// Whether the OS still has a device with a medium at `real`; the OS cannot
/// tell, so yes.
pub(crate) fn has_medium(_real: &Path) -> bool {
    true
}

/// The attachment number of the disk open as `_file`: the OS has none to ask the open
/// handle for, so the size alone is checked.
pub(crate) fn open_sequence(_file: &std::fs::File) -> Option<u64> {
    None
}
