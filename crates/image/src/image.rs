use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bzip2::read::{BzDecoder, MultiBzDecoder};
use flate2::read::{DeflateDecoder, MultiGzDecoder};
use lzma_rust2::XzReader;

use crate::format::{le32, read_up_to, sniff};
use crate::reader::{CountingFile, NamedErrors};
use crate::{Format, ImageError, ImageReader, xz, zip, zstd};

/// How far ahead the decoders read from the file.
const READ_AHEAD: usize = 1 << 18;
/// The rough expansion assumed for bzip2, which records no size anywhere.
const BZIP2_RATIO: u64 = 5;

/// The uncompressed size of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "bytes", rename_all = "lowercase")]
pub enum ImageSize {
    /// The size is known to the byte (raw, xz, zip, and zstd whose frames record it).
    Exact(u64),
    /// The size is a guess (gzip's 32-bit trailer, bzip2, zstd frames without a size);
    /// the real image may be larger or smaller.
    Estimate(u64),
}

impl ImageSize {
    /// The size in bytes, exact or estimated.
    pub fn bytes(self) -> u64 {
        match self {
            ImageSize::Exact(bytes) | ImageSize::Estimate(bytes) => bytes,
        }
    }

    /// Whether the size is known to the byte.
    pub fn is_exact(self) -> bool {
        matches!(self, ImageSize::Exact(_))
    }
}

/// What [`Image::reader`] needs beyond the format, worked out once at open time.
#[derive(Debug, Clone)]
enum Layout {
    Plain,
    Xz(Arc<xz::Layout>),
    Zip { entry: zip::Entry, data_offset: u64 },
}

/// An image file, opened and inspected: its format, its sizes, and where its data lies.
#[derive(Debug, Clone)]
pub struct Image {
    path: PathBuf,
    format: Format,
    file_size: u64,
    size: ImageSize,
    layout: Layout,
}

