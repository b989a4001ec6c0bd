//! Windows elevation: UAC starts the worker (`ShellExecuteExW`, verb `runas`;
//! the worker's manifest asks for administrator rights), and the worker
//! connects back to a named pipe that only this user's SID may open.
//!
//! The pipe exists before the prompt appears, as its first and only instance
//! (`FILE_FLAG_FIRST_PIPE_INSTANCE`), so no other program can have created it
//! first; remote clients are refused; and once connected, the client's process
//! id must be the one UAC started. The token handshake then proves to the
//! worker that we started it.
//!
//! The pipe is opened for overlapped I/O on both ends; the halves that make
//! that work are graver-writer's (`os/pipe.rs`), shared with the worker's end.

use std::ffi::OsString;
use std::io;
use std::os::windows::ffi::OsStringExt;
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::ptr;
use std::time::Duration;

use graver_writer::os::pipe::{Hangup, new_event, owned, split, wide};
use graver_writer::transport::{Deliver, Handles};
use windows_sys::Win32::Foundation::{
    ERROR_IO_PENDING, ERROR_PIPE_CONNECTED, HANDLE, LocalFree, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{GetTokenInformation, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER, TokenUser};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_FIRST_PIPE_INSTANCE, FILE_FLAG_OVERLAPPED, PIPE_ACCESS_DUPLEX,
};
use windows_sys::Win32::System::Com::{
    COINIT_APARTMENTTHREADED, COINIT_DISABLE_OLE1DDE, CoInitializeEx, CoTaskMemFree, CoUninitialize,
};
use windows_sys::Win32::System::IO::{CancelIoEx, GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientProcessId, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS,
    PIPE_TYPE_BYTE, PIPE_WAIT,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, GetProcessId, OpenProcessToken, WaitForMultipleObjects,
};
use windows_sys::Win32::UI::Shell::{
    FOLDERID_ProgramFiles, SEE_MASK_FLAG_NO_UI, SEE_MASK_NOASYNC, SEE_MASK_NOCLOSEPROCESS, SHELLEXECUTEINFOW,
    SHGetKnownFolderPath, ShellExecuteExW,
};
use windows_sys::Win32::UI::WindowsAndMessaging::SW_HIDE;

use super::windows_commands::{explain_shell_execute_error, pipe_name, pipe_sddl, worker_parameters};
use crate::LaunchError;
use crate::launch::{Connection, Process};

/// Nobody has the rights to open raw devices without asking: even an
/// administrator's programs run without them until UAC elevates one.
pub(crate) fn has_device_rights() -> bool {
    false
}

/// The worker the installer puts in Program Files (`{autopf}\\Graver` in
/// packaging/windows/graver.iss), where only administrators may change it. The folder
/// comes from the system, not from the `ProgramFiles` variable, which the user sets.
pub(crate) fn installed_worker() -> PathBuf {
    program_files()
        .unwrap_or_else(|| PathBuf::from(r"C:\Program Files"))
        .join(r"Graver\graver-writer.exe")
}

fn program_files() -> Option<PathBuf> {
    let mut path: *mut u16 = ptr::null_mut();
    // SAFETY: FOLDERID_ProgramFiles is a valid GUID; on success `path` receives a
    // NUL-terminated string that CoTaskMemFree releases, also on failure (null is allowed).
    let found = unsafe { SHGetKnownFolderPath(&FOLDERID_ProgramFiles, 0, ptr::null_mut(), &mut path) };
    let folder = (found == 0 && !path.is_null()).then(|| {
        // SAFETY: `path` is NUL-terminated, as SHGetKnownFolderPath promises.
        let len = (0..).take_while(|&i| unsafe { *path.add(i) } != 0).count();
        // SAFETY: the `len` units before the NUL are the string.
        PathBuf::from(OsString::from_wide(unsafe { std::slice::from_raw_parts(path, len) }))
    });
    // SAFETY: `path` came from SHGetKnownFolderPath (or is null).
    unsafe { CoTaskMemFree(path.cast()) };
    folder
}

/// Windows ends processes without signals.
pub(crate) fn exit_signal(_status: ExitStatus) -> Option<i32> {
    None
}

/// How long the worker may take to connect once UAC has started it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The pipe's buffer in each direction.
const PIPE_BUFFER: u32 = 64 * 1024;

