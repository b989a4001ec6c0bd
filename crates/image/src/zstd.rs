//! zstd: walking the frames for the size, and decoding frame after frame.

use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

#[cfg(not(feature = "native-codecs"))]
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use crate::format::{ZSTD_MAGIC, is_skippable_magic, le16, le32, le64, read_up_to};
#[cfg(not(feature = "native-codecs"))]
use crate::reader::{invalid, truncated};

/// A guess at how much a compressed block expands, for frames that do not record their size.
const COMPRESSED_BLOCK_RATIO: u64 = 4;
/// The largest block the format allows, stored or decoded.
pub(crate) const MAX_BLOCK: usize = 128 << 10;
/// A frame header descriptor's single-segment flag: the frame has no window
/// descriptor, and its window is its recorded content size.
pub(crate) const SINGLE_SEGMENT: u8 = 0x20;
/// A block header's type field for a block stored as it is.
pub(crate) const RAW: u32 = 0;
/// A block header's type field for a block of one byte repeated (RLE).
pub(crate) const RLE: u32 = 1;
/// A block header's type field for a compressed block.
pub(crate) const COMPRESSED: u32 = 2;
/// How much the walk reads at a time. A header beyond what was read costs one read of
/// this size, so it is small: a walk of a file of large blocks reads a few hundred
/// bytes per block instead of kilobytes; a file of tiny blocks is read a window of
/// many blocks at a time, never one system call per block.
const WALK_WINDOW: usize = 512;
/// What a decoder needs besides its window (two blocks in flight, state, tables).
const DECODER_OVERHEAD: u64 = 1 << 20;

/// What walking the frames of a zstd file found out about its decompressed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Known sizes summed, plus a guess for compressed blocks of frames without one.
    pub(crate) size: u64,
    /// Whether every frame records its content size.
    pub(crate) exact: bool,
    /// The largest window any frame asks for: the history a decoder must keep.
    pub(crate) largest_window: u64,
}

/// The least memory decoding frames of this largest window takes.
pub(crate) fn memory_needed(largest_window: u64) -> u64 {
    largest_window.saturating_add(DECODER_OVERHEAD)
}

/// Walks every frame header and block header of the file, without decoding anything.
///
/// This finds a truncated file at open time and gives the exact size when every
/// frame records it (the zstd tool writes it when it knows the input size). Every
/// size read from the file is checked: one that overflows, or a block larger than
/// the format allows, makes the file corrupt.
pub(crate) fn walk<R: Read + Seek>(file: &mut R, file_size: u64) -> Result<Walk, String> {
    let mut position = 0u64;
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let file = &mut BufReader::with_capacity(WALK_WINDOW, file);
    let mut walk = Walk {
        size: 0,
        exact: true,
        largest_window: 0,
    };
    let mut frames = 0u64;
    while position < file_size {
        let magic = le32(&read_array::<_, 4>(file, "a frame's magic number")?);
        if is_skippable_magic(magic) {
            let len = le32(&read_array::<_, 4>(file, "a skippable frame's size")?);
            let next = position + 8 + u64::from(len);
            skip(file, position + 8, next, file_size)?;
            position = next;
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Err(format!(
                "byte {position} starts neither a zstd frame nor a skippable frame"
            ));
        }
        frames += 1;
        let [descriptor] = read_array::<_, 1>(file, "a frame header")?;
        if descriptor & 0x08 != 0 {
            return Err("a frame header sets its reserved bit".into());
        }
        let single_segment = descriptor & SINGLE_SEGMENT != 0;
        let has_checksum = descriptor & 0x04 != 0;
        let dictionary_len = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
        let size_len = match descriptor >> 6 {
            0 => usize::from(single_segment),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let window_len = usize::from(!single_segment);
        let mut rest = [0u8; 1 + 4 + 8];
        let rest = &mut rest[..window_len + dictionary_len + size_len];
        read_exact_or(file, rest, "a frame header")?;
        let size_field = &rest[window_len + dictionary_len..];
        let content_size = match size_len {
            0 => None,
            1 => Some(u64::from(size_field[0])),
            2 => Some(u64::from(le16(size_field)) + 256),
            4 => Some(u64::from(le32(size_field))),
            _ => Some(le64(size_field)),
        };
        // A single-segment frame has no window descriptor: its window is its whole content.
        let window = match (single_segment, content_size) {
            (false, _) => window_size(rest[0]),
            (true, Some(size)) => size,
            (true, None) => return Err("a single-segment frame records no size".into()),
        };
        walk.largest_window = walk.largest_window.max(window);
        position += 5 + rest.len() as u64;

        let mut guessed = 0u64;
        loop {
            let header = BlockHeader::parse(read_array::<_, 3>(file, "a block header")?);
            let block_size = u64::from(header.size);
            if block_size > MAX_BLOCK as u64 {
                return Err("a block is larger than the format allows".into());
            }
            let stored = match header.kind {
                RAW => {
                    guessed += block_size;
                    block_size
                }
                RLE => {
                    guessed += block_size;
                    1
                }
                COMPRESSED => {
                    guessed += block_size * COMPRESSED_BLOCK_RATIO;
                    block_size
                }
                _ => return Err("a block header has the reserved block type".into()),
            };
            let next = position + 3 + stored;
            skip(file, position + 3, next, file_size)?;
            position = next;
            if header.last {
                break;
            }
        }
        if has_checksum {
            skip(file, position, position + 4, file_size)?;
            position += 4;
        }
        let frame_size = match content_size {
            Some(size) => size,
            None => {
                walk.exact = false;
                guessed
            }
        };
        walk.size = walk
            .size
            .checked_add(frame_size)
            .ok_or("the frames record sizes that add up to more than any file can hold")?;
    }
    if frames == 0 {
        return Err("the file holds only skippable frames and no zstd frame".into());
    }
    Ok(walk)
}

/// A block header: three bytes, little-endian.
pub(crate) struct BlockHeader {
    /// Whether the frame's last block.
    pub(crate) last: bool,
    /// [`RAW`], [`RLE`], [`COMPRESSED`], 3 reserved.
    pub(crate) kind: u32,
    /// Bytes stored (raw, compressed) or repeated (RLE).
    pub(crate) size: u32,
}

impl BlockHeader {
    pub(crate) fn parse(bytes: [u8; 3]) -> BlockHeader {
        let header = u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16;
        BlockHeader {
            last: header & 1 != 0,
            kind: (header >> 1) & 0x03,
            size: header >> 3,
        }
    }
}

/// The window a frame header's window descriptor stands for.
fn window_size(descriptor: u8) -> u64 {
    let base = 1u64 << (10 + (descriptor >> 3));
    base + base / 8 * u64::from(descriptor & 0x07)
}

/// Moves from `from` to `to` (both within the walk); past the end of the file means
/// truncated. A move within what was read costs nothing; a longer one drops it.
fn skip<R: Read + Seek>(file: &mut BufReader<R>, from: u64, to: u64, file_size: u64) -> Result<(), String> {
    if to > file_size {
        return Err(truncated_message());
    }
    let gap = i64::try_from(to - from).map_err(|_| truncated_message())?;
    file.seek_relative(gap).map_err(|e| e.to_string())
}

fn truncated_message() -> String {
    "the file ends inside a zstd frame; it is truncated".into()
}

fn read_exact_or<R: Read>(file: &mut R, buf: &mut [u8], what: &str) -> Result<(), String> {
    let got = read_up_to(file, buf).map_err(|e| e.to_string())?;
    if got < buf.len() {
        return Err(format!("the file ends inside {what}; it is truncated"));
    }
    Ok(())
}

fn read_array<R: Read, const N: usize>(file: &mut R, what: &str) -> Result<[u8; N], String> {
    let mut buf = [0u8; N];
    read_exact_or(file, &mut buf, what)?;
    Ok(buf)
}

/// A libzstd decoder of every frame in turn (skippable frames skipped, each frame's
/// content checksum checked), allowed the largest window the walk found.
#[cfg(feature = "native-codecs")]
pub(crate) fn native_reader<R: BufRead>(source: R, largest_window: u64) -> io::Result<impl Read> {
    // The smallest power of two that holds the window; every frame was walked, so no
    // frame can ask for more than the budget already allowed.
    let window_log = (64 - largest_window.saturating_sub(1).leading_zeros()).clamp(10, 31);
    let mut decoder = zstd::stream::read::Decoder::with_buffer(source)?;
    decoder.window_log_max(window_log)?;
    Ok(decoder)
}

/// Decodes every zstd frame in turn, skipping skippable frames and checking each
/// frame's content checksum when it has one.
#[cfg(not(feature = "native-codecs"))]
pub(crate) struct FramesReader<R> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
    frames: u64,
}

