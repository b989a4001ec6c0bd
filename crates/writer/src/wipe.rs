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

use crate::buffer::AlignedBuf;
use crate::{CancelToken, Device, WriteError};

/// Bytes zeroed at each end of a drive.
pub const WIPE_LEN: u64 = 1 << 20;
/// The largest single transfer to a device: small enough that a slow drive (2 MB/s)
/// answers a cancel between two of them in well under a second.
pub(crate) const PIECE: usize = 1 << 20;

/// Writes `buf` at `offset` in pieces of at most [`PIECE`] bytes, checking `cancel` between them.
pub(crate) fn write_pieces(
    device: &mut dyn Device,
    offset: u64,
    buf: &[u8],
    cancel: &CancelToken,
) -> Result<(), WriteError> {
    let mut done = 0;
    for piece in buf.chunks(PIECE) {
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        let at = offset + done;
        device.write_at(at, piece).map_err(|source| WriteError::Write {
            device: device.name(),
            offset: at,
            source,
        })?;
        done += piece.len() as u64;
    }
    Ok(())
}

/// Fills `buf` from `offset` in pieces of at most [`PIECE`] bytes, checking `cancel`
/// between them; returns the bytes read, fewer only at the end of the device.
pub(crate) fn read_pieces(
    device: &mut dyn Device,
    offset: u64,
    buf: &mut [u8],
    cancel: &CancelToken,
) -> Result<usize, ReadFailure> {
    let mut done = 0;
    for piece in buf.chunks_mut(PIECE) {
        if cancel.is_cancelled() {
            return Err(ReadFailure::Cancelled);
        }
        let want = piece.len();
        let got = device
            .read_at(offset + done as u64, piece)
            .map_err(|e| ReadFailure::Io(offset + done as u64, e))?;
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
        write_pieces(device, start, &zeros[..len], cancel)?;
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
    use super::{WIPE_LEN, wipe_ranges};

    const MIB: u64 = 1 << 20;

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
