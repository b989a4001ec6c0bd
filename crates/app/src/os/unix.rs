//! Linux and macOS: Ctrl-C and SIGTERM as a clean cancel; a console needs no help.

use std::sync::OnceLock;

static ACTION: OnceLock<fn()> = OnceLock::new();

/// Calls `action` on the first SIGINT or SIGTERM; the next one ends the process at once.
pub(crate) fn call_on_interrupt(action: fn()) {
    if ACTION.set(action).is_err() {
        return;
    }
    extern "C" fn on_signal(_: libc::c_int) {
        if let Some(action) = ACTION.get() {
            action();
        }
    }
    // SAFETY: the handler only calls an action set before installation, which does an atomic store.
    unsafe {
        let mut sigaction: libc::sigaction = std::mem::zeroed();
        sigaction.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        sigaction.sa_flags = libc::SA_RESETHAND;
        libc::sigaction(libc::SIGINT, &raw const sigaction, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &raw const sigaction, std::ptr::null_mut());
    }
}

/// A Unix program started from a terminal has it already.
pub(crate) fn attach_console_for_command_line() {}
