//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::exit::EXIT_CODES_HELP;

const TARGET_RULE: &str = "\
DEVICE is a whole drive (/dev/sdX, /dev/mmcblkN, /dev/loopN) or a regular file. \
A file that does not exist is created; an existing file is never truncated silently: \
it is refused unless --overwrite is given.";

/// Write disk images verbatim to USB sticks and SD cards, and verify them.
#[derive(Debug, Parser)]
#[command(name = "graver", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do; without one, the help is shown.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write an image (raw, iso, gz, bz2, xz, zst or zip) to a drive and verify it.
    #[command(after_help = format!("{TARGET_RULE}\n\n{EXIT_CODES_HELP}"))]
    Write(WriteArgs),
    /// Print the SHA-256 of an image file and of the image inside it, and check a published checksum.
    #[command(after_help = EXIT_CODES_HELP)]
    Hash(HashArgs),
    /// Compare a drive with an image without writing anything.
    #[command(after_help = EXIT_CODES_HELP)]
    Verify(VerifyArgs),
}

/// `graver write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// The image file; its format is found from its content, not its name.
    pub image: PathBuf,
    /// The drive or file to write to (see below).
    #[arg(long = "to", value_name = "DEVICE")]
    pub to: PathBuf,
    /// Do not ask for confirmation before erasing the drive.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Skip reading the drive back after writing.
    #[arg(long)]
    pub no_verify: bool,
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
    /// Print one JSON object per line on stdout (progress, then the result).
    #[arg(long)]
    pub json: bool,
}
