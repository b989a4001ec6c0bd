//! What Linux and macOS share: reading a value out of a block-device ioctl, sending and
//! receiving open files over a Unix socket (`SCM_RIGHTS`), and opening a device through macOS's
//! `authopen`, whose command line and descriptor hand-over are plain Unix and so are
//! tested on Linux with a stand-in.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::DriveError;

/// Calls an ioctl that fills in one `T` (a size, a block count, a block size).
///
/// # Errors
/// Whatever the ioctl reports.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos")), allow(dead_code))]
pub(crate) fn ioctl_read<T: Copy + Default>(file: &File, request: libc::c_ulong) -> io::Result<T> {
    let mut value = T::default();
    // SAFETY: every caller passes a request that writes exactly one T into `value`,
    // which outlives the call; the descriptor is open for its duration.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request, &raw mut value) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Whether `metadata` (of a path with symlinks followed) is a block or character device
/// (macOS's raw nodes `/dev/rdiskN` are character devices).
pub(crate) fn is_device(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_block_device() || metadata.file_type().is_char_device()
}

#[cfg(target_os = "linux")]
const RECEIVE_FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
#[cfg(not(target_os = "linux"))]
const RECEIVE_FLAGS: libc::c_int = 0;

#[cfg(target_os = "linux")]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_FLAGS: libc::c_int = 0;

/// Room for the control message of a few descriptors, aligned as `cmsghdr` needs.
#[repr(C, align(8))]
struct Control([u8; 128]);

/// A message of the bytes `iov` points at, with `control` for descriptors.
fn message(iov: &mut libc::iovec, control: &mut Control) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    msg
}

/// Runs `call` (a `sendmsg` or `recvmsg`) again while a signal interrupts it.
fn retrying(mut call: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        if let Ok(n) = usize::try_from(call()) {
            return Ok(n);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Reads some bytes from `socket` into `buf` (0 at the end of the stream), and pushes
/// the open files that came with them (`SCM_RIGHTS`) onto `files`, each closed on exec
/// before this returns, so no program this process starts inherits one.
///
/// A read ends right after the bytes a descriptor was sent with, so a sender that sends
/// a descriptor with one byte on its own ([`send_with_file`]) lets the receiver know
/// which byte it came with.
///
/// # Errors
/// As the socket's reads (an interrupted read is retried); `InvalidData` when more
/// descriptors came than fit the room for a few (the kernel closes those), after the
/// ones that fit were pushed.
pub fn receive_with_files(socket: &UnixStream, buf: &mut [u8], files: &mut Vec<File>) -> io::Result<usize> {
    let mut control = Control([0; 128]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = message(&mut iov, &mut control);
    // SAFETY: `msg` points at `iov` (into `buf`) and `control`, all alive and writable
    // for the lengths given.
    let received = retrying(|| unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut msg, RECEIVE_FLAGS) })?;
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk only the control bytes
    // it reports, and each SCM_RIGHTS payload is descriptors this process now owns,
    // each taken once.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&raw const msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(header).cast::<libc::c_int>();
                for i in 0..payload / size_of::<libc::c_int>() {
                    let fd = data.add(i).read_unaligned();
                    if RECEIVE_FLAGS == 0 {
                        // No MSG_CMSG_CLOEXEC here: close it on exec at once, before
                        // this process runs anything (diskutil).
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                    files.push(File::from_raw_fd(fd));
                }
            }
            header = libc::CMSG_NXTHDR(&raw const msg, header);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more open files came at once than were asked for",
        ));
    }
    Ok(received)
}

/// Sends `bytes` over `socket` with `file`'s descriptor (`SCM_RIGHTS`); how many of
/// the bytes went (at least one, which the descriptor goes with). Never raises
/// SIGPIPE on Linux: a gone peer is an error.
///
/// # Errors
/// As the socket's writes (an interrupted one is retried); `InvalidInput` for no bytes,
/// which could carry no descriptor.
pub fn send_with_file(socket: &UnixStream, bytes: &[u8], file: &File) -> io::Result<usize> {
    if bytes.is_empty() {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let mut control = Control([0; 128]);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    let mut msg = message(&mut iov, &mut control);
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) } as _;
    // SAFETY: `control` has room for one header with one descriptor (CMSG_SPACE of
    // 4 bytes is far below its 128), and `msg` describes exactly that.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&raw const msg);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as _;
        libc::CMSG_DATA(header)
            .cast::<libc::c_int>()
            .write_unaligned(file.as_raw_fd());
    }
    // SAFETY: `msg` points at `iov` (into `bytes`) and `control`, alive for the call;
    // sendmsg only reads them.
    retrying(|| unsafe { libc::sendmsg(socket.as_raw_fd(), &raw const msg, SEND_FLAGS) })
}