impl Image {
    /// Opens and inspects the image at `path`.
    ///
    /// Rejects a missing file, a directory and an empty file, each with its own
    /// [`ImageError`] variant. The format comes from the magic bytes, never from the
    /// file name. The structure a format records (xz indexes, zstd frame headers, the
    /// zip directory) is read here, so a truncated archive is usually refused right away.
    pub fn open(path: impl AsRef<Path>) -> Result<Image, ImageError> {
        let path = path.as_ref().to_path_buf();
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::NotFound(path));
            }
            Err(source) => return Err(ImageError::Io { path, source }),
        };
        if metadata.is_dir() {
            return Err(ImageError::IsDirectory(path));
        }
        let file_size = metadata.len();
        if file_size == 0 {
            return Err(ImageError::Empty(path));
        }
        let mut file = match File::open(&path) {
            Ok(file) => BufReader::new(file),
            Err(source) => return Err(ImageError::Io { path, source }),
        };
        let format = match sniff(&mut file) {
            Ok(format) => format,
            Err(source) => return Err(ImageError::Io { path, source }),
        };
        let inspected = inspect(&mut file, format, file_size);
        let (size, layout) = match inspected {
            Ok(Ok(found)) => found,
            Ok(Err(reason)) => {
                return Err(ImageError::Corrupt { path, format, reason });
            }
            Err(Refusal::Io(source)) => return Err(ImageError::Io { path, source }),
            Err(Refusal::NoImage) => return Err(ImageError::ZipNoImage { path }),
            Err(Refusal::Ambiguous(candidates)) => {
                return Err(ImageError::ZipAmbiguous { path, candidates });
            }
            Err(Refusal::Encrypted(name)) => return Err(ImageError::ZipEncrypted { path, name }),
            Err(Refusal::Method(name, method)) => {
                return Err(ImageError::ZipUnsupportedMethod { path, name, method });
            }
        };
        Ok(Image {
            path,
            format,
            file_size,
            size,
            layout,
        })
    }

    /// The path the image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format the magic bytes announce.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The size of the file on disk (compressed, for a compressed image).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The uncompressed size: exact where the format records it, else an estimate.
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// For a zip archive, the name of the entry that holds the image.
    pub fn inner_name(&self) -> Option<&str> {
        match &self.layout {
            Layout::Zip { entry, .. } => Some(&entry.name),
            Layout::Plain | Layout::Xz(_) => None,
        }
    }

    /// A fresh stream of the decompressed image, starting at its first byte.
    ///
    /// Each call opens the file again, so it can be called once to write and again to
    /// hash or compare. A multi-block xz file is decoded on several threads.
    pub fn reader(&self) -> Result<ImageReader, ImageError> {
        let io_error = |source| ImageError::Io {
            path: self.path.clone(),
            source,
        };
        let consumed = Arc::new(AtomicU64::new(0));
        let mut file = CountingFile::new(File::open(&self.path).map_err(io_error)?, Arc::clone(&consumed));
        let decoder: Box<dyn Read + Send> = match (&self.layout, self.format) {
            (Layout::Xz(layout), _) => match xz::parallel_workers(layout) {
                Some(workers) => Box::new(xz::ParallelReader::new(file, (**layout).clone(), workers)),
                None => Box::new(xz::single_reader(file)),
            },
            (Layout::Zip { entry, data_offset }, _) => {
                file.seek(SeekFrom::Start(*data_offset)).map_err(io_error)?;
                let compressed = BufReader::with_capacity(READ_AHEAD, file).take(entry.compressed_size);
                let decoded: Box<dyn Read + Send> = match entry.method {
                    zip::STORED => Box::new(compressed),
                    zip::DEFLATE => Box::new(DeflateDecoder::new(compressed)),
                    zip::BZIP2 => Box::new(BzDecoder::new(compressed)),
                    zip::ZSTD => Box::new(zstd::FramesReader::new(BufReader::new(compressed))),
                    zip::XZ => Box::new(XzReader::new(compressed, true)),
                    method => {
                        return Err(ImageError::ZipUnsupportedMethod {
                            path: self.path.clone(),
                            name: entry.name.clone(),
                            method,
                        });
                    }
                };
                Box::new(zip::CheckedEntry::new(decoded, entry))
            }
            (Layout::Plain, Format::Gzip) => Box::new(MultiGzDecoder::new(BufReader::with_capacity(READ_AHEAD, file))),
            (Layout::Plain, Format::Bzip2) => Box::new(MultiBzDecoder::new(BufReader::with_capacity(READ_AHEAD, file))),
            (Layout::Plain, Format::Zstd) => {
                Box::new(zstd::FramesReader::new(BufReader::with_capacity(READ_AHEAD, file)))
            }
            (Layout::Plain, _) => Box::new(file),
        };
        Ok(ImageReader::new(
            Box::new(NamedErrors::new(decoder, self.format)),
            consumed,
        ))
    }
}

/// Why an archive is refused for a reason other than damage.
enum Refusal {
    Io(io::Error),
    NoImage,
    Ambiguous(Vec<String>),
    Encrypted(String),
    Method(String, u16),
}

