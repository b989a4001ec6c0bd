//! Drives whose read-back differs from what was written, through the `graver` binary:
//! the write ends for that drive with "verification failed" and the exact first
//! differing byte, exit code 6, and the drive is left without the image's first MiB;
//! healthy drives in the same write finish and verify.
//!
//! The drives are graver-testkit's `FaultyDrive`s: loop devices over a FUSE file with
//! direct I/O end to end, which invert the bytes of a range on every read (a failing
//! flash cell) or keep less than they claim (a counterfeit stick). Each run is bounded
//! by the support module's hang limit, so a hang fails the test instead of stalling it.

use std::ops::Range;
use std::path::Path;

use graver_testkit::{FaultyDrive, FaultyDriveBuilder};

use crate::support::{IMAGE_LEN, Loop, MIB, Run, assert_cmp, fixture, is_root, read_at, result_targets, run, write_to};

/// A faulty drive when this machine can make one; `None` (and a note) when it cannot.
fn faulty(builder: impl FnOnce(FaultyDriveBuilder) -> FaultyDriveBuilder) -> Option<FaultyDrive> {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices and FUSE");
        return None;
    }
    if let Err(why) = FaultyDrive::supported() {
        eprintln!("skipped: a faulty drive {why}");
        return None;
    }
    Some(builder(FaultyDrive::builder(64 * MIB)).build())
}

/// The image's first MiB, which a drive that failed must not hold.
fn image_head() -> Vec<u8> {
    read_at(&fixture().raw, 0, MIB as usize)
}

/// Asserts the drive does not start with the image's first MiB: a failed write must not look bootable.
#[track_caller]
fn assert_not_bootable(drive: &FaultyDrive, out: &Run) {
    assert!(
        drive.stored(0, MIB as usize) != image_head(),
        "the drive holds the image's first MiB after a failed verification\n{out}"
    );
}

/// Writes the raw fixture (JSON output) to `targets` and returns the run.
fn write_json(image: &Path, targets: &[&Path]) -> Run {
    let mut command = write_to(image, targets[0]);
    for target in &targets[1..] {
        command.arg("--to").arg(target);
    }
    run(command.args(["--yes", "--json"]))
}

/// One drive whose reads of `bad` come back inverted: exit 6 naming `bad.start`, in JSON and in words.
fn differs_at(bad: Range<u64>, ext: &str) {
    let Some(drive) = faulty(|b| b.corrupt_reads(bad.clone())) else {
        return;
    };
    let image = fixture().file(ext);
    let out = write_json(&image, &[drive.dev()]);
    out.expect_code(6);
    let result = out.result();
    assert_eq!(result["ok"], false, "{out}");
    assert_eq!(result["exit_code"], 6, "{out}");
    let targets = result_targets(&result);
    assert_eq!(targets.len(), 1, "{out}");
    assert_eq!(targets[0]["ok"], false, "{out}");
    assert_eq!(targets[0]["verified"], false, "{out}");
    let message = targets[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("verification failed") && message.contains(&format!("byte {}", bad.start)),
        "the message does not name byte {}: {message}\n{out}",
        bad.start
    );
    assert_not_bootable(&drive, &out);

    // The same in words, on the same drive: the error names the byte and the exit code is 6.
    let out = run(write_to(&image, drive.dev()).arg("--yes"));
    out.expect_code(6)
        .expect_stderr("verification failed")
        .expect_stderr(&format!("byte {}", bad.start));
    assert_not_bootable(&drive, &out);
}

#[test]
fn a_difference_just_after_the_first_mib_ends_the_write_with_exit_6() {
    differs_at(MIB + 100..MIB + 164, "img");
}

#[test]
fn a_difference_in_the_middle_ends_the_write_with_exit_6() {
    differs_at(20 * MIB + 100..20 * MIB + 164, "img");
}

#[test]
fn a_difference_in_the_last_bytes_ends_the_write_with_exit_6() {
    differs_at(IMAGE_LEN - 10..IMAGE_LEN, "img");
}

#[test]
fn a_difference_in_a_compressed_write_is_named_exactly_too() {
    // A compressed image cannot seek: the engine decodes it again to name the byte.
    differs_at(33 * MIB + 4097..33 * MIB + 4100, "xz");
}

#[test]
fn a_difference_in_the_first_mib_is_caught_after_it_is_written_last() {
    differs_at(510..512, "img");
}

#[test]
fn of_several_differences_the_first_is_named() {
    let Some(drive) = faulty(|b| {
        b.corrupt_reads(30 * MIB + 7..30 * MIB + 8)
            .corrupt_reads(9 * MIB + 4099..9 * MIB + 4200)
            .corrupt_reads(40 * MIB..41 * MIB)
    }) else {
        return;
    };
    let out = write_json(&fixture().raw, &[drive.dev()]);
    out.expect_code(6);
    let targets = result_targets(&out.result());
    let message = targets[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("byte {}", 9 * MIB + 4099)),
        "{message}\n{out}"
    );
    assert_not_bootable(&drive, &out);
}

#[test]
fn a_drive_that_differs_fails_alone_while_the_healthy_ones_finish_and_verify() {
    let Some(bad) = faulty(|b| b.corrupt_reads(2 * MIB..2 * MIB + 1)) else {
        return;
    };
    let fx = fixture();
    let good = [Loop::new(64 * MIB), Loop::new(64 * MIB)];
    let out = write_json(&fx.raw, &[&good[0].dev, bad.dev(), &good[1].dev]);
    out.expect_code(6);
    let targets = result_targets(&out.result());
    assert_eq!(targets.len(), 3, "{out}");
    for (i, target) in targets.iter().enumerate() {
        let name = target["name"].as_str().unwrap_or_default();
        if name == bad.dev().display().to_string() {
            assert_eq!(target["ok"], false, "{out}");
            let message = target["message"].as_str().unwrap_or_default();
            assert!(message.contains(&format!("byte {}", 2 * MIB)), "{message}\n{out}");
        } else {
            assert_eq!(target["ok"], true, "target {i}\n{out}");
            assert_eq!(target["verified"], true, "target {i}\n{out}");
        }
    }
    for device in &good {
        assert_cmp(&fx.raw, &device.dev, fx.len);
    }
    assert_not_bootable(&bad, &out);
}

#[test]
fn a_counterfeit_drive_that_wraps_fails_as_counterfeit_instead_of_hanging() {
    // Claims 256 MiB, keeps 32: the image's last 16 MiB land on its first 16.
    if !is_root() || FaultyDrive::supported().is_err() {
        eprintln!("skipped: needs root, loop devices and FUSE");
        return;
    }
    let drive = FaultyDrive::builder(256 * MIB).real_capacity(32 * MIB).build();
    let out = write_json(&fixture().raw, &[drive.dev()]);
    out.expect_code(6);
    let targets = result_targets(&out.result());
    let message = targets[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("not as large as it claims") && message.contains("keeps at most about"),
        "{message}\n{out}"
    );
    assert_not_bootable(&drive, &out);
}
