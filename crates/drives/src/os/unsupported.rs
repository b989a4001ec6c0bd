//! Operating systems without a drive backend: nothing is listed, raw devices are refused.

use std::fs::File;
use std::path::Path;

use crate::os::plan::SyncStep;
use crate::{Drive, DriveError, Ejected, Target};

pub(crate) fn list() -> Result<Vec<Drive>, DriveError> {
    Ok(Vec::new())
}

pub(crate) fn drives_holding(_path: &Path) -> Vec<String> {
    Vec::new()
}

pub(crate) fn drives_holding_file(_file: &File) -> Vec<String> {
    Vec::new()
}

pub(crate) fn prepare(drive: &Drive) -> Result<Target, DriveError> {
    Err(DriveError::Unsupported(drive.path.clone()))
}

pub(crate) fn eject(_drive: &Drive) -> Result<Ejected, DriveError> {
    Ok(Ejected::NotSupported("this OS has no eject support in Graver".into()))
}

pub(crate) fn open_device(path: &Path, _write: bool) -> Result<Target, DriveError> {
    Err(DriveError::Unsupported(path.to_path_buf()))
}

pub(crate) fn reread_partitions(_file: &File) {}

pub(crate) fn sync_step(file: &File, _step: SyncStep) -> std::io::Result<()> {
    file.sync_data()
}

pub(crate) fn fingerprint() -> u64 {
    0
}

pub(crate) use super::fallback::{has_medium, is_device, open_sequence};

/// This OS has no raw devices Graver opens.
pub(crate) fn is_block_device(_path: &Path, _metadata: &std::fs::Metadata) -> bool {
    false
}

/// Only Windows names disks `\\.\PhysicalDriveN`.
pub(crate) fn is_physical_drive_path(_path: &Path) -> bool {
    false
}