/// Asks for administrator rights through UAC and starts `worker` connected to us.
/// Each launch is its own prompt, so unsafe mode is a fresh prompt for its job.
pub(crate) fn launch_elevated(worker: &Path, token: &str, unsafe_mode: bool) -> Result<Connection, LaunchError> {
    if !worker.is_absolute() || !worker.exists() {
        return Err(LaunchError::WorkerMissing(worker.to_path_buf()));
    }
    let name = pipe_name(token);
    let sid = current_user_sid().map_err(LaunchError::UserSid)?;
    let pipe = create_pipe(&name, &pipe_sddl(&sid)).map_err(|source| LaunchError::CreatePipe {
        name: name.clone(),
        source,
    })?;
    let process = start_elevated(worker, &worker_parameters(&name, token, unsafe_mode))?;
    wait_for_client(&pipe, process.as_raw_handle(), CONNECT_TIMEOUT).map_err(|failure| match failure {
        ConnectFailure::Exited => LaunchError::EarlyExit(exit_code(&process)),
        ConnectFailure::TimedOut => LaunchError::ConnectTimeout(CONNECT_TIMEOUT.as_secs()),
        ConnectFailure::Io(e) => LaunchError::Wait(e),
    })?;
    check_client_is(&pipe, &process)?;
    let (from_worker, to_worker) = split(pipe, Hangup::Disconnect).map_err(LaunchError::Connection)?;
    Ok(Connection {
        // The worker duplicates the image's handle out of this process by its value.
        to_worker: Box::new(Handles(to_worker)),
        from_worker: Box::new(from_worker),
        process: Process::Detached,
        how: "UAC prompt".into(),
    })
}

/// A child worker's standard input: a pipe, over which the image's handle value goes
/// (the worker duplicates it out of this process, the pipe's server end).
pub(crate) fn worker_input() -> io::Result<(Box<dyn Deliver>, Stdio)> {
    let (theirs, ours) = io::pipe()?;
    Ok((Box::new(Handles(ours)), Stdio::from(theirs)))
}

/// This process's user, as an SID string (`S-1-5-21-…`).
fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: the pseudo handle of the current process needs no closing, and
    // `token` is a live out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: OpenProcessToken just returned it.
    let token = unsafe { owned(token) }?;
    let mut size = 0u32;
    // SAFETY: asks only for the size; a null buffer of length 0 is allowed.
    unsafe { GetTokenInformation(token.as_raw_handle(), TokenUser, ptr::null_mut(), 0, &raw mut size) };
    // u64 elements align the buffer for TOKEN_USER, which holds a pointer.
    let mut buffer = vec![0u64; (size as usize).div_ceil(8).max(1)];
    let capacity = u32::try_from(buffer.len() * 8).map_err(io::Error::other)?;
    // SAFETY: the buffer is writable for `capacity` bytes and outlives the call.
    let filled = unsafe {
        GetTokenInformation(
            token.as_raw_handle(),
            TokenUser,
            buffer.as_mut_ptr().cast(),
            capacity,
            &raw mut size,
        )
    };
    if filled == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: GetTokenInformation wrote a TOKEN_USER at the start of the aligned
    // buffer; its SID pointer points into the same buffer, which lives on below.
    let user = unsafe { &*buffer.as_ptr().cast::<TOKEN_USER>() };
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: the SID is valid (see above) and `text` is a live out-pointer.
    if unsafe { ConvertSidToStringSidW(user.User.Sid, &raw mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let text = LocalMemory(text.cast());
    // SAFETY: ConvertSidToStringSidW returned a NUL-terminated UTF-16 string,
    // which `text` frees only when dropped after this read.
    let sid = unsafe {
        let start = text.0.cast::<u16>();
        let len = (0..).take_while(|&i| *start.add(i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(start, len))
    };
    Ok(sid)
}

/// The pipe's server end, its only instance, readable and writable by `sddl`'s SIDs alone.
fn create_pipe(name: &str, sddl: &str) -> io::Result<OwnedHandle> {
    let wide_sddl = wide(sddl);
    let mut descriptor: *mut core::ffi::c_void = ptr::null_mut();
    // SAFETY: the SDDL string is NUL-terminated and `descriptor` is a live out-pointer.
    let converted = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            wide_sddl.as_ptr(),
            SDDL_REVISION_1,
            &raw mut descriptor,
            ptr::null_mut(),
        )
    };
    if converted == 0 {
        return Err(io::Error::last_os_error());
    }
    let descriptor = LocalMemory(descriptor);
    let attributes = SECURITY_ATTRIBUTES {
        nLength: u32::try_from(size_of::<SECURITY_ATTRIBUTES>()).map_err(io::Error::other)?,
        lpSecurityDescriptor: descriptor.0,
        bInheritHandle: 0,
    };
    let wide_name = wide(name);
    // SAFETY: the name is NUL-terminated, and the attributes and the descriptor
    // they point to live until the call returns.
    let handle = unsafe {
        CreateNamedPipeW(
            wide_name.as_ptr(),
            PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
            1,
            PIPE_BUFFER,
            PIPE_BUFFER,
            0,
            &raw const attributes,
        )
    };
    // SAFETY: CreateNamedPipeW just returned it.
    unsafe { owned(handle) }
}

