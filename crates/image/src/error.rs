use std::io;
use std::path::PathBuf;

use crate::Format;

/// Why an image could not be opened or inspected.
///
/// Every message names the image's path, so it can be shown to a user as is.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The path does not exist.
    #[error("{}: no such file", .0.display())]
    NotFound(PathBuf),
    /// The user may not read the file (the front end opens images with the user's own
    /// rights, so this comes before any administrator prompt).
    #[error("cannot read {}: permission denied", .0.display())]
    Unreadable(PathBuf),
    /// The path is a directory, not an image file.
    #[error("{}: is a directory, not an image file", .0.display())]
    IsDirectory(PathBuf),
    /// The path names something that is not a regular file (a FIFO, a socket, a
    /// device): the decoders need to seek, and a stream cannot be read twice.
    #[error("{}: not a regular file; only image files can be written", .0.display())]
    NotAFile(PathBuf),
    /// The file holds no bytes at all.
    #[error("{}: the file is empty", .0.display())]
    Empty(PathBuf),
    /// Reading the file failed at the operating-system level.
    #[error("{}: {source}", path.display())]
    Io {
        /// The image file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file starts like a compressed archive but its structure is damaged or cut short.
    #[error("{}: the {format} data is corrupt: {reason}", path.display())]
    Corrupt {
        /// The image file.
        path: PathBuf,
        /// The format the magic bytes announced.
        format: Format,
        /// What exactly is wrong.
        reason: String,
    },
    /// The zip archive holds no file that could be a disk image.
    #[error("{}: the zip archive holds no disk image", path.display())]
    ZipNoImage {
        /// The zip file.
        path: PathBuf,
    },
    /// The zip archive holds several files that could each be the disk image.
    #[error(
        "{}: the zip archive holds several possible disk images ({}); extract the one you want",
        path.display(),
        candidates.join(", ")
    )]
    ZipAmbiguous {
        /// The zip file.
        path: PathBuf,
        /// The names of the entries that could be the image.
        candidates: Vec<String>,
    },
    /// The image inside the zip archive is compressed with a method this crate cannot decode.
    #[error(
        "{}: the zip entry {name} uses compression method {method}, which is not supported \
         (supported: stored, deflate, bzip2, zstd, xz)",
        path.display()
    )]
    ZipUnsupportedMethod {
        /// The zip file.
        path: PathBuf,
        /// The entry's name.
        name: String,
        /// The zip compression method number.
        method: u16,
    },
    /// The image inside the zip archive is encrypted.
    #[error("{}: the zip entry {name} is encrypted", path.display())]
    ZipEncrypted {
        /// The zip file.
        path: PathBuf,
        /// The entry's name.
        name: String,
    },
    /// Decoding the image needs more memory than the decoders may use.
    #[error(
        "{}: decoding this {format} image needs {} of memory ({what}), more than the {} Graver allows \
         itself on this machine; recompress it with a smaller {what}",
        path.display(),
        crate::human::binary(*needed),
        crate::human::binary(*budget)
    )]
    NeedsTooMuchMemory {
        /// The image file.
        path: PathBuf,
        /// Its format.
        format: Format,
        /// What takes the memory: "dictionary" (xz) or "window" (zstd).
        what: &'static str,
        /// The bytes decoding needs at the least.
        needed: u64,
        /// The bytes the decoders may use.
        budget: u64,
    },
}
