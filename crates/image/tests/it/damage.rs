//! Truncated and bit-flipped archives fail, at open or while reading; never short data.

use std::io::ErrorKind;

use graver_image::ImageError;

use crate::util::{ReadFailure, damaged_copy, read_all};

const COMPRESSED: [&str; 11] = [
    "image.img.gz",
    "members.gz",
    "image.img.bz2",
    "blocks.img",
    "image.img.xz",
    "streams.xz",
    "image.img.zst",
    "piped.zst",
    "frames.zst",
    "image.zip",
    "stored.zip",
];

/// Asserts that reading the damaged file fails as bad input; returns the message.
fn expect_bad_input(name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> String {
    let (_scratch, path) = damaged_copy(name, damage);
    match read_all(&path) {
        Ok(data) => panic!("{name}: damaged file decoded to {} bytes without error", data.len()),
        Err(ReadFailure::Open(error @ ImageError::Corrupt { .. })) => error.to_string(),
        Err(ReadFailure::Open(other)) => panic!("{name}: unexpected open error {other:?}"),
        Err(ReadFailure::Read(error)) => {
            assert_eq!(error.kind(), ErrorKind::InvalidData, "{name}: {error}");
            error.to_string()
        }
    }
}

fn format_name(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("gz") => "gzip",
        Some("bz2") => "bzip2",
        Some("xz" | "img") => "xz",
        Some("zst") => "zstd",
        _ => "zip",
    }
}

#[test]
fn truncated_archives_fail() {
    for name in COMPRESSED {
        let message = expect_bad_input(name, |bytes| bytes.truncate(bytes.len() / 2));
        assert!(message.contains(format_name(name)), "{name}: {message}");
    }
}

#[test]
fn bit_flipped_archives_fail() {
    for name in COMPRESSED {
        let message = expect_bad_input(name, |bytes| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x10;
        });
        assert!(message.contains(format_name(name)), "{name}: {message}");
    }
}

#[test]
fn truncated_gzip_says_truncated() {
    let message = expect_bad_input("image.img.gz", |bytes| bytes.truncate(bytes.len() / 2));
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn stored_zip_with_a_flipped_byte_reports_the_crc() {
    let message = expect_bad_input("stored.zip", |bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
    });
    assert!(message.contains("CRC"), "{message}");
}

#[test]
fn xz_cut_anywhere_is_refused_at_open() {
    for cut in [1, 13, 1000] {
        let (_scratch, path) = damaged_copy("blocks.img", |bytes| bytes.truncate(bytes.len() - cut));
        let error = graver_image::Image::open(&path).unwrap_err();
        assert!(matches!(error, ImageError::Corrupt { .. }), "cut {cut}: {error:?}");
    }
}

#[test]
fn zstd_cut_inside_a_frame_is_refused_at_open() {
    let (_scratch, path) = damaged_copy("frames.zst", |bytes| bytes.truncate(bytes.len() - 3));
    let error = graver_image::Image::open(&path).unwrap_err();
    assert!(matches!(error, ImageError::Corrupt { .. }), "{error:?}");
}

#[test]
fn a_zstd_frame_shorter_than_its_header_records_fails_with_either_decoder() {
    // A frame recording 54784 bytes whose only block is an empty last one: the walk at
    // open takes the recorded size; libzstd's streaming decoder would end with nothing.
    let mut bytes = vec![0x28, 0xB5, 0x2F, 0xFD, 0x80, 0x00];
    bytes.extend_from_slice(&54_784u32.to_le_bytes());
    bytes.extend_from_slice(&[0x01, 0x00, 0x00]);
    let message = expect_bad_input("image.img.zst", |file| *file = bytes);
    assert!(message.contains("zstd"), "{message}");
}
