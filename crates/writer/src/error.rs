//! What can go wrong in a write, and which kind of failure it is.

use std::io;

use graver_image::human::binary;
use serde::{Deserialize, Serialize};

/// Why a write or a comparison did not succeed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The image could not be decoded: corrupt or truncated data.
    #[error("the image is corrupt or truncated: {0}")]
    BadImage(#[source] io::Error),
    /// Reading the image file failed at the OS level.
    #[error("reading the image failed: {0}")]
    SourceIo(#[source] io::Error),
    /// The image does not fit on the device; nothing was written.
    #[error("{device}: the drive is too small: it holds {capacity} bytes but the image needs {needed} bytes or more")]
    TooSmall {
        /// The device.
        device: String,
        /// Bytes the image needs (at least).
        needed: u64,
        /// Bytes the device holds.
        capacity: u64,
    },
    /// Writing to the device failed.
    #[error("{device}: writing failed at byte {offset}: {source}")]
    Write {
        /// The device.
        device: String,
        /// Offset of the failed write.
        offset: u64,
        /// What the device reported.
        #[source]
        source: io::Error,
    },
    /// Reading the device back failed.
    #[error("{device}: reading back failed at byte {offset}: {source}")]
    ReadBack {
        /// The device.
        device: String,
        /// Offset of the failed read.
        offset: u64,
        /// What the device reported.
        #[source]
        source: io::Error,
    },
    /// The device does not hold the image: the first differing byte is given.
    #[error("{device}: verification failed: the drive differs from the image at byte {offset}")]
    Mismatch {
        /// The device.
        device: String,
        /// First byte that differs.
        offset: u64,
    },
    /// The drive reports more capacity than it keeps (a counterfeit), and the image did not
    /// survive on it or could not be checked.
    #[error(
        "{device}: the drive is not as large as it claims: it reports {} but keeps at most about {} (what is written beyond that lands on earlier data), so it cannot hold this {} image. A full check of the drive (`graver check`, planned for a later version) will tell more.",
        binary(*.claimed), .keeps_at_most.map_or_else(|| "less than the image".to_owned(), binary), binary(*.image_len)
    )]
    Counterfeit {
        /// The device.
        device: String,
        /// The capacity the drive reports.
        claimed: u64,
        /// Where its real capacity ends at the latest, when it could be measured.
        keeps_at_most: Option<u64>,
        /// Bytes of image.
        image_len: u64,
    },
    /// The image decodes to nothing; no drive was touched.
    #[error("the image is empty: it decodes to 0 bytes, so there is nothing to write; the drive was not touched")]
    EmptyImage,
    /// Syncing or finishing the device failed after the data was written.
    #[error("{device}: finishing the write failed: {source}")]
    Finish {
        /// The device.
        device: String,
        /// What the device reported.
        #[source]
        source: io::Error,
    },
    /// The job was cancelled; the device's first MiB was left unwritten.
    #[error("cancelled: the drive's first MiB was left unwritten, so it will not boot a half-written image")]
    Cancelled,
    /// The image source failed; the source's own error is reported once, on its own.
    #[error("stopped because reading the image failed")]
    SourceFailed,
}

/// The class of a failure, for exit codes and for what to tell the user to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The image is unusable.
    BadInput,
    /// The target was refused: before anything was written, or part-way when an image
    /// whose size could only be estimated turned out larger than the drive.
    Refused,
    /// A device or file failed while in use.
    Io,
    /// The device does not hold the image.
    Mismatch,
    /// The user cancelled.
    Cancelled,
}

impl ErrorKind {
    /// Orders kinds by how much they matter to a user, for picking one exit code out of several failures.
    pub fn rank(self) -> u8 {
        match self {
            Self::Cancelled => 0,
            Self::Refused => 1,
            Self::BadInput => 2,
            Self::Io => 3,
            Self::Mismatch => 4,
        }
    }
}

impl WriteError {
    /// Which class of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadImage(_) | Self::SourceFailed | Self::EmptyImage => ErrorKind::BadInput,
            Self::TooSmall { .. } => ErrorKind::Refused,
            Self::SourceIo(_) | Self::Write { .. } | Self::ReadBack { .. } | Self::Finish { .. } => ErrorKind::Io,
            Self::Mismatch { .. } | Self::Counterfeit { .. } => ErrorKind::Mismatch,
            Self::Cancelled => ErrorKind::Cancelled,
        }
    }

    /// Sorts an error from the image stream: undecodable data is bad input, the rest is I/O.
    pub(crate) fn from_source(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput => {
                Self::BadImage(error)
            }
            _ => Self::SourceIo(error),
        }
    }
}
