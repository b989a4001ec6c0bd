//! Writing the image in every format to loop devices and files, and the refusals.

use std::path::Path;

use crate::support::{
    IMAGE_LEN, Loop, MIB, Rng, assert_cmp, check, fixture, graver, require_root, result_targets, run, run_with_stdin,
    scratch, sha256_switch, tool, write_to,
};

/// Writes `ext` with `--json`, then checks the device byte for byte and the reported digest.
fn write_format(ext: &str) {
    require_root!();
    let fx = fixture();
    let device = Loop::new(64 * MIB);
    let image = fx.file(ext);
    let out = run(write_to(&image, &device.dev)
        .args(["--yes", "--json"])
        .args(sha256_switch()));
    out.expect_code(0);
    let result = out.result();
    assert_eq!(result["ok"], true, "{out}");
    assert_eq!(result["exit_code"], 0, "{out}");
    assert_eq!(result["image_len"], IMAGE_LEN, "{out}");
    assert_eq!(
        result["sha256"],
        fx.sha256.as_str(),
        "digest differs from sha256sum\n{out}"
    );
    let devices = result_targets(&result);
    assert_eq!(devices.len(), 1, "{out}");
    assert_eq!(devices[0]["ok"], true, "{out}");
    assert_eq!(devices[0]["verified"], true, "{out}");
    let progress = out.json_lines();
    assert!(
        progress.iter().any(|l| l["type"] == "progress"),
        "no progress line\n{out}"
    );
    assert_cmp(&fx.raw, &device.dev, fx.len);

    // The human form too, on a fresh device: exit 0 and a success sentence.
    let device = Loop::new(64 * MIB);
    let out = run(write_to(&image, &device.dev).arg("--yes"));
    out.expect_code(0).expect_stderr("wrote and verified");
    assert_cmp(&fx.raw, &device.dev, fx.len);
}

#[test]
fn writes_raw() {
    write_format("img");
}

#[test]
fn writes_xz() {
    write_format("xz");
}

#[test]
fn writes_zst() {
    write_format("zst");
}

#[test]
fn writes_gz() {
    write_format("gz");
}

#[test]
fn writes_bz2() {
    write_format("bz2");
}

#[test]
fn writes_zip() {
    write_format("zip");
}

#[test]
fn verify_finds_a_changed_byte() {
    require_root!();
    let fx = fixture();
    let device = Loop::new(64 * MIB);
    let xz = fx.file("xz");
    run(write_to(&xz, &device.dev).args(["--yes", "--no-verify"])).expect_code(0);
    // A loop device is not removable: reading it back needs that warning confirmed too.
    // A confirmed comparison, in words or as JSON.
    let confirmed = |json: bool| {
        let mut command = graver();
        command
            .arg("verify")
            .arg(&xz)
            .arg("--against")
            .arg(&device.dev)
            .arg("--yes");
        if json {
            command.arg("--json");
        }
        run(&mut command)
    };
    run(graver().arg("verify").arg(&xz).arg("--against").arg(&device.dev))
        .expect_code(4)
        .expect_stderr("not a removable drive");
    confirmed(false).expect_code(0);
    let out = confirmed(true);
    out.expect_code(0);
    assert_eq!(out.result()["ok"], true, "{out}");

    let offset = 5 * MIB + 7;
    device.flip_byte(offset);
    confirmed(false).expect_code(6).expect_stderr("5242887");
    let out = confirmed(true);
    out.expect_code(6);
    let result = out.result();
    assert_eq!(result["ok"], false, "{out}");
    assert_eq!(result["exit_code"], 6, "{out}");
    assert!(
        result.to_string().contains("5242887"),
        "the result does not name the offset\n{out}"
    );
}

/// zstd images whose windows make the engine's buffers larger (8 MiB: decoded
/// straight into 12 MiB buffers) or leave decoding to the streaming decoder (64 MiB),
/// written and then compared with `graver verify` on a real loop device.
#[test]
fn writes_and_verifies_zst_with_large_windows() {
    require_root!();
    let fx = fixture();
    let dir = scratch();
    for (name, args) in [
        ("wlog23.img.zst", ["-q", "-3", "--zstd=wlog=23"]),
        ("long.img.zst", ["-q", "-1", "--long=26"]),
    ] {
        let image = dir.path().join(name);
        check(tool("zstd").args(args).arg(&fx.raw).arg("-o").arg(&image));
        let device = Loop::new(64 * MIB);
        run(write_to(&image, &device.dev).args(["--yes"]))
            .expect_code(0)
            .expect_stderr("wrote and verified");
        assert_cmp(&fx.raw, &device.dev, fx.len);
        let verify = || {
            run(graver()
                .arg("verify")
                .arg(&image)
                .arg("--against")
                .arg(&device.dev)
                .arg("--yes"))
        };
        verify().expect_code(0);
        device.flip_byte(20 * MIB + 3);
        verify().expect_code(6).expect_stderr("20971523");
    }
}

