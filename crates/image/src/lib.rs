//! Open a disk image, find out what it is, and stream its decompressed bytes.
//!
//! This crate is the part of Graver that knows about image files. It does not write
//! anything anywhere; the writer engine takes an [`ImageReader`] and a drive.
//!
//! # Opening
//!
//! [`Image::open`] inspects a file without decompressing it:
//!
//! * It refuses a missing path, a directory and an empty file, each with its own
//!   [`ImageError`] variant, so a user interface can say exactly what is wrong.
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
//! An xz file of several blocks (as `xz -T0` makes) is decoded on as many threads as
//! the machine has, with each block's own check verified. Zip entries may be stored,
//! deflate, bzip2, zstd or xz; the entry's CRC32 and size are checked at its end.
//!
//! Damaged input is never passed off as a shorter image: a truncated or corrupt stream
//! makes [`std::io::Read::read`] fail with [`std::io::ErrorKind::InvalidData`] and a
//! message naming the format, such as "the gzip stream ends early: the file is
//! truncated". Other error kinds mean reading the file itself failed.
//! [`ImageReader::consumed`] counts the bytes of the file on disk read so far, which a
//! progress bar compares with [`Image::file_size`].
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

mod checksum;
mod error;
mod format;
mod image;
mod probe;
mod reader;
mod xz;
mod zip;
mod zstd;

pub use crate::{
    checksum::{ChecksumVerdict, PublishedChecksum, find_checksum, sha256_hex},
    error::ImageError,
    format::{Format, read_up_to},
    image::{Image, ImageSize},
    probe::{PROBE_LEN, Probe, SECTOR, probe, signature},
    reader::ImageReader,
};
