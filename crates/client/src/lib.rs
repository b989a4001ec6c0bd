//! The front end's side of Graver's privilege boundary.
//!
//! Front ends never open raw devices themselves. [`Client::spawn`] gives them a
//! [`Command`] sender and an [`Event`] receiver and, per job, starts a worker:
//! in-process when the process already has the rights (root, or only files as
//! targets), otherwise the `graver-writer` binary through the OS's elevation
//! prompt (`os/`: pkexec, UAC; on macOS in-process, each drive opened through the
//! system's `authopen` prompt). It then speaks graver-writer's
//! [`protocol`](graver_writer::protocol) to it. Why a worker could not be started
//! is a [`LaunchError`].

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, select};
use graver_writer::protocol::{JobResult, PROTOCOL_VERSION, Request, Response, VerifyJob, WriteJob, frame, read_frame};
use graver_writer::transport::Deliver;
use graver_writer::{ErrorKind, Progress};

mod error;
mod launch;
mod os;

pub use crate::error::{LaunchError, WorkerExit, WorkerLost};
use crate::launch::{Connection, start};
#[cfg(not(target_os = "macos"))]
pub use crate::launch::{DEV_WORKER_VAR, elevated_worker};
pub use crate::launch::{LINUX_WORKER_PATH, has_device_rights, worker_args, worker_beside_current_exe, worker_mode};

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
#[derive(Debug)]
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
    LaunchFailed(LaunchError),
    /// The worker died, was killed, or its connection closed mid-job.
    WorkerLost(WorkerLost),
}

/// How to start workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Decide per job: in-process when the process has the rights already (root,
    /// or only files as targets), otherwise the OS's elevation prompt for the
    /// installed worker (`elevated_worker`); on macOS in-process with each drive opened
    /// through the system's `authopen` prompt, and file targets refused beside drives.
    Auto,
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

/// Opens the image with this process's rights, the user's, before any prompt: the
/// worker gets this open file and never opens a path the user gave, so it reads only
/// what the user may read.
fn open_image(path: &Path) -> Result<File, Event> {
    File::open(path).map_err(|e| {
        let why = match e.kind() {
            io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
            io::ErrorKind::NotFound => "no such file".to_owned(),
            _ => e.to_string(),
        };
        Event::JobFailed {
            kind: ErrorKind::BadInput,
            message: format!("cannot read {}: {why}", path.display()),
        }
    })
}

/// Sends one message, with `file` beside it when given.
fn send(to_worker: &mut dyn Deliver, request: &Request, file: Option<&File>) -> io::Result<()> {
    to_worker.deliver(&frame(request)?, file)
}

fn run(launch: &Launch, commands: &Receiver<Command>, events: &Sender<Event>) {
    while let Ok(command) = commands.recv() {
        let (request, image) = match &command {
            Command::Write(job) => (Request::Write(job.clone()), &job.image),
            Command::Verify(job) => (Request::Verify(job.clone()), &job.image),
            Command::Cancel => continue,
        };
        let image = match open_image(image) {
            Ok(image) => image,
            Err(event) => {
                let _ = events.send(event);
                continue;
            }
        };
        let token = match graver_writer::protocol::new_token() {
            Ok(token) => token,
            Err(e) => {
                let _ = events.send(Event::LaunchFailed(LaunchError::NoRandomness(e)));
                continue;
            }
        };
        match start(launch, &command, &token) {
            Ok(connection) => {
                if !run_job(connection, &token, (&request, &image), commands, events) {
                    return;
                }
            }
            Err(error) => {
                let _ = events.send(Event::LaunchFailed(error));
            }
        }
    }
}

/// Whether a cancel waits among `commands`: `Some(front end still there)` when one
/// does (a closed channel counts as one), `None` otherwise.
fn pending_cancel(commands: &Receiver<Command>) -> Option<bool> {
    loop {
        match commands.try_recv() {
            Ok(Command::Cancel) => return Some(true),
            // Another job while one is starting: the front end's mistake, not a cancel.
            Ok(Command::Write(_) | Command::Verify(_)) => {}
            Err(crossbeam_channel::TryRecvError::Empty) => return None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => return Some(false),
        }
    }
}

