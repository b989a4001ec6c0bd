use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bzip2::read::{BzDecoder, MultiBzDecoder};
use flate2::read::{DeflateDecoder, MultiGzDecoder};

use crate::format::{le32, read_up_to, sniff};
use crate::reader::{CountingFile, NamedErrors, RecordedLength, SharedFile};
use crate::{DirectReader, Format, ImageError, ImageReader, MemoryBudget, xz, zip, zstd};

/// How far ahead the decoders read from the file.
const READ_AHEAD: usize = 1 << 18;
/// The largest zstd window [`Image::direct_reader`] takes on: the caller's buffers
/// hold a window each, and more would be memory the streaming decoder does not need.
#[cfg(feature = "native-codecs")]
const DIRECT_WINDOW_MAX: u64 = 8 << 20;
/// The rough expansion assumed for bzip2, which records no size anywhere.
const BZIP2_RATIO: u64 = 5;
/// Deflate cannot expand data more than this (a 258-byte match costs at least two bits).
const DEFLATE_MAX_RATIO: u64 = 1032;
/// How much of a gzip or bzip2 file is decoded at open to learn its size: all of a
/// small file, whose size then is exact; the start of a larger one.
const SAMPLE_INPUT: u64 = 4 << 20;
/// The decoded bytes after which the sample stops, however little input that took.
const SAMPLE_OUTPUT: u64 = 256 << 20;

/// The uncompressed size of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "bytes", rename_all = "lowercase")]
pub enum ImageSize {
    /// The size is known to the byte (raw, xz, zip, zstd whose frames record it, and
    /// gzip or bzip2 small enough to be decoded whole at open).
    Exact(u64),
    /// The size is a guess (gzip's 32-bit trailer, bzip2, zstd frames without a size);
    /// the real image may be larger or smaller.
    Estimate(u64),
    /// Nothing in the file gives a believable size: a gzip trailer that claims more than
    /// deflate can expand to or less than its start already decodes to (as the last
    /// bytes of a cut file do).
    Unknown,
}

impl ImageSize {
    /// The size in bytes, exact or estimated; 0 when it is unknown.
    pub fn bytes(self) -> u64 {
        match self {
            ImageSize::Exact(bytes) | ImageSize::Estimate(bytes) => bytes,
            ImageSize::Unknown => 0,
        }
    }

    /// The size in bytes, exact or estimated, if there is one.
    pub fn known(self) -> Option<u64> {
        match self {
            ImageSize::Exact(bytes) | ImageSize::Estimate(bytes) => Some(bytes),
            ImageSize::Unknown => None,
        }
    }

    /// Whether the size is known to the byte.
    pub fn is_exact(self) -> bool {
        matches!(self, ImageSize::Exact(_))
    }

    /// The size as people read it: "1.5 GiB", "about 1.5 GiB" for an estimate, or
    /// "size unknown" when nothing in the file gives a believable one.
    pub fn describe(self) -> String {
        match self {
            ImageSize::Exact(bytes) => crate::human::binary(bytes),
            ImageSize::Estimate(bytes) => format!("about {}", crate::human::binary(bytes)),
            ImageSize::Unknown => "size unknown".to_owned(),
        }
    }
}

/// What [`Image::reader`] needs beyond the format, worked out once at open time.
#[derive(Debug, Clone)]
enum Layout {
    Plain,
    Xz(Arc<xz::Layout>),
    Zstd { largest_window: u64 },
    Zip { entry: zip::Entry, data_offset: u64 },
}

/// An image file, opened and inspected: its format, its sizes, and where its data lies.
#[derive(Debug, Clone)]
pub struct Image {
    path: PathBuf,
    /// Opened once; every stream reads it at its own positions.
    file: Arc<File>,
    format: Format,
    file_size: u64,
    size: ImageSize,
    layout: Layout,
    budget: MemoryBudget,
}

