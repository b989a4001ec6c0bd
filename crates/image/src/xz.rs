//! xz: reading the indexes for the exact size and block layout, and decoding
//! blocks on several threads.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

use lzma_rust2::XzReader;

use crate::format::{XZ_MAGIC, le32, read_up_to};
use crate::reader::{CountingFile, invalid};

const HEADER_LEN: u64 = 12;
const FOOTER_LEN: u64 = 12;
/// An index this large would describe millions of blocks; a bigger one is a damaged footer.
const MAX_INDEX_LEN: u64 = 64 << 20;
/// Blocks decoding to more than this are decoded on one thread, to bound memory.
const MAX_PARALLEL_BLOCK: u64 = 256 << 20;

/// One block of an xz file, as its stream's index describes it.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Where the block header starts in the file.
    offset: u64,
    unpadded_size: u64,
    uncompressed_size: u64,
    /// The stream flags (they carry the check type) of the block's stream.
    stream_flags: [u8; 2],
}

impl Block {
    fn padded_size(&self) -> u64 {
        self.unpadded_size.next_multiple_of(4)
    }
}

/// The block layout of a whole xz file, all streams in file order.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) blocks: Vec<Block>,
    pub(crate) uncompressed_size: u64,
}

/// Reads every stream's footer and index from the end of the file backwards.
///
/// Any inconsistency (bad CRC, sizes that do not add up, a missing stream header)
/// means the file is corrupt or truncated; the error says which.
pub(crate) fn read_layout<R: Read + Seek>(file: &mut R, file_size: u64) -> Result<Layout, String> {
    let mut streams: Vec<Vec<Block>> = Vec::new();
    let mut end = file_size;
    while end > 0 {
        let mut word = [0u8; 4];
        if end >= 4 {
            read_at(file, end - 4, &mut word)?;
            if word == [0; 4] {
                // Stream padding: zero words between or after streams.
                end -= 4;
                continue;
            }
        }
        if end < HEADER_LEN + FOOTER_LEN {
            return Err("the file ends before the end of an xz stream (truncated?)".into());
        }
        let mut footer = [0u8; 12];
        read_at(file, end - FOOTER_LEN, &mut footer)?;
        if &footer[10..12] != b"YZ" {
            return Err("no xz stream footer at the end of the file; it is truncated".into());
        }
        if crc32fast::hash(&footer[4..10]) != le32(&footer[0..4]) {
            return Err("the xz stream footer fails its CRC check".into());
        }
        let flags = [footer[8], footer[9]];
        let index_len = (u64::from(le32(&footer[4..8])) + 1) * 4;
        if index_len > MAX_INDEX_LEN || index_len + FOOTER_LEN + HEADER_LEN > end {
            return Err("the xz index size in the stream footer is impossible".into());
        }
        let index_start = end - FOOTER_LEN - index_len;
        let mut index = vec![0u8; usize::try_from(index_len).map_err(|e| e.to_string())?];
        read_at(file, index_start, &mut index)?;
        let records = parse_index(&index)?;
        let blocks_len = records
            .iter()
            .try_fold(0u64, |sum, (unpadded, _)| sum.checked_add(unpadded.next_multiple_of(4)))
            .ok_or("the xz index records impossible block sizes")?;
        let stream_start = index_start
            .checked_sub(blocks_len)
            .and_then(|start| start.checked_sub(HEADER_LEN))
            .ok_or("the xz index describes more data than the file holds")?;
        let mut header = [0u8; 12];
        read_at(file, stream_start, &mut header)?;
        if header[..6] != XZ_MAGIC {
            return Err(format!(
                "no xz stream header at byte {stream_start}, where the index says the stream starts"
            ));
        }
        if crc32fast::hash(&header[6..8]) != le32(&header[8..12]) || header[6..8] != flags {
            return Err("the xz stream header is damaged or disagrees with its footer".into());
        }
        let mut offset = stream_start + HEADER_LEN;
        let mut blocks = Vec::with_capacity(records.len());
        for (unpadded_size, uncompressed_size) in records {
            let block = Block {
                offset,
                unpadded_size,
                uncompressed_size,
                stream_flags: flags,
            };
            offset += block.padded_size();
            blocks.push(block);
        }
        streams.push(blocks);
        end = stream_start;
    }
    if streams.is_empty() {
        return Err("the file holds only zero bytes after the xz magic".into());
    }
    let blocks: Vec<Block> = streams.into_iter().rev().flatten().collect();
    let uncompressed_size = blocks
        .iter()
        .try_fold(0u64, |sum, block| sum.checked_add(block.uncompressed_size))
        .ok_or("the xz index records an impossible total size")?;
    Ok(Layout {
        blocks,
        uncompressed_size,
    })
}

