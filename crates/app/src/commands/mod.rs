//! The subcommands: each returns the process's [`Exit`] code and prints its own messages.

mod hash;
mod list;
mod write;

use std::path::Path;

use graver_image::{ChecksumVerdict, Image, PublishedChecksum};
use serde::Serialize;

pub use self::hash::hash;
pub use self::list::list;
pub use self::write::{verify, write};
use crate::exit::Exit;
use crate::output::json_line;

/// Prints an error: a JSON result line in JSON mode, a sentence on stderr otherwise.
fn fail(json: bool, exit: Exit, message: &str) -> Exit {
    if json {
        json_line(&ErrorLine {
            r#type: "result",
            ok: false,
            exit_code: exit as u8,
            error: message,
        });
    } else {
        eprintln!("graver: {message}");
    }
    exit
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    r#type: &'static str,
    ok: bool,
    exit_code: u8,
    error: &'a str,
}

fn open_image(path: &Path, json: bool) -> Result<Image, Exit> {
    Image::open(path).map_err(|e| fail(json, Exit::from(&e), &e.to_string()))
}

/// "image.img.xz (xz, 300.0 MiB on disk, 2.0 GiB uncompressed)".
fn describe_image(image: &Image) -> String {
    let size = image.size();
    let inner = image
        .inner_name()
        .map(|n| format!(", containing {n}"))
        .unwrap_or_default();
    if image.format() == graver_image::Format::Raw {
        format!(
            "{} ({})",
            image.path().display(),
            graver_image::human::binary(image.file_size())
        )
    } else {
        format!(
            "{} ({}, {} on disk, {}{inner})",
            image.path().display(),
            image.format(),
            graver_image::human::binary(image.file_size()),
            match size {
                graver_image::ImageSize::Unknown => "uncompressed size unknown".to_owned(),
                _ => format!("{} uncompressed", size.describe()),
            },
        )
    }
}

#[derive(Serialize)]
struct ChecksumLine {
    file: String,
    sha256: String,
    verdict: Option<ChecksumVerdict>,
}

fn checksum_line(published: &PublishedChecksum, verdict: Option<ChecksumVerdict>) -> ChecksumLine {
    ChecksumLine {
        file: published.source.display().to_string(),
        sha256: published.hex(),
        verdict,
    }
}

fn verdict_sentence(published: &PublishedChecksum, verdict: Option<ChecksumVerdict>) -> String {
    let file = published.source.display();
    match verdict {
        Some(ChecksumVerdict::MatchesFile) => {
            format!("matches the published checksum in {file} (the file as downloaded)")
        }
        Some(ChecksumVerdict::MatchesImage) => {
            format!("matches the published checksum in {file} (the decompressed image)")
        }
        Some(ChecksumVerdict::Mismatch) => format!("DOES NOT MATCH the published checksum in {file}"),
        None => format!("a checksum is published in {file}; run `graver hash` to compare it with the file"),
    }
}
