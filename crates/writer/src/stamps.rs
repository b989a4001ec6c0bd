//! Catching counterfeit drives on every write.
//!
//! A counterfeit stick reports a capacity it does not have: it keeps `M` bytes and
//! stores what is written at offset `o` at `o % M` (or drops it). Before the body,
//! the engine writes stamps — one block each, holding its own offset and a random
//! per-job nonce — beyond the end of the image. After the body it reads them back:
//! on a drive that really has its capacity, each stamp is where it was put. On a
//! counterfeit, stamps that wrapped were overwritten by the body or by a lower stamp
//! (they are written from the highest offset down, so the lowest one to land on a
//! place stays), and the lowest stamp that did not come back bounds the real size.
//! The first block of the drive, zeroed by the wipe and held back until the end,
//! tells the rest: one of the stamps there wrapped onto it, and anything else there
//! is the body wrapped onto it (the image does not fit).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::buffer::{AlignedBuf, round_up};
use crate::wipe::WIPE_LEN;
use crate::{CancelToken, Device, WriteError};

const MAGIC: &[u8; 16] = b"graver-stamp-v1\0";
const MIB: u64 = 1 << 20;

/// A per-job number that a stamp left by an earlier job cannot match.
pub(crate) fn nonce() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Where the stamps go for an image expected to end at `image_end` on a drive of `capacity`:
/// every power-of-two MiB, every sixteenth of the drive and its last block — those beyond
/// the image. Sorted from the highest down, the order they are written in.
pub(crate) fn plan(capacity: u64, image_end: u64, block: usize) -> Vec<u64> {
    let block_len = block as u64;
    let last = (capacity / block_len).saturating_sub(1) * block_len;
    let beyond = round_up(image_end, block).max(WIPE_LEN);
    if last < beyond {
        return Vec::new();
    }
    let mut offsets = vec![last];
    offsets.extend((0..64).map(|k| MIB << k).take_while(|&o| o <= last));
    offsets.extend((1..16).map(|j| capacity / 16 * j / block_len * block_len));
    offsets.retain(|&o| o >= beyond);
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    offsets.dedup();
    offsets
}

fn stamp(buf: &mut [u8], offset: u64, nonce: u64) {
    buf.fill(0);
    buf[..16].copy_from_slice(MAGIC);
    buf[16..24].copy_from_slice(&offset.to_le_bytes());
    buf[24..32].copy_from_slice(&nonce.to_le_bytes());
}

fn holds(buf: &[u8], offset: u64, nonce: u64) -> bool {
    buf.len() >= 32 && &buf[..16] == MAGIC && buf[16..24] == offset.to_le_bytes() && buf[24..32] == nonce.to_le_bytes()
}

/// Writes a stamp at each of `offsets`, in the order given; the caller syncs.
pub(crate) fn write(
    device: &mut dyn Device,
    offsets: &[u64],
    nonce: u64,
    block: usize,
    cancel: &CancelToken,
) -> Result<(), WriteError> {
    let mut buf = AlignedBuf::new(block, block);
    for &offset in offsets {
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        stamp(&mut buf, offset, nonce);
        device.write_at(offset, &buf).map_err(|source| WriteError::Write {
            device: device.name(),
            offset,
            source,
        })?;
    }
    Ok(())
}

/// What reading the stamps back found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// Stamps found where they were written, lowest first.
    pub(crate) kept: Vec<u64>,
    /// Stamps that were overwritten, wrapped or dropped, lowest first.
    pub(crate) lost: Vec<u64>,
}

impl Found {
    /// The drive keeps no more than this many bytes: the lowest offset whose stamp was lost.
    pub(crate) fn keeps_at_most(&self) -> Option<u64> {
        self.lost.first().copied()
    }
}

