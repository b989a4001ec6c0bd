//! Exit codes, one per class of failure, so scripts can tell them apart.

use graver_drives::DriveError;
use graver_image::ImageError;
use graver_writer::{ErrorKind, WriteError};

/// What `graver` exits with. Documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything written was verified (or verification was turned off).
    Success = 0,
    /// The image is missing, unreadable as an image, empty, corrupt or truncated.
    BadInput = 3,
    /// The target was refused: before anything was written (too small, read-only, busy, exists, declined),
    /// or part-way when an image whose size could only be estimated turned out larger than the drive.
    Refused = 4,
    /// Reading or writing failed part-way.
    Io = 5,
    /// The drive does not hold the image.
    Mismatch = 6,
    /// Cancelled by the user (Ctrl-C).
    Cancelled = 7,
}

impl From<ErrorKind> for Exit {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::BadInput => Self::BadInput,
            ErrorKind::Refused => Self::Refused,
            ErrorKind::Io => Self::Io,
            ErrorKind::Mismatch => Self::Mismatch,
            ErrorKind::Cancelled => Self::Cancelled,
        }
    }
}

impl From<&WriteError> for Exit {
    fn from(error: &WriteError) -> Self {
        error.kind().into()
    }
}

impl From<&ImageError> for Exit {
    fn from(error: &ImageError) -> Self {
        match error {
            ImageError::Io { .. } => Self::Io,
            _ => Self::BadInput,
        }
    }
}

impl From<&DriveError> for Exit {
    fn from(error: &DriveError) -> Self {
        match error {
            DriveError::Io { .. } => Self::Io,
            DriveError::Cancelled(_) => Self::Cancelled,
            _ => Self::Refused,
        }
    }
}

/// The help text's section on exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  everything written was verified (or --no-verify was given)
  2  wrong command-line usage
  3  bad input: the image is missing, empty, a directory, corrupt or truncated
  4  target refused: too small (found part-way for an image whose size was only estimated;
     the drive is then left unrecognisable), read-only, busy, an existing file, or not confirmed
  5  I/O error while reading or writing
  6  verification failed: the drive does not hold the image
  7  cancelled";
