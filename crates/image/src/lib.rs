//! Open a disk image, find out what it is, and stream its decompressed bytes.
//!
//! This crate is the part of Graver that knows about image files. It does not write
//! anything anywhere; the writer engine takes an [`ImageReader`] and a drive.
//!
//! # Opening
//!
//! [`Image::open`] inspects a file without decompressing it ([`Image::from_file`] one
//! opened elsewhere, such as the file a front end hands the privileged worker):
//!
//! * It refuses a missing path, an unreadable file, a directory, anything else that
//!   is not a regular file, and an empty file, each with its own [`ImageError`]
//!   variant, so a user interface can say exactly what is wrong.
//! * It opens the file once; every stream reads it at positions of its own.
//! * It sniffs the [`Format`] from the magic bytes only: gzip, bzip2, xz, zstd (also
//!   behind skippable frames) and zip. Anything else is [`Format::Raw`], which covers
//!   ISO and IMG files. File names are never trusted: `foo.img` holding xz data is xz.
//! * It works out the uncompressed [`ImageSize`]. It is [`ImageSize::Exact`] for raw
//!   files, xz (read from the indexes at the end of every stream), zip (from the central
//!   directory, zip64 included) and zstd when every frame records its content size. It
//!   is [`ImageSize::Estimate`] for gzip (its trailer holds the size modulo 4 GiB, and
//!   only for the last member), bzip2 (which records no size; the estimate is a rough
//!   five times the compressed size) and zstd frames without a recorded size.
//! * Reading that structure also finds most truncated archives at once: an xz file cut
//!   short has no index, a zstd file cut short ends inside a frame, a zip cut short has
//!   no central directory. Those give [`ImageError::Corrupt`].
//!
//! A zip archive must hold one disk image. Directories, `__MACOSX/` entries, dot-files
//! and metadata files (`.sha256`, `.md5`, `.sig`, `.asc`, `.txt`, `.md`, `.bmap`,
//! `SHA256SUMS`) are ignored; if several files remain, those with a disk-image extension
//! (`.img`, `.iso`, `.raw`, `.dd`, `.wic`, `.bin`, `.hddimg`, `.sdcard`) are preferred.
//! More than one left is [`ImageError::ZipAmbiguous`], none is [`ImageError::ZipNoImage`].
//!
//! # Reading
//!
//! [`Image::reader`] returns a fresh [`ImageReader`] each time it is called, always
//! starting at the first byte, so the same image can be read once to write and once
//! more to verify. Decompression is streamed; nothing is written to temporary files.
//! Concatenated gzip members, bzip2 streams, xz streams and zstd frames are all read.
//! An xz file of several blocks (as `xz -T0` makes) is decoded on several threads, with
//! each block's own check verified. Zip entries may be stored,
//! deflate, bzip2, zstd or xz; the entry's CRC32 and size are checked at its end.
//!
//! Damaged input is never passed off as a shorter image: a truncated or corrupt stream
//! makes [`std::io::Read::read`] fail with [`std::io::ErrorKind::InvalidData`] and a
//! message naming the format, such as "the gzip stream ends early: the file is
//! truncated". Other error kinds mean reading the file itself failed.
//! [`ImageReader::consumed`] counts the bytes of the file on disk read so far, which a
//! progress bar compares with [`Image::file_size`].
//!
//! # Codecs and memory
//!
//! xz and zstd are decoded by liblzma and libzstd (compiled from their C sources and
//! linked statically) with the default `native-codecs` feature, or by pure-Rust
//! decoders with `pure-rust-codecs` instead, for builds without a C compiler. gzip and
//! bzip2 are always pure Rust.
//!
//! Decoders keep within a [`MemoryBudget`]: 512 MiB, no more than a quarter of the
//! memory available (cgroup limits included), on at most eight threads. An image whose
//! format needs more than that to decode at all — an LZMA2 dictionary or a zstd window
//! larger than the budget — is refused at open with [`ImageError::NeedsTooMuchMemory`],
//! before anything is written; multi-threaded xz decoding uses as many threads as fit.
//! Every size read from a file goes through checked arithmetic, and the zip directory,
//! the xz indexes and the zstd frames are read as streams, so no field of a file decides
//! how much memory reading its structure takes.
//!
//! # Looking before writing
//!
//! [`probe`] decodes an image's first MiB and says what it shows: nothing at all
//! ([`Probe::refusal`]: an empty archive must not wipe a drive), or too little or no
//! partition table or file system signature ([`Probe::warning`]).
//!
//! # Published checksums
//!
//! [`find_checksum`] looks next to the image for the SHA-256 digest its publisher put
//! there (`foo.img.xz.sha256`, `SHA256SUMS`, in GNU or BSD line format), and
//! [`PublishedChecksum::verdict`] says whether it matches the downloaded file, the
//! decompressed image, or neither.
//!
//! ```no_run
//! use std::io::Read;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let image = graver_image::Image::open("nixos-minimal.iso.xz")?;
//! println!("{} image, {} bytes", image.format(), image.size().bytes());
//! let mut reader = image.reader()?;
//! let mut buffer = vec![0; 4 << 20];
//! loop {
//!     let n = reader.read(&mut buffer)?;
//!     if n == 0 {
//!         break;
//!     }
//!     // write buffer[..n] somewhere
//! }
//! # Ok(())
//! # }
//! ```

