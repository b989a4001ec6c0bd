//! The privileged side: serves one front end over a byte stream, runs one job at
//! a time with the engine, and trusts nothing the front end says about drives.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use graver_drives::{
    Access, Ask, Consent, Drive, DriveError, ImageFacts, PathKind, Refusal, Resolved, Severity, Target, Verdict,
};
use graver_image::Image;

use crate::os::as_invoking_user;
use crate::protocol::{
    Eject, JobResult, JobTarget, Outcome, PROTOCOL_VERSION, Request, Response, TargetResult, VerifyJob, WriteJob,
    read_frame, write_frame,
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

/// Serves one front end until its stream closes: the handshake, then jobs.
///
/// # Errors
/// [`ServeError::Protocol`] when the first frame is not a valid hello with the
/// right token and version, or any later frame is garbage; [`ServeError::Io`]
/// when the stream fails.
pub fn serve<R, W>(mut input: R, output: W, token: &str, policy: Policy) -> Result<(), ServeError>
where
    R: Read + Send,
    W: Write + Send,
{
    let out = Arc::new(Mutex::new(output));
    match read_frame::<Request>(&mut input) {
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

    let cancel = Arc::new(Mutex::new(CancelToken::new()));
    let (jobs_tx, jobs) = crossbeam_channel::unbounded::<Request>();
    std::thread::scope(|scope| {
        let reader_cancel = Arc::clone(&cancel);
        let reader_out = Arc::clone(&out);
        let reader = scope.spawn(move || -> Result<(), ServeError> {
            let cancel_running = || {
                if let Ok(token) = reader_cancel.lock() {
                    token.cancel();
                }
            };
            loop {
                match read_frame::<Request>(&mut input) {
                    Ok(Some(Request::Cancel)) => cancel_running(),
                    Ok(Some(Request::Hello { .. })) => {
                        cancel_running();
                        return Err(fatal(&reader_out, "a second hello".into()));
                    }
                    Ok(Some(job)) => {
                        let _ = jobs_tx.send(job);
                    }
                    // The front end went away: stop whatever runs, leave the first MiB unwritten.
                    Ok(None) => {
                        cancel_running();
                        return Ok(());
                    }
                    Err(e) => {
                        cancel_running();
                        return Err(fatal(&reader_out, format!("{e}")));
                    }
                }
            }
        });
        for job in &jobs {
            let token = CancelToken::new();
            if let Ok(mut current) = cancel.lock() {
                *current = token.clone();
            }
            let response = match job {
                Request::Write(job) => run_write(&job, policy, &out, &token),
                Request::Verify(job) => run_verify(&job, policy, &out, &token),
                Request::Hello { .. } | Request::Cancel => continue,
            };
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
) -> Result<&'a Drive, String> {
    let shown = target.path.display();
    let Some(identity) = &target.drive else {
        return Err(match graver_drives::resolve(drives, &target.path) {
            Resolved::Unlisted { present: false } => format!("{shown}: no such drive; was it unplugged?"),
            Resolved::Drive(_) => format!("{shown}: the job does not say which drive the user chose; nothing was done"),
            Resolved::Partition(_) | Resolved::Unlisted { present: true } | Resolved::File => format!(
                "{shown} is not a whole drive in the list of drives (a partition, or a device Graver does not write to)"
            ),
        });
    };
    let drive = graver_drives::chosen(drives, &target.path, identity).map_err(|e| match e {
        DriveError::NotFound(_) => format!("{shown}: no such drive; was it unplugged?"),
        other => other.to_string(),
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
        Verdict::Refused(Refusal::Forbidden(why)) => Err(why),
        Verdict::Refused(Refusal::SystemDrive(why)) => Err(format!(
            "{why} Only a writer started in unsafe mode (`--unsafe`, with its own administrator prompt) touches it, and only with the drive's name typed."
        )),
        Verdict::Refused(Refusal::NameMismatch { expected }) => Err(format!(
            "{shown}: the name typed does not match {expected}; nothing was done"
        )),
        Verdict::Ask(asks) => Err(asks
            .iter()
            .map(|ask| match ask {
                Ask::TypeName(why) => format!("{why} Its name was not typed to confirm; nothing was done."),
                Ask::Confirm(warning) => {
                    format!("{warning} The user did not confirm this warning for this drive; nothing was done.")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

/// Re-checks one target against a fresh drive list, as if the front end had said nothing.
fn check_target(
    job_target: &JobTarget,
    drives: &[Drive],
    facts: &ImageFacts,
    job: &WriteJob,
    policy: Policy,
) -> Result<Checked, String> {
    let path = &job_target.path;
    if graver_drives::resolve(drives, path) == Resolved::File && job_target.drive.is_none() {
        if !policy.allow_files {
            return Err(format!(
                "{} is not a whole drive: the privileged writer writes only to drives it finds itself",
                path.display()
            ));
        }
        let access = Access::Write {
            overwrite_file: job.overwrite,
        };
        let target = graver_drives::open_target(path, access).map_err(|e| e.to_string())?;
        return Ok(Checked { target, drive: None });
    }
    let drive = consented(job_target, drives, Some(facts), policy)?;
    let mut target = graver_drives::prepare(drive).map_err(|e| e.to_string())?;
    // The node may have gone to another medium between listing and opening.
    target.check_identity(&drive.identity).map_err(|e| e.to_string())?;
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
    let facts = ImageFacts::of(&image);
    let mut checked: Vec<Result<Checked, String>> = job
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
            Err(reason) => (Outcome::Refused { reason }, None, None),
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
fn open_for_verify(job_target: &JobTarget, policy: Policy) -> Result<Target, String> {
    let path = &job_target.path;
    let drives = match graver_drives::path_kind(path) {
        PathKind::Device => graver_drives::list().map_err(|e| e.to_string())?,
        PathKind::File => Vec::new(),
    };
    if graver_drives::resolve(&drives, path) == Resolved::File && job_target.drive.is_none() {
        if !policy.allow_files {
            return Err(format!("{} is not a whole drive", path.display()));
        }
        return graver_drives::open_target(path, Access::Read).map_err(|e| e.to_string());
    }
    let drive = consented(job_target, &drives, None, policy)?;
    let target = graver_drives::open_target(&drive.path, Access::Read).map_err(|e| e.to_string())?;
    target.check_identity(&drive.identity).map_err(|e| e.to_string())?;
    Ok(target)
}

fn run_verify<W: Write + Send>(job: &VerifyJob, policy: Policy, out: &Output<W>, cancel: &CancelToken) -> Response {
    let started = Instant::now();
    let image = match open_image(&job.image) {
        Ok(image) => image,
        Err(response) => return response,
    };
    let target = match open_for_verify(&job.target, policy) {
        Ok(target) => target,
        Err(message) => {
            return Response::JobFailed {
                kind: ErrorKind::Refused,
                message,
            };
        }
    };
    let mut target = target;
    let forward = |p: &crate::Progress| {
        if send(out, &Response::Progress(p.clone())).is_err() {
            cancel.cancel();
        }
    };
    let outcome = match as_invoking_user(|| crate::compare(&image, &mut target, &forward, cancel)) {
        Ok(report) => {
            return Response::Finished(JobResult {
                image_len: report.image_len,
                sha256: None,
                elapsed_secs: started.elapsed().as_secs_f64(),
                targets: vec![TargetResult {
                    target: job.target.path.clone(),
                    outcome: Outcome::Verified,
                    ejected: None,
                    warning: None,
                }],
            });
        }
        Err(e @ (WriteError::BadImage(_) | WriteError::SourceIo(_) | WriteError::Cancelled)) => return job_failed(&e),
        Err(e) => Outcome::Failed {
            kind: e.kind(),
            message: e.to_string(),
        },
    };
    Response::Finished(JobResult {
        image_len: 0,
        sha256: None,
        elapsed_secs: started.elapsed().as_secs_f64(),
        targets: vec![TargetResult {
            target: job.target.path.clone(),
            outcome,
            ejected: None,
            warning: None,
        }],
    })
}
