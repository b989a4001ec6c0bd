//! The direct zstd decoder: the same bytes as the streaming one across buffer
//! boundaries, its history in the buffer before, and the same failures.
#![cfg(feature = "native-codecs")]

use std::fs;
use std::io::{self, ErrorKind};
use std::path::Path;
use std::process::Command;

use graver_image::{DirectReader, Image};

use crate::util::{ReadFailure, damaged_copy, fixtures, read_all};

/// Decodes like the write pipeline does: each buffer filled in turn, the one before
/// handed back as history. A buffer is scribbled over before reuse, so nothing can
/// depend on what it held. Returns the bytes and how many buffers they took.
fn direct_all(direct: &mut DirectReader, want: usize) -> io::Result<(Vec<u8>, usize)> {
    let mut previous = vec![0u8; want + DirectReader::SLACK];
    let mut current = vec![0u8; want + DirectReader::SLACK];
    let mut out = Vec::new();
    let mut first = true;
    let mut buffers = 0;
    loop {
        current.fill(0xA5);
        let history = (!first).then_some(previous.as_slice());
        let len = direct.fill(history, &mut current, want)?;
        first = false;
        buffers += 1;
        out.extend_from_slice(&current[..len]);
        if len < want {
            return Ok((out, buffers));
        }
        std::mem::swap(&mut previous, &mut current);
    }
}

fn open_direct(path: &Path) -> DirectReader {
    Image::open(path)
        .unwrap()
        .direct_reader()
        .unwrap()
        .expect("a direct decoder")
}

/// How decoding all of `direct` fails, checked to be bad input.
fn direct_failure(mut direct: DirectReader) -> io::Error {
    let want = direct.min_want();
    let error = direct_all(&mut direct, want).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    error
}

/// A zstd file of `data` made by the real tool with `args`, from a pipe (so the
/// window is what `args` say, not cut to the input's size), in a fresh directory.
fn compressed(data: &[u8], args: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("image.img");
    fs::write(&input, data).unwrap();
    let output = dir.path().join("image.img.zst");
    let status = Command::new("zstd")
        .args(args)
        .args(["-q", "-c"])
        .stdin(fs::File::open(&input).unwrap())
        .stdout(fs::File::create(&output).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "zstd {args:?} failed");
    (dir, output)
}

#[test]
fn every_zstd_fixture_decodes_as_the_stream_does() {
    for name in ["image.img.zst", "piped.zst", "frames.zst", "skippable.zst"] {
        let path = fixtures().path(name);
        let expected = read_all(&path).unwrap();
        let mut direct = open_direct(&path);
        let want = direct.min_want();
        let (decoded, _) = direct_all(&mut direct, want).unwrap();
        assert!(decoded == expected, "{name}: direct decoding differs");
    }
}

#[test]
fn history_crosses_buffers_at_every_level_and_buffer_size() {
    let data = &fixtures().data;
    // A 128 KiB window: the 3 MiB image spans a dozen buffers, every back-reference
    // near a boundary reaches into the buffer before.
    for args in [
        &["--zstd=wlog=17"][..],
        &["-19", "--zstd=wlog=17"],
        &["-1", "--zstd=wlog=17"],
    ] {
        let (_dir, path) = compressed(data, args);
        let least = open_direct(&path).min_want();
        for want in [least, least + 4096, least * 2 + 12345] {
            let mut direct = open_direct(&path);
            let (decoded, buffers) = direct_all(&mut direct, want).unwrap();
            assert!(buffers > 5, "{args:?}: only {buffers} buffers");
            assert!(decoded == *data, "{args:?}, want {want}: direct decoding differs");
        }
        assert!(
            least > 128 << 10,
            "{args:?}: min_want {least} leaves no room for the window"
        );
    }
}

#[test]
fn a_window_larger_than_eight_mib_is_left_to_the_stream() {
    let (_dir, path) = compressed(&fixtures().data, &["--zstd=wlog=24"]);
    let image = Image::open(&path).unwrap();
    assert!(image.direct_reader().unwrap().is_none());
    assert!(read_all(&path).unwrap() == fixtures().data);
}

#[test]
fn buffers_that_break_the_rules_are_refused_not_trusted() {
    let (_dir, path) = compressed(&fixtures().data, &["--zstd=wlog=17"]);
    let mut direct = open_direct(&path);
    let want = direct.min_want();
    let error = direct.fill(None, &mut vec![0; want], want).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    let error = direct.fill(None, &mut vec![0; want], want - 1).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");

    let mut direct = open_direct(&path);
    let mut first = vec![0; want + DirectReader::SLACK];
    assert_eq!(direct.fill(None, &mut first, want).unwrap(), want);
    // Not the buffer just filled: libzstd would read its history from freed memory.
    let stranger = first.clone();
    let mut second = vec![0; want + DirectReader::SLACK];
    let error = direct.fill(Some(&stranger), &mut second, want).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    let error = direct.fill(None, &mut second, want).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
}

