//! Turning `--to PATH` into a target the user really means, under the safety policy.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use graver_drives::{Ask, Consent, Drive, ImageFacts, PathKind, Refusal, Resolved, Verdict, judge, path_kind, resolve};
use graver_image::Image;

use crate::cli::WriteArgs;
use crate::exit::Exit;

/// The targets the user confirmed, for the writer job.
pub struct Chosen {
    /// Drives (by their listed path) and files, in the order given.
    pub targets: Vec<PathBuf>,
    /// Names of system drives the user typed in unsafe mode.
    pub unsafe_names: Vec<String>,
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

/// Finds the drives `args.to` names and applies the safety policy, asking what
/// must be asked. Paths that are no device are file targets. Nothing is opened:
/// the writer re-checks everything itself.
pub fn choose(args: &WriteArgs, image: &Image) -> Result<Chosen, NotChosen> {
    let mut chosen = Chosen {
        targets: Vec::new(),
        unsafe_names: Vec::new(),
    };
    let any_device = args.to.iter().any(|p| path_kind(p) == PathKind::Device);
    let drives = if any_device {
        graver_drives::list().map_err(|e| (Exit::from(&e), e.to_string()))?
    } else {
        Vec::new()
    };
    let facts = ImageFacts::of(image);
    let mut picked: Vec<(&Drive, Vec<String>)> = Vec::new();
    for path in &args.to {
        let drive = match resolve(&drives, path) {
            Resolved::File => {
                if !args.overwrite && path.exists() {
                    let e = graver_drives::DriveError::FileExists(path.clone());
                    return Err((Exit::from(&e), e.to_string()));
                }
                chosen.targets.push(path.clone());
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
            eprintln!("WARNING: {system}");
            typed = ask(&format!("Type the drive's name ({}) to erase it anyway: ", drive.name));
            consent.typed_name = Some(&typed);
            verdict = judge(drive, Some(&facts), consent);
        }
        let warnings = match verdict {
            Verdict::Refused(refusal) => return Err((Exit::Refused, refused(drive, &refusal))),
            Verdict::Ask(asks) => asks
                .into_iter()
                .filter_map(|a| match a {
                    Ask::Confirm(warning) => Some(warning),
                    Ask::TypeName(_) => None,
                })
                .collect(),
            Verdict::Allowed => Vec::new(),
        };
        if drive.system.is_some() {
            chosen.unsafe_names.push(drive.name.clone());
        }
        chosen.targets.push(drive.path.clone());
        picked.push((drive, warnings));
    }
    if !picked.is_empty() && !args.yes {
        confirm(image, &picked)?;
    }
    Ok(chosen)
}

/// The CLI's wording of a refusal: what to pass to go on, where anything can.
fn refused(drive: &Drive, refusal: &Refusal) -> String {
    match refusal {
        Refusal::Forbidden(why) => format!("{}: {why}", drive.path.display()),
        Refusal::SystemDrive(why) => format!(
            "{}: {why} Refused; if you really mean it, pass --unsafe and confirm the drive's name.",
            drive.path.display()
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
