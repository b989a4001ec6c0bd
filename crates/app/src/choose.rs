//! Turning `--to PATH` into a target the user really means, under the safety policy.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};

use graver_drives::{Drive, Flag, ImageFacts, Note, Severity, classify};
use graver_image::Image;

use crate::cli::WriteArgs;
use crate::exit::Exit;
use crate::output::human_bytes;

/// The targets the user confirmed, for the writer job.
pub struct Chosen {
    /// Drives (by their listed path) and files, in the order given.
    pub targets: Vec<PathBuf>,
    /// Names of system drives the user typed in unsafe mode.
    pub unsafe_names: Vec<String>,
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
        match std::fs::metadata(path) {
            Ok(m) => m.file_type().is_block_device() || m.file_type().is_char_device(),
            Err(_) => graver_drives::is_device_name(path),
        }
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

/// Finds the drives `args.to` names and applies the safety policy, asking what
/// must be asked. Paths that are no device are file targets. Nothing is opened:
/// the writer re-checks everything itself.
pub fn choose(args: &WriteArgs, image: &Image) -> Result<Chosen, Refusal> {
    let mut chosen = Chosen {
        targets: Vec::new(),
        unsafe_names: Vec::new(),
    };
    let devices: Vec<&PathBuf> = args.to.iter().filter(|p| is_device_path(p)).collect();
    let drives = if devices.is_empty() {
        Vec::new()
    } else {
        graver_drives::list().map_err(|e| (Exit::from(&e), e.to_string()))?
    };
    let stored_on = graver_drives::drive_holding(image.path());
    let mut picked: Vec<(&Drive, Vec<Note>)> = Vec::new();
    for path in &args.to {
        if !is_device_path(path) {
            if !args.overwrite && path.exists() {
                let e = graver_drives::DriveError::FileExists(path.clone());
                return Err((Exit::from(&e), e.to_string()));
            }
            chosen.targets.push(path.clone());
            continue;
        }
        let Some(drive) = find_drive(&drives, path) else {
            return Err((Exit::Refused, not_a_drive(path)));
        };
        let size = image.size();
        let facts = ImageFacts::new(size.bytes(), size.is_exact(), stored_on.as_deref());
        let notes = classify(drive, Some(facts));
        if let Some(refused) = graver_drives::refusal(&notes) {
            return Err((Exit::Refused, format!("{}: {refused}", drive.path.display())));
        }
        if let Some(system) = notes.iter().find(|n| n.flag == Flag::System) {
            confirm_system(args, drive, system)?;
            chosen.unsafe_names.push(drive.name.clone());
        }
        chosen.targets.push(drive.path.clone());
        picked.push((drive, notes));
    }
    if !picked.is_empty() && !args.yes {
        confirm(image, &picked)?;
    }
    Ok(chosen)
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

fn confirm_system(args: &WriteArgs, drive: &Drive, system: &Note) -> Result<(), Refusal> {
    let name = &drive.name;
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
    if &typed == name {
        Ok(())
    } else {
        Err((
            Exit::Refused,
            format!("the name typed does not match {name}; nothing was written"),
        ))
    }
}

fn confirm(image: &Image, picked: &[(&Drive, Vec<Note>)]) -> Result<(), Refusal> {
    eprintln!(
        "About to write {} ({}) to:",
        image.path().display(),
        human_bytes(image.size().bytes())
    );
    for (drive, notes) in picked {
        eprintln!(
            "  {}: {}, {}, {}",
            drive.path.display(),
            drive.display_name(),
            graver_drives::human_size(drive.size),
            drive.bus.label(),
        );
        for note in notes.iter().filter(|n| n.flag.severity() == Severity::Confirm) {
            eprintln!("    warning: {}", note.message);
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