/// The system's program that opens a file with administrator rights after its own
/// prompt (macOS), by full path: never another one found on `PATH`.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) const AUTHOPEN: &str = "/usr/libexec/authopen";

/// The `authopen` command that opens `path` for reading, and for writing when `write`,
/// and hands the descriptor over its standard output (`-stdoutpipe`, which must be a
/// Unix socket). `-o` takes `open(2)` flags as a decimal number.
pub(crate) fn authopen_command(authopen: &Path, path: &Path, write: bool) -> Command {
    let flags = if write { libc::O_RDWR } else { libc::O_RDONLY };
    let mut command = Command::new(authopen);
    command.arg("-stdoutpipe").arg("-o").arg(flags.to_string()).arg(path);
    command
}

/// Whether authopen's failure, having said `said`, was the prompt dismissed: it says
/// nothing then, or names the cancel (the Security framework's `errAuthorizationCanceled`
/// is -60006).
fn dismissed(said: &str) -> bool {
    said.is_empty() || said.contains("-60006") || said.to_ascii_lowercase().contains("cancel")
}

/// Opens `path` through `authopen` (the system's administrator prompt, naming the
/// path): the descriptor comes back over a socket that is the program's standard
/// output, and must be an open file of the node at `path` itself.
///
/// # Errors
/// [`DriveError::Cancelled`] when the prompt was dismissed (the program ended in failure
/// without a word, or naming the cancel); an I/O error with its words when it ended in failure saying why, and
/// an I/O error when it cannot be run, ended well without a descriptor, sent more than
/// one, or sent one of another file than `path`.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) fn open_through_authopen(authopen: &Path, path: &Path, write: bool) -> Result<File, DriveError> {
    let failed = |message: String| crate::io_error(path, io::Error::other(message));
    let (ours, theirs) = UnixStream::pair().map_err(|e| crate::io_error(path, e))?;
    let mut child = authopen_command(authopen, path, write)
        .stdin(Stdio::null())
        .stdout(Stdio::from(OwnedFd::from(theirs)))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run {}: {e}", authopen.display())))?;
    // Read on its own so that much said there cannot stall authopen before it ends.
    let stderr = child.stderr.take().map(|mut stderr| {
        std::thread::spawn(move || {
            let mut said = Vec::new();
            let _ = stderr.read_to_end(&mut said);
            said
        })
    });
    // The child's copy of the other end went with the Command: the end of the stream
    // comes when authopen (and anything it started) has ended.
    let mut files = Vec::new();
    let mut buf = [0u8; 256];
    let received = loop {
        match receive_with_files(&ours, &mut buf, &mut files) {
            Ok(0) => break Ok(()),
            Ok(_) => {}
            Err(e) => break Err(e),
        }
    };
    let status = child.wait().map_err(|e| crate::io_error(path, e))?;
    let said = stderr
        .and_then(|reader| reader.join().ok())
        .map(|said| String::from_utf8_lossy(&said).trim().to_owned())
        .unwrap_or_default();
    received.map_err(|e| failed(format!("{} handed over no usable file: {e}", authopen.display())))?;
    if !status.success() {
        if dismissed(&said) {
            return Err(DriveError::Cancelled(path.to_path_buf()));
        }
        // Its last words say why; a flood of output would bury them.
        let from = said.char_indices().rev().nth(999).map_or(0, |(at, _)| at);
        return Err(failed(format!(
            "{} could not open it ({status}): {}",
            authopen.display(),
            &said[from..]
        )));
    }
    let file = match <[File; 1]>::try_from(files) {
        Ok([file]) => file,
        Err(files) if files.is_empty() => {
            return Err(failed(format!(
                "{} ended without handing over the open file",
                authopen.display()
            )));
        }
        Err(_) => return Err(failed(format!("{} handed over more than one file", authopen.display()))),
    };
    let opened = file.metadata().map_err(|e| crate::io_error(path, e))?;
    let named = std::fs::metadata(path).map_err(|e| crate::io_error(path, e))?;
    if (opened.dev(), opened.ino(), opened.rdev()) != (named.dev(), named.ino(), named.rdev()) {
        return Err(failed(format!(
            "{} handed over another file than the one asked for",
            authopen.display()
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    use super::*;

    /// A stand-in for `authopen`: checks its command line as authopen reads it, then runs `body`
    /// (Python, with `path`, `flags` and the socket `out` on its standard output).
    fn stand_in(dir: &Path, body: &str) -> PathBuf {
        let script = dir.join("authopen");
        let text = format!(
            "#!/usr/bin/env python3\nimport os, socket, sys\nargs = sys.argv[1:]\n\
             if len(args) != 4 or args[0] != '-stdoutpipe' or args[1] != '-o':\n    \
             sys.exit('authopen: bad command line ' + repr(args))\n\
             flags, path = int(args[2]), args[3]\nout = socket.socket(fileno=1)\n{body}\n"
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    /// A folder for a stand-in, and a file in it to open.
    fn scratch_target() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        (dir, target)
    }

    const SENDS_THE_FILE: &str = "socket.send_fds(out, [b'x'], [os.open(path, flags)])";

    #[test]
    fn the_command_line_asks_for_the_descriptor_on_standard_output_with_decimal_flags() {
        let command = authopen_command(Path::new(AUTHOPEN), Path::new("/dev/rdisk4"), true);
        assert_eq!(command.get_program(), AUTHOPEN);
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(args, ["-stdoutpipe", "-o", &libc::O_RDWR.to_string(), "/dev/rdisk4"]);
        let command = authopen_command(Path::new(AUTHOPEN), Path::new("/dev/rdisk4"), false);
        let args: Vec<_> = command.get_args().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(args, ["-stdoutpipe", "-o", "0", "/dev/rdisk4"]);
    }

    #[test]
    fn the_descriptor_arrives_and_writes_land_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, vec![0u8; 4096]).unwrap();
        let authopen = stand_in(dir.path(), SENDS_THE_FILE);
        let mut file = open_through_authopen(&authopen, &target, true).unwrap();
        // SAFETY: F_GETFD only reads the descriptor's flags.
        let fd_flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(fd_flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC, "closed on exec");
        file.seek(SeekFrom::Start(1024)).unwrap();
        file.write_all(b"written through authopen").unwrap();
        drop(file);
        let content = std::fs::read(&target).unwrap();
        assert_eq!(&content[1024..1048], b"written through authopen");

        // Read-only asks for O_RDONLY: writes through it fail.
        let mut file = open_through_authopen(&authopen, &target, false).unwrap();
        assert!(file.write_all(b"no").is_err());
    }

    #[test]
    fn the_descriptor_of_a_loop_device_arrives_and_writes_land_on_it() {
        if !graver_testkit::is_root() {
            eprintln!("skipped: needs root for loop devices");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let authopen = stand_in(dir.path(), SENDS_THE_FILE);
        let lo = graver_testkit::LoopDevice::new(4 << 20);
        let mut file = open_through_authopen(&authopen, &lo.dev, true).unwrap();
        file.write_all(&[0xa5; 4096]).unwrap();
        file.sync_all().unwrap();
        drop(file);
        assert_eq!(lo.read(4096), vec![0xa5; 4096]);
    }

    /// What opening a scratch file fails with, through a stand-in running `body`.
    fn failure(body: &str) -> DriveError {
        let (dir, target) = scratch_target();
        // OTHER in `body` names another file beside the target.
        let other = dir.path().join("other");
        std::fs::write(&other, b"y").unwrap();
        let authopen = stand_in(dir.path(), &body.replace("OTHER", other.to_str().unwrap()));
        let error = open_through_authopen(&authopen, &target, true).unwrap_err();
        if let DriveError::Cancelled(path) = &error {
            assert_eq!(*path, target);
        }
        error
    }

    #[test]
    fn a_dismissed_prompt_is_a_cancellation() {
        for body in ["sys.exit(1)", "sys.exit('authopen: user cancelled (-60006)')"] {
            let error = failure(body);
            assert!(matches!(error, DriveError::Cancelled(_)), "{body}: {error:?}");
        }
    }

    #[test]
    fn a_failure_or_a_wrong_hand_over_is_an_error_saying_so() {
        let cases = [
            // authopen failed and said why.
            ("sys.exit('authopen: open failed: Resource busy')", "Resource busy"),
            // Much said, more than a pipe holds, before failing: no stall.
            (
                "sys.stderr.write('x' * 300000 + ' Resource busy')\nsys.exit(1)",
                "Resource busy",
            ),
            // It ended well but sent bytes without a descriptor.
            ("out.send(b'x')", "without handing over"),
            // A pipe, not the node asked for.
            ("r, w = os.pipe()\nsocket.send_fds(out, [b'x'], [r])", "another file"),
            // Another regular file.
            (
                "socket.send_fds(out, [b'x'], [os.open('OTHER', flags)])",
                "another file",
            ),
            // Two at once.
            (
                "socket.send_fds(out, [b'x'], [os.open(path, flags), os.open(path, flags)])",
                "more than one",
            ),
        ];
        for (body, needle) in cases {
            let error = failure(body);
            assert!(matches!(error, DriveError::Io { .. }), "{body}: {error:?}");
            let said = error.to_string();
            assert!(said.contains(needle), "{body}: {said}");
            assert!(said.len() < 2000, "{body}: {} bytes said", said.len());
        }
    }

    #[test]
    fn a_missing_authopen_is_an_error_naming_it() {
        let (dir, target) = scratch_target();
        let error = open_through_authopen(&dir.path().join("absent"), &target, true).unwrap_err();
        assert!(error.to_string().contains("cannot run"), "{error}");
    }
}
