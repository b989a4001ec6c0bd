//! Windows: the console for `graver.exe` used as a command-line tool, and Ctrl-C.
//!
//! Release builds are GUI-subsystem programs (`windows_subsystem = "windows"` in
//! `main.rs`), so a double-click opens the window without a console window beside
//! it. Windows gives such a program no console, so `graver list` typed into cmd.exe
//! would print nothing. [`attach_console_for_command_line`] therefore attaches to the
//! console of the program that started Graver when there are arguments, and points
//! the standard handles that lead nowhere at it; handles already redirected to a
//! file or a pipe (`graver list --json > drives.json`, `| findstr`) stay as they are.
//!
//! The trade-off: typed at its prompt, cmd.exe does not wait for a GUI-subsystem
//! program. The prompt comes back at once, Graver's output appears after it, the
//! exit code never reaches `%ERRORLEVEL%`, and cmd.exe and Graver read the same
//! keyboard, so a confirmation question would compete with the next command.
//! `start /wait graver write …` waits (and sets `%ERRORLEVEL%`), as do batch files,
//! PowerShell's `Start-Process -Wait -NoNewWindow graver …` and any pipe or
//! redirection (`graver list | more`, `$out = graver list --json`). Debug builds
//! are console programs and behave like any other command; attaching then fails
//! harmlessly.

use std::fs::OpenOptions;
use std::os::windows::io::IntoRawHandle;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{
    ATTACH_PARENT_PROCESS, AttachConsole, GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_INPUT_HANDLE,
    STD_OUTPUT_HANDLE, SetStdHandle,
};

/// Ctrl-C ends the process as the console's default does: Windows has no signal the
/// write could be cancelled from cleanly here, and the worker leaves the first MiB
/// unwritten when its front end goes away.
pub(crate) fn call_on_interrupt(_action: fn()) {}

/// When Graver was started with arguments, attaches it to its parent's console
/// (if it has none of its own and the parent has one) and gives every standard
/// handle that leads nowhere the console's input or output. Without arguments
/// (a double-click, the Start menu) it does nothing.
pub(crate) fn attach_console_for_command_line() {
    if std::env::args_os().len() < 2 {
        return;
    }
    let streams = [
        (STD_INPUT_HANDLE, "CONIN$"),
        (STD_OUTPUT_HANDLE, "CONOUT$"),
        (STD_ERROR_HANDLE, "CONOUT$"),
    ];
    let before = streams.map(|(which, _)| usable(which));
    // SAFETY: takes no pointers. It fails, changing nothing, when this process
    // already has a console (a debug build) or the parent has none (Explorer).
    if unsafe { AttachConsole(ATTACH_PARENT_PROCESS) } == 0 {
        return;
    }
    for ((which, device), original) in streams.into_iter().zip(before) {
        match original {
            // Redirected before attaching: keep it, whatever attaching did.
            // SAFETY: puts back the handle this process was started with.
            Some(handle) => unsafe {
                SetStdHandle(which, handle);
            },
            None if usable(which).is_none() => {
                let Ok(console) = OpenOptions::new().read(true).write(true).open(device) else {
                    continue;
                };
                // The handle stays open for the rest of the process, as a standard handle does.
                // SAFETY: a valid handle that nothing else owns.
                unsafe { SetStdHandle(which, console.into_raw_handle()) };
            }
            None => {}
        }
    }
}

/// The standard handle `which`, unless it is missing or invalid.
fn usable(which: STD_HANDLE) -> Option<HANDLE> {
    // SAFETY: takes no pointers; returns a handle value or NULL/INVALID_HANDLE_VALUE.
    let handle = unsafe { GetStdHandle(which) };
    (!handle.is_null() && handle != INVALID_HANDLE_VALUE).then_some(handle)
}
