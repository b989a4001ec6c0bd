//! Where the bytes come from: anything that can be streamed from the start, more than once.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use graver_image::{DirectReader, Image, ImageSize};

/// A stream of the decompressed image and the counter of compressed bytes it has consumed.
pub struct Opened {
    /// The decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    /// Compressed (on-disk) bytes consumed so far, for an honest progress bar.
    pub consumed: Arc<AtomicU64>,
}

/// An image the engine can stream. It is opened once for writing and once
/// more only to pinpoint a verification mismatch.
pub trait Source: Sync {
    /// Starts a fresh stream from the first byte.
    ///
    /// # Errors
    /// When the image cannot be opened.
    fn open(&self) -> io::Result<Opened>;
    /// A fresh decoder that writes into the engine's buffers itself, when the source
    /// has one (see [`Image::direct_reader`]); `None` otherwise, and the engine reads
    /// from [`Source::open`].
    ///
    /// # Errors
    /// When the image cannot be opened.
    fn open_direct(&self) -> io::Result<Option<DirectReader>> {
        Ok(None)
    }
    /// Starts a stream at `offset` of the decompressed image when the source can get
    /// there without decoding what comes before (a raw image can); `None` otherwise,
    /// and the engine decodes its way there from [`Source::open`].
    ///
    /// # Errors
    /// When the image cannot be opened or positioned.
    fn open_at(&self, offset: u64) -> io::Result<Option<Box<dyn Read + Send>>> {
        let _ = offset;
        Ok(None)
    }
    /// The decompressed size, exact or estimated.
    fn size(&self) -> ImageSize;
    /// Bytes on disk, the denominator of [`Opened::consumed`].
    fn file_size(&self) -> u64;
}

impl Source for Image {
    fn open(&self) -> io::Result<Opened> {
        let reader = self.reader().map_err(io::Error::other)?;
        let consumed = reader.consumed();
        Ok(Opened {
            reader: Box::new(reader),
            consumed,
        })
    }

    fn open_direct(&self) -> io::Result<Option<DirectReader>> {
        self.direct_reader().map_err(io::Error::other)
    }

    fn open_at(&self, offset: u64) -> io::Result<Option<Box<dyn Read + Send>>> {
        Ok(self.raw_from(offset).map(|raw| Box::new(raw) as Box<dyn Read + Send>))
    }

    fn size(&self) -> ImageSize {
        Image::size(self)
    }

    fn file_size(&self) -> u64 {
        Image::file_size(self)
    }
}
