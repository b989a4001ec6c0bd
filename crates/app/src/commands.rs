//! The subcommands: each returns the process's [`Exit`] code and prints its own messages.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use graver_drives::{Access, Ejected};
use graver_image::{ChecksumVerdict, Image, PublishedChecksum, find_checksum, sha256_hex};
use graver_writer::{CancelToken, Device, WriteOptions, WriteReport};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::choose::{Chosen, choose};
use crate::cli::{HashArgs, ListArgs, VerifyArgs, WriteArgs};
use crate::exit::Exit;
use crate::output::{Reporter, cancel_on_interrupt, human_bytes, json_line};

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

fn describe_image(image: &Image) -> String {
    let size = image.size();
    let inner = image
        .inner_name()
        .map(|n| format!(", containing {n}"))
        .unwrap_or_default();
    if image.format() == graver_image::Format::Raw {
        format!("{} ({})", image.path().display(), human_bytes(image.file_size()))
    } else {
        format!(
            "{} ({}, {} on disk, {}{} uncompressed{inner})",
            image.path().display(),
            image.format(),
            human_bytes(image.file_size()),
            if size.is_exact() { "" } else { "about " },
            human_bytes(size.bytes()),
        )
    }
}

#[derive(Serialize)]
struct DeviceLine {
    name: String,
    ok: bool,
    verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<graver_writer::ErrorKind>,
}

#[derive(Serialize)]
struct WriteLine {
    r#type: &'static str,
    ok: bool,
    exit_code: u8,
    image: String,
    format: graver_image::Format,
    image_len: u64,
    sha256: Option<String>,
    checksum: Option<ChecksumLine>,
    elapsed_secs: f64,
    devices: Vec<DeviceLine>,
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

/// `graver write`.
pub fn write(args: &WriteArgs) -> Exit {
    let image = match open_image(&args.image, args.json) {
        Ok(image) => image,
        Err(exit) => return exit,
    };
    let Chosen { mut target, drive } = match choose(args, &image) {
        Ok(chosen) => chosen,
        Err((exit, message)) => return fail(args.json, exit, &message),
    };
    let cancel = CancelToken::new();
    cancel_on_interrupt(&cancel);
    let reporter = Reporter::new(args.json);
    if !args.json {
        eprintln!("Writing {} to {}", describe_image(&image), target.path().display());
    }
    let published = find_checksum(image.path());
    let options = WriteOptions {
        verify: !args.no_verify,
        sha256: args.sha256 || published.is_some(),
    };
    let devices: &mut [&mut dyn Device] = &mut [&mut target];
    let outcome = graver_writer::write(&image, devices, options, &|p| reporter.show(p), &cancel);
    reporter.finish();
    let report = match outcome {
        Ok(report) => report,
        Err(e) => return fail(args.json, Exit::from(&e), &e.to_string()),
    };
    let exit = report_write(&image, &report, published.as_ref(), args.json);
    drop(target);
    if exit == Exit::Success
        && args.eject
        && let Some(drive) = drive
    {
        match graver_drives::eject(&drive) {
            Ok(Ejected::Ejected) if !args.json => eprintln!("{} was ejected: safe to remove", drive.path.display()),
            Ok(Ejected::NotSupported(why)) if !args.json => eprintln!("{why}"),
            Ok(_) => {}
            Err(e) => return fail(args.json, Exit::Io, &e.to_string()),
        }
    }
    exit
}

fn report_write(image: &Image, report: &WriteReport, published: Option<&PublishedChecksum>, json: bool) -> Exit {
    let exit = report.first_error().map_or(Exit::Success, Exit::from);
    // Only the decompressed image's digest is known here; a sum of the compressed file needs `graver hash`.
    let verdict = match (published, &report.sha256) {
        (Some(p), Some(sha)) if image.format() == graver_image::Format::Raw => Some(p.verdict(sha, Some(sha))),
        (Some(p), Some(sha)) if p.sha256 == *sha => Some(ChecksumVerdict::MatchesImage),
        _ => None,
    };
    if json {
        json_line(&WriteLine {
            r#type: "result",
            ok: exit == Exit::Success,
            exit_code: exit as u8,
            image: image.path().display().to_string(),
            format: image.format(),
            image_len: report.image_len,
            sha256: report.sha256.as_ref().map(sha256_hex),
            checksum: published.map(|p| checksum_line(p, verdict)),
            elapsed_secs: report.elapsed.as_secs_f64(),
            devices: report
                .devices
                .iter()
                .map(|d| DeviceLine {
                    name: d.name.clone(),
                    ok: d.result.is_ok(),
                    verified: matches!(d.result, Ok(true)),
                    error: d.result.as_ref().err().map(ToString::to_string),
                    error_kind: d.result.as_ref().err().map(graver_writer::WriteError::kind),
                })
                .collect(),
        });
        return exit;
    }
    let secs = report.elapsed.as_secs_f64();
    for device in &report.devices {
        match &device.result {
            Ok(verified) => eprintln!(
                "{}: {} {} in {:.1} s ({}/s){}",
                device.name,
                if *verified {
                    "wrote and verified"
                } else {
                    "wrote (not verified)"
                },
                human_bytes(report.image_len),
                secs,
                human_bytes((report.image_len as f64 / secs.max(0.001)) as u64),
                if *verified { "; safe to remove" } else { "" },
            ),
            Err(e) => eprintln!("graver: {e}"),
        }
    }
    if let Some(sha) = &report.sha256 {
        eprintln!("SHA-256 of the image: {}", sha256_hex(sha));
    }
    if let Some(p) = published {
        eprintln!("Checksum: {}", verdict_sentence(p, verdict));
    }
    exit
}

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

fn sha256_of(mut reader: impl Read) -> std::io::Result<([u8; 32], u64)> {
    let mut sha = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok((sha.finalize().into(), total)),
            Ok(n) => {
                sha.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `graver hash`.
pub fn hash(args: &HashArgs) -> Exit {
    let image = match open_image(&args.image, args.json) {
        Ok(image) => image,
        Err(exit) => return exit,
    };
    let started = Instant::now();
    let path = image.path().to_path_buf();
    let file_hash = std::thread::spawn(move || std::fs::File::open(path).and_then(sha256_of));
    let image_hash = if image.format() == graver_image::Format::Raw {
        None
    } else {
        Some(
            image
                .reader()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(sha256_of),
        )
    };
    let file_hash = file_hash
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("hashing thread failed")));
    let (file_sha, file_len) = match file_hash {
        Ok(v) => v,
        Err(e) => return fail(args.json, Exit::Io, &format!("{}: {e}", image.path().display())),
    };
    let (image_sha, image_len) = match image_hash {
        None => (file_sha, file_len),
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            let exit = if e.kind() == std::io::ErrorKind::InvalidData {
                Exit::BadInput
            } else {
                Exit::Io
            };
            return fail(args.json, exit, &format!("{}: {e}", image.path().display()));
        }
    };
    let published = find_checksum(image.path());
    let verdict = published.as_ref().map(|p| p.verdict(&file_sha, Some(&image_sha)));
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
            human_bytes(image_len)
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

#[derive(Serialize)]
struct VerifyLine {
    r#type: &'static str,
    ok: bool,
    exit_code: u8,
    image_len: u64,
}

/// `graver verify`.
pub fn verify(args: &VerifyArgs) -> Exit {
    let image = match open_image(&args.image, args.json) {
        Ok(image) => image,
        Err(exit) => return exit,
    };
    let mut target = match graver_drives::open_target(&args.against, Access::Read) {
        Ok(target) => target,
        Err(e) => return fail(args.json, Exit::from(&e), &e.to_string()),
    };
    let cancel = CancelToken::new();
    cancel_on_interrupt(&cancel);
    let reporter = Reporter::new(args.json);
    let outcome = graver_writer::compare(&image, &mut target, &|p| reporter.show(p), &cancel);
    reporter.finish();
    match outcome {
        Ok(report) => {
            if args.json {
                json_line(&VerifyLine {
                    r#type: "result",
                    ok: true,
                    exit_code: 0,
                    image_len: report.image_len,
                });
            } else {
                eprintln!(
                    "{} holds the image: all {} match",
                    target.path().display(),
                    human_bytes(report.image_len)
                );
            }
            Exit::Success
        }
        Err(e) => fail(args.json, Exit::from(&e), &e.to_string()),
    }
}

#[derive(Serialize)]
struct ListedDrive<'a> {
    #[serde(flatten)]
    drive: &'a graver_drives::Drive,
    flags: Vec<graver_drives::Note>,
}

