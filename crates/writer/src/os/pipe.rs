//! The worker's end of the named pipe the Windows front end creates (see
//! graver-client's `os/windows.rs`), and the overlapped halves both ends use.
//!
//! The pipe is opened for overlapped I/O on both ends. A handle opened without
//! `FILE_FLAG_OVERLAPPED` serializes all I/O on it, so a read waiting for the
//! other end's next message would block every write, such as a cancel or a
//! progress frame, until that end said something: the reading thread and the
//! writing thread would wait on each other forever. [`PipeReader`] and
//! [`PipeWriter`] each do one overlapped transfer at a time and wait for it,
//! which gives blocking `Read` and `Write` halves that work side by side.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr;
use std::sync::Arc;

use windows_sys::Win32::Foundation::{
    DUPLICATE_SAME_ACCESS, DuplicateHandle, ERROR_BROKEN_PIPE, ERROR_IO_PENDING, ERROR_NO_DATA,
    ERROR_PIPE_NOT_CONNECTED, GENERIC_READ, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_OVERLAPPED, FILE_SHARE_NONE, OPEN_EXISTING, ReadFile, SECURITY_IDENTIFICATION,
    SECURITY_SQOS_PRESENT, WriteFile,
};
use windows_sys::Win32::System::IO::{GetOverlappedResult, OVERLAPPED};
use windows_sys::Win32::System::Pipes::{DisconnectNamedPipe, GetNamedPipeServerProcessId};
use windows_sys::Win32::System::Threading::{CreateEventW, GetCurrentProcess, OpenProcess, PROCESS_DUP_HANDLE};

use crate::transport::{Adopter, Receive};

/// The worker's option naming the pipe to connect to.
pub const CONNECT_OPTION: &str = "--connect-pipe";

/// Connects to the front end's pipe `name`: overlapped halves, so a read waiting
/// on the pipe does not block progress being written.
///
/// # Errors
/// When the pipe does not exist, is taken, or refuses this process.
pub fn connect_back(name: &str) -> io::Result<super::Halves> {
    let (reader, writer) = connect_to_pipe(name)?;
    Ok((Box::new(reader), Box::new(writer)))
}

/// The worker's end: opens the pipe `name` for overlapped I/O, allowing the
/// front end only to identify this process, never to act as it.
///
/// # Errors
/// When the pipe does not exist, is taken, or refuses this process.
pub fn connect_to_pipe(name: &str) -> io::Result<(PipeReader, PipeWriter)> {
    let wide_name = wide(name);
    // SAFETY: the name is NUL-terminated and outlives the call; no security
    // attributes or template are passed.
    let handle = unsafe {
        CreateFileW(
            wide_name.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            FILE_SHARE_NONE,
            ptr::null(),
            OPEN_EXISTING,
            FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
            ptr::null_mut(),
        )
    };
    // SAFETY: CreateFileW just returned it.
    let pipe = unsafe { owned(handle) }?;
    split(pipe, Hangup::Close)
}

/// What dropping a pipe's writing half does.
#[derive(Debug, Clone, Copy)]
pub enum Hangup {
    /// The server's end: disconnect, which the worker reads as the end of the
    /// session and which ends our own pending read.
    Disconnect,
    /// The worker's end: just close, when the last half goes.
    Close,
}

/// Splits a connected pipe handle, opened for overlapped I/O, into its two halves.
///
/// # Errors
/// When Windows has no event object to give.
pub fn split(pipe: OwnedHandle, hangup: Hangup) -> io::Result<(PipeReader, PipeWriter)> {
    let pipe = Arc::new(pipe);
    Ok((
        PipeReader(PipeHalf::new(Arc::clone(&pipe))?),
        PipeWriter {
            half: PipeHalf::new(pipe)?,
            hangup,
        },
    ))
}

/// One direction of an overlapped pipe: one transfer at a time, waited for.
struct PipeHalf {
    pipe: Arc<OwnedHandle>,
    event: OwnedHandle,
}

impl PipeHalf {
    fn new(pipe: Arc<OwnedHandle>) -> io::Result<Self> {
        Ok(Self {
            pipe,
            event: new_event()?,
        })
    }

