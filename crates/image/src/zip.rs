//! zip: reading the central directory, choosing the disk image among the entries,
//! and streaming that entry with its CRC checked.

use std::io::{self, Read, Seek, SeekFrom};

use crate::format::{le16, le32, le64, read_up_to};
use crate::reader::invalid;

const EOCD_SIGNATURE: u32 = 0x0605_4B50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4B50;
const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4B50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4B50;
const LOCAL_SIGNATURE: u32 = 0x0403_4B50;
const EOCD_LEN: u64 = 22;
/// Entries kept while reading the directory: a real image archive holds a handful of
/// files, and only those that could be the image are kept at all.
const MAX_CANDIDATES: usize = 64;

/// Compression methods the entry reader can decode.
pub(crate) const STORED: u16 = 0;
pub(crate) const DEFLATE: u16 = 8;
pub(crate) const BZIP2: u16 = 12;
pub(crate) const ZSTD: u16 = 93;
pub(crate) const XZ: u16 = 95;

/// Names that accompany an image in an archive but are never the image.
const METADATA_SUFFIXES: [&str; 9] = [
    ".sha256", ".md5", ".sig", ".asc", ".txt", ".md", ".bmap", ".sha1", ".sha512",
];
/// Extensions that mark a file as a disk image when an archive holds several files.
const IMAGE_EXTENSIONS: [&str; 8] = [".img", ".iso", ".raw", ".dd", ".wic", ".bin", ".hddimg", ".sdcard"];

/// One entry of the central directory.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) method: u16,
    pub(crate) encrypted: bool,
    pub(crate) crc32: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    pub(crate) local_header_offset: u64,
}

/// Reads the end-of-central-directory record (and its zip64 form) and every central
/// entry; returns those that could be the disk image.
pub(crate) fn read_directory<R: Read + Seek>(file: &mut R, file_size: u64) -> Result<Vec<Entry>, String> {
    let tail_len = file_size.min(EOCD_LEN + 0xFFFF);
    let tail_start = file_size - tail_len;
    let tail = read_at(file, tail_start, tail_len)?;
    let eocd_at = (0..tail.len().saturating_sub(EOCD_LEN as usize - 1))
        .rev()
        .find(|&i| le32(&tail[i..]) == EOCD_SIGNATURE)
        .ok_or("no end-of-central-directory record: the archive is truncated or not a zip")?;
    let eocd = &tail[eocd_at..];
    let mut entries = u64::from(le16(&eocd[10..]));
    let mut directory_len = u64::from(le32(&eocd[12..]));
    let mut directory_offset = u64::from(le32(&eocd[16..]));
    let eocd_offset = tail_start + eocd_at as u64;

    if entries == 0xFFFF || directory_len == 0xFFFF_FFFF || directory_offset == 0xFFFF_FFFF {
        let locator_offset = eocd_offset
            .checked_sub(20)
            .ok_or("the zip64 end-of-central-directory locator is missing")?;
        let locator = read_at(file, locator_offset, 20)?;
        if le32(&locator) != ZIP64_LOCATOR_SIGNATURE {
            return Err("the zip64 end-of-central-directory locator is missing".into());
        }
        let record = read_at(file, le64(&locator[8..]), 56)?;
        if le32(&record) != ZIP64_EOCD_SIGNATURE {
            return Err("the zip64 end-of-central-directory record is missing".into());
        }
        entries = le64(&record[32..]);
        directory_len = le64(&record[40..]);
        directory_offset = le64(&record[48..]);
    }
    if directory_offset
        .checked_add(directory_len)
        .is_none_or(|end| end > eocd_offset)
    {
        return Err("the central directory lies outside the file".into());
    }
    // The directory is read as a stream, one entry at a time, and only entries that could
    // be the image are kept: its size, however large, takes no memory.
    file.seek(SeekFrom::Start(directory_offset))
        .map_err(|e| e.to_string())?;
    let mut directory = io::BufReader::with_capacity(1 << 16, file.take(directory_len));
    let mut kept = Vec::new();
    let mut variable = Vec::new();
    for _ in 0..entries {
        let mut fixed = [0u8; 46];
        directory
            .read_exact(&mut fixed)
            .map_err(|_| "the central directory ends early")?;
        if le32(&fixed) != CENTRAL_SIGNATURE {
            return Err("a central directory entry is damaged".into());
        }
        let flags = le16(&fixed[8..]);
        let name_len = usize::from(le16(&fixed[28..]));
        let extra_len = usize::from(le16(&fixed[30..]));
        let comment_len = usize::from(le16(&fixed[32..]));
        variable.resize(name_len + extra_len + comment_len, 0);
        directory
            .read_exact(&mut variable)
            .map_err(|_| "the central directory ends early")?;
        let mut entry = Entry {
            name: String::from_utf8_lossy(&variable[..name_len]).into_owned(),
            method: le16(&fixed[10..]),
            encrypted: flags & 1 != 0,
            crc32: le32(&fixed[16..]),
            compressed_size: u64::from(le32(&fixed[20..])),
            uncompressed_size: u64::from(le32(&fixed[24..])),
            local_header_offset: u64::from(le32(&fixed[42..])),
        };
        apply_zip64_extra(&mut entry, &variable[name_len..name_len + extra_len])?;
        if could_be_image(&entry) {
            if kept.len() == MAX_CANDIDATES {
                return Err(format!(
                    "the archive lists more than {MAX_CANDIDATES} files that could be the disk image"
                ));
            }
            kept.push(entry);
        }
    }
    Ok(kept)
}

