//! macOS, Windows and the rest: no sysfs to ask, and no per-thread file-system identity.

use std::path::Path;

/// The device list the worker just read is all there is to go on.
pub(crate) fn kernel_knows(_real: &Path) -> bool {
    true
}

/// Runs `f` as it is: the worker reads images with its own rights (the macOS
/// prompt and UAC start it for the user who asked).
pub(crate) fn as_invoking_user<T>(f: impl FnOnce() -> T) -> T {
    f()
}
