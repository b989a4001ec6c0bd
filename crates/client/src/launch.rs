//! Starting a worker for one job: a thread of this process, a plain child
//! process, or the installed worker through the OS's elevation prompt
//! (`os/`: pkexec on Linux, UAC on Windows). macOS elevates no worker: a thread of
//! this process opens each drive through the system's `authopen`.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use graver_writer::transport::{Deliver, channel};
use graver_writer::worker::{Policy, serve};

use crate::os;
use crate::{Command, Launch, LaunchError, WorkerExit};

/// Where packages install the worker on Linux; the polkit policy names this path.
pub const LINUX_WORKER_PATH: &str = "/usr/libexec/graver/graver-writer";

/// The environment variable through which development builds (debug assertions on,
/// as for `cargo build` and `cargo test`) elevate another worker, for example one in
/// the build tree. Release builds, the only ones packaged, do not read it. (macOS
/// elevates no worker.)
#[cfg(not(target_os = "macos"))]
pub const DEV_WORKER_VAR: &str = "GRAVER_DEV_WORKER";

/// The worker this build elevates: the installed one, in a place only an administrator
/// can change, so that no program running as the user can put itself in its place and
/// receive the rights from a genuine prompt. Never a copy beside the running
/// executable, which may sit in a folder the user owns. In development builds,
/// [`DEV_WORKER_VAR`] names another. (macOS elevates no worker.)
#[cfg(not(target_os = "macos"))]
pub fn elevated_worker() -> PathBuf {
    worker_to_elevate(
        os::installed_worker(),
        std::env::var_os(DEV_WORKER_VAR).map(PathBuf::from),
        cfg!(debug_assertions),
    )
}

/// The decision behind [`elevated_worker`]: the installed worker, unless this is a
/// development build and the switch names another.
#[cfg(not(target_os = "macos"))]
fn worker_to_elevate(installed: PathBuf, dev_switch: Option<PathBuf>, development_build: bool) -> PathBuf {
    match dev_switch {
        Some(dev) if development_build && !dev.as_os_str().is_empty() => dev,
        _ => installed,
    }
}

/// The worker executable beside the running one (`graver-writer`, `graver-writer.exe`), or one
/// level up for test binaries in `target/<profile>/deps`. For tests that start it as a plain
/// child ([`Launch::Subprocess`](crate::Launch::Subprocess)); it is never elevated.
pub fn worker_beside_current_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let name = format!("graver-writer{}", std::env::consts::EXE_SUFFIX);
    let beside = dir.join(&name);
    if beside.exists() {
        return Some(beside);
    }
    // Test binaries live one level down, in target/<profile>/deps.
    let above = dir.parent()?.join(&name);
    above.exists().then_some(above)
}

/// Whether this process may open raw devices without asking.
pub fn has_device_rights() -> bool {
    os::has_device_rights()
}

/// The worker's first argument: its mode. On Linux each mode is its own polkit
/// action (`packaging/linux/org.graver.writer.policy`), the unsafe one asking for the
/// administrator's password every time.
pub fn worker_mode(unsafe_mode: bool) -> &'static str {
    if unsafe_mode { "--serve-unsafe" } else { "--serve" }
}

/// The worker's arguments for a launch with `token`, speaking on its standard streams.
pub fn worker_args(token: &str, unsafe_mode: bool) -> Vec<String> {
    vec![worker_mode(unsafe_mode).into(), "--token".into(), token.into()]
}

/// Whether `command` needs a worker in unsafe mode: it names a system drive, with the
/// name the user typed. The worker still checks that the name is that drive's.
fn needs_unsafe_mode(command: &Command) -> bool {
    match command {
        Command::Write(job) => job.targets.iter().any(|t| t.typed_name.is_some()),
        Command::Verify(job) => job.target.typed_name.is_some(),
        Command::Cancel => false,
    }
}

fn targets_are_files(command: &Command) -> bool {
    let is_file = |p: &Path| graver_drives::path_kind(p) == graver_drives::PathKind::File;
    match command {
        Command::Write(job) => job.targets.iter().all(|t| is_file(&t.path)),
        Command::Verify(job) => is_file(&job.target.path),
        Command::Cancel => true,
    }
}