mod budget;
mod checksum;
mod error;
mod format;
mod hashing;
pub mod human;
mod image;
mod os;
mod probe;
mod reader;
mod xz;
mod zip;
mod zstd;
#[cfg(feature = "native-codecs")]
mod zstd_direct;

pub use crate::{
    budget::MemoryBudget,
    checksum::{ChecksumVerdict, PublishedChecksum, find_checksum, parse_sha256, sha256_hex},
    error::ImageError,
    format::{Format, fill_with, read_up_to},
    hashing::{ImageDigests, hash_image},
    image::{Image, ImageSize},
    probe::{PROBE_LEN, Probe, SECTOR, probe, signature},
    reader::{DirectReader, ImageReader},
};

#[cfg(not(any(feature = "native-codecs", feature = "pure-rust-codecs")))]
compile_error!("graver-image needs the `native-codecs` or the `pure-rust-codecs` feature");

/// Entry points for the fuzz targets in `fuzz/` and the corpus replay test: each runs
/// one parser of untrusted bytes over `data` as if it were a whole file, and returns
/// what it found (or why it refused), so a panic, a hang or a runaway allocation in
/// any of them shows. Not part of the supported interface.
#[doc(hidden)]
pub mod fuzzing {
    use std::io::Cursor;

    use crate::{Format, format, image, xz, zip, zstd};

    /// Format sniffing.
    pub fn sniff(data: &[u8]) -> Option<Format> {
        format::sniff(&mut Cursor::new(data)).ok()
    }

    /// The xz indexes and block headers read at open: the size and the largest dictionary.
    pub fn xz_layout(data: &[u8]) -> Result<(u64, u64), String> {
        let layout = xz::read_layout(&mut Cursor::new(data), data.len() as u64)?;
        Ok((layout.uncompressed_size, layout.largest_dictionary))
    }

    /// One xz block header, size byte to CRC32: its dictionary size.
    pub fn xz_block_header(data: &[u8]) -> Result<u64, String> {
        xz::parse_block_header(data)
    }

    /// The zstd frame walk: the size, whether it is exact, and the largest window.
    pub fn zstd_walk(data: &[u8]) -> Result<(u64, bool, u64), String> {
        let walk = zstd::walk(&mut Cursor::new(data), data.len() as u64)?;
        Ok((walk.size, walk.exact, walk.largest_window))
    }

    /// The zip central directory: the names of the entries that could be the image.
    pub fn zip_directory(data: &[u8]) -> Result<Vec<String>, String> {
        let mut file = Cursor::new(data);
        let entries = zip::read_directory(&mut file, data.len() as u64)?;
        for entry in &entries {
            let _ = zip::data_offset(&mut file, entry);
        }
        Ok(entries.into_iter().map(|entry| entry.name).collect())
    }

