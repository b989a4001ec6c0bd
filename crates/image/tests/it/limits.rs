//! Files that ask for more memory than the budget, or lie about their sizes: refused at
//! open or sized as unknown, never obeyed.

use std::io::Write;
use std::process::{Command, Stdio};

use graver_image::{Format, Image, ImageError, ImageSize, MemoryBudget};

use crate::util::{image_bytes, read_all};

fn tool(name: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(name)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(output.status.success(), "{name} failed");
    output.stdout
}

fn written(bytes: &[u8], name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// The refusal for `bytes`, which must name the memory needed.
fn refusal(bytes: &[u8], name: &str, needed: &str) -> ImageError {
    let (_dir, path) = written(bytes, name);
    let error = Image::open(&path).unwrap_err();
    assert!(
        matches!(error, ImageError::NeedsTooMuchMemory { .. }),
        "{name}: {error:?}"
    );
    assert!(error.to_string().contains(needed), "{name}: {error}");
    error
}

#[test]
fn an_xz_dictionary_beyond_the_budget_is_refused_at_open() {
    let mut bytes = tool("xz", &["-c", "--lzma2=dict=4MiB"], &image_bytes(100_000, 3));
    // The first block header follows the 12-byte stream header: size, flags, filter id
    // 0x21, properties length 1, then the dictionary byte. 37 stands for 1.5 GiB.
    let header_len = (usize::from(bytes[12]) + 1) * 4;
    let header = &mut bytes[12..12 + header_len];
    let at = header.windows(2).position(|pair| pair == [0x21, 0x01]).unwrap() + 2;
    header[at] = 37;
    let crc = crc32fast::hash(&header[..header_len - 4]);
    header[header_len - 4..].copy_from_slice(&crc.to_le_bytes());
    let error = refusal(&bytes, "huge-dictionary.img.xz", "1.5 GiB");
    assert!(error.to_string().contains("dictionary"), "{error}");
}

#[test]
fn a_zstd_window_beyond_the_budget_is_refused_at_open() {
    // From a pipe: no recorded size, so the frame has a window descriptor.
    let mut bytes = tool("zstd", &["-q", "-c"], &image_bytes(100_000, 4));
    assert_eq!(bytes[4] & 0x20, 0, "the frame must have a window descriptor");
    // The descriptor after the frame header byte: exponent 21 is a 2 GiB window.
    bytes[5] = 21 << 3;
    let error = refusal(&bytes, "huge-window.img.zst", "2 GiB");
    assert!(error.to_string().contains("window"), "{error}");
}

#[test]
fn a_single_segment_zstd_frame_claiming_a_huge_size_is_refused() {
    let (dir, plain) = written(&image_bytes(1000, 5), "plain.img");
    let output = Command::new("zstd")
        .args(["-q", "-c", "--no-check"])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(output.status.success());
    drop(dir);
    let mut bytes = output.stdout;
    // A small input with a known size makes a single-segment frame, whose window is its
    // content size; claim 8 GiB of content in an 8-byte size field.
    let descriptor = bytes[4];
    assert_ne!(descriptor & 0x20, 0, "expected a single-segment frame");
    let old_len = match descriptor >> 6 {
        0 => 1,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let mut forged = bytes[..4].to_vec();
    forged.push((descriptor & 0x3F) | 0xC0);
    forged.extend_from_slice(&(8u64 << 30).to_le_bytes());
    forged.extend_from_slice(&bytes[5 + old_len..]);
    bytes = forged;
    refusal(&bytes, "lying.img.zst", "8 GiB");
}

#[test]
fn a_smaller_budget_decodes_multi_block_xz_in_fewer_threads_and_the_same_bytes() {
    let data = image_bytes(3 << 20, 6);
    let bytes = tool("xz", &["-c", "-1", "-T2", "--block-size=256KiB"], &data);
    let (_dir, path) = written(&bytes, "blocks.img.xz");
    for budget in [MemoryBudget::new(4 << 20, 1), MemoryBudget::new(64 << 20, 4)] {
        let image = Image::open_with_budget(&path, budget).unwrap();
        let mut decoded = Vec::new();
        std::io::Read::read_to_end(&mut image.reader().unwrap(), &mut decoded).unwrap();
        assert!(decoded == data, "{budget}: content differs");
    }
}

/// A gzip file too large to be decoded whole at open: incompressible data, 6 MiB.
fn large_gzip() -> (Vec<u8>, Vec<u8>) {
    let data = image_bytes(6 << 20, 7);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let noise: Vec<u8> = data
        .iter()
        .map(|&byte| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            byte ^ state as u8
        })
        .collect();
    let bytes = tool("gzip", &["-c"], &noise);
    (noise, bytes)
}

#[test]
fn a_large_gzip_is_sized_by_its_trailer() {
    let (data, bytes) = large_gzip();
    assert!(bytes.len() > 4 << 20);
    let (_dir, path) = written(&bytes, "large.img.gz");
    let image = Image::open(&path).unwrap();
    assert_eq!(image.size(), ImageSize::Estimate(data.len() as u64));
    assert!(read_all(&path).unwrap() == data);
}

#[test]
fn a_cut_gzip_whose_last_bytes_claim_too_much_has_an_unknown_size() {
    let (_, mut bytes) = large_gzip();
    bytes.truncate(5 << 20);
    // What the last four bytes of a cut file say is chance; here they claim almost 4 GiB,
    // which the last MiB after the sample cannot expand to.
    let end = bytes.len();
    bytes[end - 4..].copy_from_slice(&0xFFFF_FF00u32.to_le_bytes());
    let (_dir, path) = written(&bytes, "cut.img.gz");
    let image = Image::open(&path).unwrap();
    assert_eq!(image.format(), Format::Gzip);
    assert_eq!(image.size(), ImageSize::Unknown);
}

#[test]
fn a_small_cut_gzip_has_an_unknown_size_whatever_its_last_bytes_say() {
    let bytes = tool("gzip", &["-c"], &image_bytes(3 << 20, 8));
    let cut = &bytes[..bytes.len() / 2];
    let (_dir, path) = written(cut, "cut.img.gz");
    assert_eq!(Image::open(&path).unwrap().size(), ImageSize::Unknown);
    let bytes = tool("bzip2", &["-c"], &image_bytes(3 << 20, 8));
    let (_dir, path) = written(&bytes[..bytes.len() / 2], "cut.img.bz2");
    assert_eq!(Image::open(&path).unwrap().size(), ImageSize::Unknown);
}
