//! The privileged side: serves one front end over a byte stream, runs one job at
//! a time with the engine, and trusts nothing the front end says about drives.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TrySendError};

use graver_drives::{
    Access, Ask, Consent, Drive, DriveError, ImageFacts, PathKind, Resolved, Severity, Target, Verdict,
};
use graver_image::Image;

use crate::os::as_invoking_user;
use crate::protocol::{
    self, Eject, JobResult, JobTarget, Outcome, PROTOCOL_VERSION, Refusal, Request, Response, TargetResult, VerifyJob,
    WriteJob, write_frame,
};
use crate::{CancelToken, Device, ErrorKind, WriteError, WriteOptions};

/// What a worker may do beyond writing listed whole drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Accept regular files as targets. Only a worker running with the user's own
    /// rights (in-process) may: a privileged one would let the user overwrite any file.
    pub allow_files: bool,
    /// Unsafe mode: system drives may be written (and read), each only with its name
    /// typed. A privileged worker is in it only when started so (`--serve-unsafe`, which
    /// its own administrator prompt allows); an in-process one when the user asked (`--unsafe`).
    pub unsafe_mode: bool,
}

/// Why a worker stopped serving.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The front end broke the protocol (garbage, wrong token, other version); nothing was written.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The stream to the front end failed.
    #[error("the connection to the front end failed: {0}")]
    Io(#[from] io::Error),
}

type Output<W> = Arc<Mutex<W>>;

/// How long the rest of a frame may take once its first byte has arrived. Between
/// frames the front end may be silent for as long as it likes.
pub const FRAME_STALL: Duration = Duration::from_secs(30);

/// Jobs that may wait behind the running one. A front end sends one job at a time,
/// so more is a broken or hostile client, and ends the connection.
pub const QUEUED_JOBS: usize = 4;

/// Limits on what a front end may do to a worker; [`serve`] uses the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long a started frame may stall before the connection ends ([`FRAME_STALL`]).
    pub frame_stall: Duration,
    /// How many jobs may wait behind the running one ([`QUEUED_JOBS`]).
    pub queued_jobs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frame_stall: FRAME_STALL,
            queued_jobs: QUEUED_JOBS,
        }
    }
}

fn send<W: Write>(out: &Output<W>, response: &Response) -> io::Result<()> {
    let mut out = out.lock().map_err(|_| io::Error::other("output lock poisoned"))?;
    write_frame(&mut *out, response)
}

fn fatal<W: Write>(out: &Output<W>, message: String) -> ServeError {
    let _ = send(
        out,
        &Response::Fatal {
            message: message.clone(),
        },
    );
    ServeError::Protocol(message)
}

/// Frames cut out of the bytes a thread reads from the front end, so that a frame
/// that stops half-way can be timed out whatever the stream is.
struct Frames {
    chunks: Receiver<io::Result<Vec<u8>>>,
    buffer: Vec<u8>,
    stall: Duration,
}

