//! The front end's side: start a worker (in-process, as a subprocess, or
//! elevated), speak the protocol to it, and expose it all as crossbeam channels.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use crate::protocol::{JobResult, PROTOCOL_VERSION, Request, Response, VerifyJob, WriteJob, read_frame, write_frame};
use crate::worker::{Policy, serve};
use crate::{ErrorKind, Progress};

/// What the front end asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Write an image; a worker is started for it.
    Write(WriteJob),
    /// Compare a target with an image.
    Verify(VerifyJob),
    /// Stop the running job.
    Cancel,
}

/// What the front end hears back. Every job ends in exactly one of
/// [`Event::Finished`], [`Event::JobFailed`], [`Event::LaunchFailed`] or [`Event::WorkerLost`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The worker is up and has the job.
    Started {
        /// How it was started, for the log: "in-process", "subprocess", "pkexec", …
        how: String,
    },
    /// Progress of the running job.
    Progress(Progress),
    /// The job ran to its end; see each target's outcome.
    Finished(JobResult),
    /// The job could not run (a bad image, nothing writable) or was cancelled.
    JobFailed {
        /// The class of failure.
        kind: ErrorKind,
        /// What happened.
        message: String,
    },
    /// The worker could not be started: elevation refused or cancelled, no polkit agent, no worker binary.
    LaunchFailed {
        /// What happened and what to do.
        message: String,
    },
    /// The worker died, was killed, or its connection closed mid-job.
    WorkerLost {
        /// What happened.
        message: String,
    },
}

/// How to start workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Decide per job: in-process when the process has the rights already (root,
    /// or only files as targets), otherwise the OS's elevation prompt for `worker`.
    Auto {
        /// The worker executable.
        worker: PathBuf,
    },
    /// A thread of this process, with the user's own rights; files are allowed as targets.
    InProcess,
    /// The worker executable as a plain child process (tests; root front ends).
    Subprocess {
        /// The worker executable.
        worker: PathBuf,
    },
}

