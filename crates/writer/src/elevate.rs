//! Starting the worker with the rights to open raw devices, the way each OS asks for them.
//!
//! - Linux: `pkexec` of the installed worker; the polkit policy in
//!   `packaging/linux/` (`auth_admin_keep`) names it, so the prompt says what is
//!   asked. The worker speaks on its standard streams, which pkexec passes through.
//! - macOS: see `elevate/macos.rs`.
//! - Windows: see `elevate/windows.rs`.
//!
//! The command lines are built by plain functions, tested on every OS.

use std::path::Path;

use crate::client::Connection;
#[cfg(target_os = "linux")]
use crate::client::spawn_child;

pub(crate) mod commands;
#[cfg(target_os = "macos")]
mod macos;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{PipeReader, PipeWriter, connect_to_pipe};

/// Where packages install the worker on Linux; the polkit policy names this path.
pub const LINUX_WORKER_PATH: &str = "/usr/libexec/graver/graver-writer";

/// The worker's arguments for a launch with `token`, speaking on its standard streams.
pub fn worker_args(token: &str) -> Vec<String> {
    vec!["--token".into(), token.into()]
}

/// `pkexec WORKER --token TOKEN`: pkexec needs an absolute path and keeps the
/// standard streams, so the worker talks to us directly.
pub fn pkexec_command(worker: &Path, token: &str) -> (String, Vec<String>) {
    let mut args = vec![worker.display().to_string()];
    args.extend(worker_args(token));
    ("pkexec".into(), args)
}

/// What pkexec's exit says, when the worker never answered.
pub fn explain_pkexec_failure(code: Option<i32>, stderr: &str) -> String {
    if stderr.contains("No authentication agent") || stderr.contains("no authentication agent") {
        return "no polkit authentication agent is running, so Graver cannot ask for the administrator password; \
                log in to a desktop session (which starts one) or run Graver as root"
            .into();
    }
    match code {
        Some(126) => "authorization was cancelled or refused; nothing was written".into(),
        Some(127) if stderr.contains("Not authorized") || stderr.is_empty() => {
            "not authorized to write to drives; nothing was written".into()
        }
        Some(127) => format!("the administrator prompt failed: {stderr}"),
        _ if stderr.contains("not found") => format!("pkexec could not start the writer: {stderr}"),
        _ => format!("pkexec failed: {stderr}"),
    }
}

/// Starts the worker elevated.
#[cfg(target_os = "linux")]
pub(crate) fn launch_elevated(worker: &Path, token: &str) -> Result<Connection, String> {
    if !worker.is_absolute() || !worker.exists() {
        return Err(format!(
            "the writer program {} is missing; reinstall Graver",
            worker.display()
        ));
    }
    let (program, args) = pkexec_command(worker, token);
    spawn_child(std::process::Command::new(program).args(args), "pkexec")
        .map_err(|e| format!("pkexec is not available to ask for administrator rights ({e}); run Graver as root"))
}

/// Starts the worker elevated.
#[cfg(target_os = "macos")]
pub(crate) fn launch_elevated(worker: &Path, token: &str) -> Result<Connection, String> {
    macos::launch(worker, token)
}

/// Starts the worker elevated.
#[cfg(windows)]
pub(crate) fn launch_elevated(worker: &Path, token: &str) -> Result<Connection, String> {
    windows::launch(worker, token)
}

/// Starts the worker elevated.
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub(crate) fn launch_elevated(_worker: &Path, _token: &str) -> Result<Connection, String> {
    Err("Graver cannot ask for administrator rights on this OS; run it as an administrator".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkexec_runs_the_installed_worker_with_the_token() {
        let (program, args) = pkexec_command(Path::new(LINUX_WORKER_PATH), "00ff");
        assert_eq!(program, "pkexec");
        assert_eq!(args, [LINUX_WORKER_PATH, "--token", "00ff"]);
    }

    #[test]
    fn pkexec_failures_are_explained() {
        let no_agent = explain_pkexec_failure(
            Some(127),
            "Error executing command as another user: No authentication agent found.",
        );
        assert!(no_agent.contains("no polkit authentication agent"), "{no_agent}");
        assert!(explain_pkexec_failure(Some(126), "").contains("cancelled"));
        assert!(
            explain_pkexec_failure(Some(127), "Error executing command as another user: Not authorized")
                .contains("not authorized")
        );
    }
}
