//! Turning `--to PATH` into a target the user really means, under the safety policy.

use std::io::{BufRead as _, Write as _};
use std::path::Path;

use graver_drives::{Access, Drive, Flag, ImageFacts, Note, Severity, Target, classify};
use graver_image::Image;

use crate::cli::WriteArgs;
use crate::exit::Exit;
use crate::output::human_bytes;

/// A chosen, opened target, and the listed drive behind it when it is a drive.
pub struct Chosen {
    /// Opened and ready for the engine.
    pub target: Target,
    /// The drive, for ejecting; `None` for a regular file.
    pub drive: Option<Drive>,
}

/// Why a target was not chosen: the exit code and the sentence to print.
pub type Refusal = (Exit, String);

/// The listed drive that `path` names: `/dev/sdb`, a `/dev/disk/by-id/…` link, or on macOS `/dev/diskN` for `/dev/rdiskN`.
pub fn find_drive<'a>(drives: &'a [Drive], path: &Path) -> Option<&'a Drive> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = real.file_name()?.to_string_lossy().into_owned();
    let name = name
        .strip_prefix('r')
        .filter(|n| n.starts_with("disk"))
        .unwrap_or(&name)
        .to_owned();
    drives
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(&name) || d.path == real)
}

fn is_device_path(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device() || m.file_type().is_char_device())
    }
    #[cfg(not(unix))]
    {
        path.to_string_lossy().starts_with(r"\\.\")
    }
}

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

/// Finds the drive `args.to` names, applies the safety policy, asks what must be
/// asked, then unmounts it and opens it. A path that is no device is a file target.
pub fn choose(args: &WriteArgs, image: &Image) -> Result<Chosen, Refusal> {
    if !is_device_path(&args.to) {
        let access = Access::Write {
            overwrite_file: args.overwrite,
        };
        let target = graver_drives::open_target(&args.to, access).map_err(|e| (Exit::from(&e), e.to_string()))?;
        return Ok(Chosen { target, drive: None });
    }
    let drives = graver_drives::list().map_err(|e| (Exit::from(&e), e.to_string()))?;
    let Some(drive) = find_drive(&drives, &args.to) else {
        return Err((Exit::Refused, not_a_drive(&args.to)));
    };
    let size = image.size();
    let stored_on = graver_drives::drive_holding(image.path());
    let facts = ImageFacts {
        // An estimated size may be wrong either way, so only an exact one refuses a drive up front;
        // the engine still stops at the end of a drive that turns out too small.
        size: if size.is_exact() { size.bytes() } else { 0 },
        stored_on: stored_on.as_deref(),
    };
    let notes = classify(drive, Some(facts));
    let refusals: Vec<&str> = notes
        .iter()
        .filter(|n| n.flag.severity() == Severity::Refuse)
        .map(|n| n.message.as_str())
        .collect();
    if !refusals.is_empty() {
        return Err((
            Exit::Refused,
            format!("{}: {}", drive.path.display(), refusals.join(" ")),
        ));
    }
    confirm(args, drive, image, &notes)?;
    let target = graver_drives::prepare(drive).map_err(|e| (Exit::from(&e), e.to_string()))?;
    Ok(Chosen {
        target,
        drive: Some(drive.clone()),
    })
}

fn not_a_drive(path: &Path) -> String {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = Path::new("/sys/class/block").join(&name).join("partition");
    if parent.exists()
        && let Some(disk) = std::fs::canonicalize(Path::new("/sys/class/block").join(&name))
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|d| d.to_string_lossy().into_owned())
            })
    {
        return format!(
            "{}: this is a partition, not a whole drive; images are written to the whole drive (/dev/{disk})",
            path.display()
        );
    }
    format!(
        "{}: not a whole drive Graver can write to (see `graver list --all`)",
        path.display()
    )
}

fn confirm(args: &WriteArgs, drive: &Drive, image: &Image, notes: &[Note]) -> Result<(), Refusal> {
    let name = &drive.name;
    if let Some(system) = notes.iter().find(|n| n.flag == Flag::System) {
        if !args.unsafe_mode {
            return Err((
                Exit::Refused,
                format!(
                    "{}: {} Refused; if you really mean it, pass --unsafe and confirm the drive's name.",
                    drive.path.display(),
                    system.message
                ),
            ));
        }
        let typed = match &args.confirm_name {
            Some(given) => given.clone(),
            None => {
                eprintln!("WARNING: {}", system.message);
                ask(&format!("Type the drive's name ({name}) to erase it anyway: "))
            }
        };
        if &typed != name {
            return Err((
                Exit::Refused,
                format!("the name typed does not match {name}; nothing was written"),
            ));
        }
    }
    if args.yes {
        return Ok(());
    }
    eprintln!(
        "About to write {} ({}) to {}: {}, {}, {}.",
        image.path().display(),
        human_bytes(image.size().bytes()),
        drive.path.display(),
        drive.display_name(),
        graver_drives::human_size(drive.size),
        drive.bus.label(),
    );
    for note in notes.iter().filter(|n| n.flag.severity() == Severity::Confirm) {
        eprintln!("Warning: {}", note.message);
    }
    eprintln!("Everything on {} will be erased.", drive.path.display());
    if yes(&ask("Continue? [y/N] ")) {
        Ok(())
    } else {
        Err((Exit::Refused, "not confirmed; nothing was written".into()))
    }
}
