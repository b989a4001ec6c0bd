//! `graver write` and `graver verify`: both go through the writer client, so the
//! CLI, the GUI and the tests share one path to the devices.

use std::path::Path;
use std::time::Duration;

use graver_client::{Client, Command, Event, Launch, LaunchError, WorkerLost};
use graver_image::{Image, PublishedChecksum, find_checksum};
use graver_writer::CancelToken;
use graver_writer::protocol::{Eject, JobResult, Outcome, VerifyJob, WriteJob};
use serde::Serialize;

use super::{ChecksumLine, checksum_line, describe_image, fail, open_image, verdict_sentence};
use crate::choose::{choose, drives_for};
use crate::cli::{VerifyArgs, WriteArgs};
use crate::exit::Exit;
use crate::output::{Reporter, cancel_on_interrupt, json_line};
use crate::wording;

/// Runs one job on a fresh client, showing progress, until its final event.
fn run_job(command: Command, json: bool) -> Event {
    let cancel = CancelToken::new();
    cancel_on_interrupt(&cancel);
    let client = Client::spawn(Launch::Auto);
    let reporter = Reporter::new(json);
    if client.commands.send(command).is_err() {
        return Event::LaunchFailed(LaunchError::ClientGone);
    }
    let mut cancel_sent = false;
    let last = loop {
        match client.events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Progress(progress)) => reporter.show(&progress),
            Ok(Event::Started { .. }) => {}
            Ok(last) => break last,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                break Event::WorkerLost(WorkerLost::ClientStopped);
            }
        }
        if cancel.is_cancelled() && !cancel_sent {
            cancel_sent = client.commands.send(Command::Cancel).is_ok();
        }
    };
    reporter.finish();
    match last {
        // Ctrl-C in a terminal reaches pkexec too, which then ends before the worker
        // started: the user cancelled, and nothing was sent to write.
        Event::LaunchFailed(_) if cancel.is_cancelled() => Event::JobFailed {
            kind: graver_writer::ErrorKind::Cancelled,
            message: "cancelled before the writer started: nothing was written".into(),
        },
        last => last,
    }
}

/// Exit code and message for the events that end a job without a result.
fn ended_without_result(event: &Event) -> Option<(Exit, String)> {
    match event {
        Event::JobFailed { kind, message } => Some((Exit::from(*kind), message.clone())),
        Event::LaunchFailed(error) => Some((Exit::Refused, error.to_string())),
        Event::WorkerLost(lost) => Some((
            Exit::Io,
            format!(
                "{}; the drive was left without its first MiB, so it will not boot a half-written image",
                wording::worker_lost(lost)
            ),
        )),
        Event::Finished(_) | Event::Progress(_) | Event::Started { .. } => None,
    }
}

/// `graver write`.
pub fn write(args: &WriteArgs) -> Exit {
    // The drives are listed while the image is opened and probed: each takes a few
    // milliseconds, and neither needs the other.
    let (image, drives) = std::thread::scope(|scope| {
        let listing = scope.spawn(|| drives_for(args));
        let image = open_image(&args.image, args.json).and_then(|image| probed(image, args.json));
        (image, listing.join())
    });
    let image = match image {
        Ok(image) => image,
        Err(exit) => return exit,
    };
    let drives = match drives {
        Ok(Ok(drives)) => drives,
        Ok(Err(e)) => return fail(args.json, Exit::from(&e), &e.to_string()),
        Err(_) => return fail(args.json, Exit::Io, "listing the drives failed"),
    };
    let chosen = match choose(args, &image, &drives) {
        Ok(chosen) => chosen,
        Err((exit, message)) => return fail(args.json, exit, &message),
    };
    let published = find_checksum(image.path());
    if !args.json {
        let targets: Vec<String> = chosen.targets.iter().map(|t| t.path.display().to_string()).collect();
        eprintln!("Writing {} to {}", describe_image(&image), targets.join(", "));
    }
    let job = WriteJob {
        image: image.path().to_path_buf(),
        targets: chosen.targets,
        verify: !args.no_verify,
        eject: args.eject,
        overwrite: args.overwrite,
        sha256: args.sha256 || published.is_some(),
    };
    match run_job(Command::Write(job), args.json) {
        Event::Finished(result) => report_write(&image, &result, published.as_ref(), args.json),
        other => match ended_without_result(&other) {
            Some((exit, message)) => fail(args.json, exit, &message),
            None => fail(args.json, Exit::Io, "the writer ended without a result"),
        },
    }
}