    /// Starts one transfer with `start` and waits for it to finish.
    fn transfer(&mut self, start: impl FnOnce(HANDLE, *mut OVERLAPPED) -> i32) -> io::Result<usize> {
        let handle = self.pipe.as_raw_handle();
        let mut overlapped = OVERLAPPED {
            hEvent: self.event.as_raw_handle(),
            ..Default::default()
        };
        if start(handle, &raw mut overlapped) == 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(i32::from_ne_bytes(ERROR_IO_PENDING.to_ne_bytes())) {
                return Err(error);
            }
        }
        let mut transferred = 0u32;
        // SAFETY: waits until the transfer that uses `overlapped`, its event and
        // the caller's buffer is finished, before any of them goes away.
        if unsafe { GetOverlappedResult(handle, &raw const overlapped, &raw mut transferred, 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(transferred as usize)
    }
}

/// The receiving half of a pipe.
pub struct PipeReader(PipeHalf);

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let data = buf.as_mut_ptr();
        let result = self.0.transfer(|handle, overlapped| {
            // SAFETY: `buf` is writable for `len` bytes and outlives the transfer, which `transfer` waits for.
            unsafe { ReadFile(handle, data, len, ptr::null_mut(), overlapped) }
        });
        match result {
            // The other end closed or hung up: the end of the stream.
            Err(e)
                if e.raw_os_error().is_some_and(|code| {
                    [ERROR_BROKEN_PIPE, ERROR_PIPE_NOT_CONNECTED, ERROR_NO_DATA]
                        .map(|known| i32::from_ne_bytes(known.to_ne_bytes()))
                        .contains(&code)
                }) =>
            {
                Ok(0)
            }
            other => other,
        }
    }
}

impl Receive for PipeReader {
    fn receive(&mut self, buf: &mut [u8], _files: &mut Vec<(usize, File)>) -> io::Result<usize> {
        self.read(buf)
    }

    fn adopter(&self) -> Option<Adopter> {
        adopter_for(self.0.pipe.as_raw_handle())
    }
}

/// The worker's standard input when the front end started it as a plain child: a
/// pipe, over which handle values come from the front end that made it.
struct StandardInput(io::Stdin);

impl Receive for StandardInput {
    fn receive(&mut self, buf: &mut [u8], _files: &mut Vec<(usize, File)>) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn adopter(&self) -> Option<Adopter> {
        adopter_for(self.0.as_raw_handle())
    }
}

/// The worker's standard input, which carries the image's handle value with each job.
///
/// # Errors
/// None here; the signature matches the Unix one.
pub fn standard_input() -> io::Result<Box<dyn Receive>> {
    Ok(Box::new(StandardInput(io::stdin())))
}

/// What turns a handle value of the process at the server end of `pipe` (the front end,
/// which made the pipe) into a file of this process: `DuplicateHandle` out of that
/// process. `None` when the pipe does not say who is at its other end.
fn adopter_for(pipe: HANDLE) -> Option<Adopter> {
    let mut server = 0u32;
    // SAFETY: `pipe` is an open pipe handle and `server` is a valid place for the id.
    if unsafe { GetNamedPipeServerProcessId(pipe, &raw mut server) } == 0 {
        return None;
    }
    Some(Box::new(move |value: u64| {
        // SAFETY: asks only for the right to duplicate that process's handles; the
        // handle returned is checked and owned here.
        let front_end = unsafe { owned(OpenProcess(PROCESS_DUP_HANDLE, 0, server)) }?;
        let source = usize::try_from(value)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a handle value out of range"))?;
        let mut duplicate: HANDLE = ptr::null_mut();
        // SAFETY: duplicates the front end's handle `source` (if it names none, the call
        // fails) into this process, with the access the front end has to it, no more.
        let copied = unsafe {
            DuplicateHandle(
                front_end.as_raw_handle(),
                source as HANDLE,
                GetCurrentProcess(),
                &raw mut duplicate,
                0,
                0,
                DUPLICATE_SAME_ACCESS,
            )
        };
        if copied == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: DuplicateHandle just gave this process the handle.
        Ok(File::from(unsafe { owned(duplicate) }?))
    }))
}

/// The sending half of a pipe.
pub struct PipeWriter {
    half: PipeHalf,
    hangup: Hangup,
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let data = buf.as_ptr();
        self.half.transfer(|handle, overlapped| {
            // SAFETY: `buf` is readable for `len` bytes and outlives the transfer, which `transfer` waits for.
            unsafe { WriteFile(handle, data, len, ptr::null_mut(), overlapped) }
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        // Every write has reached the pipe when it returns.
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        if let Hangup::Disconnect = self.hangup {
            // SAFETY: the server end of a pipe, still open (the reading half shares it).
            unsafe { DisconnectNamedPipe(self.half.pipe.as_raw_handle()) };
        }
    }
}

/// A manual-reset event for overlapped I/O.
///
/// # Errors
/// When Windows has no event object to give.
pub fn new_event() -> io::Result<OwnedHandle> {
    // SAFETY: no attributes and no name; the handle just returned is checked and owned here.
    unsafe { owned(CreateEventW(ptr::null(), 1, 0, ptr::null())) }
}

/// Takes ownership of a handle a Windows function returned, or of its error.
///
/// # Errors
/// The last OS error, when `handle` is null or invalid.
///
/// # Safety
/// `handle` is what a Windows function just returned: null, invalid, or a handle
/// owned by nobody else, which the caller does not close itself.
pub unsafe fn owned(handle: HANDLE) -> io::Result<OwnedHandle> {
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a valid handle, just returned to us and owned by nobody else (the caller's promise).
    Ok(unsafe { OwnedHandle::from_raw_handle(handle) })
}

/// `s` as a NUL-terminated UTF-16 string.
pub fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}
