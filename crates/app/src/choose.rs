//! Turning `--to PATH` into a target the user really means, under the safety policy.

use std::io::{BufRead as _, Write as _};

use graver_drives::{
    Ask, Consent, Drive, Hazard, ImageFacts, PathKind, Refusal, Resolved, Severity, Verdict, classify, judge,
    path_kind, resolve,
};
use graver_image::Image;
use graver_writer::protocol::JobTarget;

use crate::cli::{VerifyArgs, WriteArgs};
use crate::exit::Exit;

/// The targets the user confirmed, for the writer job.
pub struct Chosen {
    /// Drives (by their listed path and identity, with what the user confirmed) and
    /// files, in the order given.
    pub targets: Vec<JobTarget>,
}

/// The warnings the policy asks the user to confirm for `drive`: what the job carries
/// once the user confirmed them (`--yes`, the question, or the window's dialog).
pub fn warnings_of(drive: &Drive, facts: Option<&ImageFacts>) -> Vec<Hazard> {
    classify(drive, facts)
        .iter()
        .filter(|f| f.hazard.severity() == Severity::Confirm)
        .map(|f| f.hazard)
        .collect()
}

/// Why a target was not chosen: the exit code and the sentence to print.
pub type NotChosen = (Exit, String);

fn ask(question: &str) -> String {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return String::new();
    }
    answer.trim().to_owned()
}

fn yes(answer: &str) -> bool {
    matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes")
}

/// The drives [`choose`] needs: the system's list when any of `args.to` is a device
/// path, none otherwise. Kept apart from [`choose`] so that a caller can list them
/// while it opens the image.
///
/// # Errors
/// When the drives cannot be listed.
pub fn drives_for(args: &WriteArgs) -> Result<Vec<Drive>, graver_drives::DriveError> {
    if args.to.iter().any(|p| path_kind(p) == PathKind::Device) {
        graver_drives::list()
    } else {
        Ok(Vec::new())
    }
}

/// Finds the drives `args.to` names among `drives` (see [`drives_for`]) and applies
/// the safety policy, asking what must be asked. Paths that are no device are file
/// targets. Nothing is opened: the writer re-checks everything itself.
pub fn choose(args: &WriteArgs, image: &Image, drives: &[Drive]) -> Result<Chosen, NotChosen> {
    let mut chosen = Chosen { targets: Vec::new() };
    let facts = ImageFacts::of(image);
    let mut picked: Vec<(&Drive, Vec<String>)> = Vec::new();
    for path in &args.to {
        let drive = match resolve(drives, path) {
            Resolved::File => {
                if !args.overwrite && path.exists() {
                    let e = graver_drives::DriveError::FileExists(path.clone());
                    return Err((Exit::from(&e), e.to_string()));
                }
                chosen.targets.push(JobTarget::file(path.clone()));
                continue;
            }
            Resolved::Drive(drive) => drive,
            Resolved::Partition(drive) => {
                return Err((
                    Exit::Refused,
                    format!(
                        "{}: this is a partition, not a whole drive; images are written to the whole drive ({})",
                        path.display(),
                        drive.path.display()
                    ),
                ));
            }
            Resolved::Unlisted { .. } => {
                return Err((
                    Exit::Refused,
                    format!(
                        "{}: not a whole drive Graver can write to (see `graver list --all`)",
                        path.display()
                    ),
                ));
            }
        };
        let mut consent = Consent {
            unsafe_mode: args.unsafe_mode,
            typed_name: args.confirm_name.as_deref(),
            warnings_confirmed: args.yes,
        };
        let mut verdict = judge(drive, Some(&facts), consent);
        let typed;
        if let Verdict::Ask(asks) = &verdict
            && let Some(Ask::TypeName(system)) = asks.first()
        {
            eprintln!("WARNING: {}", system.message);
            typed = Some(ask(&format!(
                "Type the drive's name ({}) to erase it anyway: ",
                drive.name
            )));
            consent.typed_name = typed.as_deref();
            verdict = judge(drive, Some(&facts), consent);
        }
        let warnings = match verdict {
            Verdict::Refused(refusal) => return Err((Exit::Refused, refused(drive, &refusal))),
            Verdict::Ask(asks) => asks
                .into_iter()
                .filter_map(|a| match a {
                    Ask::Confirm(warning) => Some(warning.message),
                    Ask::TypeName(_) => None,
                })
                .collect(),
            Verdict::Allowed => Vec::new(),
        };
        let mut target = JobTarget::drive(drive, warnings_of(drive, Some(&facts)));
        if drive.system.is_some() {
            target.typed_name = consent.typed_name.map(str::to_owned);
        }
        chosen.targets.push(target);
        picked.push((drive, warnings));
    }
    if !picked.is_empty() && !args.yes {
        confirm(image, &picked)?;
    }
    Ok(chosen)
}