/// Shows the UAC prompt and starts the worker; returns its process handle.
fn start_elevated(worker: &Path, parameters: &str) -> Result<OwnedHandle, LaunchError> {
    let verb = wide("runas");
    let file = wide(worker.as_os_str());
    let parameters = wide(parameters);
    let mut info = SHELLEXECUTEINFOW {
        cbSize: u32::try_from(size_of::<SHELLEXECUTEINFOW>()).unwrap_or(u32::MAX),
        fMask: SEE_MASK_NOCLOSEPROCESS | SEE_MASK_NOASYNC | SEE_MASK_FLAG_NO_UI,
        lpVerb: verb.as_ptr(),
        lpFile: file.as_ptr(),
        lpParameters: parameters.as_ptr(),
        nShow: SW_HIDE,
        ..Default::default()
    };
    // ShellExecuteExW may hand the verb to shell extensions, which need COM on this thread.
    // SAFETY: no reserved pointer; balanced below when it succeeded.
    let com = unsafe { CoInitializeEx(ptr::null(), (COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE) as u32) };
    // SAFETY: the strings are NUL-terminated and outlive the call; `info` is a
    // properly sized, live SHELLEXECUTEINFOW.
    let started = unsafe { ShellExecuteExW(&raw mut info) };
    let error = io::Error::last_os_error();
    if com >= 0 {
        // SAFETY: pairs with the successful CoInitializeEx above, on the same thread.
        unsafe { CoUninitialize() };
    }
    if started == 0 {
        let code = error
            .raw_os_error()
            .map_or(0, |code| u32::from_ne_bytes(code.to_ne_bytes()));
        return Err(explain_shell_execute_error(code, worker));
    }
    // SAFETY: ShellExecuteExW just returned it (SEE_MASK_NOCLOSEPROCESS: ours to close).
    unsafe { owned(info.hProcess) }.map_err(|_| LaunchError::NoProcessHandle)
}

/// Why no client connected.
enum ConnectFailure {
    /// The process we wait for ended first.
    Exited,
    /// Nobody connected in time.
    TimedOut,
    /// Waiting itself failed.
    Io(io::Error),
}

/// Waits until a client connects to `pipe`, `process` ends, or `timeout` passes.
fn wait_for_client(pipe: &OwnedHandle, process: HANDLE, timeout: Duration) -> Result<(), ConnectFailure> {
    let event = new_event().map_err(ConnectFailure::Io)?;
    let mut overlapped = OVERLAPPED {
        hEvent: event.as_raw_handle(),
        ..Default::default()
    };
    // SAFETY: the pipe is a server end opened for overlapped I/O; `overlapped`
    // and its event live until the operation is finished (waited for, or cancelled and waited for).
    if unsafe { ConnectNamedPipe(pipe.as_raw_handle(), &raw mut overlapped) } != 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error().map(|code| u32::from_ne_bytes(code.to_ne_bytes())) {
        Some(ERROR_PIPE_CONNECTED) => return Ok(()),
        Some(ERROR_IO_PENDING) => {}
        _ => return Err(ConnectFailure::Io(error)),
    }
    let handles = [event.as_raw_handle(), process];
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
    // SAFETY: both handles are valid for the duration of the wait.
    let woke = unsafe { WaitForMultipleObjects(2, handles.as_ptr(), 0, millis) };
    let failure = match woke {
        WAIT_OBJECT_0 => {
            let mut transferred = 0;
            // SAFETY: the operation has completed (its event is set); `overlapped` is the one it used.
            let connected =
                unsafe { GetOverlappedResult(pipe.as_raw_handle(), &raw const overlapped, &raw mut transferred, 0) };
            return if connected == 0 {
                Err(ConnectFailure::Io(io::Error::last_os_error()))
            } else {
                Ok(())
            };
        }
        w if w == WAIT_OBJECT_0 + 1 => ConnectFailure::Exited,
        WAIT_TIMEOUT => ConnectFailure::TimedOut,
        _ => ConnectFailure::Io(io::Error::last_os_error()),
    };
    let mut transferred = 0;
    // SAFETY: cancels only this operation, then waits for it to finish, so
    // `overlapped` and the event are not used after they are dropped.
    unsafe {
        CancelIoEx(pipe.as_raw_handle(), &raw const overlapped);
        GetOverlappedResult(pipe.as_raw_handle(), &raw const overlapped, &raw mut transferred, 1);
    }
    Err(failure)
}