/// The image, unless it decodes to nothing: an empty image must not get as far as a
/// drive, and a strange one is worth a word first.
fn probed(image: Image, json: bool) -> Result<Image, Exit> {
    match graver_image::probe(&image) {
        Ok(probe) => {
            if let Some(refusal) = probe.refusal() {
                return Err(fail(
                    json,
                    Exit::BadInput,
                    &format!("{}: {refusal}", image.path().display()),
                ));
            }
            if let Some(warning) = probe.warning() {
                warn(json, &format!("{}: {warning}", image.path().display()));
            }
            Ok(image)
        }
        Err(e) => Err(fail(json, Exit::from(&e), &e.to_string())),
    }
}

#[derive(Serialize)]
struct WarningLine<'a> {
    r#type: &'static str,
    message: &'a str,
}

/// Tells the user something worth knowing that does not stop the job.
fn warn(json: bool, message: &str) {
    if json {
        json_line(&WarningLine {
            r#type: "warning",
            message,
        });
    } else {
        eprintln!("graver: warning: {message}");
    }
}

#[derive(Serialize)]
struct WriteLine<'a> {
    r#type: &'static str,
    ok: bool,
    exit_code: u8,
    image: String,
    format: graver_image::Format,
    image_len: u64,
    sha256: Option<String>,
    checksum: Option<ChecksumLine>,
    elapsed_secs: f64,
    targets: Vec<TargetLine<'a>>,
}

#[derive(Serialize)]
struct TargetLine<'a> {
    name: String,
    ok: bool,
    verified: bool,
    #[serde(flatten)]
    outcome: &'a Outcome,
    /// A refusal in words, beside its data.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ejected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'a str>,
}

fn exit_of(result: &JobResult) -> Exit {
    result.worst().map_or(Exit::Success, Exit::from)
}

fn report_write(image: &Image, result: &JobResult, published: Option<&PublishedChecksum>, json: bool) -> Exit {
    let exit = exit_of(result);
    let sha = result.sha256;
    // Only the decompressed image's digest is known here; a sum of the compressed file needs `graver hash`.
    // A raw image's digest is also its file's.
    let file_sha = sha.as_ref().filter(|_| image.format() == graver_image::Format::Raw);
    let verdict = published.and_then(|p| p.verdict(file_sha, sha.as_ref()));
    if json {
        json_line(&WriteLine {
            r#type: "result",
            ok: exit == Exit::Success,
            exit_code: exit as u8,
            image: image.path().display().to_string(),
            format: image.format(),
            image_len: result.image_len,
            sha256: result.sha256.as_ref().map(graver_image::sha256_hex),
            checksum: published.map(|p| checksum_line(p, verdict)),
            elapsed_secs: result.elapsed_secs,
            targets: result
                .targets
                .iter()
                .map(|t| TargetLine {
                    name: t.target.display().to_string(),
                    ok: t.outcome.is_success(),
                    verified: t.outcome == Outcome::Verified,
                    outcome: &t.outcome,
                    reason: reason(&t.outcome),
                    ejected: t.ejected.as_ref().map(|e| eject_sentence(&t.target, e)),
                    warning: t.warning.as_deref(),
                })
                .collect(),
        });
        return exit;
    }
    let secs = result.elapsed_secs.max(0.001);
    for target in &result.targets {
        let name = target.target.display();
        match &target.outcome {
            Outcome::Verified | Outcome::Written => eprintln!(
                "{name}: {} {} in {secs:.1} s ({}/s)",
                if target.outcome == Outcome::Verified {
                    "wrote and verified"
                } else {
                    "wrote (not verified)"
                },
                graver_image::human::binary(result.image_len),
                graver_image::human::binary((result.image_len as f64 / secs) as u64),
            ),
            Outcome::Refused { refusal } => eprintln!("graver: {name}: refused: {}", wording::refusal(refusal)),
            Outcome::Failed { message, .. } => eprintln!("graver: {message}"),
        }
        if let Some(warning) = &target.warning {
            warn(false, warning);
        }
        if let Some(eject) = &target.ejected {
            eprintln!("{name}: {}", eject_sentence(&target.target, eject));
        }
    }
    if let Some(sha) = &result.sha256 {
        eprintln!("SHA-256 of the image: {}", graver_image::sha256_hex(sha));
    }
    if let Some(p) = published {
        eprintln!("Checksum: {}", verdict_sentence(p, verdict));
    }
    exit
}

