//! pkexec's command line and what its failures mean, as plain functions tested on every OS.

use std::path::Path;

use crate::LaunchError;
use crate::launch::worker_args;

/// `pkexec WORKER --serve TOKEN`: pkexec needs an absolute path and keeps the
/// standard streams (descriptors 0 to 2), so the worker talks to us directly and
/// receives the image's descriptor over its standard input, a Unix socket. The first argument picks the
/// polkit action: `--serve-unsafe` is the one that asks for the password every time.
pub(crate) fn pkexec_command(worker: &Path, token: &str, unsafe_mode: bool) -> (String, Vec<String>) {
    let mut args = vec![worker.display().to_string()];
    args.extend(worker_args(token, unsafe_mode));
    ("pkexec".into(), args)
}

/// What pkexec's exit says, when the worker never answered.
pub(crate) fn explain_pkexec_failure(code: Option<i32>, stderr: &str) -> LaunchError {
    if stderr.contains("No authentication agent") || stderr.contains("no authentication agent") {
        return LaunchError::NoPolkitAgent;
    }
    match code {
        Some(126) => LaunchError::AuthorizationRefused,
        Some(127) if stderr.contains("Not authorized") || stderr.is_empty() => LaunchError::NotAuthorized,
        Some(127) => LaunchError::PromptFailed(stderr.to_owned()),
        _ if stderr.contains("not found") => LaunchError::PkexecCannotStart(stderr.to_owned()),
        _ => LaunchError::PkexecFailed(stderr.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LINUX_WORKER_PATH;

    #[test]
    fn pkexec_runs_the_installed_worker_with_the_token() {
        let (program, args) = pkexec_command(Path::new(LINUX_WORKER_PATH), "00ff", false);
        assert_eq!(program, "pkexec");
        assert_eq!(args, [LINUX_WORKER_PATH, "--serve", "--token", "00ff"]);
        let (_, args) = pkexec_command(Path::new(LINUX_WORKER_PATH), "00ff", true);
        assert_eq!(args, [LINUX_WORKER_PATH, "--serve-unsafe", "--token", "00ff"]);
    }

    #[test]
    fn pkexec_failures_are_explained() {
        let no_agent = explain_pkexec_failure(
            Some(127),
            "Error executing command as another user: No authentication agent found.",
        )
        .to_string();
        assert!(no_agent.contains("no polkit authentication agent"), "{no_agent}");
        assert!(explain_pkexec_failure(Some(126), "").to_string().contains("cancelled"));
        assert!(
            explain_pkexec_failure(Some(127), "Error executing command as another user: Not authorized")
                .to_string()
                .contains("not authorized")
        );
    }
}