#[cfg(not(feature = "native-codecs"))]
impl<R: BufRead> FramesReader<R> {
    pub(crate) fn new(source: R) -> FramesReader<R> {
        FramesReader {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
            frames: 0,
        }
    }

    /// Moves to the next zstd frame; false at the clean end of the input.
    fn start_frame(&mut self) -> io::Result<bool> {
        loop {
            let mut magic = [0u8; 4];
            match read_up_to(&mut self.source, &mut magic)? {
                0 if self.frames > 0 => return Ok(false),
                0 => return Err(truncated("the input holds no zstd frame")),
                4 => {}
                _ => return Err(truncated("the input ends inside a frame's magic number")),
            }
            let magic_number = le32(&magic);
            if is_skippable_magic(magic_number) {
                let mut len = [0u8; 4];
                self.source.read_exact(&mut len)?;
                let len = u64::from(le32(&len));
                let skipped = io::copy(&mut (&mut self.source).take(len), &mut io::sink())?;
                if skipped < len {
                    return Err(truncated("the input ends inside a skippable frame"));
                }
                continue;
            }
            if magic_number != ZSTD_MAGIC {
                return Err(invalid("the bytes after a frame are not another frame"));
            }
            self.decoder
                .reset(magic.chain(&mut self.source))
                .map_err(|e| invalid(format!("bad frame header: {e}")))?;
            self.frames += 1;
            self.in_frame = true;
            return Ok(true);
        }
    }

    fn finish_frame(&mut self) -> io::Result<()> {
        self.in_frame = false;
        if let Some(recorded) = self.decoder.get_checksum_from_data() {
            let computed = self.decoder.get_calculated_checksum();
            if computed != Some(recorded) {
                return Err(invalid(format!("frame {} fails its content checksum", self.frames)));
            }
        }
        Ok(())
    }
}

#[cfg(not(feature = "native-codecs"))]
impl<R: BufRead> Read for FramesReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame && !self.start_frame()? {
                return Ok(0);
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(|e| invalid(e.to_string()))?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.decoder.is_finished() && self.decoder.can_collect() == 0 {
                self.finish_frame()?;
            }
        }
    }
}