/// A running client: send [`Command`]s, receive [`Event`]s.
pub struct Client {
    /// Where commands go.
    pub commands: Sender<Command>,
    /// Where events arrive.
    pub events: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Client {
    /// Starts the client's thread. Nothing else starts until a job is sent.
    pub fn spawn(launch: Launch) -> Self {
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("graver-client".into())
            .spawn(move || run(&launch, &command_rx, &event_tx))
            .ok();
        Self {
            commands,
            events,
            thread,
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Closing the command channel cancels any job and ends the thread.
        let (dead, _) = crossbeam_channel::bounded(0);
        drop(std::mem::replace(&mut self.commands, dead));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The worker this installation uses: beside the running executable (a build tree, the
/// macOS bundle, the Windows install folder), else where the Linux package puts it.
pub fn installed_worker() -> PathBuf {
    worker_beside_current_exe().unwrap_or_else(|| PathBuf::from(crate::elevate::LINUX_WORKER_PATH))
}

/// The worker executable installed beside the running one (`graver-writer`, `graver-writer.exe`).
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
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

fn targets_are_files(command: &Command) -> bool {
    let is_file = |p: &Path| graver_drives::path_kind(p) == graver_drives::PathKind::File;
    match command {
        Command::Write(job) => job.targets.iter().all(|t| is_file(t)),
        Command::Verify(job) => is_file(&job.target),
        Command::Cancel => true,
    }
}

/// A started worker: the two ends of its stream and what to ask when it goes quiet.
pub(crate) struct Connection {
    pub(crate) to_worker: Box<dyn Write + Send>,
    pub(crate) from_worker: Box<dyn Read + Send>,
    pub(crate) process: Process,
    pub(crate) how: String,
}

/// What runs the worker.
pub(crate) enum Process {
    Thread(JoinHandle<()>),
    Child(std::process::Child),
    /// An elevated process the client cannot wait for (macOS, Windows); its stream tells when it ends.
    #[allow(dead_code)]
    Detached,
}

impl Process {
    /// Why the worker's stream ended, waiting briefly for the process to be reaped.
    fn exit_story(&mut self, how: &str) -> String {
        match self {
            Self::Child(child) => {
                let deadline = Instant::now() + Duration::from_millis(500);
                loop {
                    match child.try_wait() {
                        // pkexec's own exit codes say whether the user cancelled or no agent could ask.
                        Ok(Some(status)) if how == "pkexec" && matches!(status.code(), Some(126 | 127)) => {
                            return crate::elevate::explain_pkexec_failure(status.code(), &stderr_tail(child));
                        }
                        Ok(Some(status)) => return describe_exit(status, &stderr_tail(child)),
                        Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                        _ => return "the writer process stopped answering".into(),
                    }
                }
            }
            Self::Thread(_) => "the in-process writer stopped".into(),
            Self::Detached => "the connection to the writer process closed".into(),
        }
    }

    fn end(self) {
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

/// Says how a worker process ended, in words.
pub(crate) fn describe_exit(status: std::process::ExitStatus, stderr: &str) -> String {
    let said = if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("the writer process was killed (signal {signal}){said}");
        }
    }
    match status.code() {
        Some(0) => format!("the writer process exited before finishing the job{said}"),
        Some(code) => format!("the writer process ended with exit code {code}{said}"),
        None => format!("the writer process ended{said}"),
    }
}

fn start(launch: &Launch, command: &Command, token: &str) -> Result<Connection, String> {
    match launch {
        Launch::InProcess => in_process(token),
        Launch::Subprocess { worker } => subprocess(worker, token),
        Launch::Auto { worker } => {
            if targets_are_files(command) || has_device_rights() {
                in_process(token)
            } else {
                crate::elevate::launch_elevated(worker, token)
            }
        }
    }
}

fn in_process(token: &str) -> Result<Connection, String> {
    let (req_rx, req_tx) = io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let (resp_rx, resp_tx) = io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
    let token = token.to_owned();
    let thread = std::thread::Builder::new()
        .name("graver-worker".into())
        .spawn(move || {
            let _ = serve(req_rx, resp_tx, &token, Policy { allow_files: true });
        })
        .map_err(|e| format!("cannot start the writer thread: {e}"))?;
    Ok(Connection {
        to_worker: Box::new(req_tx),
        from_worker: Box::new(resp_rx),
        process: Process::Thread(thread),
        how: "in-process".into(),
    })
}

/// Starts `worker --token TOKEN` as a child speaking on its stdin and stdout.
pub(crate) fn subprocess(worker: &Path, token: &str) -> Result<Connection, String> {
    spawn_child(
        std::process::Command::new(worker).args(crate::elevate::worker_args(token)),
        "subprocess",
    )
}

pub(crate) fn spawn_child(command: &mut std::process::Command, how: &str) -> Result<Connection, String> {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
    let (Some(to_worker), Some(from_worker)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return Err("the writer process has no standard streams".into());
    };
    Ok(Connection {
        to_worker: Box::new(to_worker),
        from_worker: Box::new(from_worker),
        process: Process::Child(child),
        how: how.into(),
    })
}

fn run(launch: &Launch, commands: &Receiver<Command>, events: &Sender<Event>) {
    while let Ok(command) = commands.recv() {
        let request = match &command {
            Command::Write(job) => Request::Write(job.clone()),
            Command::Verify(job) => Request::Verify(job.clone()),
            Command::Cancel => continue,
        };
        let token = match crate::protocol::new_token() {
            Ok(token) => token,
            Err(e) => {
                let _ = events.send(Event::LaunchFailed {
                    message: format!("no randomness for the worker's token: {e}"),
                });
                continue;
            }
        };
        match start(launch, &command, &token) {
            Ok(connection) => {
                if !run_job(connection, &token, &request, commands, events) {
                    return;
                }
            }
            Err(message) => {
                let _ = events.send(Event::LaunchFailed { message });
            }
        }
    }
}

/// Runs one job on a fresh worker; returns false when the front end has gone away.
fn run_job(
    connection: Connection,
    token: &str,
    request: &Request,
    commands: &Receiver<Command>,
    events: &Sender<Event>,
) -> bool {
    let Connection {
        mut to_worker,
        mut from_worker,
        mut process,
        how,
    } = connection;
    let (frames_tx, frames) = crossbeam_channel::unbounded();
    let reader = std::thread::spawn(move || {
        loop {
            let frame = read_frame::<Response>(&mut from_worker);
            let end = !matches!(frame, Ok(Some(_)));
            if frames_tx.send(frame).is_err() || end {
                return;
            }
        }
    });
    let hello = Request::Hello {
        version: PROTOCOL_VERSION,
        token: token.to_owned(),
    };
    let sent = write_frame(&mut to_worker, &hello).and_then(|()| write_frame(&mut to_worker, request));
    let mut front_end_alive = true;
    let mut ready = false;
    let mut commands = commands.clone();
    // Once the front end is gone, the worker gets this long to stop before it is killed.
    let mut give_up = crossbeam_channel::never();
    let outcome = if let Err(e) = sent {
        Some(Event::LaunchFailed {
            message: format!("{} ({e})", process.exit_story(&how)),
        })
    } else {
        let mut outcome = None;
        while outcome.is_none() {
            select! {
                recv(frames) -> frame => outcome = match frame {
                    Ok(Ok(Some(Response::Ready { .. }))) => {
                        ready = true;
                        let _ = events.send(Event::Started { how: how.clone() });
                        None
                    }
                    Ok(Ok(Some(Response::Progress(p)))) => {
                        let _ = events.send(Event::Progress(p));
                        None
                    }
                    Ok(Ok(Some(Response::Finished(result)))) => Some(Event::Finished(result)),
                    Ok(Ok(Some(Response::JobFailed { kind, message }))) => Some(Event::JobFailed { kind, message }),
                    Ok(Ok(Some(Response::Fatal { message }))) => Some(Event::LaunchFailed {
                        message: format!("the writer refused the connection: {message}"),
                    }),
                    Ok(Ok(None) | Err(_)) | Err(_) if ready => Some(Event::WorkerLost { message: process.exit_story(&how) }),
                    Ok(Ok(None) | Err(_)) | Err(_) => Some(Event::LaunchFailed { message: process.exit_story(&how) }),
                },
                recv(commands) -> command => match command {
                    Ok(Command::Cancel) => {
                        let _ = write_frame(&mut to_worker, &Request::Cancel);
                    }
                    Ok(Command::Write(_) | Command::Verify(_)) => {
                        let _ = events.send(Event::JobFailed {
                            kind: ErrorKind::Refused,
                            message: "a job is already running; wait for it or cancel it".into(),
                        });
                    }
                    Err(_) => {
                        // The front end is gone: cancel, and give the worker a moment to stop cleanly.
                        front_end_alive = false;
                        commands = crossbeam_channel::never();
                        give_up = crossbeam_channel::after(Duration::from_secs(5));
                        let _ = write_frame(&mut to_worker, &Request::Cancel);
                    }
                },
                recv(give_up) -> _ => outcome = Some(Event::WorkerLost {
                    message: "the writer did not stop when asked and was ended".into(),
                }),
            }
        }
        outcome
    };
    drop(to_worker);
    if let Some(event) = outcome {
        let _ = events.send(event);
    }
    process.end();
    let _ = reader.join();
    front_end_alive
}
