//! `graver hash`: digests of the file and of the image inside, and published checksums.

use crate::support::{fixture, graver, link_into, run, scratch, sha256sum};

#[test]
fn hashes_file_and_image() {
    let fx = fixture();
    let xz = fx.file("xz");
    let out = run(graver().arg("hash").arg(&xz).arg("--json"));
    out.expect_code(0);
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "hash --json prints one object\n{out}");
    let line = &lines[0];
    assert_eq!(line["file_sha256"], sha256sum(&xz).as_str(), "{out}");
    assert_eq!(line["image_sha256"], fx.sha256.as_str(), "{out}");
    assert_eq!(line["image_size"], fx.len, "{out}");
    assert!(line["checksum"].is_null(), "no checksum file is published here\n{out}");

    // A raw image: both digests are the file's.
    let out = run(graver().arg("hash").arg(&fx.raw).arg("--json"));
    out.expect_code(0);
    let line = &out.json_lines()[0];
    assert_eq!(line["file_sha256"], fx.sha256.as_str(), "{out}");
    assert_eq!(line["image_sha256"], fx.sha256.as_str(), "{out}");

    // The human form names both digests.
    let out = run(graver().arg("hash").arg(&xz));
    out.expect_code(0);
    assert!(out.stdout.contains(&fx.sha256), "{out}");
}

#[test]
fn checks_a_published_sha256sums() {
    let fx = fixture();
    let dir = scratch();
    let xz = link_into(&fx.file("xz"), dir.path(), "image.img.xz");
    let sums = dir.path().join("SHA256SUMS");

    std::fs::write(&sums, format!("{}  image.img\n", fx.sha256)).expect("write SHA256SUMS");
    let out = run(graver().arg("hash").arg(&xz).arg("--json"));
    out.expect_code(0);
    let line = &out.json_lines()[0];
    assert_eq!(line["checksum"]["verdict"], "matches_image", "{out}");
    assert_eq!(line["checksum"]["sha256"], fx.sha256.as_str(), "{out}");

    // The compressed file's own digest, as distributions also publish.
    let file_sha = sha256sum(&xz);
    std::fs::write(&sums, format!("{file_sha}  image.img.xz\n")).expect("write SHA256SUMS");
    let out = run(graver().arg("hash").arg(&xz).arg("--json"));
    out.expect_code(0);
    assert_eq!(out.json_lines()[0]["checksum"]["verdict"], "matches_file", "{out}");

    let wrong = "0".repeat(64);
    std::fs::write(&sums, format!("{wrong}  image.img\n")).expect("write SHA256SUMS");
    let out = run(graver().arg("hash").arg(&xz).arg("--json"));
    out.expect_code(6);
    assert_eq!(out.json_lines()[0]["checksum"]["verdict"], "mismatch", "{out}");
    let out = run(graver().arg("hash").arg(&xz));
    out.expect_code(6);
    assert!(out.stdout.contains("DOES NOT MATCH"), "{out}");
}