impl Image {
    /// Opens and inspects the image at `path`.
    ///
    /// Rejects a missing file, a directory and an empty file, each with its own
    /// [`ImageError`] variant. The format comes from the magic bytes, never from the
    /// file name. The structure a format records (xz indexes, zstd frame headers, the
    /// zip directory) is read here, so a truncated archive is usually refused right away,
    /// and so is one that needs more memory to decode than [`MemoryBudget::of_this_machine`].
    pub fn open(path: impl AsRef<Path>) -> Result<Image, ImageError> {
        Image::open_with_budget(path, MemoryBudget::of_this_machine())
    }

    /// Like [`Image::open`], with the decoders kept within `budget`.
    pub fn open_with_budget(path: impl AsRef<Path>, budget: MemoryBudget) -> Result<Image, ImageError> {
        let path = path.as_ref().to_path_buf();
        match File::open(&path) {
            Ok(file) => Image::from_file_with_budget(file, path, budget),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ImageError::NotFound(path)),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(ImageError::Unreadable(path)),
            Err(source) => Err(ImageError::Io { path, source }),
        }
    }

    /// Inspects an image file someone else opened: a front end opens it with the user's
    /// rights and hands the open file to the privileged worker, which never opens a path
    /// the user gave. `name` is the path shown in messages. The file is only ever read
    /// at positions, never opened again, so it must be a regular file.
    pub fn from_file(file: File, name: impl Into<PathBuf>) -> Result<Image, ImageError> {
        Image::from_file_with_budget(file, name, MemoryBudget::of_this_machine())
    }

    /// Like [`Image::from_file`], with the decoders kept within `budget`.
    pub fn from_file_with_budget(
        file: File,
        name: impl Into<PathBuf>,
        budget: MemoryBudget,
    ) -> Result<Image, ImageError> {
        let path = name.into();
        let metadata = match file.metadata() {
            Ok(metadata) => metadata,
            Err(source) => return Err(ImageError::Io { path, source }),
        };
        if metadata.is_dir() {
            return Err(ImageError::IsDirectory(path));
        }
        if !metadata.is_file() {
            return Err(ImageError::NotAFile(path));
        }
        let file_size = metadata.len();
        if file_size == 0 {
            return Err(ImageError::Empty(path));
        }
        let file = Arc::new(file);
        let mut file = BufReader::new(SharedFile::new(Arc::clone(&file), file_size));
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
        let needed = match &layout {
            Layout::Xz(layout) => Some(("dictionary", layout.memory_needed())),
            Layout::Zstd { largest_window } => Some(("window", zstd::memory_needed(*largest_window))),
            Layout::Plain | Layout::Zip { .. } => None,
        };
        if let Some((what, needed)) = needed.filter(|&(_, needed)| needed > budget.bytes()) {
            return Err(ImageError::NeedsTooMuchMemory {
                path,
                format,
                what,
                needed,
                budget: budget.bytes(),
            });
        }
        Ok(Image {
            path,
            file: Arc::clone(file.get_ref().file()),
            format,
            file_size,
            size,
            layout,
            budget,
        })
    }

    /// The path the image was opened from (for [`Image::from_file`], the name it was given).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open image file itself, for questions about the file rather than its name
    /// (which drive holds it).
    pub fn file(&self) -> &File {
        &self.file
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
            Layout::Plain | Layout::Xz(_) | Layout::Zstd { .. } => None,
        }
    }

    /// The bytes of a raw image from `offset` on, read straight from the file; `None`
    /// for a compressed image, which has to be decoded from its start.
    pub fn raw_from(&self, offset: u64) -> Option<impl Read + Send + use<>> {
        (self.format == Format::Raw).then(|| {
            let mut file = self.shared();
            // A position past the end reads as the end; nothing can fail here.
            let _ = file.seek(SeekFrom::Start(offset));
            file
        })
    }

    fn shared(&self) -> SharedFile {
        SharedFile::new(Arc::clone(&self.file), self.file_size)
    }

    /// A decoder that writes the image straight into the caller's buffers, when this
    /// build and image have one: a zstd file (not a zip entry) whose frames ask for
    /// windows of at most 8 MiB (every level up to 19), decoded by libzstd. `None`
    /// otherwise; [`Image::reader`] serves every image.
    ///
    /// # Errors
    /// When libzstd cannot make its decoding context.
    pub fn direct_reader(&self) -> Result<Option<DirectReader>, ImageError> {
        #[cfg(feature = "native-codecs")]
        if let Layout::Zstd { largest_window } = self.layout
            && largest_window <= DIRECT_WINDOW_MAX
        {
            let consumed = Arc::new(AtomicU64::new(0));
            let file = CountingFile::new(self.shared(), Arc::clone(&consumed));
            let direct = crate::zstd_direct::Direct::new(file, largest_window).map_err(|source| ImageError::Io {
                path: self.path.clone(),
                source,
            })?;
            return Ok(Some(DirectReader::new(direct, consumed)));
        }
        Ok(None)
    }

    /// A fresh stream of the decompressed image, starting at its first byte.
    ///
    /// Each call starts a stream of its own over the one open file, so it can be called
    /// once to write and again to hash or compare. A multi-block xz file is decoded on several threads, within the
    /// memory budget the image was opened with.
    pub fn reader(&self) -> Result<ImageReader, ImageError> {
        let io_error = |source| ImageError::Io {
            path: self.path.clone(),
            source,
        };
        let consumed = Arc::new(AtomicU64::new(0));
        let mut file = CountingFile::new(self.shared(), Arc::clone(&consumed));
        let budget = self.budget;
        let decoder: Box<dyn Read + Send> = match (&self.layout, self.format) {
            (Layout::Xz(layout), _) => xz_reader(file, layout, budget),
            (Layout::Zip { entry, data_offset }, _) => {
                file.seek(SeekFrom::Start(*data_offset)).map_err(io_error)?;
                let compressed = BufReader::with_capacity(READ_AHEAD, file).take(entry.compressed_size);
                let decoded: Box<dyn Read + Send> = match entry.method {
                    zip::STORED => Box::new(compressed),
                    zip::DEFLATE => Box::new(DeflateDecoder::new(compressed)),
                    zip::BZIP2 => Box::new(BzDecoder::new(compressed)),
                    // The entry's frames were not walked: allow any window that fits the budget.
                    zip::ZSTD => zstd_reader(BufReader::new(compressed), budget.bytes() / 2).map_err(io_error)?,
                    zip::XZ => xz_stream_reader(BufReader::new(compressed), budget),
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
            (Layout::Zstd { largest_window }, _) => {
                let decoder =
                    zstd_reader(BufReader::with_capacity(READ_AHEAD, file), *largest_window).map_err(io_error)?;
                match self.size {
                    // libzstd's streaming decoder lets a frame with an empty last block end
                    // short of the size its header records: the total is held to it here.
                    ImageSize::Exact(recorded) => Box::new(RecordedLength::new(decoder, recorded)),
                    ImageSize::Estimate(_) | ImageSize::Unknown => decoder,
                }
            }
            (Layout::Plain, Format::Gzip) => Box::new(MultiGzDecoder::new(BufReader::with_capacity(READ_AHEAD, file))),
            (Layout::Plain, Format::Bzip2) => Box::new(MultiBzDecoder::new(BufReader::with_capacity(READ_AHEAD, file))),
            (Layout::Plain, _) => Box::new(file),
        };
        Ok(ImageReader::new(
            Box::new(NamedErrors::new(decoder, self.format)),
            consumed,
        ))
    }
}

/// The decoder of a whole xz file.
#[cfg(feature = "native-codecs")]
fn xz_reader(file: CountingFile, _layout: &xz::Layout, budget: MemoryBudget) -> Box<dyn Read + Send> {
    xz_stream_reader(BufReader::with_capacity(READ_AHEAD, file), budget)
}

/// The decoder of a whole xz file: its blocks side by side when they fit the budget.
#[cfg(not(feature = "native-codecs"))]
fn xz_reader(file: CountingFile, layout: &xz::Layout, budget: MemoryBudget) -> Box<dyn Read + Send> {
    match xz::pure::parallel_workers(layout, budget) {
        Some(workers) => Box::new(xz::pure::ParallelReader::new(file, layout.clone(), workers)),
        None => Box::new(xz::pure::single_reader(file, budget)),
    }
}

/// An xz decoder of whatever `source` holds.
#[cfg(feature = "native-codecs")]
fn xz_stream_reader<R: BufRead + Send + 'static>(source: R, budget: MemoryBudget) -> Box<dyn Read + Send> {
    Box::new(xz::Reader::new(source, budget))
}