fn read_at<R: Read + Seek>(file: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), String> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let len = read_up_to(file, buf).map_err(|e| e.to_string())?;
    if len < buf.len() {
        return Err("the file ends inside the xz structure; it is truncated".into());
    }
    Ok(())
}

/// Parses an index (indicator, record count, records, padding, CRC32) into
/// (unpadded size, uncompressed size) pairs.
fn parse_index(index: &[u8]) -> Result<Vec<(u64, u64)>, String> {
    let (body, crc) = index.split_at(index.len() - 4);
    if crc32fast::hash(body) != le32(crc) {
        return Err("the xz index fails its CRC check".into());
    }
    if body.first() != Some(&0) {
        return Err("the xz index indicator is missing".into());
    }
    let mut position = 1;
    let count = read_varint(body, &mut position)?;
    let mut records = Vec::new();
    for _ in 0..count {
        let unpadded = read_varint(body, &mut position)?;
        let uncompressed = read_varint(body, &mut position)?;
        if unpadded == 0 {
            return Err("the xz index records an empty block".into());
        }
        records.push((unpadded, uncompressed));
    }
    if body[position..].iter().any(|&byte| byte != 0) || body.len() - position >= 4 {
        return Err("the xz index has bytes after its records".into());
    }
    Ok(records)
}

fn read_varint(bytes: &[u8], position: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..63).step_by(7) {
        let byte = *bytes.get(*position).ok_or("the xz index ends inside a number")?;
        *position += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("the xz index holds a number that is too long".into())
}

/// Whether a file with this layout is worth decoding on several threads, and with how many.
pub(crate) fn parallel_workers(layout: &Layout) -> Option<usize> {
    let workers = thread::available_parallelism().map_or(1, usize::from);
    let small_blocks = layout
        .blocks
        .iter()
        .all(|block| block.uncompressed_size <= MAX_PARALLEL_BLOCK);
    (layout.blocks.len() > 1 && workers > 1 && small_blocks).then_some(workers)
}

/// A single-threaded reader for files with one block (or huge ones).
pub(crate) fn single_reader(file: CountingFile) -> impl Read + Send {
    XzReader::new(io::BufReader::with_capacity(1 << 16, file), true)
}

type Job = (u64, Vec<u8>, u64);
type Outcome = (u64, io::Result<Vec<u8>>);

/// Decodes the blocks of an xz file on several threads and returns their bytes in order.
///
/// Each block is wrapped in a minimal one-block stream (header, the block, an index
/// naming it, footer) and handed to [`XzReader`], so every block's check (CRC32, CRC64
/// or SHA-256) and its recorded sizes are verified, unlike a bare block decoder.
pub(crate) struct ParallelReader {
    file: CountingFile,
    blocks: std::vec::IntoIter<Block>,
    jobs: mpsc::Sender<Job>,
    outcomes: mpsc::Receiver<Outcome>,
    next_to_send: u64,
    next_to_return: u64,
    total: u64,
    in_flight: usize,
    max_in_flight: usize,
    finished_early: BTreeMap<u64, Vec<u8>>,
    current: Cursor<Vec<u8>>,
    failure: Option<String>,
}

