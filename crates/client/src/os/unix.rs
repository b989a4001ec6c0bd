//! What Linux and macOS share: root has the rights, and children end by signals.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// Root may open raw devices without asking.
pub(crate) fn has_device_rights() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The signal that ended a child, if one did.
pub(crate) fn exit_signal(status: ExitStatus) -> Option<i32> {
    status.signal()
}