/// Replaces the 32-bit fields that overflowed with the values of the zip64 extra field,
/// which holds, in order, only those that are 0xFFFFFFFF.
fn apply_zip64_extra(entry: &mut Entry, mut extra: &[u8]) -> Result<(), String> {
    while extra.len() >= 4 {
        let id = le16(extra);
        let len = usize::from(le16(&extra[2..]));
        let data = extra.get(4..4 + len).ok_or("a zip extra field runs past its entry")?;
        if id == 0x0001 {
            let mut values = data.chunks_exact(8).map(le64);
            let mut take = |field: &mut u64| -> Result<(), String> {
                if *field == 0xFFFF_FFFF {
                    *field = values.next().ok_or("a zip64 extra field lacks a size or offset")?;
                }
                Ok(())
            };
            take(&mut entry.uncompressed_size)?;
            take(&mut entry.compressed_size)?;
            take(&mut entry.local_header_offset)?;
        }
        extra = &extra[4 + len..];
    }
    Ok(())
}

/// Where the entry's compressed data starts: after its local header, name and extra field.
pub(crate) fn data_offset<R: Read + Seek>(file: &mut R, entry: &Entry) -> Result<u64, String> {
    let header = read_at(file, entry.local_header_offset, 30)?;
    if le32(&header) != LOCAL_SIGNATURE {
        return Err(format!("the local header of {} is missing", entry.name));
    }
    // The offset comes from the file: near u64::MAX, adding the header would wrap.
    entry
        .local_header_offset
        .checked_add(30 + u64::from(le16(&header[26..])) + u64::from(le16(&header[28..])))
        .ok_or_else(|| format!("the local header of {} lies past any file's end", entry.name))
}

fn read_at<R: Read + Seek>(file: &mut R, offset: u64, len: u64) -> Result<Vec<u8>, String> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; usize::try_from(len).map_err(|e| e.to_string())?];
    if read_up_to(file, &mut buf).map_err(|e| e.to_string())? < buf.len() {
        return Err("the archive ends early: it is truncated".into());
    }
    Ok(buf)
}

/// The result of looking for the disk image among an archive's entries.
#[derive(Debug)]
pub(crate) enum Choice {
    /// Exactly one entry is the image.
    One(Entry),
    /// No entry could be the image.
    None,
    /// Several entries could each be the image.
    Several(Vec<String>),
}

/// Picks the disk image: ignores directories, macOS resource forks, dot-files and small
/// metadata files; if several remain, keeps those with a disk-image extension.
pub(crate) fn choose(entries: Vec<Entry>) -> Choice {
    let mut candidates: Vec<Entry> = entries.into_iter().filter(could_be_image).collect();
    if candidates.len() > 1 {
        let with_image_extension: Vec<Entry> = candidates
            .iter()
            .filter(|entry| has_image_extension(&entry.name))
            .cloned()
            .collect();
        if !with_image_extension.is_empty() {
            candidates = with_image_extension;
        }
    }
    match candidates.len() {
        0 => Choice::None,
        1 => candidates.pop().map_or(Choice::None, Choice::One),
        _ => Choice::Several(candidates.into_iter().map(|entry| entry.name).collect()),
    }
}

fn could_be_image(entry: &Entry) -> bool {
    let name = &entry.name;
    let base = name.rsplit('/').next().unwrap_or(name).to_lowercase();
    !(name.ends_with('/')
        || name.starts_with("__MACOSX/")
        || base.is_empty()
        || base.starts_with('.')
        || base.starts_with("sha256sums")
        || METADATA_SUFFIXES.iter().any(|suffix| base.ends_with(suffix)))
}

fn has_image_extension(name: &str) -> bool {
    let lower = name.to_lowercase();
    IMAGE_EXTENSIONS.iter().any(|ext| lower.ends_with(ext))
}

/// Checks the CRC32 and the length of an entry's decoded bytes when they end.
pub(crate) struct CheckedEntry<R> {
    inner: R,
    name: String,
    hasher: crc32fast::Hasher,
    expected_crc: u32,
    expected_len: u64,
    len: u64,
}

impl<R> CheckedEntry<R> {
    pub(crate) fn new(inner: R, entry: &Entry) -> CheckedEntry<R> {
        CheckedEntry {
            inner,
            name: entry.name.clone(),
            hasher: crc32fast::Hasher::new(),
            expected_crc: entry.crc32,
            expected_len: entry.uncompressed_size,
            len: 0,
        }
    }
}

impl<R: Read> Read for CheckedEntry<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if self.len != self.expected_len {
                return Err(invalid(format!(
                    "zip entry {} decodes to {} bytes but the directory records {}",
                    self.name, self.len, self.expected_len
                )));
            }
            let crc = self.hasher.clone().finalize();
            if crc != self.expected_crc {
                return Err(invalid(format!(
                    "zip entry CRC mismatch for {}: the directory records {:08x}, the data gives {crc:08x}",
                    self.name, self.expected_crc
                )));
            }
            return Ok(0);
        }
        self.len += n as u64;
        if self.len > self.expected_len {
            return Err(invalid(format!(
                "zip entry {} decodes to more bytes than the directory records ({})",
                self.name, self.expected_len
            )));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