impl ParallelReader {
    pub(crate) fn new(file: CountingFile, layout: Layout, workers: usize) -> ParallelReader {
        let (jobs, job_queue) = mpsc::channel::<Job>();
        let (outcome_sender, outcomes) = mpsc::channel::<Outcome>();
        let job_queue = Arc::new(Mutex::new(job_queue));
        for _ in 0..workers {
            let job_queue = Arc::clone(&job_queue);
            let outcome_sender = outcome_sender.clone();
            thread::spawn(move || {
                loop {
                    let job = match job_queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((sequence, stream, uncompressed_size)) = job else {
                        return;
                    };
                    let outcome = decode_stream(&stream, uncompressed_size);
                    if outcome_sender.send((sequence, outcome)).is_err() {
                        return;
                    }
                }
            });
        }
        ParallelReader {
            file,
            total: layout.blocks.len() as u64,
            blocks: layout.blocks.into_iter(),
            jobs,
            outcomes,
            next_to_send: 0,
            next_to_return: 0,
            in_flight: 0,
            max_in_flight: workers * 2,
            finished_early: BTreeMap::new(),
            current: Cursor::new(Vec::new()),
            failure: None,
        }
    }

    fn send_next(&mut self, block: &Block) -> io::Result<()> {
        let len = usize::try_from(block.padded_size()).map_err(|e| invalid(e.to_string()))?;
        let mut data = vec![0u8; len];
        self.file.seek(SeekFrom::Start(block.offset))?;
        self.file.read_exact(&mut data)?;
        let stream = one_block_stream(block, &data);
        self.jobs
            .send((self.next_to_send, stream, block.uncompressed_size))
            .map_err(|_| io::Error::other("the xz decoding threads stopped"))?;
        self.next_to_send += 1;
        self.in_flight += 1;
        Ok(())
    }

    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.next_to_return == self.total {
            return Ok(None);
        }
        while self.in_flight < self.max_in_flight {
            let Some(block) = self.blocks.next() else {
                break;
            };
            self.send_next(&block)?;
        }
        loop {
            if let Some(chunk) = self.finished_early.remove(&self.next_to_return) {
                self.next_to_return += 1;
                return Ok(Some(chunk));
            }
            let (sequence, outcome) = self
                .outcomes
                .recv()
                .map_err(|_| io::Error::other("the xz decoding threads stopped"))?;
            self.in_flight -= 1;
            self.finished_early.insert(sequence, outcome?);
        }
    }
}

