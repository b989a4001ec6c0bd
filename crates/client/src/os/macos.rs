//! macOS elevation: the system's administrator prompt, through `osascript`'s
//! `do shell script … with administrator privileges`, starts the worker as root;
//! the worker connects back to a Unix socket in a private directory.
//!
//! Why not `authopen`: it hands back one file descriptor for one device node,
//! opened by a privileged helper, and leaves everything else to an unprivileged
//! process. The worker needs more than one descriptor: it re-lists the drives
//! itself, unmounts their volumes with `diskutil unmountDisk`, opens the raw
//! node, and ejects afterwards, all with the same rights, and it must not trust
//! the front end's idea of which drive is which. With `authopen` the front end
//! would do all of that and hand over whatever descriptor it liked, so the
//! re-checks of the safety policy would run on the untrusted side.
//!
//! The worker is started in the background with its output discarded, so
//! `osascript` returns as soon as the prompt has been answered. The socket's
//! directory is the user's own (mode 0700), the connecting peer must be root,
//! and the token handshake then proves to the worker that we started it. The
//! socket also carries each job's image, opened here with the user's rights, as a
//! descriptor (`SCM_RIGHTS`), so the root worker reads only what the user may.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use graver_writer::transport::Deliver;

use super::macos_commands::{explain_osascript_failure, osascript_source, socket_dir, socket_path};
use crate::LaunchError;
use crate::launch::{Connection, Process};

/// The worker inside the app bundle installed in /Applications, which an
/// administrator installs and an ordinary user cannot change; never the one beside
/// a copy of Graver the user runs from elsewhere.
///
/// Honestly, this is a path check, not a privileged helper the system knows: the
/// prompt still comes from `osascript`, and the system does not check who signed
/// the program it runs. A launchd daemon registered through `SMAppService` with a
/// code-signing requirement is the real answer; it needs a signed, notarised
/// bundle, which this project cannot build or test yet.
pub(crate) fn installed_worker() -> PathBuf {
    PathBuf::from(crate::MACOS_WORKER_PATH)
}

/// How long the prompt may stay unanswered.
const PROMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the worker may take to connect once the prompt has been answered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the socket and `osascript` are looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Asks for administrator rights and starts `worker` as root, connected to us.
/// Each launch is its own prompt, so unsafe mode is a fresh prompt for its job.
pub(crate) fn launch_elevated(worker: &Path, token: &str, unsafe_mode: bool) -> Result<Connection, LaunchError> {
    if !worker.is_absolute() || !worker.exists() {
        return Err(LaunchError::WorkerMissing(worker.to_path_buf()));
    }
    let worker_path = worker
        .to_str()
        .ok_or_else(|| LaunchError::WorkerPathNotUtf8(worker.to_path_buf()))?;
    let dir = PrivateDir::create(socket_dir(&std::env::temp_dir(), token))?;
    let socket = socket_path(&dir.path);
    let socket_text = socket
        .to_str()
        .ok_or_else(|| LaunchError::TempNotUtf8(dir.path.clone()))?;
    let listener = UnixListener::bind(&socket)
        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
        .map_err(|source| LaunchError::Listen {
            path: socket.clone(),
            source,
        })?;
    let osascript = Command::new("/usr/bin/osascript")
        .arg("-e")
        .arg(osascript_source(worker_path, socket_text, token, unsafe_mode))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(LaunchError::NoOsascript)?;
    let stream = wait_for_worker(&listener, osascript);
    // Nobody else may connect from here on: the socket and its directory go.
    drop(listener);
    drop(dir);
    let stream = stream?;
    check_peer_is_root(&stream)?;
    let reader = stream
        .set_nonblocking(false)
        .and_then(|()| stream.try_clone())
        .map_err(LaunchError::Connection)?;
    Ok(Connection {
        to_worker: Box::new(HangUpOnDrop(stream)),
        from_worker: Box::new(reader),
        process: Process::Detached,
        how: "macOS authorization prompt".into(),
    })
}

