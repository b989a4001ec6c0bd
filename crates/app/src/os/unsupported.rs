//! Other operating systems: the default handling of Ctrl-C and of the console.

/// Ctrl-C ends the process as the OS's default does.
pub(crate) fn call_on_interrupt(_action: fn()) {}

/// The console is whatever the OS gives.
pub(crate) fn attach_console_for_command_line() {}
