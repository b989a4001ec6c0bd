//! `graver hash`: SHA-256 of the file and of the image, and the published checksum's verdict.

use std::time::Instant;

use graver_image::{ChecksumVerdict, find_checksum, sha256_hex};
use serde::Serialize;

use super::{ChecksumLine, checksum_line, describe_image, fail, open_image, verdict_sentence};
use crate::cli::HashArgs;
use crate::exit::Exit;
use crate::output::json_line;

#[derive(Serialize)]
struct HashLine {
    image: String,
    format: graver_image::Format,
    file_size: u64,
    image_size: u64,
    file_sha256: String,
    image_sha256: String,
    checksum: Option<ChecksumLine>,
}

/// `graver hash`.
pub fn hash(args: &HashArgs) -> Exit {
    let image = match open_image(&args.image, args.json) {
        Ok(image) => image,
        Err(exit) => return exit,
    };
    let started = Instant::now();
    let hashes = match graver_image::hash_image(&image) {
        Ok(hashes) => hashes,
        Err(e) => {
            let exit = if e.kind() == std::io::ErrorKind::InvalidData {
                Exit::BadInput
            } else {
                Exit::Io
            };
            return fail(args.json, exit, &format!("{}: {e}", image.path().display()));
        }
    };
    let (file_sha, file_len, image_sha, image_len) = (hashes.file, hashes.file_len, hashes.image, hashes.image_len);
    let published = find_checksum(image.path());
    let verdict = published
        .as_ref()
        .and_then(|p| p.verdict(Some(&file_sha), Some(&image_sha)));
    if args.json {
        json_line(&HashLine {
            image: image.path().display().to_string(),
            format: image.format(),
            file_size: file_len,
            image_size: image_len,
            file_sha256: sha256_hex(&file_sha),
            image_sha256: sha256_hex(&image_sha),
            checksum: published.as_ref().map(|p| checksum_line(p, verdict)),
        });
    } else {
        println!("{}", describe_image(&image));
        println!("file   sha256  {}", sha256_hex(&file_sha));
        println!(
            "image  sha256  {}  ({})",
            sha256_hex(&image_sha),
            graver_image::human::binary(image_len)
        );
        match &published {
            Some(p) => println!("checksum: {}", verdict_sentence(p, verdict)),
            None => println!("checksum: none published next to the image"),
        }
        eprintln!("hashed in {:.1} s", started.elapsed().as_secs_f64());
    }
    match verdict {
        Some(ChecksumVerdict::Mismatch) => Exit::Mismatch,
        _ => Exit::Success,
    }
}
