//! macOS: nothing is elevated and no Graver code runs as root. A front end without
//! the rights runs the worker on one of its threads (see `launch::privileged`), and
//! graver-drives opens each drive through the system's `authopen`, whose own
//! administrator prompt names the device and hands back only that device's open
//! descriptor. A worker program the user could replace never receives root.

use std::process::ExitStatus;

use crate::LaunchError;

/// No program stands between a prompt and a worker here: an ended worker is just that.
pub(crate) fn explain_prompt_exit(_how: &str, _status: ExitStatus, _stderr: &str) -> Option<LaunchError> {
    None
}