impl Frames {
    /// Starts the thread that reads `input`. It is not joined: a front end that
    /// stalls keeps it blocked in `read` until the stream closes, and the worker
    /// must be free to end before that.
    fn start<R: Read + Send + 'static>(mut input: R, stall: Duration) -> Self {
        let (chunks_tx, chunks) = crossbeam_channel::bounded(4);
        let spawned = std::thread::Builder::new()
            .name("graver-worker-input".into())
            .spawn(move || {
                let mut chunk = vec![0u8; 64 << 10];
                loop {
                    let read = match input.read(&mut chunk) {
                        Ok(0) => return,
                        Ok(n) => Ok(chunk[..n].to_vec()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = read.is_err();
                    if chunks_tx.send(read).is_err() || failed {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            // Without its reader the worker hears nothing: report that as the first frame failing.
            let (failed_tx, failed) = crossbeam_channel::bounded(1);
            let _ = failed_tx.send(Err(e));
            return Self {
                chunks: failed,
                buffer: Vec::new(),
                stall,
            };
        }
        Self {
            chunks,
            buffer: Vec::new(),
            stall,
        }
    }

    /// The next request; `Ok(None)` when the stream ended between frames.
    fn next(&mut self) -> io::Result<Option<Request>> {
        let mut deadline = None;
        loop {
            if let Some(prefix) = self.buffer.first_chunk::<4>() {
                let len = protocol::frame_len(*prefix)?;
                if self.buffer.len() >= 4 + len {
                    let request = protocol::parse_body(&self.buffer[4..4 + len]);
                    self.buffer.drain(..4 + len);
                    return request.map(Some);
                }
            }
            let chunk = if self.buffer.is_empty() {
                self.chunks.recv().ok()
            } else {
                let until = *deadline.get_or_insert_with(|| Instant::now() + self.stall);
                match self.chunks.recv_deadline(until) {
                    Ok(chunk) => Some(chunk),
                    Err(RecvTimeoutError::Disconnected) => None,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "a frame stopped half-way for {} s; the connection is closed",
                                self.stall.as_secs()
                            ),
                        ));
                    }
                }
            };
            match chunk {
                Some(chunk) => self.buffer.extend_from_slice(&chunk?),
                None if self.buffer.is_empty() => return Ok(None),
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }
}

/// A job as it waits in the queue: it has its cancel token from the moment its frame arrives.
struct Queued {
    id: u64,
    request: Request,
    cancel: CancelToken,
}

/// The tokens of every job that has arrived and not ended: a cancel reaches each of them,
/// started or not.
#[derive(Default)]
struct Live(Mutex<Vec<(u64, CancelToken)>>);

impl Live {
    fn add(&self, id: u64, token: &CancelToken) {
        if let Ok(mut live) = self.0.lock() {
            live.push((id, token.clone()));
        }
    }

    fn remove(&self, id: u64) {
        if let Ok(mut live) = self.0.lock() {
            live.retain(|(live_id, _)| *live_id != id);
        }
    }

    fn cancel_all(&self) {
        let cancel = |live: &Vec<(u64, CancelToken)>| live.iter().for_each(|(_, token)| token.cancel());
        match self.0.lock() {
            Ok(live) => cancel(&live),
            Err(poisoned) => cancel(poisoned.get_ref()),
        }
    }
}

/// Serves one front end until its stream closes: the handshake, then jobs.
///
/// # Errors
/// [`ServeError::Protocol`] when the first frame is not a valid hello with the
/// right token and version, or any later frame is garbage, stalls half-way or
/// overflows the queue; [`ServeError::Io`] when the stream fails.
pub fn serve<R, W>(input: R, output: W, token: &str, policy: Policy) -> Result<(), ServeError>
where
    R: Read + Send + 'static,
    W: Write + Send,
{
    serve_with(input, output, token, policy, Limits::default())
}

/// [`serve`] with other [`Limits`] (tests use a short stall).
///
/// # Errors
/// As [`serve`].
pub fn serve_with<R, W>(input: R, output: W, token: &str, policy: Policy, limits: Limits) -> Result<(), ServeError>
where
    R: Read + Send + 'static,
    W: Write + Send,
{
    let out = Arc::new(Mutex::new(output));
    let mut frames = Frames::start(input, limits.frame_stall);
    match frames.next() {
        Ok(Some(Request::Hello { version, token: given })) => {
            if version != PROTOCOL_VERSION {
                return Err(fatal(
                    &out,
                    format!("protocol version {version} is not this worker's version {PROTOCOL_VERSION}"),
                ));
            }
            if given != token {
                return Err(fatal(&out, "wrong token: this worker was not started by you".into()));
            }
        }
        Ok(Some(_)) => return Err(fatal(&out, "the first message must be a hello".into())),
        Ok(None) => return Ok(()),
        Err(e) => return Err(fatal(&out, format!("the hello does not parse: {e}"))),
    }
    send(
        &out,
        &Response::Ready {
            version: PROTOCOL_VERSION,
        },
    )?;

    let live = Live::default();
    let (jobs_tx, jobs) = crossbeam_channel::bounded::<Queued>(limits.queued_jobs);
    std::thread::scope(|scope| {
        let live = &live;
        let reader_out = Arc::clone(&out);
        let reader = scope.spawn(move || -> Result<(), ServeError> {
            // Whatever ends the connection ends every job: the running one stops with its
            // first MiB unwritten, the queued ones never start.
            let mut arrived = 0u64;
            let outcome = loop {
                match frames.next() {
                    Ok(Some(Request::Cancel)) => live.cancel_all(),
                    Ok(Some(Request::Hello { .. })) => break Err(fatal(&reader_out, "a second hello".into())),
                    Ok(Some(request)) => {
                        arrived += 1;
                        let cancel = CancelToken::new();
                        live.add(arrived, &cancel);
                        let queued = Queued {
                            id: arrived,
                            request,
                            cancel,
                        };
                        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = jobs_tx.try_send(queued) {
                            break Err(fatal(
                                &reader_out,
                                format!("more than {} jobs waiting; one job at a time", limits.queued_jobs),
                            ));
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(fatal(&reader_out, format!("{e}"))),
                }
            };
            live.cancel_all();
            outcome
        });
        for Queued { id, request, cancel } in &jobs {
            let response = if cancel.is_cancelled() {
                // Cancelled, or the front end left, before the job began: no drive is looked at.
                job_failed(&WriteError::Cancelled)
            } else {
                match &request {
                    Request::Write(job) => run_write(job, policy, &out, &cancel),
                    Request::Verify(job) => run_verify(job, policy, &out, &cancel),
                    Request::Hello { .. } | Request::Cancel => continue,
                }
            };
            live.remove(id);
            if send(&out, &response).is_err() {
                break;
            }
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(ServeError::Protocol("the reader thread panicked".into())))
    })
}

fn job_failed(error: &WriteError) -> Response {
    Response::JobFailed {
        kind: error.kind(),
        message: error.to_string(),
    }
}

fn open_image(path: &Path) -> Result<Image, Response> {
    as_invoking_user(|| Image::open(path)).map_err(|e| Response::JobFailed {
        kind: ErrorKind::BadInput,
        message: e.to_string(),
    })
}

/// A target that passed every check, opened and ready.
struct Checked {
    target: Target,
    drive: Option<Drive>,
}

/// The listed drive `target` chose, provided it is still that drive and the job
/// carries the consent the policy asks for it, in this worker's mode: what the front
/// end says is only taken as the user's answers, never as the policy's outcome.
/// `facts` is `None` for a job that reads the drive only.
fn consented<'a>(
    target: &JobTarget,
    drives: &'a [Drive],
    facts: Option<&ImageFacts>,
    policy: Policy,
) -> Result<&'a Drive, Refusal> {
    let not_whole = |resolved: Resolved<'_>| Refusal::NotWholeDrive {
        partition_of: match resolved {
            Resolved::Partition(drive) => Some(drive.path.clone()),
            Resolved::Drive(_) | Resolved::File | Resolved::Unlisted { .. } => None,
        },
    };
    let Some(identity) = &target.drive else {
        return Err(match graver_drives::resolve(drives, &target.path) {
            Resolved::Unlisted { present: false } => Refusal::Unplugged,
            Resolved::Drive(_) => Refusal::Unidentified,
            other => not_whole(other),
        });
    };
    let drive = graver_drives::chosen(drives, &target.path, identity).map_err(|e| match e {
        DriveError::NotFound(_) => Refusal::Unplugged,
        DriveError::NotWritable { .. } => not_whole(graver_drives::resolve(drives, &target.path)),
        other => Refusal::from(other),
    })?;
    // Each warning the policy has for this drive must have been shown and confirmed.
    let warnings_confirmed = graver_drives::classify(drive, facts)
        .iter()
        .filter(|f| f.hazard.severity() == Severity::Confirm)
        .all(|f| target.confirmed.contains(&f.hazard));
    let consent = Consent {
        unsafe_mode: policy.unsafe_mode,
        typed_name: target.typed_name.as_deref(),
        warnings_confirmed,
    };
    match graver_drives::judge(drive, facts, consent) {
        Verdict::Allowed => Ok(drive),
        Verdict::Refused(graver_drives::Refusal::Forbidden(findings)) => Err(Refusal::Forbidden { findings }),
        Verdict::Refused(graver_drives::Refusal::SystemDrive(finding)) => Err(Refusal::SystemDrive { finding }),
        Verdict::Refused(graver_drives::Refusal::NameMismatch { expected }) => Err(Refusal::NameMismatch { expected }),
        Verdict::Ask(asks) => Err(Refusal::Unconfirmed {
            findings: asks
                .into_iter()
                .map(|ask| match ask {
                    Ask::TypeName(finding) | Ask::Confirm(finding) => finding,
                })
                .collect(),
        }),
    }
}

/// Re-checks one target against a fresh drive list, as if the front end had said nothing.
fn check_target(
    job_target: &JobTarget,
    drives: &[Drive],
    facts: &ImageFacts,
    job: &WriteJob,
    policy: Policy,
) -> Result<Checked, Refusal> {
    let path = &job_target.path;
    if graver_drives::resolve(drives, path) == Resolved::File && job_target.drive.is_none() {
        if !policy.allow_files {
            return Err(Refusal::FileTarget);
        }
        let access = Access::Write {
            overwrite_file: job.overwrite,
        };
        let target = graver_drives::open_target(path, access)?;
        return Ok(Checked { target, drive: None });
    }
    let drive = consented(job_target, drives, Some(facts), policy)?;
    let mut target = graver_drives::prepare(drive)?;
    // The node may have gone to another medium between listing and opening.
    target.check_identity(&drive.identity)?;
    target.set_ejecting(job.eject);
    Ok(Checked {
        target,
        drive: Some(drive.clone()),
    })
}

fn run_write<W: Write + Send>(job: &WriteJob, policy: Policy, out: &Output<W>, cancel: &CancelToken) -> Response {
    let started = Instant::now();
    let image = match open_image(&job.image) {
        Ok(image) => image,
        Err(response) => return response,
    };
    if job.targets.is_empty() {
        return Response::JobFailed {
            kind: ErrorKind::Refused,
            message: "no target given".into(),
        };
    }
    // Before any drive is unmounted or opened: an image that decodes to nothing is refused
    // here whatever the front end checked (the engine refuses it too, before a write).
    match as_invoking_user(|| graver_image::probe(&image)) {
        Ok(probe) => {
            if let Some(refusal) = probe.refusal() {
                return Response::JobFailed {
                    kind: ErrorKind::BadInput,
                    message: format!("{}: {refusal}", job.image.display()),
                };
            }
        }
        Err(e) => {
            return Response::JobFailed {
                kind: ErrorKind::BadInput,
                message: e.to_string(),
            };
        }
    }
    let drives = match graver_drives::list() {
        Ok(drives) => drives,
        Err(e) => {
            return Response::JobFailed {
                kind: ErrorKind::Io,
                message: e.to_string(),
            };
        }
    };
    // The last moment a cancel can stop the job before any drive is unmounted or opened.
    if cancel.is_cancelled() {
        return job_failed(&WriteError::Cancelled);
    }
    let facts = ImageFacts::of(&image);
    let mut checked: Vec<Result<Checked, Refusal>> = job
        .targets
        .iter()
        .map(|t| check_target(t, &drives, &facts, job, policy))
        .collect();
    let mut devices: Vec<&mut dyn Device> = checked
        .iter_mut()
        .filter_map(|c| c.as_mut().ok())
        .map(|c| &mut c.target as &mut dyn Device)
        .collect();
    let mut outcomes = Vec::new();
    let mut sha256 = None;
    let mut image_len = 0;
    if !devices.is_empty() {
        let options = WriteOptions {
            verify: job.verify,
            sha256: job.sha256,
        };
        let forward = |p: &crate::Progress| {
            if send(out, &Response::Progress(p.clone())).is_err() {
                cancel.cancel();
            }
        };
        let report = as_invoking_user(|| crate::write(&image, &mut devices, options, &forward, cancel));
        match report {
            Ok(report) => {
                sha256 = report.sha256;
                image_len = report.image_len;
                outcomes = report
                    .devices
                    .into_iter()
                    .map(|d| {
                        let outcome = match d.result {
                            Ok(true) => Outcome::Verified,
                            Ok(false) => Outcome::Written,
                            Err(e) => Outcome::Failed {
                                kind: e.kind(),
                                message: e.to_string(),
                            },
                        };
                        (outcome, d.warning)
                    })
                    .collect();
            }
            Err(e) => return job_failed(&e),
        }
    }
    let mut outcomes = outcomes.into_iter();
    let mut targets = Vec::new();
    for (job_target, check) in job.targets.iter().zip(checked) {
        let (outcome, warning, drive) = match check {
            Err(refusal) => (Outcome::Refused { refusal }, None, None),
            Ok(checked) => {
                drop(checked.target);
                let (outcome, warning) = outcomes.next().unwrap_or((
                    Outcome::Failed {
                        kind: ErrorKind::Io,
                        message: "the engine reported no result".into(),
                    },
                    None,
                ));
                (outcome, warning, checked.drive)
            }
        };
        let ejected = match drive {
            Some(drive) if job.eject && outcome.is_success() => Some(match graver_drives::eject(&drive) {
                Ok(graver_drives::Ejected::Ejected) => Eject::Ejected,
                Ok(graver_drives::Ejected::NotSupported(reason)) => Eject::NotSupported { reason },
                Err(e) => Eject::Failed { message: e.to_string() },
            }),
            _ => None,
        };
        targets.push(TargetResult {
            target: job_target.path.clone(),
            outcome,
            ejected,
            warning,
        });
    }
    Response::Finished(JobResult {
        image_len,
        sha256,
        elapsed_secs: started.elapsed().as_secs_f64(),
        targets,
    })
}

/// Opens a Verify job's target for reading, through the same checks as a write: a
/// drive's mismatch offset tells what it holds, so reading one needs the same consent.
fn open_for_verify(job_target: &JobTarget, policy: Policy) -> Result<Target, Refusal> {
    let path = &job_target.path;
    let drives = match graver_drives::path_kind(path) {
        PathKind::Device => graver_drives::list()?,
        PathKind::File => Vec::new(),
    };
    if graver_drives::resolve(&drives, path) == Resolved::File && job_target.drive.is_none() {
        if !policy.allow_files {
            return Err(Refusal::FileTarget);
        }
        return Ok(graver_drives::open_target(path, Access::Read)?);
    }
    let drive = consented(job_target, &drives, None, policy)?;
    let target = graver_drives::open_target(&drive.path, Access::Read)?;
    target.check_identity(&drive.identity)?;
    Ok(target)
}

fn run_verify<W: Write + Send>(job: &VerifyJob, policy: Policy, out: &Output<W>, cancel: &CancelToken) -> Response {
    let started = Instant::now();
    let image = match open_image(&job.image) {
        Ok(image) => image,
        Err(response) => return response,
    };
    let finished = |image_len, outcome| {
        Response::Finished(JobResult {
            image_len,
            sha256: None,
            elapsed_secs: started.elapsed().as_secs_f64(),
            targets: vec![TargetResult {
                target: job.target.path.clone(),
                outcome,
                ejected: None,
                warning: None,
            }],
        })
    };
    let mut target = match open_for_verify(&job.target, policy) {
        Ok(target) => target,
        Err(refusal) => return finished(0, Outcome::Refused { refusal }),
    };
    let forward = |p: &crate::Progress| {
        if send(out, &Response::Progress(p.clone())).is_err() {
            cancel.cancel();
        }
    };
    match as_invoking_user(|| crate::compare(&image, &mut target, &forward, cancel)) {
        Ok(report) => finished(report.image_len, Outcome::Verified),
        Err(e @ (WriteError::BadImage(_) | WriteError::SourceIo(_) | WriteError::Cancelled)) => job_failed(&e),
        Err(e) => finished(
            0,
            Outcome::Failed {
                kind: e.kind(),
                message: e.to_string(),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    //! The worker's own queue and stream handling, in-process on regular files (the
    //! client's tests in crates/client/tests/worker.rs run the binary on loop devices).
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{PipeReader, PipeWriter};
    use std::path::PathBuf;
    use std::thread::JoinHandle;

    use graver_testkit::Rng;

    use crate::protocol::read_frame;

    use super::*;

    const MIB: usize = 1 << 20;
    /// What the target holds before a job: anything the job wrote, zeros included, shows.
    const OLD: u8 = 0x5a;
    /// The longest a serve may take to end before the test calls it a hang.
    const HANG_GUARD: Duration = Duration::from_secs(30);

    struct Session {
        to_worker: PipeWriter,
        from_worker: PipeReader,
        served: JoinHandle<Result<(), ServeError>>,
    }

    fn start(limits: Limits) -> Session {
        let policy = Policy {
            allow_files: true,
            unsafe_mode: false,
        };
        start_with(policy, limits)
    }

    fn start_with(policy: Policy, limits: Limits) -> Session {
        let (req_rx, to_worker) = io::pipe().unwrap();
        let (from_worker, resp_tx) = io::pipe().unwrap();
        let served = std::thread::spawn(move || serve_with(req_rx, resp_tx, "t0ken", policy, limits));
        Session {
            to_worker,
            from_worker,
            served,
        }
    }

    fn frame(request: &Request) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, request).unwrap();
        bytes
    }

    fn hello() -> Vec<u8> {
        frame(&Request::Hello {
            version: PROTOCOL_VERSION,
            token: "t0ken".into(),
        })
    }

    /// A 3 MiB image of pseudo-random bytes and a 4 MiB target full of [`OLD`].
    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        let image = dir.join("image.img");
        std::fs::write(&image, Rng::new(7).bytes(3 * MIB)).unwrap();
        let target = dir.join("target.img");
        std::fs::write(&target, vec![OLD; 4 * MIB]).unwrap();
        (image, target)
    }

    fn write_request(image: &Path, target: &Path) -> Request {
        Request::Write(WriteJob {
            image: image.to_path_buf(),
            targets: vec![JobTarget::file(target)],
            verify: true,
            eject: false,
            overwrite: true,
            sha256: false,
        })
    }

    fn untouched(target: &Path) -> bool {
        let bytes = std::fs::read(target).unwrap();
        bytes.len() == 4 * MIB && bytes.iter().all(|&b| b == OLD)
    }

    /// Responses up to the one that ends a job (or the stream's end).
    fn until_job_end(from_worker: &mut PipeReader) -> Vec<Response> {
        let mut seen = Vec::new();
        while let Some(response) = read_frame::<Response>(from_worker).unwrap() {
            let end = matches!(
                response,
                Response::Finished(_) | Response::JobFailed { .. } | Response::Fatal { .. }
            );
            seen.push(response);
            if end {
                break;
            }
        }
        seen
    }

    fn ends_cancelled(seen: &[Response]) -> bool {
        matches!(
            seen.last(),
            Some(Response::JobFailed {
                kind: ErrorKind::Cancelled,
                ..
            })
        )
    }

    fn join(served: JoinHandle<Result<(), ServeError>>) -> Result<(), ServeError> {
        let deadline = Instant::now() + HANG_GUARD;
        while !served.is_finished() {
            assert!(Instant::now() < deadline, "the worker did not end");
            std::thread::sleep(Duration::from_millis(10));
        }
        served.join().unwrap()
    }

    #[test]
    fn a_cancel_right_after_a_write_leaves_the_target_untouched_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let write = frame(&write_request(&image, &target));
        let cancel = frame(&Request::Cancel);
        for run in 0..200 {
            let mut session = start(Limits::default());
            session.to_worker.write_all(&hello()).unwrap();
            // Half the runs send both frames in one write, half one after the other, as the client does.
            if run % 2 == 0 {
                session
                    .to_worker
                    .write_all(&[write.as_slice(), &cancel].concat())
                    .unwrap();
            } else {
                session.to_worker.write_all(&write).unwrap();
                session.to_worker.write_all(&cancel).unwrap();
            }
            let seen = until_job_end(&mut session.from_worker);
            assert!(
                matches!(seen.first(), Some(Response::Ready { .. })),
                "run {run}: {seen:?}"
            );
            assert!(ends_cancelled(&seen), "run {run}: the job was not cancelled: {seen:?}");
            assert!(untouched(&target), "run {run}: a cancelled job wrote to the target");
            drop(session.to_worker);
            join(session.served).unwrap();
        }
    }