#[derive(Serialize)]
struct ListLine<'a> {
    drives: Vec<ListedDrive<'a>>,
}

/// `graver list`.
pub fn list(args: &ListArgs) -> Exit {
    let drives = match graver_drives::list() {
        Ok(drives) => drives,
        Err(e) => return fail(args.json, Exit::from(&e), &e.to_string()),
    };
    let shown: Vec<ListedDrive<'_>> = drives
        .iter()
        .filter(|d| args.all || graver_drives::is_flashable(d))
        .map(|drive| ListedDrive {
            drive,
            flags: graver_drives::classify(drive, None),
        })
        .collect();
    if args.json {
        json_line(&ListLine { drives: shown });
        return Exit::Success;
    }
    if shown.is_empty() {
        println!("No removable drives found. Plug in a USB stick or SD card, or use --all to see every drive.");
        return Exit::Success;
    }
    println!("{:<16} {:>9}  {:<8} {:<32} FLAGS", "DRIVE", "SIZE", "BUS", "MODEL");
    for listed in &shown {
        let d = listed.drive;
        let flags: Vec<&str> = listed.flags.iter().map(|n| n.flag.badge()).collect();
        println!(
            "{:<16} {:>9}  {:<8} {:<32} {}",
            d.path.display(),
            graver_drives::human_size(d.size),
            d.bus.label(),
            d.display_name(),
            flags.join(", ")
        );
        for part in &d.partitions {
            let mounts: Vec<String> = part.mount_points.iter().map(|m| m.display().to_string()).collect();
            let mounted = if mounts.is_empty() {
                String::new()
            } else {
                format!("  mounted at {}", mounts.join(", "))
            };
            let swap = if part.swap { "  swap" } else { "" };
            println!(
                "  {:<14} {:>9}{mounted}{swap}",
                part.path.display(),
                graver_drives::human_size(part.size)
            );
        }
        for note in &listed.flags {
            println!("  ! {}", note.message);
        }
    }
    if !args.all {
        println!("(system drives, fixed disks and loop devices are hidden; --all shows them)");
    }
    Exit::Success
}
