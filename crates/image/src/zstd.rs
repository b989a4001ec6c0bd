//! zstd: walking the frames for the size, and decoding frame after frame.

use std::io::{self, BufRead, Read, Seek, SeekFrom};

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use crate::format::{ZSTD_MAGIC, is_skippable_magic, le16, le32, le64, read_up_to};
use crate::reader::{invalid, truncated};

/// A guess at how much a compressed block expands, for frames that do not record their size.
const COMPRESSED_BLOCK_RATIO: u64 = 4;

/// What walking the frames of a zstd file found out about its decompressed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    /// Known sizes summed, plus a guess for compressed blocks of frames without one.
    pub(crate) size: u64,
    /// Whether every frame records its content size.
    pub(crate) exact: bool,
}

/// Walks every frame header and block header of the file, without decoding anything.
///
/// This finds a truncated file at open time and gives the exact size when every
/// frame records it (the zstd tool writes it when it knows the input size).
pub(crate) fn walk<R: Read + Seek>(file: &mut R, file_size: u64) -> Result<Walk, String> {
    let mut position = 0u64;
    let mut walk = Walk { size: 0, exact: true };
    let mut frames = 0u64;
    while position < file_size {
        file.seek(SeekFrom::Start(position)).map_err(|e| e.to_string())?;
        let magic = read_exact_or(file, 4, "a frame's magic number")?;
        let magic = le32(&magic);
        if is_skippable_magic(magic) {
            let len = read_exact_or(file, 4, "a skippable frame's size")?;
            position += 8 + u64::from(le32(&len));
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Err(format!(
                "byte {position} starts neither a zstd frame nor a skippable frame"
            ));
        }
        frames += 1;
        let descriptor = read_exact_or(file, 1, "a frame header")?[0];
        if descriptor & 0x08 != 0 {
            return Err("a frame header sets its reserved bit".into());
        }
        let single_segment = descriptor & 0x20 != 0;
        let has_checksum = descriptor & 0x04 != 0;
        let dictionary_len = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
        let size_len = match descriptor >> 6 {
            0 => usize::from(single_segment),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let window_len = usize::from(!single_segment);
        let rest = read_exact_or(file, window_len + dictionary_len + size_len, "a frame header")?;
        let size_field = &rest[window_len + dictionary_len..];
        let content_size = match size_len {
            0 => None,
            1 => Some(u64::from(size_field[0])),
            2 => Some(u64::from(le16(size_field)) + 256),
            4 => Some(u64::from(le32(size_field))),
            _ => Some(le64(size_field)),
        };
        position += 5 + rest.len() as u64;

        let mut guessed = 0u64;
        loop {
            file.seek(SeekFrom::Start(position)).map_err(|e| e.to_string())?;
            let header = read_exact_or(file, 3, "a block header")?;
            let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
            let last = header & 1 != 0;
            let block_size = u64::from(header >> 3);
            let stored = match (header >> 1) & 0x03 {
                0 => {
                    guessed += block_size;
                    block_size
                }
                1 => {
                    guessed += block_size;
                    1
                }
                2 => {
                    guessed += block_size * COMPRESSED_BLOCK_RATIO;
                    block_size
                }
                _ => return Err("a block header has the reserved block type".into()),
            };
            position += 3 + stored;
            if last {
                break;
            }
            if position > file_size {
                return Err(truncated_message());
            }
        }
        if has_checksum {
            position += 4;
        }
        if position > file_size {
            return Err(truncated_message());
        }
        match content_size {
            Some(size) => walk.size += size,
            None => {
                walk.exact = false;
                walk.size += guessed;
            }
        }
    }
    if position > file_size {
        return Err(truncated_message());
    }
    if frames == 0 {
        return Err("the file holds only skippable frames and no zstd frame".into());
    }
    Ok(walk)
}

fn truncated_message() -> String {
    "the file ends inside a zstd frame; it is truncated".into()
}

fn read_exact_or<R: Read>(file: &mut R, len: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len];
    let got = read_up_to(file, &mut buf).map_err(|e| e.to_string())?;
    if got < len {
        return Err(format!("the file ends inside {what}; it is truncated"));
    }
    Ok(buf)
}

/// Decodes every zstd frame in turn, skipping skippable frames and checking each
/// frame's content checksum when it has one.
pub(crate) struct FramesReader<R> {
    source: R,
    decoder: FrameDecoder,
    in_frame: bool,
    frames: u64,
}

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