#[cfg(not(feature = "native-codecs"))]
fn xz_stream_reader<R: BufRead + Send + 'static>(source: R, budget: MemoryBudget) -> Box<dyn Read + Send> {
    let limit_kib = u32::try_from(budget.bytes() >> 10).unwrap_or(u32::MAX);
    Box::new(lzma_rust2::XzReader::new_mem_limit(source, true, limit_kib))
}

/// A zstd decoder of every frame in `source`, allowed windows up to `largest_window`.
#[cfg(feature = "native-codecs")]
fn zstd_reader<R: BufRead + Send + 'static>(source: R, largest_window: u64) -> io::Result<Box<dyn Read + Send>> {
    Ok(Box::new(zstd::native_reader(source, largest_window)?))
}

#[cfg(not(feature = "native-codecs"))]
fn zstd_reader<R: BufRead + Send + 'static>(source: R, _largest_window: u64) -> io::Result<Box<dyn Read + Send>> {
    Ok(Box::new(zstd::FramesReader::new(source)))
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
fn inspect(
    file: &mut BufReader<SharedFile>,
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
            let sample = sample(file, file_size, Format::Gzip).map_err(Refusal::Io)?;
            Ok((gzip_size(&sample, le32(&trailer), file_size), Layout::Plain))
        }
        Format::Bzip2 => {
            let mut header = [0u8; 4];
            file.seek(SeekFrom::Start(0)).map_err(Refusal::Io)?;
            read_up_to(file, &mut header).map_err(Refusal::Io)?;
            if !(b'1'..=b'9').contains(&header[3]) {
                return Ok(Err("the bzip2 header has no valid block size".into()));
            }
            let sample = sample(file, file_size, Format::Bzip2).map_err(Refusal::Io)?;
            Ok((bzip2_size(&sample, file_size), Layout::Plain))
        }
        Format::Xz => xz::read_layout(file, file_size)
            .map(|layout| (ImageSize::Exact(layout.uncompressed_size), Layout::Xz(Arc::new(layout)))),
        // The walk reads the file its own way: small reads, most headers far apart.
        Format::Zstd => zstd::walk(file.get_mut(), file_size).map(|walk| {
            let size = if walk.exact {
                ImageSize::Exact(walk.size)
            } else {
                ImageSize::Estimate(walk.size)
            };
            (
                size,
                Layout::Zstd {
                    largest_window: walk.largest_window,
                },
            )
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

/// What decoding the start of a gzip or bzip2 file showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Compressed bytes the sample covered.
    pub(crate) input: u64,
    /// The bytes they decoded to.
    pub(crate) output: u64,
    /// Whether the sample was the whole file, decoded to its clean end.
    pub(crate) whole: bool,
    /// Whether the file is small enough to have been sampled whole, yet failed to decode.
    pub(crate) damaged: bool,
}

/// Decodes the start of a gzip or bzip2 file (all of a small one), discarding the bytes.
pub(crate) fn sample<R: Read + Seek>(file: &mut R, file_size: u64, format: Format) -> io::Result<Sample> {
    // bzip2 decodes several times slower than deflate: a smaller sample takes as long.
    let limit = match format {
        Format::Bzip2 => SAMPLE_INPUT / 4,
        _ => SAMPLE_INPUT,
    };
    file.seek(SeekFrom::Start(0))?;
    let input = BufReader::with_capacity(1 << 16, file.take(limit));
    let mut decoder: Box<dyn Read + '_> = match format {
        Format::Bzip2 => Box::new(MultiBzDecoder::new(input)),
        _ => Box::new(MultiGzDecoder::new(input)),
    };
    let mut buffer = vec![0u8; 1 << 16];
    let mut output = 0u64;
    let ended = loop {
        match decoder.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(n) => output += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
        if output >= SAMPLE_OUTPUT {
            break Ok(());
        }
    };
    let covered_all = file_size <= limit && output < SAMPLE_OUTPUT;
    Ok(Sample {
        input: file_size.min(limit),
        output,
        whole: covered_all && ended.is_ok(),
        damaged: covered_all && ended.is_err(),
    })
}

