//! Graver's write engine: a verbatim, verified copy of an image on one or more devices.
//!
//! The engine reads the image once. A reader thread decompresses it into 4 MiB
//! buffers aligned to the devices' block size; every buffer is shared, without
//! copying, by one writer thread per device and a hasher thread, and returns to
//! a small fixed pool when the last of them is done with it. Memory use is thus
//! bounded (six buffers), and the slowest stage sets the pace.
//!
//! The order of operations is what makes a stick trustworthy:
//!
//! 1. An image whose exact size exceeds a device is refused for that device
//!    before a byte is written; so is, for every device, an image that decodes
//!    to nothing ([`WriteError::EmptyImage`]).
//! 2. On the image's first bytes, before any of the body, the device's first
//!    and last MiB are zeroed — every signature that makes a disk recognisable
//!    lies there — counterfeit stamps are written beyond the end of the image
//!    (each holding its own offset and a per-job nonce), and the device is synced.
//! 3. Everything but the first MiB is written (the tail zero-padded to the
//!    block size, at most 1 MiB per transfer) and synced. The first MiB —
//!    partition tables and boot code — is held back in memory.
//! 4. The stamps are read back: a device that lost some keeps less than it
//!    claims. With verification on, the device is read back (direct I/O, so not
//!    from the page cache) and each 1 MiB region is compared with the xxh3 digest
//!    the hasher took of the bytes that were written. On a mismatch that
//!    drive's job ends at once: the read-back stops, and the image is read once
//!    more (opened right at that MiB when it is raw, decoded up to it otherwise)
//!    to name the exact first differing byte. A counterfeit
//!    whose body does not verify fails as [`WriteError::Counterfeit`] with its
//!    measured size; one that holds the image gets a [`DeviceReport::warning`].
//! 5. Only then are the stamps erased and the first MiB written, synced and
//!    verified, and the device finished (partition table re-read, or a file cut
//!    to length).
//!
//! After any failure of a device it has touched, the engine zeroes the first
//! MiB (and the stamps) again, best effort. A cancelled, failed or killed write
//! therefore leaves a stick that no OS recognises: neither the old image nor
//! part of the new one. A device that does not move for [`STALL_AFTER`] shows
//! as [`Phase::Stalled`] in the progress. SHA-256, which people compare with published sums, is computed
//! by the hasher off the write path.
//!
//! The engine is generic over [`Source`] and [`Device`], so it is tested in
//! memory; [`graver_image::Image`] and [`graver_drives::Target`] are the real ones.
//!
//! # The worker
//!
//! Front ends never open raw devices themselves: graver-client starts a worker
//! per job, in-process or as the `graver-writer` binary through the OS's
//! elevation prompt. The worker ([`worker::serve`]) speaks the versioned,
//! token-authenticated [`protocol`], re-lists the drives itself, and re-checks
//! every target before opening it. It opens no image path: the front end opens the
//! image with the user's rights and sends the open file beside the job ([`transport`]). Several targets are written from one read of
//! the image, each verified on its own; a failing one is dropped and reported.

mod buffer;
mod device;
mod engine;
mod error;
pub mod os;
mod progress;
pub mod protocol;
mod source;
mod stamps;
pub mod transport;
mod wipe;
pub mod worker;

#[cfg(test)]
mod tests;

pub use crate::device::Device;
pub use crate::engine::{
    CHUNK_SIZE, CancelToken, CompareReport, DeviceReport, HOLD_BACK, WriteOptions, WriteReport, compare, write,
};
pub use crate::error::{ErrorKind, WriteError};
pub use crate::progress::{DeviceProgress, PROGRESS_INTERVAL, Phase, Progress, STALL_AFTER};
pub use crate::source::{Opened, Source};