/// Works out the uncompressed size and layout; the inner `Err` is a corruption reason.
fn inspect<R: Read + Seek>(
    file: &mut R,
    format: Format,
    file_size: u64,
) -> Result<Result<(ImageSize, Layout), String>, Refusal> {
    let found = match format {
        Format::Gzip => {
            let mut header = [0u8; 3];
            file.seek(SeekFrom::Start(0)).map_err(Refusal::Io)?;
            read_up_to(file, &mut header).map_err(Refusal::Io)?;
            if header[2] != 8 {
                return Ok(Err(format!("unknown gzip compression method {}", header[2])));
            }
            // A gzip member is at least a 10-byte header, an empty deflate block and an 8-byte trailer.
            if file_size < 20 {
                return Ok(Err(
                    "the file is too short to hold a gzip member; it is truncated".into()
                ));
            }
            let mut trailer = [0u8; 4];
            file.seek(SeekFrom::Start(file_size - 4)).map_err(Refusal::Io)?;
            read_up_to(file, &mut trailer).map_err(Refusal::Io)?;
            Ok((
                ImageSize::Estimate(gzip_estimate(le32(&trailer), file_size)),
                Layout::Plain,
            ))
        }
        Format::Bzip2 => {
            let mut header = [0u8; 4];
            file.seek(SeekFrom::Start(0)).map_err(Refusal::Io)?;
            read_up_to(file, &mut header).map_err(Refusal::Io)?;
            if !(b'1'..=b'9').contains(&header[3]) {
                return Ok(Err("the bzip2 header has no valid block size".into()));
            }
            Ok((
                ImageSize::Estimate(file_size.saturating_mul(BZIP2_RATIO)),
                Layout::Plain,
            ))
        }
        Format::Xz => xz::read_layout(file, file_size)
            .map(|layout| (ImageSize::Exact(layout.uncompressed_size), Layout::Xz(Arc::new(layout)))),
        Format::Zstd => zstd::walk(file, file_size).map(|walk| {
            let size = if walk.exact {
                ImageSize::Exact(walk.size)
            } else {
                ImageSize::Estimate(walk.size)
            };
            (size, Layout::Plain)
        }),
        Format::Zip => return inspect_zip(file, file_size),
        Format::Raw => Ok((ImageSize::Exact(file_size), Layout::Plain)),
    };
    Ok(found)
}

fn inspect_zip<R: Read + Seek>(file: &mut R, file_size: u64) -> Result<Result<(ImageSize, Layout), String>, Refusal> {
    let entries = match zip::read_directory(file, file_size) {
        Ok(entries) => entries,
        Err(reason) => return Ok(Err(reason)),
    };
    let entry = match zip::choose(entries) {
        zip::Choice::One(entry) => entry,
        zip::Choice::None => return Err(Refusal::NoImage),
        zip::Choice::Several(names) => return Err(Refusal::Ambiguous(names)),
    };
    if entry.encrypted {
        return Err(Refusal::Encrypted(entry.name));
    }
    if ![zip::STORED, zip::DEFLATE, zip::BZIP2, zip::ZSTD, zip::XZ].contains(&entry.method) {
        return Err(Refusal::Method(entry.name, entry.method));
    }
    let data_offset = match zip::data_offset(file, &entry) {
        Ok(offset) => offset,
        Err(reason) => return Ok(Err(reason)),
    };
    if data_offset
        .checked_add(entry.compressed_size)
        .is_none_or(|end| end > file_size)
    {
        return Ok(Err(format!("the data of {} runs past the end of the file", entry.name)));
    }
    Ok(Ok((
        ImageSize::Exact(entry.uncompressed_size),
        Layout::Zip { entry, data_offset },
    )))
}

/// gzip records the size modulo 4 GiB. Deflate expands data by at most a fraction of
/// a percent, so while the recorded size is clearly below the compressed size, the
/// image must have wrapped past 4 GiB once more.
fn gzip_estimate(isize: u32, file_size: u64) -> u64 {
    let mut size = u64::from(isize);
    while size + size / 256 + 1024 < file_size {
        size += 1 << 32;
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_estimate_adds_wraps_of_four_gib() {
        assert_eq!(gzip_estimate(1000, 500), 1000);
        // Incompressible data grows a little; that is no wrap.
        assert_eq!(gzip_estimate(1_000_000, 1_000_100), 1_000_000);
        assert_eq!(gzip_estimate(100, 5_000_000_000), 2 * (1 << 32) + 100);
    }

    #[test]
    fn image_size_accessors() {
        assert!(ImageSize::Exact(5).is_exact());
        assert!(!ImageSize::Estimate(5).is_exact());
        assert_eq!(ImageSize::Estimate(7).bytes(), 7);
    }
}