/// What ejecting did, and what to do when the drive was not powered off.
fn eject_sentence(target: &Path, eject: &Eject) -> String {
    // The drive's own name ("sdb"), as the OS's eject tools call it.
    let drive = target
        .file_name()
        .map_or_else(|| target.display().to_string(), |n| n.to_string_lossy().into_owned());
    match eject {
        Eject::Ejected => format!("{drive} was ejected: safe to remove"),
        Eject::NotSupported { reason } => {
            format!("not powered off: {reason}; wait until its light stops blinking, then unplug it")
        }
        Eject::Failed { message } => {
            format!("ejecting failed: {message}; eject it from your file manager before unplugging it")
        }
    }
}

#[derive(Serialize)]
struct VerifyLine<'a> {
    r#type: &'static str,
    ok: bool,
    exit_code: u8,
    image_len: u64,
    #[serde(flatten)]
    outcome: &'a Outcome,
    /// A refusal in words, beside its data.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// A refused target's reason in words, for JSON lines.
fn reason(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Refused { refusal } => Some(wording::refusal(refusal)),
        Outcome::Verified | Outcome::Written | Outcome::Failed { .. } => None,
    }
}

/// `graver verify`.
pub fn verify(args: &VerifyArgs) -> Exit {
    let image = match open_image(&args.image, args.json) {
        Ok(image) => image,
        Err(exit) => return exit,
    };
    let target = match crate::choose::verify_target(args) {
        Ok(target) => target,
        Err((exit, message)) => return fail(args.json, exit, &message),
    };
    let job = VerifyJob {
        image: image.path().to_path_buf(),
        target,
    };
    let result = match run_job(Command::Verify(job), args.json) {
        Event::Finished(result) => result,
        other => {
            let (exit, message) =
                ended_without_result(&other).unwrap_or((Exit::Io, "the writer ended without a result".into()));
            return fail(args.json, exit, &message);
        }
    };
    let exit = exit_of(&result);
    let Some(target) = result.targets.first() else {
        return fail(args.json, Exit::Io, "the writer returned no result for the drive");
    };
    if args.json {
        json_line(&VerifyLine {
            r#type: "result",
            ok: exit == Exit::Success,
            exit_code: exit as u8,
            image_len: result.image_len,
            outcome: &target.outcome,
            reason: reason(&target.outcome),
        });
        return exit;
    }
    match &target.outcome {
        Outcome::Verified => eprintln!(
            "{} holds the image: all {} match",
            args.against.display(),
            graver_image::human::binary(result.image_len)
        ),
        Outcome::Written => {}
        Outcome::Refused { refusal } => eprintln!(
            "graver: {}: refused: {}",
            args.against.display(),
            wording::refusal(refusal)
        ),
        Outcome::Failed { message, .. } => eprintln!("graver: {message}"),
    }
    exit
}