/// No program stands between the prompt and the worker here: an ended worker is just that.
pub(crate) fn explain_prompt_exit(_how: &str, _status: ExitStatus, _stderr: &str) -> Option<LaunchError> {
    None
}

/// Waits for the first of: the worker connecting, `osascript` failing (the
/// prompt cancelled or refused), or a timeout.
fn wait_for_worker(listener: &UnixListener, mut osascript: Child) -> Result<UnixStream, LaunchError> {
    let mut deadline = Instant::now() + PROMPT_TIMEOUT;
    let mut authorized = false;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                reap_in_background(osascript);
                return Ok(stream);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => {
                stop(osascript);
                return Err(LaunchError::Accept(e));
            }
        }
        if !authorized {
            match osascript.try_wait() {
                Ok(Some(status)) if status.success() => {
                    authorized = true;
                    deadline = Instant::now() + CONNECT_TIMEOUT;
                }
                Ok(Some(status)) => return Err(explain_osascript_failure(status.code(), &stderr_of(&mut osascript))),
                Ok(None) => {}
                Err(e) => {
                    stop(osascript);
                    return Err(LaunchError::WatchPrompt(e));
                }
            }
        }
        if Instant::now() >= deadline {
            if authorized {
                return Err(LaunchError::ConnectTimeoutAfterPrompt(CONNECT_TIMEOUT.as_secs()));
            }
            stop(osascript);
            return Err(LaunchError::PromptTimeout(PROMPT_TIMEOUT.as_secs()));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The worker runs as root; any other peer is not the worker we started.
fn check_peer_is_root(stream: &UnixStream) -> Result<(), LaunchError> {
    let mut uid: libc::uid_t = libc::uid_t::MAX;
    let mut gid: libc::gid_t = libc::gid_t::MAX;
    // SAFETY: the descriptor is a connected Unix socket owned by `stream`, and both
    // out-pointers point to live locals of the right types.
    let status = unsafe { libc::getpeereid(stream.as_raw_fd(), &raw mut uid, &raw mut gid) };
    if status != 0 {
        return Err(LaunchError::PeerUnknown(io::Error::last_os_error()));
    }
    if uid != 0 {
        return Err(LaunchError::PeerNotRoot(uid));
    }
    Ok(())
}

/// The last of `osascript`'s error output (it says why the prompt failed).
fn stderr_of(osascript: &mut Child) -> String {
    let mut text = String::new();
    if let Some(stderr) = osascript.stderr.take() {
        let _ = stderr.take(64 * 1024).read_to_string(&mut text);
    }
    text
}

fn stop(mut osascript: Child) {
    // Ending osascript withdraws its pending prompt.
    let _ = osascript.kill();
    let _ = osascript.wait();
}

fn reap_in_background(mut osascript: Child) {
    // osascript returns right after starting the worker; reap it without making the caller wait.
    let spawned = std::thread::Builder::new()
        .name("graver-osascript".into())
        .spawn(move || osascript.wait());
    drop(spawned);
}

/// A directory only this user can enter, removed with its contents when dropped.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn create(path: PathBuf) -> Result<Self, LaunchError> {
        // Not recursive: an existing directory (someone else's, or a squatter's) is an error, never reused.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| LaunchError::PrivateFolder {
                path: path.clone(),
                source,
            })?;
        Ok(Self { path })
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(socket_path(&self.path));
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// The sending half of the connection: dropping it shuts the socket for
/// writing, which the worker reads as the end of the session even while the
/// receiving half (a clone of the same socket) stays open.
struct HangUpOnDrop(UnixStream);

impl Deliver for HangUpOnDrop {
    fn deliver(&mut self, frame: &[u8], file: Option<&std::fs::File>) -> io::Result<()> {
        self.0.deliver(frame, file)
    }
}

impl Drop for HangUpOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(Shutdown::Write);
    }
}