/// The size of a gzip file: exact when the sample decoded all of it; otherwise what its
/// trailer says, when that is believable; otherwise unknown.
pub(crate) fn gzip_size(sample: &Sample, isize: u32, file_size: u64) -> ImageSize {
    if sample.whole {
        return ImageSize::Exact(sample.output);
    }
    if sample.damaged {
        return ImageSize::Unknown;
    }
    let estimate = gzip_estimate(isize, file_size.max(sample.output));
    // The rest of the file cannot decode to more than deflate's ratio allows.
    let most = (file_size - sample.input)
        .saturating_mul(DEFLATE_MAX_RATIO)
        .saturating_add(sample.output);
    if estimate < sample.output || estimate > most {
        return ImageSize::Unknown;
    }
    ImageSize::Estimate(estimate)
}

/// The size of a bzip2 file, which records none: exact when the sample decoded all of
/// it, else what was decoded plus a rough ratio for the rest.
pub(crate) fn bzip2_size(sample: &Sample, file_size: u64) -> ImageSize {
    if sample.whole {
        return ImageSize::Exact(sample.output);
    }
    if sample.damaged {
        return ImageSize::Unknown;
    }
    let rest = (file_size - sample.input).saturating_mul(BZIP2_RATIO);
    ImageSize::Estimate(sample.output.saturating_add(rest))
}