    /// The gzip and bzip2 size estimates, sample decoding included.
    pub fn size_estimates(data: &[u8]) -> Option<(crate::ImageSize, crate::ImageSize)> {
        let size = data.len() as u64;
        let trailer = data.len().checked_sub(4).map_or(0, |at| format::le32(&data[at..]));
        let gzip = image::sample(&mut Cursor::new(data), size, Format::Gzip).ok()?;
        let bzip2 = image::sample(&mut Cursor::new(data), size, Format::Bzip2).ok()?;
        Some((image::gzip_size(&gzip, trailer, size), image::bzip2_size(&bzip2, size)))
    }

    /// The direct zstd decoder against the streaming one, over a file the walk at open
    /// accepts: both must give the same bytes, or both fail (or only the direct one, for
    /// what libzstd's streaming decoder lets through: a frame shorter than its header
    /// records, a compressed block of no bytes). A disagreement panics.
    /// Windows over 1 MiB are passed over to keep each run small.
    #[cfg(feature = "native-codecs")]
    pub fn zstd_direct(data: &[u8]) -> Result<usize, String> {
        use std::io::Read;
        const LIMIT: usize = 32 << 20;
        let walk = zstd::walk(&mut Cursor::new(data), data.len() as u64)?;
        if walk.largest_window > 1 << 20 {
            return Err("a window over 1 MiB".into());
        }
        let mut direct =
            crate::zstd_direct::Direct::new(Cursor::new(data), walk.largest_window).map_err(|e| e.to_string())?;
        let want = direct.min_want();
        let mut buffers = [
            vec![0u8; want + crate::DirectReader::SLACK],
            vec![0u8; want + crate::DirectReader::SLACK],
        ];
        let mut direct_out = Vec::new();
        // Ok(true) at the end of the data, Ok(false) at the limit.
        let direct_result = loop {
            let [previous, current] = &mut buffers;
            let history = (!direct_out.is_empty()).then_some(previous.as_slice());
            match direct.fill(history, current, want) {
                Ok(len) => {
                    direct_out.extend_from_slice(&current[..len]);
                    if len < want {
                        break Ok(true);
                    }
                    if direct_out.len() >= LIMIT {
                        break Ok(false);
                    }
                }
                Err(e) => break Err(e),
            }
            buffers.swap(0, 1);
        };
        // As far as the direct decoder got, and one byte more if it found the end: the
        // stream must end where it ended. Where it failed, the stream must fail too.
        let take = match &direct_result {
            Ok(true) => direct_out.len() + 1,
            Ok(false) => direct_out.len(),
            Err(_) => LIMIT + want + 1,
        };
        let mut streamed = Vec::new();
        let stream_result = zstd::native_reader(data, walk.largest_window)
            .and_then(|reader| reader.take(take as u64).read_to_end(&mut streamed));
        match (direct_result, stream_result) {
            (Ok(_), Ok(_)) => {
                assert!(direct_out == streamed, "the decoders disagree");
                Ok(direct_out.len())
            }
            (Err(e), Err(_)) => Err(e.to_string()),
            // Stricter than libzstd's streaming decoder, on purpose.
            (Err(e), Ok(_))
                if crate::zstd_direct::STRICTER
                    .iter()
                    .any(|why| e.to_string().contains(why)) =>
            {
                Err(e.to_string())
            }
            (direct, stream) => panic!("one decoder failed: direct {direct:?}, stream {stream:?}"),
        }
    }

    /// A checksum file's text: the digest it gives for `foo.img.xz` or `foo.img`.
    pub fn checksum_file(data: &[u8]) -> Option<(Option<String>, [u8; 32])> {
        let text = String::from_utf8_lossy(data);
        crate::checksum::parse_per_file(&text, &["foo.img.xz", "foo.img"])
    }
}
