//! Any other OS: Graver knows no elevation prompt there.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use crate::LaunchError;
use crate::launch::Connection;

/// Where a Unix package would put it; nothing is elevated here anyway.
pub(crate) fn installed_worker() -> PathBuf {
    PathBuf::from(crate::LINUX_WORKER_PATH)
}

/// Refuses: the user has to start Graver with the rights already.
pub(crate) fn launch_elevated(_worker: &Path, _token: &str, _unsafe_mode: bool) -> Result<Connection, LaunchError> {
    Err(LaunchError::Unsupported)
}

/// No program stands between the prompt and the worker here: an ended worker is just that.
pub(crate) fn explain_prompt_exit(_how: &str, _status: ExitStatus, _stderr: &str) -> Option<LaunchError> {
    None
}
