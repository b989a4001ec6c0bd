//! Destroying the signatures that make a drive recognisable, before the body and after a failure.
//!
//! A write that stops half-way must not leave the old image's identity in place: a
//! stick whose old partition table, ISO9660 descriptors or backup GPT survive still
//! mounts or boots as the old image, with the new one's bytes inside. Every
//! signature an OS (or `wipefs`, `blkid -p`) finds on a whole disk lies in its first
//! or its last MiB: MBR, GPT header, ISO9660/UDF descriptors from 32 KiB, the file
//! system superblocks near the start, LVM and MD 1.1/1.2 labels; and at the end the
//! backup GPT, the UDF anchors, MD 0.90/1.0 superblocks, ZFS's last two labels
//! (the last 512 KiB) and the firmware RAID metadata of the last sectors.

use std::io;
use std::time::{Duration, Instant};

use crate::buffer::AlignedBuf;
use crate::{CancelToken, Device, WriteError};

/// Bytes zeroed at each end of a drive.
pub const WIPE_LEN: u64 = 1 << 20;
/// The first transfer to a device, and every transfer to a slow one: small enough that a
/// slow drive (2 MB/s) answers a cancel between two of them in well under a second.
pub(crate) const PIECE: usize = 1 << 20;
/// The largest transfer, for a device fast enough to do it within [`TRANSFER_TIME`].
const MAX_PIECE: usize = 4 << 20;
/// How long one transfer may take, which bounds how late a cancel is noticed.
const TRANSFER_TIME: Duration = Duration::from_millis(100);

/// The size of the next transfer to one device, from how fast its last one went.
///
/// One synchronous transfer at a time leaves a fast device idle while the next is
/// issued: on a RAM-backed loop device 1 MiB direct writes take about 1.6 times as long
/// as 4 MiB ones, enough to make writing, not decoding, the slower half of a `.zst`
/// write. So a device that moves a transfer quickly gets larger ones, up to
/// [`MAX_PIECE`], while a slow one keeps [`PIECE`] and answers a cancel as before.
#[derive(Debug)]
pub(crate) struct Pace {
    piece: usize,
}

impl Pace {
    /// Starts at [`PIECE`]: nothing is known about the device yet.
    pub(crate) fn new() -> Pace {
        Pace { piece: PIECE }
    }

    /// Sizes the next transfer so that, at the rate of this one (`len` bytes in `took`),
    /// it takes at most [`TRANSFER_TIME`]; a whole number of [`PIECE`]s, so it stays
    /// aligned to any block size.
    fn record(&mut self, len: usize, took: Duration) {
        let fits = u128::try_from(len)
            .unwrap_or(u128::MAX)
            .saturating_mul(TRANSFER_TIME.as_micros())
            / took.as_micros().max(1);
        let pieces = usize::try_from(fits).unwrap_or(usize::MAX) / PIECE;
        self.piece = pieces.clamp(1, MAX_PIECE / PIECE) * PIECE;
    }
}

/// Writes `buf` at `offset` in transfers sized by `pace`, checking `cancel` between them.
pub(crate) fn write_pieces(
    device: &mut dyn Device,
    offset: u64,
    buf: &[u8],
    cancel: &CancelToken,
    pace: &mut Pace,
) -> Result<(), WriteError> {
    let mut done = 0;
    while done < buf.len() {
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        let piece = &buf[done..buf.len().min(done + pace.piece)];
        let at = offset + done as u64;
        let started = Instant::now();
        device.write_at(at, piece).map_err(|source| WriteError::Write {
            device: device.name(),
            offset: at,
            source,
        })?;
        pace.record(piece.len(), started.elapsed());
        done += piece.len();
    }
    Ok(())
}

/// Fills `buf` from `offset` in transfers sized by `pace`, checking `cancel` between
/// them; returns the bytes read, fewer only at the end of the device.
pub(crate) fn read_pieces(
    device: &mut dyn Device,
    offset: u64,
    buf: &mut [u8],
    cancel: &CancelToken,
    pace: &mut Pace,
) -> Result<usize, ReadFailure> {
    let mut done = 0;
    while done < buf.len() {
        if cancel.is_cancelled() {
            return Err(ReadFailure::Cancelled);
        }
        let end = buf.len().min(done + pace.piece);
        let piece = &mut buf[done..end];
        let want = piece.len();
        let started = Instant::now();
        let got = device
            .read_at(offset + done as u64, piece)
            .map_err(|e| ReadFailure::Io(offset + done as u64, e))?;
        pace.record(got, started.elapsed());
        done += got;
        if got < want {
            break;
        }
    }
    Ok(done)
}

/// Why [`read_pieces`] stopped.
pub(crate) enum ReadFailure {
    /// The job was cancelled between two pieces.
    Cancelled,
    /// The device failed at this offset.
    Io(u64, io::Error),
}

