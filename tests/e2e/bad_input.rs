//! Images that are not images: damaged archives, empty files, folders, missing files.

use crate::support::{
    COMPRESSED, Loop, MIB, fixture, flipped_copy, graver, require_root, run, scratch, truncated_copy, write_to,
};

/// How an archive was damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// Cut to half its length.
    Truncated,
    /// One byte in the middle of the compressed payload inverted.
    Flipped,
}

fn damaged_write(ext: &str, damage: Damage) {
    require_root!();
    let fx = fixture();
    let dir = scratch();
    let source = fx.file(ext);
    let len = std::fs::metadata(&source).expect("stat").len();
    let damaged = dir.path().join(format!("damaged.img.{ext}"));
    match damage {
        Damage::Truncated => truncated_copy(&source, &damaged, len / 2),
        Damage::Flipped => flipped_copy(&source, &damaged, len / 2),
    }
    let device = Loop::new(64 * MIB);
    let out = run(write_to(&damaged, &device.dev).arg("--yes"));
    out.expect_code(3);
    assert!(
        out.stderr.lines().any(|l| l.starts_with("graver: ")),
        "no error line prefixed \"graver: \"\n{out}"
    );
    let reason = match damage {
        Damage::Truncated => "truncated",
        Damage::Flipped => "corrupt",
    };
    assert!(
        out.stderr.contains(reason),
        "a {damage:?} {ext} image must be reported as {reason}\n{out}"
    );
    device.assert_first_mib_zeros(&format!(
        "after a failed write of a {damage:?} {ext} image nothing may look bootable"
    ));

    // The JSON form says the same, as its result line.
    let out = run(write_to(&damaged, &device.dev).args(["--yes", "--json"]));
    out.expect_code(3);
    let result = out.result();
    assert_eq!(result["ok"], false, "{out}");
    assert_eq!(result["exit_code"], 3, "{out}");
    device.assert_first_mib_zeros("after the second failed write");
}

#[test]
fn truncated_xz() {
    damaged_write("xz", Damage::Truncated);
}

#[test]
fn truncated_zst() {
    damaged_write("zst", Damage::Truncated);
}

#[test]
fn truncated_gz() {
    damaged_write("gz", Damage::Truncated);
}

#[test]
fn truncated_bz2() {
    damaged_write("bz2", Damage::Truncated);
}

#[test]
fn truncated_zip() {
    damaged_write("zip", Damage::Truncated);
}

#[test]
fn flipped_xz() {
    damaged_write("xz", Damage::Flipped);
}

#[test]
fn flipped_zst() {
    damaged_write("zst", Damage::Flipped);
}

#[test]
fn flipped_gz() {
    damaged_write("gz", Damage::Flipped);
}

#[test]
fn flipped_bz2() {
    damaged_write("bz2", Damage::Flipped);
}

#[test]
fn flipped_zip() {
    damaged_write("zip", Damage::Flipped);
}

#[test]
fn damaged_archives_fail_hash_too() {
    let fx = fixture();
    let dir = scratch();
    for ext in COMPRESSED {
        let source = fx.file(ext);
        let len = std::fs::metadata(&source).expect("stat").len();
        let damaged = dir.path().join(format!("cut.img.{ext}"));
        truncated_copy(&source, &damaged, len / 2);
        let out = run(graver().arg("hash").arg(&damaged));
        out.expect_code(3);
        assert!(
            out.stderr.contains("truncated"),
            "a cut {ext} must be called truncated\n{out}"
        );
    }
}

/// Empty, folder, missing: refused with exit 3 and a message that says which, on a
/// device that stays untouched.
#[test]
fn empty_directory_and_missing_images() {
    require_root!();
    let dir = scratch();
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").expect("create empty.img");
    let folder = dir.path().join("folder.img");
    std::fs::create_dir(&folder).expect("mkdir");
    let missing = dir.path().join("missing.img");
    let device = Loop::new(8 * MIB);
    for (image, reason) in [(&empty, "empty"), (&folder, "directory"), (&missing, "no such file")] {
        let out = run(write_to(image, &device.dev).arg("--yes"));
        out.expect_code(3).expect_stderr(reason);
        let out = run(graver()
            .arg("verify")
            .arg(image)
            .arg("--against")
            .arg(&device.dev)
            .arg("--yes"));
        out.expect_code(3).expect_stderr(reason);
    }
    device.assert_all_zeros("bad input must not touch the device");
}
