//! The fault matrix: `graver write` of an image onto a stick that holds an old
//! bootable hybrid ISO over a GPT disk, while the stick (a [`FaultyDrive`]) fails in
//! one way per test. Each row checks the exit code, the message, and what an OS would
//! find on the stick afterwards (`wipefs`, `blkid -p` on what the drive stores): never
//! the old ISO or its partition tables, and the new partition table only when the
//! write verified. The README's "Reliability" table lists these rows.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use graver_testkit::FaultyDrive;

use crate::support::{MIB, Ran, Rng, check, run_watched, scratch, tool, write_to};

/// The drives claim this much.
const DRIVE: u64 = 64 * MIB;
/// The new image: a GPT disk of random bytes.
const IMAGE: u64 = 24 * MIB;

macro_rules! require_faulty_drive {
    () => {
        if let Err(why) = FaultyDrive::supported() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

/// A bootable hybrid ISO built by `grub-mkrescue` (GPT, protective MBR, ISO 9660, an
/// EFI partition, an HFS+ map), once per test process.
fn old_iso() -> &'static [u8] {
    static ISO: OnceLock<Vec<u8>> = OnceLock::new();
    ISO.get_or_init(|| {
        let dir = scratch();
        let root = dir.path().join("root/boot/grub");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("grub.cfg"), "set timeout=1\nmenuentry old { true }\n").unwrap();
        let iso = dir.path().join("old.iso");
        check(
            tool("grub-mkrescue")
                .arg("-o")
                .arg(&iso)
                .arg(dir.path().join("root"))
                .stderr(Stdio::null()),
        );
        std::fs::read(&iso).unwrap()
    })
}