    #[test]
    fn jobs_waiting_when_the_front_end_hangs_up_never_run() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        for run in 0..100 {
            let mut session = start(Limits::default());
            let jobs = frame(&write_request(&image, &target)).repeat(3);
            session.to_worker.write_all(&[hello(), jobs].concat()).unwrap();
            drop(session.to_worker);
            let mut seen = Vec::new();
            while let Some(response) = read_frame::<Response>(&mut session.from_worker).unwrap() {
                seen.push(response);
            }
            assert!(
                !seen
                    .iter()
                    .any(|r| matches!(r, Response::Finished(_) | Response::Progress(_))),
                "run {run}: a job ran after the front end hung up: {seen:?}"
            );
            assert!(untouched(&target), "run {run}: a job wrote after the front end hung up");
            join(session.served).unwrap();
        }
    }

    #[test]
    fn a_job_still_runs_when_nobody_cancels_it() {
        // The other tests' untouched target means something only if the same job does write.
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let mut session = start(Limits::default());
        session
            .to_worker
            .write_all(&[hello(), frame(&write_request(&image, &target))].concat())
            .unwrap();
        let seen = until_job_end(&mut session.from_worker);
        let Some(Response::Finished(result)) = seen.last() else {
            panic!("the job did not finish: {seen:?}");
        };
        assert_eq!(result.targets[0].outcome, Outcome::Verified);
        assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&image).unwrap());
        drop(session.to_worker);
        join(session.served).unwrap();
    }

    #[test]
    fn a_worker_that_may_not_write_files_refuses_them_as_data_in_writes_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let policy = Policy {
            allow_files: false,
            unsafe_mode: false,
        };
        let verify = Request::Verify(VerifyJob {
            image: image.clone(),
            target: JobTarget::file(&target),
        });
        for request in [write_request(&image, &target), verify] {
            let mut session = start_with(policy, Limits::default());
            session
                .to_worker
                .write_all(&[hello(), frame(&request)].concat())
                .unwrap();
            let seen = until_job_end(&mut session.from_worker);
            let Some(Response::Finished(result)) = seen.last() else {
                panic!("a refused target must end the job as finished: {seen:?}");
            };
            assert_eq!(result.targets.len(), 1);
            assert_eq!(result.targets[0].target, target);
            assert_eq!(
                result.targets[0].outcome,
                Outcome::Refused {
                    refusal: Refusal::FileTarget
                }
            );
            assert_eq!(result.worst(), Some(ErrorKind::Refused));
            assert!(untouched(&target));
            drop(session.to_worker);
            join(session.served).unwrap();
        }
    }

    #[test]
    fn a_frame_that_stops_half_way_ends_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let limits = Limits {
            frame_stall: Duration::from_secs(1),
            ..Limits::default()
        };
        // Half a hello, and half of a job after a whole hello; the stream stays open both times.
        let write = frame(&write_request(&image, &target));
        for (stalled, expect_ready) in [
            (hello()[..3].to_vec(), false),
            ([hello(), write[..20].to_vec()].concat(), true),
        ] {
            let mut session = start(limits);
            session.to_worker.write_all(&stalled).unwrap();
            let outcome = join(session.served);
            assert!(
                matches!(outcome, Err(ServeError::Protocol(ref m)) if m.contains("half-way")),
                "{outcome:?}"
            );
            let mut seen = Vec::new();
            while let Ok(Some(response)) = read_frame::<Response>(&mut session.from_worker) {
                seen.push(response);
            }
            assert_eq!(
                matches!(seen.first(), Some(Response::Ready { .. })),
                expect_ready,
                "{seen:?}"
            );
            assert!(matches!(seen.last(), Some(Response::Fatal { .. })), "{seen:?}");
            assert!(untouched(&target));
        }
    }

    #[test]
    fn more_jobs_than_the_queue_holds_end_the_connection_and_run_none_of_the_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let limits = Limits {
            queued_jobs: 1,
            ..Limits::default()
        };
        let mut session = start(limits);
        let jobs = frame(&write_request(&image, &target)).repeat(10);
        session.to_worker.write_all(&[hello(), jobs].concat()).unwrap();
        let outcome = join(session.served);
        assert!(
            matches!(outcome, Err(ServeError::Protocol(ref m)) if m.contains("jobs waiting")),
            "{outcome:?}"
        );
        let mut seen = Vec::new();
        while let Ok(Some(response)) = read_frame::<Response>(&mut session.from_worker) {
            seen.push(response);
        }
        assert!(seen.iter().any(|r| matches!(r, Response::Fatal { .. })), "{seen:?}");
        let finished = seen.iter().filter(|r| matches!(r, Response::Finished(_))).count();
        assert!(finished <= 1, "jobs ran after the connection ended: {seen:?}");
    }
}
