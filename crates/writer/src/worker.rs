//! The privileged side: serves one front end over a byte stream, runs one job at
//! a time with the engine, and trusts nothing the front end says about drives.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use graver_drives::{
    Access, Ask, Consent, Drive, DriveError, ImageFacts, PathKind, Resolved, Severity, Target, Verdict,
};
use graver_image::Image;

use crate::protocol::{
    self, Eject, JobResult, JobTarget, Outcome, PROTOCOL_VERSION, Refusal, Request, Response, TargetResult, VerifyJob,
    WriteJob, write_frame,
};
use crate::transport::{ATTACH, Adopter, Receive};
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

/// What the reading thread hands on: bytes, and the files that came with them, each
/// with the index of a byte of the frame it belongs to.
type Chunk = io::Result<(Vec<u8>, Vec<(usize, File)>)>;

/// Frames cut out of the bytes a thread reads from the front end, so that a frame
/// that stops half-way can be timed out whatever the stream is, each with the open
/// files that came with it.
struct Frames {
    chunks: Receiver<Chunk>,
    buffer: Vec<u8>,
    /// The stream offset of `buffer`'s first byte.
    base: u64,
    /// Files received and not yet given out, each with the stream offset of a byte of
    /// the frame it belongs to.
    files: Vec<(u64, File)>,
    adopter: Option<Adopter>,
    stall: Duration,
}

impl Frames {
    /// Starts the thread that reads `input`. It is not joined: a front end that
    /// stalls keeps it blocked in `read` until the stream closes, and the worker
    /// must be free to end before that.
    fn start<R: Receive + 'static>(mut input: R, stall: Duration) -> Self {
        let adopter = input.adopter();
        let (chunks_tx, chunks) = crossbeam_channel::bounded(4);
        let spawned = std::thread::Builder::new()
            .name("graver-worker-input".into())
            .spawn(move || {
                let mut chunk = vec![0u8; 64 << 10];
                loop {
                    let mut files = Vec::new();
                    let read = match input.receive(&mut chunk, &mut files) {
                        Ok(0) => return,
                        Ok(n) => Ok((chunk[..n].to_vec(), files)),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = read.is_err();
                    if chunks_tx.send(read).is_err() || failed {
                        return;
                    }
                }
            });
        let chunks = match spawned {
            Ok(_) => chunks,
            Err(e) => {
                // Without its reader the worker hears nothing: report that as the first frame failing.
                let (failed_tx, failed) = crossbeam_channel::bounded(1);
                let _ = failed_tx.send(Err(e));
                failed
            }
        };
        Self {
            chunks,
            buffer: Vec::new(),
            base: 0,
            files: Vec::new(),
            adopter,
            stall,
        }
    }

    /// Takes `n` bytes off the front of the buffer.
    fn consume(&mut self, n: usize) {
        self.buffer.drain(..n);
        self.base += n as u64;
    }

    /// Cuts the next whole frame (or handle marker) out of the buffer, if it is all there.
    fn cut(&mut self) -> io::Result<Option<(Request, Vec<File>)>> {
        loop {
            let Some(&prefix) = self.buffer.first_chunk::<4>() else {
                return Ok(None);
            };
            if let (ATTACH, Some(adopt)) = (u32::from_le_bytes(prefix), &self.adopter) {
                let Some(marker) = self.buffer.first_chunk::<12>() else {
                    return Ok(None);
                };
                let handle = u64::from_le_bytes([
                    marker[4], marker[5], marker[6], marker[7], marker[8], marker[9], marker[10], marker[11],
                ]);
                let file = adopt(handle)?;
                self.consume(12);
                // It goes with the frame that starts right after the marker.
                self.files.push((self.base, file));
                continue;
            }
            let len = protocol::frame_len(prefix)?;
            if self.buffer.len() < 4 + len {
                return Ok(None);
            }
            let end = self.base + 4 + len as u64;
            let (mine, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.files)
                .into_iter()
                .partition(|(offset, _)| *offset < end);
            self.files = later;
            let request = protocol::parse_body(&self.buffer[4..4 + len]);
            self.consume(4 + len);
            return request.map(|request| Some((request, mine.into_iter().map(|(_, file)| file).collect())));
        }
    }