/// The stick as it comes: a GPT disk of `size` bytes (backup GPT at its end) with the
/// old ISO written over its start, as a stick that once had an ISO `dd`ed onto a
/// partitioned disk.
fn old_stick(size: u64) -> Vec<u8> {
    let dir = scratch();
    let disk = dir.path().join("disk");
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let mut sfdisk = tool("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(&disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(sfdisk.stdin.as_mut().unwrap(), b"label: gpt\n,,L\n").unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    let mut bytes = std::fs::read(&disk).unwrap();
    let iso = old_iso();
    bytes[..iso.len()].copy_from_slice(iso);
    bytes
}

/// The new image: random bytes under a GPT with one partition, so a stick holding its
/// first MiB shows a partition table.
fn new_image(dir: &Path) -> PathBuf {
    let path = dir.join("new.img");
    std::fs::write(&path, Rng::new(13).bytes(IMAGE as usize)).unwrap();
    let mut sfdisk = tool("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(sfdisk.stdin.as_mut().unwrap(), b"label: gpt\n,,L\n").unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    path
}

/// The signatures an OS finds on what `drive` stores (also after it was pulled out):
/// `wipefs`'s list and whether `blkid -p` finds anything.
fn signatures(drive: &FaultyDrive) -> Vec<String> {
    let dir = scratch();
    let copy = dir.path().join("stored");
    let size = usize::try_from(drive.size()).unwrap();
    std::fs::write(&copy, drive.stored(0, size)).unwrap();
    let listed = check(
        tool("wipefs")
            .args(["--no-act", "--noheadings", "--output", "TYPE,OFFSET"])
            .arg(&copy),
    );
    let mut found: Vec<String> = listed
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let blkid = tool("blkid").args(["-p", "-o", "export"]).arg(&copy).output().unwrap();
    if blkid.status.code() != Some(2) {
        let what: Vec<String> = String::from_utf8_lossy(&blkid.stdout)
            .lines()
            .filter(|l| l.starts_with("TYPE=") || l.starts_with("PTTYPE="))
            .map(str::to_owned)
            .collect();
        found.push(format!("blkid -p: {}", what.join(" ")));
    }
    found
}

fn assert_unrecognisable(drive: &FaultyDrive, transcript: &str) {
    let found = signatures(drive);
    assert!(
        found.is_empty(),
        "the stick is still recognisable after a failed write: {found:?}\n{transcript}"
    );
}

fn stick() -> graver_testkit::FaultyDriveBuilder {
    FaultyDrive::builder(DRIVE).contents(old_stick(DRIVE))
}

/// Writes the new image to a stick failing as `faults` says; returns the run and the drive.
fn write_new(
    faults: impl FnOnce(graver_testkit::FaultyDriveBuilder) -> graver_testkit::FaultyDriveBuilder,
) -> (Ran, FaultyDrive) {
    let dir = scratch();
    let image = new_image(dir.path());
    let drive = faults(stick()).build();
    // A counterfeit keeps less than the old disk, so its old contents wrapped.
    assert!(
        drive.real_capacity() < DRIVE || signatures(&drive).iter().any(|s| s.starts_with("iso9660")),
        "the old stick does not show its ISO"
    );
    let ran = run_watched(&mut write_to(&image, drive.dev()), |_, _| false);
    (ran, drive)
}

#[test]
fn the_old_stick_is_recognisable_before_any_write() {
    require_faulty_drive!();
    let drive = stick().build();
    let found = signatures(&drive);
    for expected in ["iso9660", "gpt", "PMBR"] {
        assert!(
            found.iter().any(|s| s.starts_with(expected)),
            "{expected} not in {found:?}"
        );
    }
    // The disk's own backup GPT, in its last sectors.
    let backup = format!("0x{:x}", DRIVE - 512);
    assert!(
        found.iter().any(|s| s.contains(&backup)),
        "no backup GPT at the end in {found:?}"
    );
}

#[test]
fn eio_on_write_at_30_percent() {
    require_faulty_drive!();
    let at = IMAGE * 3 / 10;
    let (ran, drive) = write_new(|b| b.eio_on_write(at..at + 4096));
    ran.expect(5, "writing failed at byte");
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn eio_on_read_back() {
    require_faulty_drive!();
    let at = IMAGE / 2;
    let (ran, drive) = write_new(|b| b.eio_on_read(at..at + 4096));
    ran.expect(5, "reading back failed at byte");
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn failing_sync() {
    require_faulty_drive!();
    let (ran, drive) = write_new(graver_testkit::FaultyDriveBuilder::fail_sync);
    ran.expect(5, "finishing the write failed");
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn unplugged_at_50_percent() {
    require_faulty_drive!();
    // The wipe (two MiB and the stamps) comes first, then half the image.
    let (ran, drive) = write_new(|b| b.unplug_after_written(2 * MIB + IMAGE / 2));
    assert_eq!(ran.status.code(), Some(5), "{}", ran.transcript);
    assert!(drive.is_unplugged());
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn a_difference_found_by_the_read_back_at_the_start_middle_and_end() {
    require_faulty_drive!();
    for at in [510, IMAGE / 2 + 17, IMAGE - 1] {
        let (ran, drive) = write_new(|b| b.corrupt_reads(at..at + 1));
        ran.expect(6, &format!("differs from the image at byte {at}"));
        assert_unrecognisable(&drive, &ran.transcript);
    }
}

#[test]
fn a_counterfeit_that_cannot_hold_the_image_fails_naming_its_real_size() {
    require_faulty_drive!();
    let (ran, drive) = write_new(|b| b.real_capacity(16 * MIB));
    ran.expect(6, "not as large as it claims")
        .expect(6, "keeps at most about 16 MiB")
        .expect(6, "graver check");
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn a_counterfeit_that_holds_the_image_succeeds_with_a_warning() {
    require_faulty_drive!();
    let (ran, drive) = write_new(|b| b.real_capacity(32 * MIB));
    ran.expect(0, "not as large as it claims");
    let target = &ran.result()["targets"][0];
    assert_eq!(target["status"], "verified", "{}", ran.transcript);
    let warning = target["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("keeps at most about 32 MiB"), "{}", ran.transcript);
    let found = signatures(&drive);
    assert!(
        found.iter().all(|s| !s.starts_with("iso9660")) && found.iter().any(|s| s.starts_with("gpt")),
        "{found:?}"
    );
}

/// Writes `image` to `drive` and sends `signal` (`kill`'s spelling) to the CLI once
/// `phase` has moved 2 MiB.
fn write_and_signal(image: &Path, drive: &FaultyDrive, phase: &str, signal: &str) -> Ran {
    run_watched(&mut write_to(image, drive.dev()), |p, pid| {
        let now = p["phase"] == phase && p["bytes"].as_u64().unwrap_or(0) > 2 * MIB;
        if now {
            check(Command::new("kill").args([signal, &pid.to_string()]));
        }
        now
    })
}

#[test]
fn a_slow_drive_is_cancelled_with_sigint() {
    require_faulty_drive!();
    let dir = scratch();
    let image = new_image(dir.path());
    let drive = stick().speed_limit(2_000_000).build();
    let ran = write_and_signal(&image, &drive, "writing", "-INT");
    ran.expect(7, "cancelled");
    assert!(ran.after_action.is_some(), "never reached the body\n{}", ran.transcript);
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn sigterm_in_every_phase() {
    require_faulty_drive!();
    for phase in ["writing", "verifying"] {
        let dir = scratch();
        let image = new_image(dir.path());
        let drive = stick().speed_limit(8_000_000).build();
        let ran = write_and_signal(&image, &drive, phase, "-TERM");
        ran.expect(7, "cancelled");
        assert!(ran.after_action.is_some(), "never reached {phase}\n{}", ran.transcript);
        assert_unrecognisable(&drive, &ran.transcript);
    }
}

#[test]
fn the_writer_killed_mid_write() {
    require_faulty_drive!();
    let dir = scratch();
    let image = new_image(dir.path());
    let drive = stick().speed_limit(8_000_000).build();
    let ran = write_and_signal(&image, &drive, "writing", "-KILL");
    assert_eq!(ran.status.code(), None, "{}", ran.transcript);
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn a_corrupt_image_late_in_the_stream() {
    require_faulty_drive!();
    let dir = scratch();
    let image = new_image(dir.path());
    check(tool("gzip").arg("-k").arg("-1").arg(&image));
    let gz = dir.path().join("new.img.gz");
    let mut bytes = std::fs::read(&gz).unwrap();
    let at = bytes.len() * 9 / 10;
    for b in &mut bytes[at..at + 64] {
        *b ^= 0x5a;
    }
    std::fs::write(&gz, bytes).unwrap();
    let drive = stick().build();
    let ran = run_watched(&mut write_to(&gz, drive.dev()), |_, _| false);
    ran.expect(3, "corrupt");
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn an_image_bigger_than_the_drive_is_refused_and_the_drive_left_alone() {
    require_faulty_drive!();
    let dir = scratch();
    let image = new_image(dir.path());
    let small = IMAGE - 2 * MIB;
    let drive = FaultyDrive::builder(small).contents(old_stick(small)).build();
    let before = signatures(&drive);
    let ran = run_watched(&mut write_to(&image, drive.dev()), |_, _| false);
    ran.expect(4, "too small");
    assert_eq!(drive.bytes_written(), 0, "{}", ran.transcript);
    assert_eq!(signatures(&drive), before, "a refused drive must be left as it was");
}

#[test]
fn a_gzip_that_understates_its_size_is_stopped_part_way_as_too_small() {
    // gzip records the size only in its trailer, so a file can claim less than it
    // holds: 20 MiB claimed, 96 MiB held (8 MiB random, then zeros, so the claim is
    // plausible for the compressed size and passes the check before writing), onto a
    // drive of 22 MiB. The write must stop where the drive ends, say it is too
    // small, and leave the stick unrecognisable, not hold a cut-off image. The
    // decoder keeps at most a few chunks ahead of the writer, so it is still far from
    // the trailer (whose size and CRC would also give the lie away, as corrupt data)
    // when the drive ends.
    require_faulty_drive!();
    let dir = scratch();
    let mut data = Rng::new(29).bytes(8 * MIB as usize);
    data.resize(4 * IMAGE as usize, 0);
    let image = dir.path().join("understated.img");
    std::fs::write(&image, data).unwrap();
    check(tool("gzip").arg("-k").arg("-1").arg(&image));
    let gz = dir.path().join("understated.img.gz");
    let mut bytes = std::fs::read(&gz).unwrap();
    let trailer = bytes.len() - 4;
    bytes[trailer..].copy_from_slice(&(20 * MIB as u32).to_le_bytes());
    std::fs::write(&gz, bytes).unwrap();
    let small = IMAGE - 2 * MIB;
    let drive = FaultyDrive::builder(small).contents(old_stick(small)).build();
    let ran = run_watched(&mut write_to(&gz, drive.dev()), |_, _| false);
    ran.expect(4, "too small");
    assert!(
        drive.bytes_written() > 0,
        "refused before writing, not part-way\n{}",
        ran.transcript
    );
    assert_unrecognisable(&drive, &ran.transcript);
}

#[test]
fn empty_images_are_refused_and_the_drive_left_alone() {
    require_faulty_drive!();
    let dir = scratch();
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    check(tool("gzip").arg("-k").arg(&empty));
    check(tool("xz").arg("-k").arg(&empty));
    check(tool("zstd").arg("-q").arg("-k").arg(&empty));
    check(
        tool("zip")
            .arg("-q")
            .arg("-j")
            .arg(dir.path().join("empty.zip"))
            .arg(&empty),
    );
    let drive = stick().build();
    let before = signatures(&drive);
    for (ext, format) in [("gz", "gzip"), ("xz", "xz"), ("zst", "zstd"), ("zip", "zip")] {
        let file = if ext == "zip" {
            dir.path().join("empty.zip")
        } else {
            dir.path().join(format!("empty.img.{ext}"))
        };
        let ran = run_watched(&mut write_to(&file, drive.dev()), |_, _| false);
        ran.expect(3, format).expect(3, "0 bytes");
    }
    assert_eq!(drive.bytes_written(), 0);
    assert_eq!(signatures(&drive), before);
}

#[test]
fn several_drives_one_failing_while_the_others_finish_and_verify() {
    require_faulty_drive!();
    let dir = scratch();
    let image = new_image(dir.path());
    let good_a = stick().build();
    let bad = stick().eio_on_write(IMAGE / 2..IMAGE / 2 + 4096).build();
    let good_b = stick().build();
    let mut command = write_to(&image, good_a.dev());
    command.arg("--to").arg(bad.dev()).arg("--to").arg(good_b.dev());
    let ran = run_watched(&mut command, |_, _| false);
    ran.expect(5, "writing failed at byte");
    let targets = ran.result()["targets"].as_array().unwrap().clone();
    let statuses: Vec<&str> = targets.iter().map(|t| t["status"].as_str().unwrap_or("")).collect();
    assert_eq!(statuses, ["verified", "failed", "verified"], "{}", ran.transcript);
    assert_unrecognisable(&bad, &ran.transcript);
    let written = std::fs::read(&image).unwrap();
    for good in [&good_a, &good_b] {
        assert!(
            good.stored(0, written.len()) == written,
            "a good drive does not hold the image"
        );
    }
}

#[test]
fn a_drive_that_stops_answering_is_reported_as_stalled_by_name() {
    require_faulty_drive!();
    let dir = scratch();
    let image = new_image(dir.path());
    // Far longer than the 30 s after which a drive counts as stalled; resumed by the test.
    // Slow as well, so that what is left after the resume outlasts the cancel's way in.
    let drive = stick()
        .stall_after_written(4 * MIB, Duration::from_secs(600))
        .speed_limit(8_000_000)
        .build();
    let name = drive.dev().display().to_string();
    let ran = run_watched(&mut write_to(&image, drive.dev()), |p, pid| {
        let stalled = p["phase"] == "stalled"
            && p["devices"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["name"] == name.as_str() && d["phase"] == "stalled"));
        if stalled {
            check(Command::new("kill").args(["-INT", &pid.to_string()]));
            drive.resume();
        }
        stalled
    });
    ran.expect(7, "cancelled");
    assert!(
        ran.after_action.is_some(),
        "never reported as stalled\n{}",
        ran.transcript
    );
    assert_unrecognisable(&drive, &ran.transcript);
}
