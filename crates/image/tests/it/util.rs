//! Shared helpers: the test image, the archives the real tools make of it, and reading.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use graver_image::{Image, ImageError};

/// 3 MiB: enough for three 1 MiB xz blocks.
pub const IMAGE_LEN: usize = 3 << 20;

/// Compressible but not trivial: runs of zeros between stretches of xorshift noise
/// drawn from a small alphabet, like a file system image.
pub fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        let run = (next() % 8192) as usize + 1;
        if next() % 3 == 0 {
            data.extend(std::iter::repeat_n(0u8, run));
        } else {
            data.extend((0..run).map(|_| (next() % 16) as u8 * 3));
        }
    }
    data.truncate(len);
    data
}

/// The archives every test uses, made once per test run.
pub struct Fixtures {
    pub dir: PathBuf,
    pub data: Vec<u8>,
    /// A second, different image, for concatenated streams.
    pub other: Vec<u8>,
}

impl Fixtures {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(make_fixtures)
}

fn make_fixtures() -> Fixtures {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graver-image-fixtures");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let data = image_bytes(IMAGE_LEN, 0x9E37_79B9_7F4A_7C15);
    let other = image_bytes(IMAGE_LEN / 3 + 12345, 42);
    let image = dir.join("image.img");
    let second = dir.join("second.img");
    fs::write(&image, &data).unwrap();
    fs::write(&second, &other).unwrap();

    let compress = |tool: &str, args: &[&str], input: &Path, output: &str| {
        let out = run(tool, args, input);
        fs::write(dir.join(output), out).unwrap();
    };
    compress("gzip", &["-c"], &image, "image.img.gz");
    compress("gzip", &["-c"], &second, "second.img.gz");
    compress("bzip2", &["-c"], &image, "image.img.bz2");
    compress("bzip2", &["-c"], &second, "second.img.bz2");
    // Named like a raw image on purpose: the format must come from the magic bytes.
    compress("xz", &["-T0", "--block-size=1MiB", "-c"], &image, "blocks.img");
    compress("xz", &["-c"], &image, "image.img.xz");
    compress("xz", &["-c"], &second, "second.img.xz");
    compress("zstd", &["-q", "-c"], &image, "image.img.zst");
    compress("zstd", &["-q", "-c"], &second, "second.img.zst");

    // From a pipe, zstd cannot know the size and records none.
    let mut child = Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(output.status.success());
    fs::write(dir.join("piped.zst"), output.stdout).unwrap();

    concat(&dir, &["image.img.gz", "second.img.gz"], "members.gz");
    concat(&dir, &["image.img.bz2", "second.img.bz2"], "streams.bz2");
    concat(&dir, &["blocks.img", "second.img.xz"], "streams.xz");
    concat(&dir, &["image.img.zst", "second.img.zst"], "frames.zst");

    let mut skippable = Vec::new();
    skippable.extend_from_slice(&0x184D_2A53u32.to_le_bytes());
    skippable.extend_from_slice(&5u32.to_le_bytes());
    skippable.extend_from_slice(b"hello");
    skippable.extend_from_slice(&fs::read(dir.join("image.img.zst")).unwrap());
    fs::write(dir.join("skippable.zst"), skippable).unwrap();

    fs::write(dir.join("README.txt"), b"Flash me.\n").unwrap();
    zip(&dir, "image.zip", &["image.img", "README.txt"], &[]);
    zip(&dir, "stored.zip", &["image.img"], &["-0"]);
    zip(&dir, "two.zip", &["image.img", "second.img"], &[]);
    zip(&dir, "readme.zip", &["README.txt"], &[]);

    Fixtures { dir, data, other }
}

fn run(tool: &str, args: &[&str], input: &Path) -> Vec<u8> {
    let output = Command::new(tool).args(args).arg(input).output().unwrap();
    assert!(output.status.success(), "{tool} failed");
    output.stdout
}

fn concat(dir: &Path, parts: &[&str], output: &str) {
    let mut joined = Vec::new();
    for part in parts {
        joined.extend(fs::read(dir.join(part)).unwrap());
    }
    fs::write(dir.join(output), joined).unwrap();
}

fn zip(dir: &Path, archive: &str, members: &[&str], options: &[&str]) {
    let status = Command::new("zip")
        .current_dir(dir)
        .arg("-q")
        .args(options)
        .arg(archive)
        .args(members)
        .status()
        .unwrap();
    assert!(status.success(), "zip failed");
}

/// Opens `path` and reads the whole decompressed image.
pub fn read_all(path: &Path) -> Result<Vec<u8>, ReadFailure> {
    let image = Image::open(path).map_err(ReadFailure::Open)?;
    let mut out = Vec::new();
    image
        .reader()
        .map_err(ReadFailure::Open)?
        .read_to_end(&mut out)
        .map_err(ReadFailure::Read)?;
    Ok(out)
}

/// Where reading an image failed.
#[derive(Debug)]
pub enum ReadFailure {
    Open(ImageError),
    Read(io::Error),
}

/// A scratch copy of a fixture with `damage` applied, in its own directory.
pub fn damaged_copy(name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let scratch = tempfile::tempdir().unwrap();
    let mut bytes = fs::read(fixtures().path(name)).unwrap();
    damage(&mut bytes);
    let path = scratch.path().join(name);
    fs::write(&path, bytes).unwrap();
    (scratch, path)
}
