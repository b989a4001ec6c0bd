use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Format;

/// A stream of the decompressed bytes of an image.
///
/// Errors caused by corrupt or truncated input come out of [`Read::read`] as
/// [`io::ErrorKind::InvalidData`] with a message that names the format, such as
/// "the xz data is corrupt: …" or "the gzip stream ends early: the file is truncated";
/// any other kind means reading the file itself failed.
pub struct ImageReader {
    inner: Box<dyn Read + Send>,
    consumed: Arc<AtomicU64>,
}

impl ImageReader {
    pub(crate) fn new(inner: Box<dyn Read + Send>, consumed: Arc<AtomicU64>) -> ImageReader {
        ImageReader { inner, consumed }
    }

    /// A shared counter of how many bytes of the file on disk (compressed bytes) have been
    /// consumed so far; compare it with [`Image::file_size`](crate::Image::file_size) for progress.
    pub fn consumed(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.consumed)
    }
}

impl Read for ImageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl fmt::Debug for ImageReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageReader")
            .field("consumed", &self.consumed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A zstd image decoded straight into the caller's buffers, with no copy in between:
/// what the write pipeline uses when [`Image::direct_reader`](crate::Image::direct_reader)
/// offers one.
///
/// Each call to [`DirectReader::fill`] decodes into a buffer of its own, and the history
/// the next buffer's bytes refer back to stays in the buffer before it, so the caller
/// keeps that one unchanged, and hands it back, until the next is full.
pub struct DirectReader {
    inner: DirectInner,
    consumed: Arc<AtomicU64>,
}

#[cfg(feature = "native-codecs")]
type DirectInner = crate::zstd_direct::Direct<CountingFile>;
/// Without libzstd there is no direct decoder, and no value of this type.
#[cfg(not(feature = "native-codecs"))]
type DirectInner = std::convert::Infallible;

impl DirectReader {
    /// Room every buffer needs past the bytes asked of it: one whole block, which is
    /// decoded whole once started.
    pub const SLACK: usize = crate::zstd::MAX_BLOCK;

    #[cfg(feature = "native-codecs")]
    pub(crate) fn new(inner: DirectInner, consumed: Arc<AtomicU64>) -> DirectReader {
        DirectReader { inner, consumed }
    }

    /// The least [`DirectReader::fill`] may be asked for at a time: the largest window
    /// of the image plus [`DirectReader::SLACK`], so that every back-reference lands
    /// in the previous buffer.
    pub fn min_want(&self) -> usize {
        #[cfg(feature = "native-codecs")]
        return self.inner.min_want();
        #[cfg(not(feature = "native-codecs"))]
        match self.inner {}
    }

    /// A shared counter of the compressed bytes consumed so far, as
    /// [`ImageReader::consumed`].
    pub fn consumed(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.consumed)
    }

    /// Decodes the next `want` bytes of the image into `dst[..want]` and returns how
    /// many there were: `want`, or fewer at the end of the image.
    ///
    /// `dst` must be at least `want +` [`DirectReader::SLACK`] long and `want` at least
    /// [`DirectReader::min_want`]. `previous` must be the buffer the previous call
    /// filled, unchanged since; the first call passes `None`.
    ///
    /// # Errors
    /// As [`ImageReader`]'s reads: [`io::ErrorKind::InvalidData`] naming zstd for
    /// corrupt or truncated data, another kind for a failed read of the file; and
    /// [`io::ErrorKind::InvalidInput`] for buffers that break the rules above.
    pub fn fill(&mut self, previous: Option<&[u8]>, dst: &mut [u8], want: usize) -> io::Result<usize> {
        #[cfg(feature = "native-codecs")]
        return self.inner.fill(previous, dst, want);
        #[cfg(not(feature = "native-codecs"))]
        {
            let _ = (previous, dst, want);
            match self.inner {}
        }
    }
}

impl fmt::Debug for DirectReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectReader")
            .field("consumed", &self.consumed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Marks an error that came from reading the file itself, so the layer that names
/// decoder errors after the format can let it through unchanged.
#[derive(Debug)]
struct SourceError(io::Error);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reading the image file failed: {}", self.0)
    }
}

impl std::error::Error for SourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// One stream over an image file that other streams share: each keeps its own
/// position and reads at it, so a file handed over already open (by a front end, to
/// the privileged worker) can be read several times without being opened again.
pub(crate) struct SharedFile {
    file: Arc<File>,
    len: u64,
    position: u64,
}

impl SharedFile {
    pub(crate) fn new(file: Arc<File>, len: u64) -> SharedFile {
        SharedFile { file, len, position: 0 }
    }

    pub(crate) fn file(&self) -> &Arc<File> {
        &self.file
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // Moves the handle's own position too, which no stream relies on.
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.position)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a seek before the start of the image file"))?;
        Ok(self.position)
    }
}

/// The image file, publishing the position reached in it to a shared counter.
pub(crate) struct CountingFile {
    file: SharedFile,
    position: u64,
    consumed: Arc<AtomicU64>,
}

impl CountingFile {
    pub(crate) fn new(file: SharedFile, consumed: Arc<AtomicU64>) -> CountingFile {
        CountingFile {
            file,
            position: 0,
            consumed,
        }
    }
}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    io::Error::new(e.kind(), SourceError(e))
}

impl Read for CountingFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf).map_err(mark)?;
        self.position += n as u64;
        self.consumed.store(self.position, Ordering::Relaxed);
        Ok(n)
    }
}

impl Seek for CountingFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.position = self.file.seek(pos).map_err(mark)?;
        self.consumed.store(self.position, Ordering::Relaxed);
        Ok(self.position)
    }
}

/// Gives decoder errors a message that names the format and the kind
/// [`io::ErrorKind::InvalidData`], so callers can tell bad input from failing I/O.
pub(crate) struct NamedErrors<R> {
    inner: R,
    format: Format,
}

impl<R> NamedErrors<R> {
    pub(crate) fn new(inner: R, format: Format) -> NamedErrors<R> {
        NamedErrors { inner, format }
    }
}

impl<R: Read> Read for NamedErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| name_error(e, self.format))
    }
}

pub(crate) fn name_error(e: io::Error, format: Format) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted || matches!(e.get_ref(), Some(inner) if inner.is::<SourceError>()) {
        return e;
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the {format} stream ends early: the file is truncated ({e})"),
        );
    }
    io::Error::new(io::ErrorKind::InvalidData, format!("the {format} data is corrupt: {e}"))
}

/// A stream held to the length its format's headers record: ending short of it, or
/// going past it, is corrupt data.
pub(crate) struct RecordedLength<R> {
    inner: R,
    recorded: u64,
    seen: u64,
}

impl<R> RecordedLength<R> {
    pub(crate) fn new(inner: R, recorded: u64) -> RecordedLength<R> {
        RecordedLength {
            inner,
            recorded,
            seen: 0,
        }
    }
}

impl<R: Read> Read for RecordedLength<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen += n as u64;
        if self.seen > self.recorded {
            return Err(invalid(format!(
                "the frames hold more than the {} bytes their headers record",
                self.recorded
            )));
        }
        if n == 0 && !buf.is_empty() && self.seen < self.recorded {
            return Err(invalid(format!(
                "the frames hold {} bytes, fewer than the {} their headers record",
                self.seen, self.recorded
            )));
        }
        Ok(n)
    }
}

/// An error for data that ends before its format says it should.
pub(crate) fn truncated(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_owned())
}

/// An error for data that breaks its format's rules.
pub(crate) fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}
