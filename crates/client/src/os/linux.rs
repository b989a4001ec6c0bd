//! Linux: `pkexec` of the installed worker. The polkit policy in
//! `packaging/linux/` (`auth_admin_keep`, and `auth_admin` for the unsafe mode) names it, so the prompt says what is
//! asked. The worker speaks on its standard streams, which pkexec passes through;
//! its standard input is a Unix socket, which carries each job's image descriptor.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::pkexec::{explain_pkexec_failure, pkexec_command};
use crate::LaunchError;
use crate::launch::{Connection, spawn_child};

/// The worker the package installs, at the path the polkit policy names: root owns it
/// and its folder, and pkexec grants the policy's action only for that path.
pub(crate) fn installed_worker() -> PathBuf {
    PathBuf::from(crate::LINUX_WORKER_PATH)
}

/// Starts the worker through pkexec.
pub(crate) fn launch_elevated(worker: &Path, token: &str, unsafe_mode: bool) -> Result<Connection, LaunchError> {
    if !worker.is_absolute() || !worker.exists() {
        return Err(LaunchError::WorkerMissing(worker.to_path_buf()));
    }
    let (program, args) = pkexec_command(worker, token, unsafe_mode);
    spawn_child(std::process::Command::new(program).args(args), "pkexec")
        .map_err(|e| LaunchError::NoPkexec(Box::new(e)))
}

/// pkexec's own exit codes (126, 127) say whether the user cancelled or no agent could ask.
pub(crate) fn explain_prompt_exit(how: &str, status: ExitStatus, stderr: &str) -> Option<LaunchError> {
    (how == "pkexec" && matches!(status.code(), Some(126 | 127))).then(|| explain_pkexec_failure(status.code(), stderr))
}
