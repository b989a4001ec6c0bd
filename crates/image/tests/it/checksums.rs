//! Finding the published checksum next to an image, and judging it.

use std::fs;
use std::path::Path;

use graver_image::{ChecksumVerdict, find_checksum, sha256_hex};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A directory holding `foo.img.xz` (made of `image` bytes, not real xz: only digests matter).
fn directory_with(file: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let path = scratch.path().join("foo.img.xz");
    fs::write(&path, file).unwrap();
    (scratch, path)
}

fn write(dir: &Path, name: &str, text: &str) {
    fs::write(dir.join(name), text).unwrap();
}

#[test]
fn bare_digest_in_file_sha256() {
    let (scratch, path) = directory_with(b"compressed bytes");
    let digest = sha256(b"compressed bytes");
    write(
        scratch.path(),
        "foo.img.xz.sha256",
        &format!("{}\n", sha256_hex(&digest)),
    );
    let found = find_checksum(&path).unwrap();
    assert_eq!(found.sha256, digest);
    assert_eq!(found.name, None);
    assert_eq!(found.source, scratch.path().join("foo.img.xz.sha256"));
    assert_eq!(found.verdict(Some(&digest), None), Some(ChecksumVerdict::MatchesFile));
}

#[test]
fn gnu_sums_file_with_two_lines_picks_the_right_one() {
    let (scratch, path) = directory_with(b"compressed bytes");
    let ours = sha256(b"compressed bytes");
    let theirs = sha256(b"another image");
    write(
        scratch.path(),
        "SHA256SUMS",
        &format!(
            "{}  other.img.xz\n{} *foo.img.xz\n",
            sha256_hex(&theirs),
            sha256_hex(&ours)
        ),
    );
    let found = find_checksum(&path).unwrap();
    assert_eq!(found.sha256, ours);
    assert_eq!(found.name.as_deref(), Some("foo.img.xz"));
    assert_eq!(found.hex(), sha256_hex(&ours));
    assert_eq!(found.verdict(Some(&ours), None), Some(ChecksumVerdict::MatchesFile));
}

#[test]
fn bsd_lines_are_read_and_other_algorithms_ignored() {
    let (scratch, path) = directory_with(b"compressed bytes");
    let ours = sha256(b"compressed bytes");
    write(
        scratch.path(),
        "sha256sum.txt",
        &format!(
            "MD5 (foo.img.xz) = d41d8cd98f00b204e9800998ecf8427e\nSHA256 (foo.img.xz) = {}\n",
            sha256_hex(&ours)
        ),
    );
    let found = find_checksum(&path).unwrap();
    assert_eq!(found.sha256, ours);
    assert_eq!(found.source, scratch.path().join("sha256sum.txt"));
}

#[test]
fn sums_naming_the_decompressed_image_match_the_image() {
    let (scratch, path) = directory_with(b"compressed bytes");
    let file_digest = sha256(b"compressed bytes");
    let image_digest = sha256(b"the image inside");
    write(
        scratch.path(),
        "SHA256SUMS",
        &format!("{}  foo.img\n", sha256_hex(&image_digest)),
    );
    let found = find_checksum(&path).unwrap();
    assert_eq!(found.name.as_deref(), Some("foo.img"));
    assert_eq!(
        found.verdict(Some(&file_digest), Some(&image_digest)),
        Some(ChecksumVerdict::MatchesImage)
    );
    assert_eq!(found.verdict(Some(&file_digest), None), Some(ChecksumVerdict::Mismatch));
}

#[test]
fn wrong_digest_is_a_mismatch() {
    let (scratch, path) = directory_with(b"compressed bytes");
    let wrong = sha256(b"what the publisher meant");
    write(
        scratch.path(),
        "SHA256SUMS",
        &format!("{}  foo.img.xz\n", sha256_hex(&wrong)),
    );
    let found = find_checksum(&path).unwrap();
    let file_digest = sha256(b"compressed bytes");
    let image_digest = sha256(b"the image inside");
    assert_eq!(
        found.verdict(Some(&file_digest), Some(&image_digest)),
        Some(ChecksumVerdict::Mismatch)
    );
}

#[test]
fn unrelated_or_missing_sums_give_nothing() {
    let (scratch, path) = directory_with(b"compressed bytes");
    assert_eq!(find_checksum(&path), None);
    let digest = sha256(b"x");
    write(
        scratch.path(),
        "SHA256SUMS",
        &format!(
            "{}  bar.img\n{}{}  foo.img.xz\n",
            sha256_hex(&digest),
            sha256_hex(&digest),
            sha256_hex(&digest)
        ),
    );
    assert_eq!(find_checksum(&path), None);
}