fn cancelled_before_start() -> Event {
    Event::JobFailed {
        kind: ErrorKind::Cancelled,
        message: "cancelled before the writer started: nothing was written".into(),
    }
}

/// Runs one job, sent with its image file, on a fresh worker; returns false when the
/// front end has gone away.
fn run_job(
    connection: Connection,
    token: &str,
    (request, image): (&Request, &File),
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
    // Only the hello goes now. The job follows the worker's Ready: until then the
    // administrator prompt may be open, and a cancel there must leave nothing for a
    // worker that starts anyway to run.
    let sent = send(&mut *to_worker, &hello, None);
    let mut front_end_alive = true;
    let mut ready = false;
    let mut abandoned = false;
    let mut commands = commands.clone();
    // Once the front end is gone, the worker gets this long to stop before it is killed.
    let mut give_up = crossbeam_channel::never();
    let outcome = if let Err(source) = sent {
        Some(Event::LaunchFailed(LaunchError::Unreachable {
            ended: Box::new(process.exit_story(&how)),
            source,
        }))
    } else {
        let mut outcome = None;
        while outcome.is_none() {
            select! {
                recv(frames) -> frame => outcome = match frame {
                    Ok(Ok(Some(Response::Ready { .. }))) if !ready => {
                        ready = true;
                        // A cancel sent while the worker was being started (the prompt on
                        // Windows runs before this loop) wins over the job.
                        match pending_cancel(&commands) {
                            Some(alive) => {
                                front_end_alive = alive;
                                abandoned = true;
                                Some(cancelled_before_start())
                            }
                            None => match send(&mut *to_worker, request, Some(image)) {
                                Ok(()) => {
                                    let _ = events.send(Event::Started { how: how.clone() });
                                    None
                                }
                                Err(source) => Some(Event::LaunchFailed(LaunchError::Unreachable {
                                    ended: Box::new(process.exit_story(&how)),
                                    source,
                                })),
                            },
                        }
                    }
                    Ok(Ok(Some(Response::Ready { .. }))) => Some(Event::WorkerLost(WorkerLost::SecondHello)),
                    Ok(Ok(Some(Response::Progress(p)))) => {
                        let _ = events.send(Event::Progress(p));
                        None
                    }
                    Ok(Ok(Some(Response::Finished(result)))) => Some(Event::Finished(result)),
                    Ok(Ok(Some(Response::JobFailed { kind, message }))) => Some(Event::JobFailed { kind, message }),
                    Ok(Ok(Some(Response::Fatal { message }))) => Some(Event::LaunchFailed(LaunchError::Refused(message))),
                    Ok(Ok(None) | Err(_)) | Err(_) if ready => Some(Event::WorkerLost(WorkerLost::Ended(Box::new(process.exit_story(&how))))),
                    Ok(Ok(None) | Err(_)) | Err(_) => Some(Event::LaunchFailed(process.exit_story(&how))),
                },
                recv(commands) -> command => match command {
                    // Before Ready the worker has no job: abandon the launch (the prompt
                    // goes away with pkexec) and never send one.
                    Ok(Command::Cancel) if !ready => {
                        abandoned = true;
                        outcome = Some(cancelled_before_start());
                    }
                    Err(_) if !ready => {
                        front_end_alive = false;
                        abandoned = true;
                        outcome = Some(cancelled_before_start());
                    }
                    Ok(Command::Cancel) => {
                        let _ = send(&mut *to_worker, &Request::Cancel, None);
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
                        let _ = send(&mut *to_worker, &Request::Cancel, None);
                    }
                },
                recv(give_up) -> _ => outcome = Some(Event::WorkerLost(WorkerLost::Unstoppable)),
            }
        }
        outcome
    };
    drop(to_worker);
    if let Some(event) = outcome {
        let _ = events.send(event);
    }
    if abandoned {
        // Its stream may stay open a while (children of pkexec): nobody waits for it.
        process.abandon();
    } else {
        process.end();
        let _ = reader.join();
    }
    front_end_alive
}
