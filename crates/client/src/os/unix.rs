//! What Linux and macOS share: root has the rights, children end by signals, and a
//! socket carries open files to the worker.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};

use graver_writer::transport::Deliver;

/// The worker's standard input and our end of it: a Unix socket, which carries the
/// image's descriptor beside each job.
pub(crate) fn worker_input() -> io::Result<(Box<dyn Deliver>, Stdio)> {
    let (ours, theirs) = UnixStream::pair()?;
    Ok((Box::new(ours), Stdio::from(OwnedFd::from(theirs))))
}

/// Root may open raw devices without asking.
pub(crate) fn has_device_rights() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The signal that ended a child, if one did.
pub(crate) fn exit_signal(status: ExitStatus) -> Option<i32> {
    status.signal()
}