    /// Whether every byte received so far has been cut into frames and given out: a
    /// frame that came in the same read as the last one, or right behind it, is not.
    fn caught_up(&self) -> bool {
        self.buffer.is_empty() && self.chunks.is_empty()
    }

    /// The next request and the files that came with it; `Ok(None)` when the stream
    /// ended between frames.
    fn next(&mut self) -> io::Result<Option<(Request, Vec<File>)>> {
        let mut deadline = None;
        loop {
            if let Some(frame) = self.cut()? {
                return Ok(Some(frame));
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
                Some(chunk) => {
                    let (bytes, files) = chunk?;
                    let start = self.base + self.buffer.len() as u64;
                    self.files
                        .extend(files.into_iter().map(|(at, file)| (start + at as u64, file)));
                    self.buffer.extend_from_slice(&bytes);
                }
                None if self.buffer.is_empty() => return Ok(None),
                None => return Err(io::ErrorKind::UnexpectedEof.into()),
            }
        }
    }
}

/// A job as it waits in the queue: it has its cancel token from the moment its frame arrives.
struct Queued {
    id: u64,
    job: Job,
    cancel: CancelToken,
}

/// A job and the image file that came with its frame.
enum Job {
    Write(WriteJob, File),
    Verify(VerifyJob, File),
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
    R: Receive + 'static,
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
    R: Receive + 'static,
    W: Write + Send,
{
    let out = Arc::new(Mutex::new(output));
    let mut frames = Frames::start(input, limits.frame_stall);
    match frames.next() {
        Ok(Some((Request::Hello { .. }, files))) if !files.is_empty() => {
            return Err(fatal(&out, "a file came with the hello".into()));
        }
        Ok(Some((Request::Hello { version, token: given }, _))) => {
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
            // Jobs that arrived and wait for the frames received with or right behind
            // them: a cancel sent straight after its job ends it before it begins.
            let mut held: Vec<Queued> = Vec::new();
            let outcome = loop {
                if frames.caught_up() && !release(&mut held, &jobs_tx) {
                    break Err(fatal(&reader_out, "the job queue has closed".into()));
                }
                match frames.next() {
                    Ok(Some((Request::Cancel, files))) if files.is_empty() => live.cancel_all(),
                    Ok(Some((Request::Cancel, _))) => {
                        break Err(fatal(&reader_out, "a file came with a cancel".into()));
                    }
                    Ok(Some((Request::Hello { .. }, _))) => break Err(fatal(&reader_out, "a second hello".into())),
                    Ok(Some((request @ (Request::Write(_) | Request::Verify(_)), files))) => {
                        // The image travels beside the job, opened by the front end with the
                        // user's rights: the worker opens no path the user gave.
                        let count = files.len();
                        let Ok([image]) = <[File; 1]>::try_from(files) else {
                            break Err(fatal(
                                &reader_out,
                                format!("a job must come with exactly one open image file; this one came with {count}"),
                            ));
                        };
                        let job = match request {
                            Request::Write(job) => Job::Write(job, image),
                            Request::Verify(job) => Job::Verify(job, image),
                            Request::Hello { .. } | Request::Cancel => continue,
                        };
                        arrived += 1;
                        let cancel = CancelToken::new();
                        live.add(arrived, &cancel);
                        let queued = Queued {
                            id: arrived,
                            job,
                            cancel,
                        };
                        if held.len() + jobs_tx.len() >= limits.queued_jobs {
                            break Err(fatal(
                                &reader_out,
                                format!("more than {} jobs waiting; one job at a time", limits.queued_jobs),
                            ));
                        }
                        held.push(queued);
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(fatal(&reader_out, format!("{e}"))),
                }
            };
            live.cancel_all();
            // Cancelled now, they end as such without a drive being looked at.
            release(&mut held, &jobs_tx);
            outcome
        });
        for Queued { id, job, cancel } in &jobs {
            let response = if cancel.is_cancelled() {
                // Cancelled, or the front end left, before the job began: no drive is looked at.
                job_failed(&WriteError::Cancelled)
            } else {
                match job {
                    Job::Write(job, image) => run_write(&job, image, policy, &out, &cancel),
                    Job::Verify(job, image) => run_verify(&job, image, policy, &out, &cancel),
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

/// Hands the held jobs to the job loop, in the order they came; false when it has
/// gone (or, which the queue's bound rules out, had no room).
fn release(held: &mut Vec<Queued>, jobs: &crossbeam_channel::Sender<Queued>) -> bool {
    held.drain(..).all(|queued| jobs.try_send(queued).is_ok())
}

fn job_failed(error: &WriteError) -> Response {
    Response::JobFailed {
        kind: error.kind(),
        message: error.to_string(),
    }
}

/// The image the front end opened, as the user, and sent with the job; `name` is
/// only what messages call it.
fn open_image(file: File, name: &Path) -> Result<Image, Response> {
    Image::from_file(file, name).map_err(|e| Response::JobFailed {
        kind: ErrorKind::BadInput,
        message: e.to_string(),
    })
}

/// The image, unless it decodes to nothing: refused here, before any drive is
/// unmounted or opened, whatever the front end checked (the engine refuses it too).
fn probed(image: Image, name: &Path) -> Result<Image, Response> {
    match graver_image::probe(&image) {
        Ok(probe) => match probe.refusal() {
            Some(refusal) => Err(Response::JobFailed {
                kind: ErrorKind::BadInput,
                message: format!("{}: {refusal}", name.display()),
            }),
            None => Ok(image),
        },
        Err(e) => Err(Response::JobFailed {
            kind: ErrorKind::BadInput,
            message: e.to_string(),
        }),
    }
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

fn run_write<W: Write + Send>(
    job: &WriteJob,
    image: File,
    policy: Policy,
    out: &Output<W>,
    cancel: &CancelToken,
) -> Response {
    let started = Instant::now();
    if job.targets.is_empty() {
        return Response::JobFailed {
            kind: ErrorKind::Refused,
            message: "no target given".into(),
        };
    }
    // The drives are listed while the image is opened and probed: each takes a few
    // milliseconds, and neither needs the other.
    let (image, drives) = std::thread::scope(|scope| {
        let listing = scope.spawn(graver_drives::list);
        let image = open_image(image, &job.image).and_then(|image| probed(image, &job.image));
        (image, listing.join())
    });
    let image = match image {
        Ok(image) => image,
        Err(response) => return response,
    };
    let drives = match drives {
        Ok(Ok(drives)) => drives,
        Ok(Err(e)) => {
            return Response::JobFailed {
                kind: ErrorKind::Io,
                message: e.to_string(),
            };
        }
        Err(_) => {
            return Response::JobFailed {
                kind: ErrorKind::Io,
                message: "listing the drives failed".into(),
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
        let report = crate::write(&image, &mut devices, options, &forward, cancel);
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

fn run_verify<W: Write + Send>(
    job: &VerifyJob,
    image: File,
    policy: Policy,
    out: &Output<W>,
    cancel: &CancelToken,
) -> Response {
    let started = Instant::now();
    let image = match open_image(image, &job.image) {
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
    match crate::compare(&image, &mut target, &forward, cancel) {
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

    use std::io::PipeReader;
    use std::path::PathBuf;
    use std::thread::JoinHandle;

    use graver_testkit::Rng;

    use crate::protocol::read_frame;
    use crate::transport::{ChannelReceiver, ChannelSender, Deliver, channel};

    use super::*;

    const MIB: usize = 1 << 20;
    /// What the target holds before a job: anything the job wrote, zeros included, shows.
    const OLD: u8 = 0x5a;
    /// The longest a serve may take to end before the test calls it a hang.
    const HANG_GUARD: Duration = Duration::from_secs(30);

    struct Session {
        to_worker: ChannelSender,
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
        let (to_worker, req_rx) = channel();
        let (from_worker, served) = serving(req_rx, policy, limits);
        Session {
            to_worker,
            from_worker,
            served,
        }
    }

    /// A worker reading `req_rx`, whose sender the test already let go.
    struct Reading {
        from_worker: PipeReader,
        served: JoinHandle<Result<(), ServeError>>,
    }

    fn start_reading(req_rx: ChannelReceiver, limits: Limits) -> Reading {
        let policy = Policy {
            allow_files: true,
            unsafe_mode: false,
        };
        let (from_worker, served) = serving(req_rx, policy, limits);
        Reading { from_worker, served }
    }

    fn serving<R: Receive + 'static>(
        req_rx: R,
        policy: Policy,
        limits: Limits,
    ) -> (PipeReader, JoinHandle<Result<(), ServeError>>) {
        let (from_worker, resp_tx) = io::pipe().unwrap();
        let served = std::thread::spawn(move || serve_with(req_rx, resp_tx, "t0ken", policy, limits));
        (from_worker, served)
    }

    fn frame(request: &Request) -> Vec<u8> {
        protocol::frame(request).unwrap()
    }

    /// Sends `bytes` with the file at `image` beside their first byte.
    fn deliver_with(to_worker: &mut impl Deliver, bytes: &[u8], image: &Path) {
        to_worker.deliver(bytes, Some(&File::open(image).unwrap())).unwrap();
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
            session.to_worker.deliver(&hello(), None).unwrap();
            // Half the runs send both frames in one write, half one after the other, as the client does.
            if run % 2 == 0 {
                deliver_with(&mut session.to_worker, &[write.as_slice(), &cancel].concat(), &image);
            } else {
                deliver_with(&mut session.to_worker, &write, &image);
                session.to_worker.deliver(&cancel, None).unwrap();
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
        let first = dir.path().join("first.img");
        for run in 0..100 {
            // Everything is sent before the worker starts reading. The first job is not
            // waiting: on a busy machine it may start before the worker has read as far as
            // the hang-up (and is then cancelled), so it writes a target of its own. The
            // two behind it wait, and must never start.
            let (mut to_worker, req_rx) = channel();
            to_worker.deliver(&hello(), None).unwrap();
            deliver_with(&mut to_worker, &frame(&write_request(&image, &first)), &image);
            for _ in 0..2 {
                deliver_with(&mut to_worker, &frame(&write_request(&image, &target)), &image);
            }
            drop(to_worker);
            let mut session = start_reading(req_rx, Limits::default());
            let mut seen = Vec::new();
            while let Some(response) = read_frame::<Response>(&mut session.from_worker).unwrap() {
                seen.push(response);
            }
            let waiting_ran = |r: &Response| match r {
                Response::Progress(p) => p.devices.iter().any(|d| Path::new(&d.name) == target),
                Response::Finished(result) => result.targets.iter().any(|t| t.target == target),
                _ => false,
            };
            assert!(
                !seen.iter().any(waiting_ran),
                "run {run}: a waiting job ran after the front end hung up: {seen:?}"
            );
            assert_eq!(
                seen.iter().filter(|r| matches!(r, Response::JobFailed { .. })).count(),
                3 - seen.iter().filter(|r| matches!(r, Response::Finished(_))).count(),
                "run {run}: every job ends: {seen:?}"
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
        session.to_worker.deliver(&hello(), None).unwrap();
        deliver_with(&mut session.to_worker, &frame(&write_request(&image, &target)), &image);
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
            session.to_worker.deliver(&hello(), None).unwrap();
            deliver_with(&mut session.to_worker, &frame(&request), &image);
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
        for (hello_part, job_part) in [(&hello()[..3], None), (&hello()[..], Some(&write[..20]))] {
            let expect_ready = job_part.is_some();
            let mut session = start(limits);
            session.to_worker.deliver(hello_part, None).unwrap();
            if let Some(job_part) = job_part {
                deliver_with(&mut session.to_worker, job_part, &image);
            }
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
        session.to_worker.deliver(&hello(), None).unwrap();
        let job = frame(&write_request(&image, &target));
        for _ in 0..10 {
            // The worker may end the connection before the last jobs are sent: then sending fails.
            if session
                .to_worker
                .deliver(&job, Some(&File::open(&image).unwrap()))
                .is_err()
            {
                break;
            }
        }
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

    /// The responses until the worker ends the session.
    fn all_responses(from_worker: &mut PipeReader) -> Vec<Response> {
        let mut seen = Vec::new();
        while let Ok(Some(response)) = read_frame::<Response>(from_worker) {
            seen.push(response);
        }
        seen
    }

    #[test]
    fn a_job_without_its_image_file_or_with_two_ends_the_session_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let write = frame(&write_request(&image, &target));
        for files in [0, 2] {
            let mut session = start(Limits::default());
            session.to_worker.deliver(&hello(), None).unwrap();
            match files {
                0 => session.to_worker.deliver(&write, None).unwrap(),
                // Two files on one frame: one with its first byte, one with a later byte.
                _ => {
                    deliver_with(&mut session.to_worker, &write[..10], &image);
                    deliver_with(&mut session.to_worker, &write[10..], &image);
                }
            }
            let outcome = join(session.served);
            assert!(
                matches!(outcome, Err(ServeError::Protocol(ref m)) if m.contains(&format!("came with {files}"))),
                "{files} files: {outcome:?}"
            );
            let seen = all_responses(&mut session.from_worker);
            assert!(matches!(seen.last(), Some(Response::Fatal { .. })), "{seen:?}");
            assert!(untouched(&target), "{files} files: the job ran");
        }
    }

    #[test]
    fn the_image_is_read_from_the_file_sent_not_from_the_path_named() {
        // The job names one file and carries another: the worker writes what it was
        // given, so it never opens a path on the front end's word.
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let named = dir.path().join("named.img");
        std::fs::write(&named, vec![0x11; MIB]).unwrap();
        let mut session = start(Limits::default());
        session.to_worker.deliver(&hello(), None).unwrap();
        deliver_with(&mut session.to_worker, &frame(&write_request(&named, &target)), &image);
        let seen = until_job_end(&mut session.from_worker);
        assert!(matches!(seen.last(), Some(Response::Finished(_))), "{seen:?}");
        assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&image).unwrap());
        drop(session.to_worker);
        join(session.served).unwrap();
    }

    /// A stream that carries handle values, as a Windows pipe does: value 7 names the
    /// image, any other value is refused, as `DuplicateHandle` refuses a handle the
    /// front end does not have.
    struct HandleValues {
        inner: ChannelReceiver,
        image: PathBuf,
    }

    impl Receive for HandleValues {
        fn receive(&mut self, buf: &mut [u8], files: &mut Vec<(usize, File)>) -> io::Result<usize> {
            self.inner.receive(buf, files)
        }

        fn adopter(&self) -> Option<Adopter> {
            let image = self.image.clone();
            Some(Box::new(move |value| match value {
                7 => File::open(&image),
                _ => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "no such handle in the front end",
                )),
            }))
        }
    }

    fn marker(value: u64) -> Vec<u8> {
        [ATTACH.to_le_bytes().as_slice(), &value.to_le_bytes()].concat()
    }

    #[test]
    fn a_handle_value_before_a_job_brings_its_image_and_one_that_cannot_be_duplicated_ends_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let (image, target) = files(dir.path());
        let write = frame(&write_request(&image, &target));
        for (value, works) in [(8, false), (7, true)] {
            let (mut to_worker, inner) = channel();
            // The marker arrives cut in two, as a pipe may deliver it.
            let bytes = [hello(), marker(value), write.clone()].concat();
            let cut = hello().len() + 5;
            to_worker.deliver(&bytes[..cut], None).unwrap();
            to_worker.deliver(&bytes[cut..], None).unwrap();
            let input = HandleValues {
                inner,
                image: image.clone(),
            };
            let policy = Policy {
                allow_files: true,
                unsafe_mode: false,
            };
            let (mut from_worker, served) = serving(input, policy, Limits::default());
            if works {
                let seen = until_job_end(&mut from_worker);
                assert!(matches!(seen.last(), Some(Response::Finished(_))), "{seen:?}");
                assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&image).unwrap());
                drop(to_worker);
                join(served).unwrap();
            } else {
                let outcome = join(served);
                assert!(
                    matches!(outcome, Err(ServeError::Protocol(ref m)) if m.contains("no such handle")),
                    "{outcome:?}"
                );
                assert!(matches!(
                    all_responses(&mut from_worker).last(),
                    Some(Response::Fatal { .. })
                ));
                assert!(untouched(&target));
            }
        }
        // Where the stream carries no handle values, the marker is an oversized frame.
        let mut session = start(Limits::default());
        session
            .to_worker
            .deliver(&[hello(), marker(7), write].concat(), None)
            .unwrap();
        let outcome = join(session.served);
        assert!(
            matches!(outcome, Err(ServeError::Protocol(ref m)) if m.contains("larger than the protocol allows")),
            "{outcome:?}"
        );
    }

    #[cfg(unix)]
    mod socket {
        use std::os::unix::net::UnixStream;

        use super::*;

        fn start_on_socket() -> (UnixStream, PipeReader, JoinHandle<Result<(), ServeError>>) {
            let (front, worker) = UnixStream::pair().unwrap();
            let (from_worker, resp_tx) = io::pipe().unwrap();
            let policy = Policy {
                allow_files: true,
                unsafe_mode: false,
            };
            let served = std::thread::spawn(move || serve(worker, resp_tx, "t0ken", policy));
            (front, from_worker, served)
        }

        #[test]
        fn a_descriptor_that_came_with_the_first_byte_of_a_frame_cut_in_pieces_is_that_frames() {
            let dir = tempfile::tempdir().unwrap();
            let (image, target) = files(dir.path());
            let write = frame(&write_request(&image, &target));
            let (mut front, mut from_worker, served) = start_on_socket();
            front.deliver(&hello(), None).unwrap();
            // The descriptor rides on the frame's first byte (after a whole hello the worker
            // may read in the same go); the rest of the frame comes in later writes.
            deliver_with(&mut front, &write[..3], &image);
            front.write_all(&write[3..40]).unwrap();
            front.write_all(&write[40..]).unwrap();
            let seen = until_job_end(&mut from_worker);
            assert!(matches!(seen.last(), Some(Response::Finished(_))), "{seen:?}");
            assert_eq!(std::fs::read(&target).unwrap(), std::fs::read(&image).unwrap());
            drop(front);
            join(served).unwrap();
        }

        #[test]
        fn over_a_socket_a_job_needs_exactly_one_descriptor() {
            let dir = tempfile::tempdir().unwrap();
            let (image, target) = files(dir.path());
            let write = frame(&write_request(&image, &target));
            for files in [0, 2] {
                let (mut front, mut from_worker, served) = start_on_socket();
                front.deliver(&hello(), None).unwrap();
                if files == 0 {
                    front.deliver(&write, None).unwrap();
                } else {
                    deliver_with(&mut front, &write[..1], &image);
                    deliver_with(&mut front, &write[1..], &image);
                }
                let outcome = join(served);
                assert!(
                    matches!(outcome, Err(ServeError::Protocol(ref m)) if m.contains(&format!("came with {files}"))),
                    "{files}: {outcome:?}"
                );
                assert!(matches!(
                    all_responses(&mut from_worker).last(),
                    Some(Response::Fatal { .. })
                ));
                assert!(untouched(&target));
            }
        }
    }
}