/// A started worker: the two ends of its stream and what to ask when it goes quiet.
pub(crate) struct Connection {
    /// Carries the job's image file beside its frame.
    pub(crate) to_worker: Box<dyn Deliver>,
    pub(crate) from_worker: Box<dyn Read + Send>,
    pub(crate) process: Process,
    pub(crate) how: String,
}

/// What runs the worker.
pub(crate) enum Process {
    Thread(JoinHandle<()>),
    Child(std::process::Child),
    /// An elevated process the client cannot wait for (Windows); its stream tells when it ends.
    #[allow(dead_code)]
    Detached,
}

impl Process {
    /// Why the worker's stream ended, waiting briefly for the process to be reaped.
    pub(crate) fn exit_story(&mut self, how: &str) -> LaunchError {
        match self {
            Self::Child(child) => {
                let deadline = Instant::now() + Duration::from_millis(500);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => {
                            let said = stderr_tail(child);
                            return os::explain_prompt_exit(how, status, &said)
                                .unwrap_or_else(|| LaunchError::Ended(describe_exit(status, said)));
                        }
                        Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                        _ => return LaunchError::Ended(WorkerExit::Silent),
                    }
                }
            }
            Self::Thread(_) => LaunchError::Ended(WorkerExit::ThreadStopped),
            Self::Detached => LaunchError::Ended(WorkerExit::Closed),
        }
    }

    /// Ends a worker that never got its job, without waiting: a pkexec still showing
    /// its prompt is killed (the prompt goes with it). An in-process worker ends by
    /// itself once its input closes; an elevated one the OS started, likewise.
    pub(crate) fn abandon(self) {
        match self {
            Self::Child(mut child) => {
                let _ = child.kill();
                // Reaped on another thread: pkexec may take a moment to take its prompt down.
                let _ = std::thread::Builder::new()
                    .name("graver-reap".into())
                    .spawn(move || child.wait());
            }
            Self::Thread(_) | Self::Detached => {}
        }
    }

    pub(crate) fn end(self) {
        match self {
            Self::Child(mut child) => {
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline {
                    if matches!(child.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            Self::Thread(thread) => {
                let _ = thread.join();
            }
            Self::Detached => {}
        }
    }
}

fn stderr_tail(child: &mut std::process::Child) -> String {
    let mut text = String::new();
    if let Some(stderr) = child.stderr.as_mut() {
        let _ = stderr.take(8192).read_to_string(&mut text);
    }
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// How a worker process ended.
fn describe_exit(status: std::process::ExitStatus, said: String) -> WorkerExit {
    if let Some(signal) = os::exit_signal(status) {
        return WorkerExit::Killed { signal, said };
    }
    match status.code() {
        Some(code) => WorkerExit::Exited { code, said },
        None => WorkerExit::Ended { said },
    }
}

pub(crate) fn start(launch: &Launch, command: &Command, token: &str) -> Result<Connection, LaunchError> {
    let unsafe_mode = needs_unsafe_mode(command);
    match launch {
        Launch::InProcess => in_process(token, own_rights(unsafe_mode), "in-process"),
        Launch::Subprocess { worker } => subprocess(worker, token, unsafe_mode),
        Launch::Auto => {
            if targets_are_files(command) || has_device_rights() {
                in_process(token, own_rights(unsafe_mode), "in-process")
            } else {
                privileged(token, unsafe_mode)
            }
        }
    }
}

/// The policy of a worker with this process's rights: files are written with the
/// user's own rights, and `unsafe_mode` is as the user asked, since such a front end
/// could open any drive itself anyway.
fn own_rights(unsafe_mode: bool) -> Policy {
    Policy {
        allow_files: true,
        unsafe_mode,
    }
}

/// A worker that can open drives this process cannot: the installed worker, through
/// the OS's elevation prompt.
#[cfg(not(target_os = "macos"))]
fn privileged(token: &str, unsafe_mode: bool) -> Result<Connection, LaunchError> {
    os::launch_elevated(&elevated_worker(), token, unsafe_mode)
}

/// A worker that can open drives this process cannot: on macOS a thread of this
/// process, which opens each drive through the system's `authopen` (every open its own
/// administrator prompt naming the device, so unsafe mode's is fresh for its job). It
/// keeps the privileged worker's policy: file targets are refused beside drives, and
/// every drive is judged, a system drive only in unsafe mode with its name typed.
#[cfg(target_os = "macos")]
fn privileged(token: &str, unsafe_mode: bool) -> Result<Connection, LaunchError> {
    let policy = Policy {
        allow_files: false,
        unsafe_mode,
    };
    in_process(token, policy, "in-process, opening each drive through authopen")
}

/// A worker thread with this process's rights, serving with `policy`.
fn in_process(token: &str, policy: Policy, how: &str) -> Result<Connection, LaunchError> {
    // The image file goes to the worker thread as it is, over the channel.
    let (req_tx, req_rx) = channel();
    let (resp_rx, resp_tx) = io::pipe().map_err(LaunchError::Pipe)?;
    let token = token.to_owned();
    let thread = std::thread::Builder::new()
        .name("graver-worker".into())
        .spawn(move || {
            let _ = serve(req_rx, resp_tx, &token, policy);
        })
        .map_err(LaunchError::Thread)?;
    Ok(Connection {
        to_worker: Box::new(req_tx),
        from_worker: Box::new(resp_rx),
        process: Process::Thread(thread),
        how: how.into(),
    })
}

/// Starts `worker --serve --token TOKEN` as a child speaking on its stdin and stdout.
fn subprocess(worker: &Path, token: &str, unsafe_mode: bool) -> Result<Connection, LaunchError> {
    spawn_child(
        std::process::Command::new(worker).args(worker_args(token, unsafe_mode)),
        "subprocess",
    )
}

/// Starts `command` as a child speaking on its stdin and stdout. Its stdin is one end of
/// a Unix socket, which carries the image's descriptor with each job (pkexec passes
/// descriptors 0 to 2 through); on Windows a pipe, over which goes the image's handle
/// value, which the worker duplicates out of this process.
pub(crate) fn spawn_child(command: &mut std::process::Command, how: &str) -> Result<Connection, LaunchError> {
    let (to_worker, stdin) = os::worker_input().map_err(LaunchError::Pipe)?;
    let spawned = command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    // The child's end must not stay open here too, or the worker would never see us hang up.
    command.stdin(Stdio::null());
    let mut child = spawned.map_err(|source| LaunchError::Spawn {
        program: command.get_program().to_owned(),
        source,
    })?;
    let Some(from_worker) = child.stdout.take() else {
        let _ = child.kill();
        return Err(LaunchError::NoStreams);
    };
    Ok(Connection {
        to_worker,
        from_worker: Box::new(from_worker),
        process: Process::Child(child),
        how: how.into(),
    })
}

// What is elevated and from where; macOS elevates nothing.
#[cfg(all(test, not(target_os = "macos")))]
mod tests {
    use super::*;

    #[test]
    fn only_the_installed_worker_is_elevated_unless_a_development_build_is_told_otherwise() {
        let installed = PathBuf::from(LINUX_WORKER_PATH);
        let elsewhere = PathBuf::from("/home/user/Downloads/graver-writer");
        // A release build ignores the switch.
        assert_eq!(
            worker_to_elevate(installed.clone(), Some(elsewhere.clone()), false),
            installed
        );
        assert_eq!(worker_to_elevate(installed.clone(), None, false), installed);
        assert_eq!(worker_to_elevate(installed.clone(), None, true), installed);
        assert_eq!(
            worker_to_elevate(installed.clone(), Some(PathBuf::new()), true),
            installed
        );
        assert_eq!(worker_to_elevate(installed, Some(elsewhere.clone()), true), elsewhere);
    }

    #[test]
    fn the_worker_beside_the_executable_is_not_the_one_elevated() {
        let installed = os::installed_worker();
        assert!(installed.is_absolute(), "{}", installed.display());
        if let Some(beside) = worker_beside_current_exe() {
            assert_ne!(installed, beside);
        }
        #[cfg(target_os = "linux")]
        assert_eq!(installed, Path::new(LINUX_WORKER_PATH));
        #[cfg(windows)]
        assert!(
            installed.ends_with(r"Graver\graver-writer.exe"),
            "{}",
            installed.display()
        );
    }
}