/// gzip records the size modulo 4 GiB. Deflate expands data by at most a fraction of
/// a percent, so while the recorded size is clearly below `at_least` (the compressed
/// size, or what the start of the file already decoded to), the image must have
/// wrapped past 4 GiB once more.
fn gzip_estimate(isize: u32, at_least: u64) -> u64 {
    let mut size = u64::from(isize);
    while size.saturating_add(size / 256 + 1024) < at_least {
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
        assert!(!ImageSize::Unknown.is_exact());
        assert_eq!(ImageSize::Estimate(7).bytes(), 7);
        assert_eq!(ImageSize::Estimate(7).known(), Some(7));
        assert_eq!(ImageSize::Unknown.known(), None);
    }

    fn partial(input: u64, output: u64) -> Sample {
        Sample {
            input,
            output,
            whole: false,
            damaged: false,
        }
    }

    #[test]
    fn a_gzip_trailer_is_believed_only_within_what_deflate_can_expand_to() {
        let mib = 1 << 20;
        // 4 MiB decoded to 8 MiB; 2 MiB more can add at most 2 GiB and a bit.
        let sample = partial(4 * mib, 8 * mib);
        assert_eq!(gzip_size(&sample, 12 << 20, 6 * mib), ImageSize::Estimate(12 << 20));
        assert_eq!(
            gzip_size(&sample, 2_000_000_000, 6 * mib),
            ImageSize::Estimate(2_000_000_000)
        );
        assert_eq!(gzip_size(&sample, 4_000_000_000, 6 * mib), ImageSize::Unknown);
        // Less than the start already decoded to means one wrap more, which is too much here.
        assert_eq!(gzip_size(&sample, 1000, 6 * mib), ImageSize::Unknown);
        let whole = Sample {
            input: mib,
            output: 3 * mib,
            whole: true,
            damaged: false,
        };
        assert_eq!(gzip_size(&whole, 7, mib), ImageSize::Exact(3 * mib));
        let cut = Sample {
            whole: false,
            damaged: true,
            ..whole
        };
        assert_eq!(gzip_size(&cut, 1 << 30, mib), ImageSize::Unknown);
    }

    #[test]
    fn bzip2_estimates_add_a_rough_ratio_to_what_the_start_decoded_to() {
        assert_eq!(bzip2_size(&partial(100, 1000), 300), ImageSize::Estimate(2000));
    }
}