/// The pipe's client must be the process UAC started, not some other program of this user.
fn check_client_is(pipe: &OwnedHandle, process: &OwnedHandle) -> Result<(), LaunchError> {
    let mut client = 0u32;
    // SAFETY: a connected server end and a live out-pointer.
    if unsafe { GetNamedPipeClientProcessId(pipe.as_raw_handle(), &raw mut client) } == 0 {
        return Err(LaunchError::PeerUnknown(io::Error::last_os_error()));
    }
    // SAFETY: a valid process handle.
    let expected = unsafe { GetProcessId(process.as_raw_handle()) };
    if client != expected {
        return Err(LaunchError::WrongProcess { client, expected });
    }
    Ok(())
}

fn exit_code(process: &OwnedHandle) -> u32 {
    let mut code = 0u32;
    // SAFETY: a valid process handle and a live out-pointer.
    unsafe { GetExitCodeProcess(process.as_raw_handle(), &raw mut code) };
    code
}

/// Memory that Windows allocated for us and that `LocalFree` releases.
struct LocalMemory(*mut core::ffi::c_void);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a Windows function that documents LocalFree, and is freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// No program stands between the prompt and the worker here: an ended worker is just that.
pub(crate) fn explain_prompt_exit(_how: &str, _status: ExitStatus, _stderr: &str) -> Option<LaunchError> {
    None
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use graver_writer::os::pipe::connect_to_pipe;

    use super::*;

    #[test]
    fn a_pipe_carries_both_directions_at_once_and_hangs_up() {
        let token = format!("{:016x}", (u64::from(std::process::id()) << 20) | 0xabcde);
        let name = pipe_name(&token);
        let sid = current_user_sid().expect("this user's SID");
        assert!(sid.starts_with("S-1-"), "{sid}");
        let pipe = create_pipe(&name, &pipe_sddl(&sid)).expect("create the pipe");
        assert!(
            create_pipe(&name, &pipe_sddl(&sid)).is_err(),
            "a second instance must be refused"
        );

        let worker = std::thread::spawn(move || {
            let (mut reader, mut writer) = connect_to_pipe(&name).expect("connect");
            // A read waits here while the other side writes: that must not block writing.
            let echo = std::thread::spawn(move || {
                let mut got = [0u8; 5];
                reader.read_exact(&mut got).expect("read");
                let mut rest = Vec::new();
                reader.read_to_end(&mut rest).expect("read to the hang-up");
                (got, rest)
            });
            std::thread::sleep(Duration::from_millis(100));
            writer.write_all(b"ready").expect("write while a read is pending");
            echo.join().expect("the reading thread")
        });

        // SAFETY: the pseudo handle of this process, which stays unsignalled while the test runs.
        let this_process = unsafe { GetCurrentProcess() };
        assert!(wait_for_client(&pipe, this_process, Duration::from_secs(10)).is_ok());
        let (mut from_worker, mut to_worker) = split(pipe, Hangup::Disconnect).expect("split");
        let (heard, ready) = crossbeam_channel::bounded(1);
        let reading = std::thread::spawn(move || {
            let mut got = [0u8; 5];
            from_worker.read_exact(&mut got).expect("read ready");
            let _ = heard.send(());
            let mut rest = Vec::new();
            from_worker.read_to_end(&mut rest).expect("read to the hang-up");
            (got, rest)
        });
        std::thread::sleep(Duration::from_millis(100));
        to_worker.write_all(b"hello").expect("write while a read is pending");
        // Hang up only once the worker's own write has arrived: disconnecting the
        // pipe earlier would fail that write ("pipe not connected") and the test.
        ready.recv_timeout(Duration::from_secs(10)).expect("the worker's ready");
        drop(to_worker);
        assert_eq!(worker.join().expect("the worker thread"), (*b"hello", Vec::new()));
        assert_eq!(reading.join().expect("the reading thread"), (*b"ready", Vec::new()));
    }

    #[test]
    fn waiting_ends_when_nobody_connects() {
        let token = format!("{:016x}", (u64::from(std::process::id()) << 20) | 0x12345);
        let sid = current_user_sid().expect("this user's SID");
        let pipe = create_pipe(&pipe_name(&token), &pipe_sddl(&sid)).expect("create the pipe");
        // SAFETY: see above.
        let this_process = unsafe { GetCurrentProcess() };
        assert!(matches!(
            wait_for_client(&pipe, this_process, Duration::from_millis(100)),
            Err(ConnectFailure::TimedOut)
        ));
    }
}