impl Read for ParallelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failure) = &self.failure {
            return Err(invalid(failure.clone()));
        }
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.next_chunk() {
                Ok(Some(chunk)) => self.current = Cursor::new(chunk),
                Ok(None) => {
                    // The index and footer were read at open; count them as consumed too.
                    self.file.seek(SeekFrom::End(0))?;
                    return Ok(0);
                }
                Err(e) => {
                    // Later reads must not skip the bad block and carry on.
                    self.failure = Some(e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

fn decode_stream(stream: &[u8], uncompressed_size: u64) -> io::Result<Vec<u8>> {
    let capacity = usize::try_from(uncompressed_size).map_err(|e| invalid(e.to_string()))?;
    let mut out = Vec::with_capacity(capacity);
    XzReader::new(stream, false)
        .take(uncompressed_size + 1)
        .read_to_end(&mut out)?;
    if out.len() as u64 != uncompressed_size {
        return Err(invalid("a block decodes to a size other than its index records"));
    }
    Ok(out)
}

/// Builds a complete xz stream around one block taken from a larger file.
fn one_block_stream(block: &Block, data: &[u8]) -> Vec<u8> {
    let mut stream = Vec::with_capacity(data.len() + 64);
    stream.extend_from_slice(&XZ_MAGIC);
    stream.extend_from_slice(&block.stream_flags);
    stream.extend_from_slice(&crc32fast::hash(&block.stream_flags).to_le_bytes());
    stream.extend_from_slice(data);

    let mut index = vec![0u8];
    write_varint(&mut index, 1);
    write_varint(&mut index, block.unpadded_size);
    write_varint(&mut index, block.uncompressed_size);
    index.resize(index.len().next_multiple_of(4), 0);
    let index_crc = crc32fast::hash(&index);
    index.extend_from_slice(&index_crc.to_le_bytes());
    let backward_size = u32::try_from(index.len() / 4 - 1).unwrap_or(u32::MAX);
    stream.extend_from_slice(&index);

    let mut footer_fields = Vec::with_capacity(6);
    footer_fields.extend_from_slice(&backward_size.to_le_bytes());
    footer_fields.extend_from_slice(&block.stream_flags);
    stream.extend_from_slice(&crc32fast::hash(&footer_fields).to_le_bytes());
    stream.extend_from_slice(&footer_fields);
    stream.extend_from_slice(b"YZ");
    stream
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, 1 << 35, u64::MAX >> 1] {
            let mut bytes = Vec::new();
            write_varint(&mut bytes, value);
            let mut position = 0;
            assert_eq!(read_varint(&bytes, &mut position).unwrap(), value);
            assert_eq!(position, bytes.len());
        }
    }

    /// Sample data compressed by the real xz into 64 KiB blocks: (data, file, xz bytes).
    fn multi_block_file(scratch: &std::path::Path) -> (Vec<u8>, std::path::PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..600_000u32).map(|i| (i / 7 % 251) as u8 ^ (i % 13) as u8).collect();
        let plain = scratch.join("data");
        std::fs::write(&plain, &data).unwrap();
        let output = std::process::Command::new("xz")
            .args(["-T2", "--block-size=64KiB", "-c"])
            .arg(&plain)
            .output()
            .unwrap();
        assert!(output.status.success());
        let compressed = scratch.join("data.xz");
        std::fs::write(&compressed, &output.stdout).unwrap();
        (data, compressed, output.stdout)
    }

    /// Decodes with three workers; returns the outcome and the consumed counter.
    fn decode_in_parallel(compressed: &std::path::Path) -> (io::Result<Vec<u8>>, u64) {
        let mut file = std::fs::File::open(compressed).unwrap();
        let len = file.metadata().unwrap().len();
        let layout = read_layout(&mut file, len).unwrap();
        let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let file = CountingFile::new(file, Arc::clone(&consumed));
        let mut decoded = Vec::new();
        let outcome = ParallelReader::new(file, layout, 3)
            .read_to_end(&mut decoded)
            .map(|_| decoded);
        (outcome, consumed.load(std::sync::atomic::Ordering::Relaxed))
    }

    #[test]
    fn multi_block_file_is_decoded_in_parallel_in_order() {
        let scratch = tempfile::tempdir().unwrap();
        let (data, compressed, bytes) = multi_block_file(scratch.path());
        let layout = read_layout(&mut Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(layout.blocks.len(), 10);
        assert_eq!(layout.uncompressed_size, data.len() as u64);
        let (decoded, consumed) = decode_in_parallel(&compressed);
        assert!(decoded.unwrap() == data);
        assert_eq!(consumed, bytes.len() as u64);
    }

    #[test]
    fn a_damaged_block_check_is_caught_in_parallel_decoding() {
        let scratch = tempfile::tempdir().unwrap();
        let (_, compressed, mut bytes) = multi_block_file(scratch.path());
        let layout = read_layout(&mut Cursor::new(&bytes), bytes.len() as u64).unwrap();
        // xz's default check is CRC64: the last eight bytes of the unpadded block.
        let third = &layout.blocks[2];
        let check_at = usize::try_from(third.offset + third.unpadded_size - 8).unwrap();
        bytes[check_at] ^= 0x01;
        std::fs::write(&compressed, &bytes).unwrap();
        let error = decode_in_parallel(&compressed).0.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("checksum"), "{error}");
    }

    #[test]
    fn index_with_bad_crc_is_rejected() {
        let mut index = vec![0u8, 1, 0x20, 0x40];
        let crc = crc32fast::hash(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(parse_index(&index).unwrap(), vec![(0x20, 0x40)]);
        index[2] ^= 1;
        assert!(parse_index(&index).unwrap_err().contains("CRC"));
    }
}