/// The target of `graver verify`: a file, or a listed drive with its identity and the
/// consent the policy asks for reading it (`--yes`, and `--unsafe --confirm-name` for a
/// system drive), which the writer checks again.
pub fn verify_target(args: &VerifyArgs) -> Result<JobTarget, NotChosen> {
    let path = &args.against;
    if path_kind(path) == PathKind::File {
        return Ok(JobTarget::file(path.clone()));
    }
    let drives = graver_drives::list().map_err(|e| (Exit::from(&e), e.to_string()))?;
    let Resolved::Drive(drive) = resolve(&drives, path) else {
        return Err((
            Exit::Refused,
            format!(
                "{}: not a whole drive Graver can read (see `graver list --all`)",
                path.display()
            ),
        ));
    };
    let consent = Consent {
        unsafe_mode: args.unsafe_mode,
        typed_name: args.confirm_name.as_deref(),
        warnings_confirmed: args.yes,
    };
    match judge(drive, None, consent) {
        Verdict::Allowed => {}
        Verdict::Refused(refusal) => return Err((Exit::Refused, refused(drive, &refusal))),
        Verdict::Ask(asks) => {
            let said: Vec<String> = asks
                .into_iter()
                .map(|a| match a {
                    Ask::Confirm(warning) => format!("{} Pass --yes to read it anyway.", warning.message),
                    Ask::TypeName(system) => {
                        format!("{} Give its name with --confirm-name to read it.", system.message)
                    }
                })
                .collect();
            return Err((Exit::Refused, format!("{}: {}", drive.path.display(), said.join(" "))));
        }
    }
    let mut target = JobTarget::drive(drive, warnings_of(drive, None));
    if drive.system.is_some() {
        target.typed_name.clone_from(&args.confirm_name);
    }
    Ok(target)
}

/// The CLI's wording of a refusal: what to pass to go on, where anything can.
fn refused(drive: &Drive, refusal: &Refusal) -> String {
    match refusal {
        Refusal::Forbidden(found) => format!("{}: {}", drive.path.display(), graver_drives::sentences(found)),
        Refusal::SystemDrive(why) => format!(
            "{}: {} Refused; if you really mean it, pass --unsafe and confirm the drive's name.",
            drive.path.display(),
            why.message
        ),
        Refusal::NameMismatch { expected } => {
            format!("the name typed does not match {expected}; nothing was written")
        }
    }
}

fn confirm(image: &Image, picked: &[(&Drive, Vec<String>)]) -> Result<(), NotChosen> {
    eprintln!(
        "About to write {} ({}) to:",
        image.path().display(),
        graver_image::human::binary(image.size().bytes())
    );
    for (drive, warnings) in picked {
        eprintln!(
            "  {}: {}, {}, {}",
            drive.path.display(),
            drive.display_name(),
            graver_image::human::decimal(drive.size),
            drive.bus.label(),
        );
        for warning in warnings {
            eprintln!("    warning: {warning}");
        }
    }
    eprintln!(
        "Everything on {} will be erased.",
        if picked.len() == 1 {
            "this drive"
        } else {
            "these drives"
        }
    );
    if yes(&ask("Continue? [y/N] ")) {
        Ok(())
    } else {
        Err((Exit::Refused, "not confirmed; nothing was written".into()))
    }
}
