//! Every format decodes to the original bytes, with the right format and size.

use std::io::Read;
use std::sync::atomic::Ordering;

use graver_image::{Format, Image, ImageError, ImageSize};

use crate::util::{fixtures, read_all};

/// Opens a fixture, checks its format and size, and checks it decodes to `expected`.
fn check(name: &str, format: Format, size: ImageSize, expected: &[u8]) -> Image {
    let path = fixtures().path(name);
    let image = Image::open(&path).unwrap();
    assert_eq!(image.format(), format, "{name}");
    assert_eq!(image.size(), size, "{name}");
    assert_eq!(image.file_size(), std::fs::metadata(&path).unwrap().len());
    let decoded = read_all(&path).unwrap();
    assert_eq!(decoded.len(), expected.len(), "{name}: length");
    assert!(decoded == expected, "{name}: content differs");
    image
}

fn both() -> Vec<u8> {
    let fixtures = fixtures();
    [fixtures.data.as_slice(), fixtures.other.as_slice()].concat()
}

fn len(bytes: &[u8]) -> u64 {
    bytes.len() as u64
}

#[test]
fn raw_is_exact_and_read_verbatim() {
    let data = &fixtures().data;
    let image = check("image.img", Format::Raw, ImageSize::Exact(len(data)), data);
    assert_eq!(image.inner_name(), None);
}

#[test]
fn small_gzip_is_decoded_whole_at_open_for_its_exact_size() {
    let data = &fixtures().data;
    check("image.img.gz", Format::Gzip, ImageSize::Exact(len(data)), data);
}

#[test]
fn gzip_members_are_all_read() {
    let expected = both();
    // Decoded whole at open, every member counts (the last trailer alone would not).
    check("members.gz", Format::Gzip, ImageSize::Exact(len(&expected)), &expected);
}

#[test]
fn bzip2_streams_are_all_read() {
    // Larger than the sample decoded at open: bzip2 records no size, so it is estimated.
    let data = &fixtures().data;
    let single = Image::open(fixtures().path("image.img.bz2")).unwrap();
    assert!(!single.size().is_exact());
    check("image.img.bz2", Format::Bzip2, single.size(), data);
    let joined = Image::open(fixtures().path("streams.bz2")).unwrap();
    check("streams.bz2", Format::Bzip2, joined.size(), &both());
}

#[test]
fn multi_block_xz_named_img_is_xz_with_exact_size() {
    let data = &fixtures().data;
    check("blocks.img", Format::Xz, ImageSize::Exact(len(data)), data);
}

#[test]
fn single_block_xz_decodes() {
    let data = &fixtures().data;
    check("image.img.xz", Format::Xz, ImageSize::Exact(len(data)), data);
}

#[test]
fn concatenated_xz_streams_are_sized_and_read() {
    let expected = both();
    check("streams.xz", Format::Xz, ImageSize::Exact(len(&expected)), &expected);
}

#[test]
fn zstd_from_a_file_records_its_size() {
    let data = &fixtures().data;
    check("image.img.zst", Format::Zstd, ImageSize::Exact(len(data)), data);
}

#[test]
fn zstd_from_a_pipe_has_an_estimated_size() {
    let data = &fixtures().data;
    let image = Image::open(fixtures().path("piped.zst")).unwrap();
    assert!(!image.size().is_exact());
    assert!(image.size().bytes() > 0);
    check("piped.zst", Format::Zstd, image.size(), data);
}

#[test]
fn zstd_frames_are_all_read() {
    let expected = both();
    check("frames.zst", Format::Zstd, ImageSize::Exact(len(&expected)), &expected);
}

#[test]
fn zstd_behind_a_skippable_frame_is_detected_and_read() {
    let data = &fixtures().data;
    check("skippable.zst", Format::Zstd, ImageSize::Exact(len(data)), data);
}

#[test]
fn zip_picks_the_image_over_the_readme() {
    let data = &fixtures().data;
    let image = check("image.zip", Format::Zip, ImageSize::Exact(len(data)), data);
    assert_eq!(image.inner_name(), Some("image.img"));
}