#[test]
fn a_flipped_byte_fails_as_corrupt_zstd() {
    let (_scratch, path) = damaged_copy("frames.zst", |bytes| {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
    });
    let error = direct_failure(open_direct(&path));
    assert!(error.to_string().contains("zstd"), "{error}");
}

#[test]
fn a_file_cut_after_it_was_opened_fails_as_truncated() {
    // The walk at open finds a cut; one made after it must still fail, not end early.
    for cut in [3, 1000, 100_000] {
        let (_scratch, path) = damaged_copy("skippable.zst", |_| {});
        let direct = open_direct(&path);
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - cut)
            .unwrap();
        let error = direct_failure(direct);
        assert!(error.to_string().contains("truncated"), "cut {cut}: {error}");
    }
}

#[test]
fn consumed_reaches_the_file_size() {
    let path = fixtures().path("frames.zst");
    let mut direct = open_direct(&path);
    let want = direct.min_want();
    direct_all(&mut direct, want).unwrap();
    let consumed = direct.consumed().load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(consumed, fs::metadata(&path).unwrap().len());
}

#[test]
fn a_frame_shorter_than_its_header_records_is_refused() {
    // A frame recording 54784 bytes whose only block is an empty last one: libzstd's
    // streaming decoder returns nothing and no error; the direct decoder refuses it.
    let mut bytes = vec![0x28, 0xB5, 0x2F, 0xFD, 0x80, 0x00];
    bytes.extend_from_slice(&54_784u32.to_le_bytes());
    bytes.extend_from_slice(&[0x01, 0x00, 0x00]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.zst");
    fs::write(&path, &bytes).unwrap();
    let error = direct_failure(open_direct(&path));
    assert!(
        error.to_string().contains("fewer bytes than its header records"),
        "{error}"
    );
    // The stream too: its total is held to the sizes the headers record.
    match read_all(&path) {
        Err(ReadFailure::Read(error)) => {
            assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
            assert!(error.to_string().contains("fewer than the 54784"), "{error}");
        }
        other => panic!("the stream let a short frame through: {other:?}"),
    }
}

#[test]
fn a_repeated_byte_block_in_a_frame_of_no_bytes_is_refused_and_only_there() {
    // A single-segment frame recording 0 bytes has a window of 0 bytes. libzstd's
    // block-at-a-time decoder takes a repeated-byte block there for corrupt data (it
    // measures the block by its one stored byte), its one-pass decoder lets it
    // through: the direct decoder refuses it with a reason of its own (found by the
    // zstd_direct fuzz target).
    let frame = |descriptor: u8, size_field: &[u8]| {
        let mut bytes = vec![0x28, 0xB5, 0x2F, 0xFD, descriptor];
        bytes.extend_from_slice(size_field);
        // An empty repeated-byte block (its byte stored), then an empty last raw block.
        bytes.extend_from_slice(&[0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]);
        bytes
    };
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single-segment.zst");
    fs::write(&single, frame(0x20, &[0x00])).unwrap();
    let error = direct_failure(open_direct(&single));
    assert!(
        error
            .to_string()
            .contains("a repeated-byte block in a frame of no bytes"),
        "{error}"
    );
    // The same blocks in a frame that also records 0 bytes but has a window of its own
    // (1 KiB, and a 4-byte size field) decode to nothing, as libzstd decodes them.
    let windowed = dir.path().join("windowed.zst");
    fs::write(&windowed, frame(0x80, &[0x00, 0x00, 0x00, 0x00, 0x00])).unwrap();
    let mut direct = open_direct(&windowed);
    let want = direct.min_want();
    let (decoded, _) = direct_all(&mut direct, want).unwrap();
    assert!(decoded.is_empty());
}

#[test]
fn a_skippable_frame_longer_than_what_is_read_ahead_is_passed_over() {
    // 600 KiB of user data before the image: passed over, read through rather than sought past.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    bytes.extend_from_slice(&(600u32 << 10).to_le_bytes());
    bytes.resize(bytes.len() + (600 << 10), 0x5A);
    bytes.extend_from_slice(&fs::read(fixtures().path("image.img.zst")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big-skippable.zst");
    fs::write(&path, &bytes).unwrap();
    let mut direct = open_direct(&path);
    let want = direct.min_want();
    let (decoded, _) = direct_all(&mut direct, want).unwrap();
    assert!(decoded == fixtures().data, "direct decoding differs");

    // Cut inside the skippable frame after the open: truncated, not an empty image.
    let direct = open_direct(&path);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(300 << 10)
        .unwrap();
    let error = direct_failure(direct);
    assert!(error.to_string().contains("truncated"), "{error}");
}
