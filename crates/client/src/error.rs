//! Why a worker could not be started, or ended before it took the job.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

/// Why no worker took the job. Nothing was written in any of these cases; the
/// wording says what happened and, where the user can act, what to do.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The client's own thread is gone, so no job can be sent.
    #[error("the writer client did not start")]
    ClientGone,
    /// The OS gave no randomness for the worker's token.
    #[error("no randomness for the worker's token: {0}")]
    NoRandomness(io::Error),
    /// No pipe or socket between the front end and a worker.
    #[error("cannot create a pipe to the writer: {0}")]
    Pipe(io::Error),
    /// No thread for an in-process worker.
    #[error("cannot start the writer thread: {0}")]
    Thread(io::Error),
    /// A program (the worker, pkexec) could not be started.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        /// The program.
        program: OsString,
        /// What the OS said.
        source: io::Error,
    },
    /// A started worker has no standard input or output.
    #[error("the writer process has no standard streams")]
    NoStreams,
    /// The worker executable is not where this installation keeps it.
    #[error("the writer program {} is missing; reinstall Graver", .0.display())]
    WorkerMissing(PathBuf),
    /// This OS has no elevation Graver knows.
    #[error("Graver cannot ask for administrator rights on this OS; run it as an administrator")]
    Unsupported,

    /// Linux: pkexec itself could not be started.
    #[error("pkexec is not available to ask for administrator rights ({0}); run Graver as root")]
    NoPkexec(Box<LaunchError>),
    /// Linux: no polkit agent runs to ask for the password.
    #[error(
        "no polkit authentication agent is running, so Graver cannot ask for the administrator password; \
         log in to a desktop session (which starts one) or run Graver as root"
    )]
    NoPolkitAgent,
    /// Linux: the polkit prompt was dismissed or the password refused (pkexec's exit code 126).
    #[error("authorization was cancelled or refused; nothing was written")]
    AuthorizationRefused,
    /// Linux: polkit does not allow this user to write drives.
    #[error("not authorized to write to drives; nothing was written")]
    NotAuthorized,
    /// Linux: the prompt failed, as pkexec said.
    #[error("the administrator prompt failed: {0}")]
    PromptFailed(String),
    /// Linux: pkexec could not find or run the worker.
    #[error("pkexec could not start the writer: {0}")]
    PkexecCannotStart(String),
    /// Linux: pkexec failed in some other way, as it said.
    #[error("pkexec failed: {0}")]
    PkexecFailed(String),

    /// Windows: the user cancelled the administrator prompt.
    #[error("the administrator prompt was cancelled; nothing was written")]
    Cancelled,

    /// Windows: who connected in the worker's place cannot be told.
    #[error("cannot tell which program connected in place of the writer: {0}; nothing was written")]
    PeerUnknown(io::Error),
    /// Windows: the worker's connection cannot be used.
    #[error("cannot use the writer's connection: {0}; nothing was written")]
    Connection(io::Error),

    /// Windows: this account's SID, which protects the pipe, cannot be read.
    #[error("cannot read this account's security identifier to protect the writer's pipe: {0}")]
    UserSid(io::Error),
    /// Windows: the pipe could not be made.
    #[error("cannot create the pipe {name} for the writer process: {source}")]
    CreatePipe {
        /// The pipe's name.
        name: String,
        /// What the OS said.
        source: io::Error,
    },
    /// Windows: the worker executable is damaged or for another architecture.
    #[error("the writer program {} is damaged or not for this Windows; reinstall Graver", .0.display())]
    BadExecutable(PathBuf),
    /// Windows: starting the worker as administrator was denied.
    #[error(
        "Windows refused to start the writer program {} as administrator (access denied); \
         ask an administrator, or check that security software is not blocking it",
        .0.display()
    )]
    AccessDenied(PathBuf),
    /// Windows: `ShellExecuteExW` failed with this error code.
    #[error(
        "Windows could not start the writer program as administrator: {} (error {code}); nothing was written",
        io::Error::from_raw_os_error(i32::from_ne_bytes(.code.to_ne_bytes()))
    )]
    ShellExecute {
        /// `GetLastError`'s code.
        code: u32,
    },
    /// Windows: the worker was started without a handle to watch it by.
    #[error("Windows started the writer program without a way to watch it; nothing was written")]
    NoProcessHandle,
    /// Windows: the worker ended, with this exit code, before it connected.
    #[error(
        "the writer process ended before connecting (exit code {0}); nothing was written. \
         If you signed in as a different administrator in the prompt, run Graver from that account instead"
    )]
    EarlyExit(u32),
    /// Windows: the worker did not connect within this many seconds.
    #[error("the writer process did not connect within {0} seconds; nothing was written")]
    ConnectTimeout(u64),
    /// Windows: waiting for the worker failed.
    #[error("waiting for the writer process failed: {0}; nothing was written")]
    Wait(io::Error),
    /// Windows: another process connected in the worker's place.
    #[error(
        "another program (process {client}) connected in place of the writer (process {expected}); nothing was written"
    )]
    WrongProcess {
        /// The process that connected.
        client: u32,
        /// The process UAC started.
        expected: u32,
    },

    /// The worker answered the handshake with a refusal.
    #[error("the writer refused the connection: {0}")]
    Refused(String),
    /// The worker ended before it said it was ready.
    #[error("{0}")]
    Ended(WorkerExit),
    /// The hello or the job could not be sent: the worker ended or hung up.
    #[error("{ended} ({source})")]
    Unreachable {
        /// How the worker ended.
        ended: Box<LaunchError>,
        /// Why sending failed.
        source: io::Error,
    },
}

/// Why a worker that had taken the job stopped before ending it. The drive was left
/// without its first MiB; the front ends say so in their own words.
#[derive(Debug)]
pub enum WorkerLost {
    /// Its connection closed mid-job: how it ended, as far as the client can tell
    /// (mostly [`LaunchError::Ended`] with the process's [`WorkerExit`]).
    Ended(Box<LaunchError>),
    /// It answered the handshake a second time, mid-job.
    SecondHello,
    /// The front end went away and the worker did not stop when asked, so it was ended.
    Unstoppable,
    /// The client's own thread stopped, taking the connection with it.
    ClientStopped,
}

/// How a worker's stream came to an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// The process was ended by a signal.
    Killed {
        /// The signal.
        signal: i32,
        /// The last line it wrote to its standard error.
        said: String,
    },
    /// The process exited with this code.
    Exited {
        /// Its exit code.
        code: i32,
        /// The last line it wrote to its standard error.
        said: String,
    },
    /// The process ended with no exit code.
    Ended {
        /// The last line it wrote to its standard error.
        said: String,
    },
    /// The process did not end within a moment of its stream closing.
    Silent,
    /// The in-process worker's thread stopped.
    ThreadStopped,
    /// An elevated worker the client cannot wait for closed its connection.
    Closed,
}

impl std::fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let said = |said: &str| {
            if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            }
        };
        match self {
            Self::Killed { signal, said: s } => write!(f, "the writer process was killed (signal {signal}){}", said(s)),
            Self::Exited { code: 0, said: s } => {
                write!(f, "the writer process exited before finishing the job{}", said(s))
            }
            Self::Exited { code, said: s } => write!(f, "the writer process ended with exit code {code}{}", said(s)),
            Self::Ended { said: s } => write!(f, "the writer process ended{}", said(s)),
            Self::Silent => f.write_str("the writer process stopped answering"),
            Self::ThreadStopped => f.write_str("the in-process writer stopped"),
            Self::Closed => f.write_str("the connection to the writer process closed"),
        }
    }
}