#[test]
fn stored_zip_entry_is_read() {
    let data = &fixtures().data;
    check("stored.zip", Format::Zip, ImageSize::Exact(len(data)), data);
}

#[test]
fn zip_with_two_images_is_ambiguous_and_names_both() {
    let error = Image::open(fixtures().path("two.zip")).unwrap_err();
    let message = error.to_string();
    match error {
        ImageError::ZipAmbiguous { mut candidates, .. } => {
            candidates.sort();
            assert_eq!(candidates, ["image.img", "second.img"]);
        }
        other => panic!("expected ZipAmbiguous, got {other:?}"),
    }
    assert!(
        message.contains("image.img") && message.contains("second.img"),
        "{message}"
    );
}

#[test]
fn zip_with_only_a_readme_has_no_image() {
    let error = Image::open(fixtures().path("readme.zip")).unwrap_err();
    assert!(matches!(error, ImageError::ZipNoImage { .. }), "{error:?}");
}

#[test]
fn each_reader_starts_at_the_beginning_and_counts_consumed_bytes() {
    let fixtures = fixtures();
    for name in ["image.img", "blocks.img", "image.img.gz", "image.zip"] {
        let image = Image::open(fixtures.path(name)).unwrap();
        for _ in 0..2 {
            let mut reader = image.reader().unwrap();
            let consumed = reader.consumed();
            let mut first = vec![0u8; 4096];
            reader.read_exact(&mut first).unwrap();
            assert_eq!(first, fixtures.data[..4096], "{name}");
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            assert_eq!(rest.len() + 4096, fixtures.data.len(), "{name}");
            let consumed = consumed.load(Ordering::Relaxed);
            assert!(consumed > 0 && consumed <= image.file_size(), "{name}: {consumed}");
            if name != "image.zip" {
                // Everything but a zip (whose directory follows the data) is read to its end.
                assert_eq!(consumed, image.file_size(), "{name}");
            }
        }
    }
}

#[test]
fn missing_empty_and_directory_paths_have_their_own_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let missing = scratch.path().join("nope.img");
    let error = Image::open(&missing).unwrap_err();
    assert!(
        matches!(&error, ImageError::NotFound(path) if *path == missing),
        "{error:?}"
    );
    assert!(error.to_string().contains("nope.img"));

    let empty = scratch.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    let error = Image::open(&empty).unwrap_err();
    assert!(matches!(&error, ImageError::Empty(path) if *path == empty), "{error:?}");

    let error = Image::open(scratch.path()).unwrap_err();
    assert!(matches!(error, ImageError::IsDirectory(_)), "{error:?}");
}

/// A file opened elsewhere (a front end hands it to the privileged worker) is inspected
/// and decoded from the descriptor alone: every stream reads the one open file, so
/// the path may be gone by then, and messages use the name given.
#[test]
fn an_image_opened_by_someone_else_is_read_from_its_file_never_its_path() {
    let scratch = tempfile::tempdir().unwrap();
    let fixtures = fixtures();
    for name in ["image.img.xz", "image.zip", "image.img.gz"] {
        let copy = scratch.path().join(name);
        std::fs::copy(fixtures.path(name), &copy).unwrap();
        let file = std::fs::File::open(&copy).unwrap();
        std::fs::remove_file(&copy).unwrap();
        let image = Image::from_file(file, "shown-name").unwrap();
        assert_eq!(image.path(), std::path::Path::new("shown-name"));
        for _ in 0..2 {
            let mut decoded = Vec::new();
            image.reader().unwrap().read_to_end(&mut decoded).unwrap();
            assert!(decoded.starts_with(&fixtures.data), "{name}: content differs");
        }
    }

    #[cfg(unix)]
    {
        // A FIFO cannot be read twice or sought in: refused, by the name given.
        let fifo = scratch.path().join("fifo");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
        let error = Image::from_file(file, "a pipe").unwrap_err();
        assert!(matches!(&error, ImageError::NotAFile(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "a pipe: not a regular file; only image files can be written"
        );
    }
}