/// Reads each stamp back, and the drive's first block; stamps below the end of `image_len`
/// (other than one at 0) were overwritten by the image itself and are not read. A read
/// error fails the device like any read-back error.
pub(crate) fn check(
    device: &mut dyn Device,
    offsets: &[u64],
    image_len: u64,
    nonce: u64,
    block: usize,
) -> Result<Found, WriteError> {
    let beyond = round_up(image_len, block);
    let mut buf = AlignedBuf::new(block, block);
    let mut found = Found::default();
    let mut ascending: Vec<u64> = offsets.iter().copied().filter(|&o| o == 0 || o >= beyond).collect();
    ascending.sort_unstable();
    for offset in ascending {
        let got = device
            .read_at(offset, &mut buf)
            .map_err(|source| WriteError::ReadBack {
                device: device.name(),
                offset,
                source,
            })?;
        if got == buf.len() && holds(&buf, offset, nonce) {
            found.kept.push(offset);
        } else {
            found.lost.push(offset);
        }
    }
    if !offsets.contains(&0) {
        let name = device.name();
        let got = device.read_at(0, &mut buf).map_err(|source| WriteError::ReadBack {
            device: name,
            offset: 0,
            source,
        })?;
        let first = &buf[..got];
        if let Some(wrapped) = offsets.iter().find(|&&o| holds(first, o, nonce)) {
            found.kept.retain(|o| o != wrapped);
            found.lost.push(*wrapped);
        } else if !found.lost.is_empty() && first.iter().any(|&b| b != 0) {
            // On a drive already shown to wrap, this is the body wrapped onto its start.
            // On any other it is a bad cell, which the first MiB's own verification names.
            found.lost.push(0);
        }
        found.lost.sort_unstable();
    }
    Ok(found)
}

/// Zeroes the stamps that were found where they were written. Only those: on a
/// counterfeit drive a lost stamp's offset wraps onto data, the image's included.
pub(crate) fn erase(device: &mut dyn Device, kept: &[u64], block: usize) -> Result<(), WriteError> {
    let zeros = AlignedBuf::new(block, block);
    for &offset in kept.iter().filter(|&&o| o >= WIPE_LEN) {
        device.write_at(offset, &zeros).map_err(|source| WriteError::Write {
            device: device.name(),
            offset,
            source,
        })?;
    }
    Ok(())
}

/// Measures how much a drive already known to be counterfeit really keeps, once the
/// write has failed and nothing on it is worth keeping: stamps at 0 and every
/// power-of-two MiB, written from the top down, read from the bottom up. The lowest
/// one that does not come back is where the real capacity ends, or below.
pub(crate) fn probe(device: &mut dyn Device, block: usize) -> Option<u64> {
    let capacity = device.capacity()?;
    let mut offsets = vec![0];
    offsets.extend((0..64).map(|k| MIB << k).take_while(|&o| o + block as u64 <= capacity));
    offsets.reverse();
    let nonce = nonce();
    write(device, &offsets, nonce, block, &CancelToken::new()).ok()?;
    device.sync().ok()?;
    let found = check(device, &offsets, 0, nonce, block).ok()?;
    found.keeps_at_most()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn stamps_lie_beyond_the_image_highest_first() {
        let plan = plan(256 * MIB, 48 * MIB, 4096);
        assert_eq!(plan.last(), Some(&(48 * MIB)));
        assert_eq!(plan.first(), Some(&(256 * MIB - 4096)));
        assert!(plan.windows(2).all(|w| w[0] > w[1]));
        assert!(plan.iter().all(|&o| o >= 48 * MIB));
        assert!(plan.contains(&(64 * MIB)) && plan.contains(&(128 * MIB)) && plan.contains(&(80 * MIB)));
    }

    #[test]
    fn an_image_that_fills_the_drive_leaves_no_room_for_stamps() {
        assert!(plan(64 * MIB, 64 * MIB, 4096).is_empty());
        assert_eq!(plan(64 * MIB, 64 * MIB - 4096, 4096), vec![64 * MIB - 4096]);
    }

    #[test]
    fn a_stamp_names_its_offset_and_job() {
        let mut buf = vec![0; 4096];
        stamp(&mut buf, 5 * MIB, 42);
        assert!(holds(&buf, 5 * MIB, 42));
        assert!(!holds(&buf, 6 * MIB, 42));
        assert!(!holds(&buf, 5 * MIB, 43));
        assert!(!holds(&[0; 4096], 0, 0));
    }
}
