use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// The container or compression format of an image file, as its magic bytes announce it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Uncompressed: an ISO, IMG or anything else without a known compression header.
    Raw,
    /// gzip, possibly several members concatenated.
    Gzip,
    /// bzip2, possibly several streams concatenated.
    Bzip2,
    /// xz, possibly several blocks and streams.
    Xz,
    /// Zstandard, possibly several frames and skippable frames.
    Zstd,
    /// A zip archive holding one disk image.
    Zip,
}

impl Format {
    /// The format's short lowercase name: `"raw"`, `"gzip"`, `"bzip2"`, `"xz"`, `"zstd"` or `"zip"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Zip => "zip",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0x00];
pub(crate) const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Whether `magic` opens a zstd skippable frame (0x184D2A50 to 0x184D2A5F).
pub(crate) fn is_skippable_magic(magic: u32) -> bool {
    magic & 0xFFFF_FFF0 == 0x184D_2A50
}

/// Works out the format from the first bytes of `file`, never from its name.
pub(crate) fn sniff<R: Read + Seek>(file: &mut R) -> io::Result<Format> {
    let mut head = [0u8; 8];
    let len = read_up_to(file, &mut head)?;
    let head = &head[..len];
    let format = if head.starts_with(&[0x1F, 0x8B]) {
        Format::Gzip
    } else if head.starts_with(b"BZh") {
        Format::Bzip2
    } else if head.starts_with(&XZ_MAGIC) {
        Format::Xz
    } else if head.starts_with(&ZSTD_MAGIC.to_le_bytes()) {
        Format::Zstd
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Format::Zip
    } else if len == 8 && is_skippable_magic(le32(&head[..4])) && zstd_after_skippable(file)? {
        Format::Zstd
    } else {
        Format::Raw
    };
    Ok(format)
}

/// Follows skippable frames from the start of the file and tells whether a zstd frame comes next.
fn zstd_after_skippable<R: Read + Seek>(file: &mut R) -> io::Result<bool> {
    let mut position = 0u64;
    // A real file has one or two skippable frames in front; a long chain is not zstd.
    for _ in 0..16 {
        file.seek(SeekFrom::Start(position))?;
        let mut header = [0u8; 8];
        if read_up_to(file, &mut header)? < 4 {
            return Ok(false);
        }
        let magic = le32(&header[..4]);
        if magic == ZSTD_MAGIC {
            return Ok(true);
        }
        if !is_skippable_magic(magic) {
            return Ok(false);
        }
        position += 8 + u64::from(le32(&header[4..8]));
    }
    Ok(false)
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read
/// (fewer than `buf.len()` only at the end). `Interrupted` reads are retried.
pub fn read_up_to<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    fill_with(buf, |rest, _| reader.read(rest))
}

/// The one "read until full" loop: calls `read` with the part of `buf` still empty and
/// how many bytes are already in, until `buf` is full or `read` returns 0 (the end);
/// returns how many bytes were read. `Interrupted` reads are retried. Positional reads
/// (`read_at`, `seek_read`) use the count as their offset.
pub fn fill_with(buf: &mut [u8], mut read: impl FnMut(&mut [u8], usize) -> io::Result<usize>) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match read(&mut buf[filled..], filled) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A little-endian u32 from the first four bytes of `bytes`.
pub(crate) fn le32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

/// A little-endian u16 from the first two bytes of `bytes`.
pub(crate) fn le16(bytes: &[u8]) -> u16 {
    u16::from_le_bytes([bytes[0], bytes[1]])
}

/// A little-endian u64 from the first eight bytes of `bytes`.
pub(crate) fn le64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}