/// A card whose capacity is whole 512-byte sectors but not whole 4096-byte blocks,
/// written with an image of exactly its size (a dump of the same card): the last
/// block is padded to 4096 bytes in memory but must stop at the end of the device.
#[test]
fn writes_an_image_as_large_as_a_device_that_is_not_whole_4096_byte_blocks() {
    require_root!();
    let capacity = 48 * MIB + 512;
    let dir = scratch();
    let raw = dir.path().join("card-dump.img");
    // Random head and tail around zeros: the xz copy is quick to make, and the last
    // sector holds data that a short or misplaced last write would lose.
    let mut bytes = Rng::new(48).bytes(usize::try_from(capacity).expect("fits"));
    bytes[usize::try_from(MIB).expect("fits")..usize::try_from(capacity - 64 * 1024).expect("fits")].fill(0);
    std::fs::write(&raw, &bytes).expect("write the image");
    check(tool("xz").args(["-k", "-0", "-T1"]).arg(&raw));
    let xz = dir.path().join("card-dump.img.xz");

    for image in [&raw, &xz] {
        let device = Loop::new(capacity);
        let out = run(write_to(image, &device.dev).args(["--yes", "--json"]));
        out.expect_code(0);
        let result = out.result();
        assert_eq!(result["image_len"], capacity, "{out}");
        let devices = result_targets(&result);
        assert_eq!(devices[0]["verified"], true, "{out}");
        assert_cmp(&raw, &device.dev, capacity);
        run(graver()
            .arg("verify")
            .arg(image)
            .arg("--against")
            .arg(&device.dev)
            .arg("--yes"))
        .expect_code(0);
    }
}

#[test]
fn refuses_a_device_that_is_too_small() {
    require_root!();
    let fx = fixture();
    let device = Loop::new(32 * MIB);
    for ext in ["img", "xz"] {
        let out = run(write_to(fx.file(ext), &device.dev).arg("--yes"));
        out.expect_code(4).expect_stderr("too small");
        device.assert_all_zeros(&format!("a refused {ext} write must not touch the device"));
    }
}

#[test]
fn refuses_a_read_only_device() {
    require_root!();
    let fx = fixture();
    let device = Loop::read_only(64 * MIB);
    let out = run(write_to(&fx.raw, &device.dev).arg("--yes"));
    out.expect_code(4).expect_stderr("read-only");
    let out = run(write_to(&fx.raw, &device.dev).args(["--yes", "--json"]));
    out.expect_code(4);
    assert!(out.result().to_string().contains("read-only"), "{out}");
    device.assert_all_zeros("a read-only device cannot change");
}

#[test]
fn asks_before_erasing_a_device() {
    require_root!();
    let fx = fixture();
    let device = Loop::new(64 * MIB);
    let out = run_with_stdin(&mut write_to(&fx.raw, &device.dev), "n\n");
    out.expect_code(4)
        .expect_stderr("not confirmed")
        .expect_stderr("Continue?");
    device.assert_all_zeros("answering no must leave the device alone");

    // No answer at all (stdin closed) is a no too.
    let out = run(&mut write_to(&fx.raw, &device.dev));
    out.expect_code(4).expect_stderr("not confirmed");
    device.assert_all_zeros("no answer must leave the device alone");

    let out = run_with_stdin(&mut write_to(&fx.raw, &device.dev), "y\n");
    out.expect_code(0);
    assert_cmp(&fx.raw, &device.dev, fx.len);
}

/// Writes the image to a new regular file in `dir`, then checks the existing-file rule.
fn file_target(dir: &Path) {
    let fx = fixture();
    let target = dir.join("copy.img");
    let out = run(&mut write_to(fx.file("xz"), &target));
    out.expect_code(0);
    assert_eq!(std::fs::metadata(&target).expect("stat").len(), fx.len, "{out}");
    assert_cmp(&fx.raw, &target, fx.len);

    // Another, smaller image: if it were written, the file would change.
    let other = dir.join("other.img");
    std::fs::write(&other, vec![0xAB; MIB as usize]).expect("write other.img");
    let out = run(write_to(&other, &target).arg("--yes"));
    out.expect_code(4)
        .expect_stderr("already exists")
        .expect_stderr("--overwrite");
    assert_eq!(std::fs::metadata(&target).expect("stat").len(), fx.len, "{out}");
    assert_cmp(&fx.raw, &target, fx.len);

    let out = run(write_to(&other, &target).arg("--overwrite"));
    out.expect_code(0);
    assert_eq!(
        std::fs::metadata(&target).expect("stat").len(),
        MIB,
        "--overwrite must truncate the file to the image\n{out}"
    );
    assert_cmp(&other, &target, MIB);
}

#[test]
fn writes_a_regular_file_and_never_truncates_one_silently() {
    let dir = tempfile::tempdir().expect("temp dir");
    file_target(dir.path());
}

/// /dev/shm is a tmpfs like /tmp: a new file there is a file, not a missing drive.
#[test]
fn writes_a_new_file_under_dev_shm() {
    let dir = scratch();
    file_target(dir.path());
}
