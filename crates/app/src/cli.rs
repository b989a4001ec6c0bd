//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::exit::EXIT_CODES_HELP;

/// "0.1.0 (3f2a9c1d0e)": the version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("GRAVER_COMMIT"), ")");

const LONG_ABOUT: &str = "\
Write disk images verbatim to USB sticks and SD cards, and verify them.

Without a subcommand, graver opens its window: choose an image, tick a drive, Write. \
With one, it is the command-line flasher. Writing a drive needs administrator rights: \
run as root or administrator, graver writes directly; otherwise it starts its worker, graver-writer, through \
the system's administrator prompt (pkexec on Linux, UAC on Windows; on macOS graver opens the drive itself \
through the system's authopen prompt, and dismissing it cancels). Graver never uses the network.";

const TARGET_RULE: &str = "\
DEVICE is a whole drive (/dev/sdX, /dev/mmcblkN, /dev/loopN) or a regular file. \
A file that does not exist is created; an existing file is never truncated silently: \
it is refused unless --overwrite is given.

Before writing, every partition of the drive is unmounted. Drives that are too small, \
read-only or hold the image file are refused. System drives are refused unless --unsafe \
is given and the drive's name is typed (or passed with --confirm-name). Drives that are \
not removable or are larger than 128 GB need --yes or a confirmation naming the warning.";

/// Write disk images verbatim to USB sticks and SD cards, and verify them.
#[derive(Debug, Parser)]
#[command(name = "graver", version = VERSION, about, long_about = LONG_ABOUT, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do; without one, the window opens.
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,
}

/// The subcommands: `write`, `verify`, `hash`, `list`.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Write an image (raw, iso, gz, bz2, xz, zst or zip) to a drive and verify it.
    #[command(after_help = format!("{TARGET_RULE}\n\n{EXIT_CODES_HELP}"))]
    Write(WriteArgs),
    /// Print the SHA-256 of an image file and of the image inside it, and check a published checksum.
    #[command(after_help = EXIT_CODES_HELP)]
    Hash(HashArgs),
    /// List the drives an image can be written to.
    List(ListArgs),
    /// Compare a drive with an image without writing anything.
    #[command(after_help = EXIT_CODES_HELP)]
    Verify(VerifyArgs),
}

/// `graver write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The image file; its format is found from its content, not its name.
    pub image: PathBuf,
    /// The drive or file to write to (see below); give it several times to write several drives at once.
    #[arg(long = "to", value_name = "DEVICE", required = true)]
    pub to: Vec<PathBuf>,
    /// Do not ask for confirmation before erasing the drive.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Skip reading the drive back after writing.
    #[arg(long)]
    pub no_verify: bool,
    /// Also compute the image's SHA-256 while writing (automatic when a published checksum is found
    /// next to the image). It runs on its own thread but, at about 1.5 GB/s, can set the pace on fast drives.
    #[arg(long)]
    pub sha256: bool,
    /// Allow writing to a system drive (one holding /, /boot, swap, /home, ...). The drive's name must
    /// then also be typed at the prompt or given with --confirm-name.
    #[arg(long = "unsafe")]
    pub unsafe_mode: bool,
    /// The name of the system drive being written in --unsafe mode (e.g. sda), for scripts.
    #[arg(long, value_name = "NAME", requires = "unsafe_mode")]
    pub confirm_name: Option<String>,
    /// Eject (power off) the drive once it is written and verified.
    #[arg(long)]
    pub eject: bool,
    /// Allow an existing regular file as the target, truncating it.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON object per line on stdout (progress, then the result) instead of a progress bar.
    #[arg(long)]
    pub json: bool,
}

/// `graver hash`.
#[derive(Debug, Args)]
pub struct HashArgs {
    /// The image file.
    pub image: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `graver verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The image file.
    pub image: PathBuf,
    /// The drive or file to compare with the image.
    #[arg(long = "against", value_name = "DEVICE")]
    pub against: PathBuf,
    /// Confirm the drive's warnings (not removable, large) without being asked: the
    /// writer reads such a drive only with them confirmed.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Allow reading a system drive; its name must then be given with --confirm-name.
    #[arg(long = "unsafe")]
    pub unsafe_mode: bool,
    /// The name of the system drive being read in --unsafe mode (e.g. sda).
    #[arg(long, value_name = "NAME", requires = "unsafe_mode")]
    pub confirm_name: Option<String>,
    /// Print one JSON object per line on stdout (progress, then the result).
    #[arg(long)]
    pub json: bool,
}

/// `graver list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show every drive: system drives, fixed disks and loop devices too.
    #[arg(long)]
    pub all: bool,
    /// Print the list as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::{Path, PathBuf};

    use clap::CommandFactory;

    use super::Cli;

    /// Where the packaged man pages live (shipped by the .deb).
    fn man_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/linux/man")
    }

    /// graver.1 and graver-SUBCOMMAND.1, rendered from the clap definition, with the
    /// bare version (no commit) so the pages only change when the command line does.
    fn rendered() -> Vec<(String, Vec<u8>)> {
        let root = Cli::command().version(env!("CARGO_PKG_VERSION"));
        let mut pages = Vec::new();
        let mut render = |name: String, command: clap::Command| {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page).unwrap();
            pages.push((format!("{name}.1"), page));
        };
        for sub in root.get_subcommands() {
            let name = format!("graver-{}", sub.get_name());
            let sub = sub
                .clone()
                .display_name(name.clone())
                .bin_name(format!("graver {}", sub.get_name()))
                .version(env!("CARGO_PKG_VERSION"));
            render(name, sub);
        }
        render("graver".into(), root);
        pages
    }

    #[test]
    fn the_packaged_man_pages_match_the_command_line() {
        let dir = man_dir();
        let bless = std::env::var_os("GRAVER_BLESS").is_some();
        for (name, page) in rendered() {
            let path = dir.join(&name);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &page).unwrap();
                continue;
            }
            let stored = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run with GRAVER_BLESS=1 to write it)", path.display()));
            assert!(
                stored == page,
                "{} is out of date with the command line; run GRAVER_BLESS=1 cargo test -p graver man_pages",
                path.display()
            );
        }
    }
}