/// The ranges [`wipe`] zeroes: the first MiB, and the last MiB when the device has an end
/// (a regular file grows instead, so it has no old end to destroy).
///
/// The tail range ends at the device's own end, not at its last whole `block`: a card
/// whose capacity is a multiple of its 512-byte sectors but not of 4096 keeps its
/// backup GPT header in the very last sector. The last transfer is then shorter than
/// `block`, as the last write of an image is there (see `engine::on_device`).
pub(crate) fn wipe_ranges(capacity: Option<u64>, block: usize) -> Vec<(u64, u64)> {
    let block = block as u64;
    let mut ranges = Vec::new();
    let head = capacity.map_or(WIPE_LEN, |c| c.min(WIPE_LEN)) / block * block;
    if head > 0 {
        ranges.push((0, head));
    }
    if let Some(capacity) = capacity {
        let start = (capacity.saturating_sub(WIPE_LEN) / block * block).max(head);
        if start < capacity {
            ranges.push((start, capacity));
        }
    }
    ranges
}

/// Zeroes the first and the last MiB of `device` (see [`wipe_ranges`]); the caller syncs.
pub(crate) fn wipe(device: &mut dyn Device, block: usize, cancel: &CancelToken) -> Result<(), WriteError> {
    // One block more than a MiB: the tail range may start a block early (see wipe_ranges).
    let zeros = AlignedBuf::new(usize::try_from(WIPE_LEN).unwrap_or(PIECE) + block, block);
    for (start, end) in wipe_ranges(device.capacity(), block) {
        let len = usize::try_from(end - start).unwrap_or(0);
        write_pieces(device, start, &zeros[..len], cancel, &mut Pace::new())?;
    }
    Ok(())
}

/// After a failure, zeroes the first MiB again and the counterfeit stamps at `stamps`,
/// and syncs, ignoring errors: the drive may be gone, and the failure already reported
/// says more than this would.
///
/// The first MiB is zero already unless the image's own first MiB had begun to be
/// written, or a counterfeit drive wrapped later writes onto it; either would leave
/// something that looks like a partition table or a file system.
pub(crate) fn scrub(device: &mut dyn Device, block: usize, stamps: &[u64]) {
    let zeros = AlignedBuf::new(usize::try_from(WIPE_LEN).unwrap_or(PIECE), block);
    for &offset in stamps.iter().filter(|&&o| o >= WIPE_LEN) {
        if device.write_at(offset, &zeros[..block]).is_err() {
            return;
        }
    }
    let head = device.capacity().map_or(WIPE_LEN, |c| c.min(WIPE_LEN)) / block as u64 * block as u64;
    let len = usize::try_from(head).unwrap_or(0);
    if len > 0 && device.write_at(0, &zeros[..len]).is_ok() {
        let _ = device.sync();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{MAX_PIECE, PIECE, Pace, WIPE_LEN, wipe_ranges};

    const MIB: u64 = 1 << 20;

    #[test]
    fn a_fast_device_gets_larger_transfers_and_a_slow_one_keeps_small_ones() {
        let mut pace = Pace::new();
        assert_eq!(pace.piece, PIECE);
        // 1 MiB in a millisecond: the largest transfer still ends well within the limit.
        pace.record(PIECE, Duration::from_millis(1));
        assert_eq!(pace.piece, MAX_PIECE);
        // 4 MiB in 160 ms (25 MiB/s): 2.5 MiB would fit in 100 ms, so two pieces.
        pace.record(MAX_PIECE, Duration::from_millis(160));
        assert_eq!(pace.piece, 2 * PIECE);
        // A stick at 2 MB/s, or one that stalls, is back to single pieces.
        pace.record(2 * PIECE, Duration::from_secs(1));
        assert_eq!(pace.piece, PIECE);
        pace.record(PIECE, Duration::from_secs(30));
        assert_eq!(pace.piece, PIECE);
        // No time measured at all is the fastest device there is, not a division by zero.
        pace.record(PIECE, Duration::ZERO);
        assert_eq!(pace.piece, MAX_PIECE);
    }

    #[test]
    fn both_ends_are_wiped_up_to_the_last_sector() {
        assert_eq!(wipe_ranges(None, 4096), [(0, MIB)], "a file has no end to wipe");
        assert_eq!(wipe_ranges(Some(64 * MIB), 4096), [(0, MIB), (63 * MIB, 64 * MIB)]);
        // 512-byte sectors, not whole 4096-byte blocks: the last sector (backup GPT) too.
        let odd = 48 * MIB + 512;
        assert_eq!(wipe_ranges(Some(odd), 4096), [(0, MIB), (47 * MIB, odd)]);
        assert!(wipe_ranges(Some(odd), 4096)[1].1 - wipe_ranges(Some(odd), 4096)[1].0 <= WIPE_LEN + 4096);
        // Smaller than two MiB: the ranges meet and do not overlap.
        assert_eq!(wipe_ranges(Some(MIB + 1536), 4096), [(0, MIB), (MIB, MIB + 1536)]);
        assert_eq!(wipe_ranges(Some(6144), 4096), [(0, 4096), (4096, 6144)]);
    }
}
