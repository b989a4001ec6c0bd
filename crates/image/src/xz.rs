//! xz: reading the indexes for the exact size, the block headers for the memory
//! decoding needs, and decoding (on several threads when the blocks allow it).

#[cfg(feature = "native-codecs")]
use std::io::{self, BufRead};
use std::io::{BufReader, Read, Seek, SeekFrom};

#[cfg(feature = "native-codecs")]
use crate::MemoryBudget;
use crate::format::{XZ_MAGIC, le32, read_up_to};
#[cfg(feature = "native-codecs")]
use crate::reader::{invalid, truncated};

const HEADER_LEN: u64 = 12;
const FOOTER_LEN: u64 = 12;
/// An index this large would describe millions of blocks; a bigger one is a damaged footer.
const MAX_INDEX_LEN: u64 = 64 << 20;
/// Block headers read at open to find the largest dictionary. A file of more blocks
/// is still decoded within the budget (the decoder's own limit stops it); it is only
/// refused later rather than at once when a late block asks for too much.
const MAX_HEADERS_READ: u64 = 4096;
/// The LZMA2 filter's id in a block header.
const LZMA2_FILTER: u64 = 0x21;
/// What a decoder needs besides its dictionary (state, probability tables, buffers).
pub(crate) const DECODER_OVERHEAD: u64 = 1 << 20;

/// One block of an xz file, as its stream's index describes it.
#[cfg(not(feature = "native-codecs"))]
#[derive(Debug, Clone)]
pub(crate) struct Block {
    /// Where the block header starts in the file.
    offset: u64,
    unpadded_size: u64,
    uncompressed_size: u64,
    /// The stream flags (they carry the check type) of the block's stream.
    stream_flags: [u8; 2],
}

#[cfg(not(feature = "native-codecs"))]
impl Block {
    fn padded_size(&self) -> u64 {
        self.unpadded_size.next_multiple_of(4)
    }
}

/// What the indexes and block headers of a whole xz file say.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// The blocks in file order, for the pure-Rust parallel decoder; empty when the
    /// file has more than [`MAX_HEADERS_READ`] (it is then decoded on one thread).
    #[cfg(not(feature = "native-codecs"))]
    pub(crate) blocks: Vec<Block>,
    pub(crate) uncompressed_size: u64,
    /// The largest LZMA2 dictionary among the block headers read: what one thread needs.
    pub(crate) largest_dictionary: u64,
}

impl Layout {
    /// The least memory decoding this file takes: one block at a time.
    pub(crate) fn memory_needed(&self) -> u64 {
        self.largest_dictionary.saturating_add(DECODER_OVERHEAD)
    }
}

/// Reads every stream's footer and index from the end of the file backwards, and the
/// headers of the first blocks.
///
/// Any inconsistency (bad CRC, sizes that do not add up, a missing stream header)
/// means the file is corrupt or truncated; the error says which. Memory stays small
/// whatever the file says: indexes are read as a stream, blocks are not kept in
/// memory beyond a bounded list.
pub(crate) fn read_layout<R: Read + Seek>(file: &mut R, file_size: u64) -> Result<Layout, String> {
    let mut layout = Layout {
        #[cfg(not(feature = "native-codecs"))]
        blocks: Vec::new(),
        uncompressed_size: 0,
        largest_dictionary: 0,
    };
    // Streams are found from the end; their blocks are listed per stream, then in file order.
    #[cfg(not(feature = "native-codecs"))]
    let mut streams: Vec<Vec<Block>> = Vec::new();
    #[cfg(not(feature = "native-codecs"))]
    let mut every_block_listed = true;
    let mut headers_read = 0u64;
    let mut stream_count = 0u64;
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
        file.seek(SeekFrom::Start(index_start)).map_err(|e| e.to_string())?;
        let mut records: Vec<(u64, u64)> = Vec::new();
        let mut blocks_len = 0u64;
        let mut stream_size = 0u64;
        let mut record_count = 0u64;
        parse_index(
            &mut (&mut *file).take(index_len),
            index_len,
            |unpadded, uncompressed| {
                blocks_len = blocks_len
                    .checked_add(unpadded.next_multiple_of(4))
                    .ok_or("the xz index records impossible block sizes")?;
                stream_size = stream_size
                    .checked_add(uncompressed)
                    .ok_or("the xz index records an impossible total size")?;
                if headers_read + record_count < MAX_HEADERS_READ {
                    records.push((unpadded, uncompressed));
                }
                record_count += 1;
                Ok(())
            },
        )?;
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
        layout.uncompressed_size = layout
            .uncompressed_size
            .checked_add(stream_size)
            .ok_or("the xz index records an impossible total size")?;
        // The headers of the blocks whose records were kept: their dictionaries are the
        // memory decoding takes. Offsets stay inside the stream, which lies inside the file.
        let mut offset = stream_start + HEADER_LEN;
        #[cfg(not(feature = "native-codecs"))]
        let mut blocks = Vec::new();
        for &(unpadded_size, _) in &records {
            let dictionary = read_block_header(file, offset, unpadded_size)?;
            layout.largest_dictionary = layout.largest_dictionary.max(dictionary);
            headers_read += 1;
            #[cfg(not(feature = "native-codecs"))]
            blocks.push(Block {
                offset,
                unpadded_size,
                uncompressed_size: records[blocks.len()].1,
                stream_flags: flags,
            });
            offset += unpadded_size.next_multiple_of(4);
        }
        #[cfg(not(feature = "native-codecs"))]
        {
            every_block_listed &= blocks.len() as u64 == record_count;
            streams.push(blocks);
        }
        stream_count += 1;
        end = stream_start;
    }
    if stream_count == 0 {
        return Err("the file holds only zero bytes after the xz magic".into());
    }
    #[cfg(not(feature = "native-codecs"))]
    if every_block_listed {
        layout.blocks = streams.into_iter().rev().flatten().collect();
    }
    Ok(layout)
}

fn read_at<R: Read + Seek>(file: &mut R, offset: u64, buf: &mut [u8]) -> Result<(), String> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let len = read_up_to(file, buf).map_err(|e| e.to_string())?;
    if len < buf.len() {
        return Err("the file ends inside the xz structure; it is truncated".into());
    }
    Ok(())
}

/// Parses an index of `len` bytes (indicator, record count, records, padding, CRC32)
/// as it streams past, handing each (unpadded size, uncompressed size) to `record`.
pub(crate) fn parse_index<R: Read>(
    index: &mut R,
    len: u64,
    mut record: impl FnMut(u64, u64) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = IndexReader {
        source: BufReader::with_capacity(1 << 16, index),
        hasher: crc32fast::Hasher::new(),
        position: 0,
    };
    if reader.byte()? != 0 {
        return Err("the xz index indicator is missing".into());
    }
    let count = reader.varint()?;
    for _ in 0..count {
        let unpadded = reader.varint()?;
        let uncompressed = reader.varint()?;
        if unpadded == 0 {
            return Err("the xz index records an empty block".into());
        }
        if reader.position + 4 > len {
            return Err("the xz index holds more records than fit in it".into());
        }
        record(unpadded, uncompressed)?;
    }
    let padding = len
        .checked_sub(reader.position + 4)
        .ok_or("the xz index ends inside its records")?;
    if padding >= 4 {
        return Err("the xz index has bytes after its records".into());
    }
    for _ in 0..padding {
        if reader.byte()? != 0 {
            return Err("the xz index has bytes after its records".into());
        }
    }
    let computed = reader.hasher.clone().finalize();
    let mut crc = [0u8; 4];
    reader
        .source
        .read_exact(&mut crc)
        .map_err(|_| "the xz index ends before its CRC")?;
    if computed != le32(&crc) {
        return Err("the xz index fails its CRC check".into());
    }
    Ok(())
}

/// The bytes of an index, hashed as they are read.
struct IndexReader<R> {
    source: BufReader<R>,
    hasher: crc32fast::Hasher,
    position: u64,
}

impl<R: Read> IndexReader<R> {
    fn byte(&mut self) -> Result<u8, String> {
        let mut byte = [0u8];
        self.source
            .read_exact(&mut byte)
            .map_err(|_| "the xz index ends inside a number")?;
        self.hasher.update(&byte);
        self.position += 1;
        Ok(byte[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..63).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("the xz index holds a number that is too long".into())
    }
}

fn read_varint(bytes: &[u8], position: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..63).step_by(7) {
        let byte = *bytes.get(*position).ok_or("a block header ends inside a number")?;
        *position += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a block header holds a number that is too long".into())
}

/// Reads the header of the block at `offset` and returns its LZMA2 dictionary size
/// (0 when its filters have none).
fn read_block_header<R: Read + Seek>(file: &mut R, offset: u64, unpadded_size: u64) -> Result<u64, String> {
    let mut size = [0u8];
    read_at(file, offset, &mut size)?;
    let header_len = (u64::from(size[0]) + 1) * 4;
    if size[0] == 0 || header_len > unpadded_size {
        return Err(format!(
            "no xz block header at byte {offset}, where the index puts a block"
        ));
    }
    let mut header = vec![0u8; usize::from(size[0]) * 4 + 4];
    header[0] = size[0];
    read_at(file, offset + 1, &mut header[1..])?;
    parse_block_header(&header).map_err(|reason| format!("the xz block header at byte {offset} {reason}"))
}

/// Parses a whole block header (size byte to CRC32) and returns its LZMA2 dictionary size.
pub(crate) fn parse_block_header(header: &[u8]) -> Result<u64, String> {
    if header.len() < 8 || !header.len().is_multiple_of(4) {
        return Err("has an impossible size".into());
    }
    let (body, crc) = header.split_at(header.len() - 4);
    if crc32fast::hash(body) != le32(crc) {
        return Err("fails its CRC check".into());
    }
    let flags = body[1];
    if flags & 0x3C != 0 {
        return Err("sets reserved flags".into());
    }
    let mut position = 2;
    if flags & 0x40 != 0 {
        read_varint(body, &mut position)?;
    }
    if flags & 0x80 != 0 {
        read_varint(body, &mut position)?;
    }
    let mut dictionary = 0u64;
    for _ in 0..=(flags & 0x03) {
        let id = read_varint(body, &mut position)?;
        let props_len = usize::try_from(read_varint(body, &mut position)?).map_err(|e| e.to_string())?;
        let props = position
            .checked_add(props_len)
            .and_then(|end| body.get(position..end))
            .ok_or("has filter properties past its end")?;
        position += props_len;
        if id == LZMA2_FILTER {
            let &[bits] = props else {
                return Err("has LZMA2 properties of the wrong size".into());
            };
            dictionary = lzma2_dictionary(bits).ok_or("has an impossible LZMA2 dictionary size")?;
        }
    }
    if body[position..].iter().any(|&byte| byte != 0) {
        return Err("has bytes after its filters".into());
    }
    Ok(dictionary)
}

/// The dictionary size an LZMA2 properties byte stands for.
fn lzma2_dictionary(bits: u8) -> Option<u64> {
    match bits {
        0..40 => Some((2 | u64::from(bits & 1)) << (bits / 2 + 11)),
        40 => Some(u64::from(u32::MAX)),
        _ => None,
    }
}

/// Decodes an xz file with liblzma: every stream in turn, stream padding skipped.
///
/// liblzma's threaded decoder decodes the blocks of a multi-block stream (as `xz -T`
/// makes them) on several threads, as many as the budget's memory allows
/// (`memlimit_threading`), and refuses to go beyond the budget at all (`memlimit_stop`).
/// Each block's check is verified.
#[cfg(feature = "native-codecs")]
pub(crate) struct Reader<R> {
    source: R,
    stream: Option<liblzma::stream::Stream>,
    budget: MemoryBudget,
    streams: u64,
}

#[cfg(feature = "native-codecs")]
impl<R: BufRead> Reader<R> {
    pub(crate) fn new(source: R, budget: MemoryBudget) -> Reader<R> {
        Reader {
            source,
            stream: None,
            budget,
            streams: 0,
        }
    }

    /// Skips stream padding and starts the next stream; false at the clean end of the input.
    fn start_stream(&mut self) -> io::Result<bool> {
        let mut padding = 0usize;
        loop {
            let available = self.source.fill_buf()?;
            if available.is_empty() {
                if self.streams == 0 {
                    return Err(truncated("the input holds no xz stream"));
                }
                if !padding.is_multiple_of(4) {
                    return Err(invalid("the stream padding is not a multiple of four bytes"));
                }
                return Ok(false);
            }
            let zeros = available.iter().take_while(|&&byte| byte == 0).count();
            let more = zeros < available.len();
            self.source.consume(zeros);
            padding += zeros;
            if more {
                break;
            }
        }
        if !padding.is_multiple_of(4) {
            return Err(invalid("the stream padding is not a multiple of four bytes"));
        }
        let threads = u32::try_from(self.budget.threads()).unwrap_or(1);
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(threads)
            .memlimit_threading(self.budget.bytes())
            .memlimit_stop(self.budget.bytes())
            .decoder()
            .map_err(|e| self.error(e))?;
        self.stream = Some(stream);
        self.streams += 1;
        Ok(true)
    }

    fn error(&self, e: liblzma::stream::Error) -> io::Error {
        match e {
            liblzma::stream::Error::MemLimit => invalid(format!(
                "a block needs more memory than the {} decoding may use",
                crate::human::binary(self.budget.bytes())
            )),
            e => invalid(e.to_string()),
        }
    }
}

#[cfg(feature = "native-codecs")]
impl<R: BufRead> Read for Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.stream.is_none() && !self.start_stream()? {
                return Ok(0);
            }
            let input = self.source.fill_buf()?;
            let at_end = input.is_empty();
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            let (in_before, out_before) = (stream.total_in(), stream.total_out());
            let action = if at_end {
                liblzma::stream::Action::Finish
            } else {
                liblzma::stream::Action::Run
            };
            let status = stream.process(input, buf, action);
            let consumed = usize::try_from(stream.total_in() - in_before).unwrap_or(usize::MAX);
            let produced = usize::try_from(stream.total_out() - out_before).unwrap_or(usize::MAX);
            self.source.consume(consumed);
            match status {
                Ok(liblzma::stream::Status::StreamEnd) => self.stream = None,
                Ok(_) => {}
                Err(e) => return Err(self.error(e)),
            }
            if produced > 0 {
                return Ok(produced);
            }
            if at_end && self.stream.is_some() {
                return Err(truncated("the input ends inside an xz stream"));
            }
        }
    }
}

/// The pure-Rust decoders (lzma-rust2), for builds without a C compiler.
#[cfg(not(feature = "native-codecs"))]
pub(crate) mod pure {
    use std::collections::BTreeMap;
    use std::io::{self, Cursor, Read, Seek, SeekFrom};
    use std::sync::{Arc, Mutex, mpsc};
    use std::thread;

    use lzma_rust2::XzReader;

    use super::{Block, Layout};
    use crate::MemoryBudget;
    use crate::format::XZ_MAGIC;
    use crate::reader::{CountingFile, invalid};

    /// Whether a file with this layout is worth decoding on several threads, and with how
    /// many: each worker has up to two blocks in flight, compressed and decoded, and a
    /// decoder; all of them together must fit the budget.
    pub(crate) fn parallel_workers(layout: &Layout, budget: MemoryBudget) -> Option<usize> {
        let largest_block = layout
            .blocks
            .iter()
            .map(|block| block.uncompressed_size.saturating_add(block.padded_size()))
            .max()?;
        let per_worker = largest_block.saturating_mul(2).saturating_add(layout.memory_needed());
        let affordable = usize::try_from(budget.bytes() / per_worker.max(1)).unwrap_or(usize::MAX);
        let workers = budget.threads().min(affordable);
        (layout.blocks.len() > 1 && workers > 1).then_some(workers)
    }

    /// A single-threaded reader, for files of one block or blocks too large to decode side by side.
    pub(crate) fn single_reader(file: CountingFile, budget: MemoryBudget) -> impl Read + Send {
        let limit_kib = u32::try_from(budget.bytes() >> 10).unwrap_or(u32::MAX);
        XzReader::new_mem_limit(io::BufReader::with_capacity(1 << 16, file), true, limit_kib)
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::{self, Cursor};

    use super::*;
    use crate::MemoryBudget;

    fn compress(args: &[&str], data: &[u8]) -> Vec<u8> {
        let scratch = tempfile::tempdir().unwrap();
        let plain = scratch.path().join("data");
        std::fs::write(&plain, data).unwrap();
        let output = std::process::Command::new("xz")
            .args(args)
            .arg("-c")
            .arg(&plain)
            .output()
            .unwrap();
        assert!(output.status.success());
        output.stdout
    }

    fn sample() -> Vec<u8> {
        (0..600_000u32).map(|i| (i / 7 % 251) as u8 ^ (i % 13) as u8).collect()
    }

    #[test]
    fn the_layout_gives_the_size_and_the_dictionary() {
        let data = sample();
        let bytes = compress(&["-T2", "--block-size=64KiB", "-6"], &data);
        let layout = read_layout(&mut Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(layout.uncompressed_size, data.len() as u64);
        // xz -6 asks for an 8 MiB dictionary (the block headers record it, whatever the input).
        assert_eq!(layout.largest_dictionary, 8 << 20);
        #[cfg(not(feature = "native-codecs"))]
        assert_eq!(layout.blocks.len(), 10);
    }

    #[test]
    fn index_with_bad_crc_is_rejected() {
        let mut index = vec![0u8, 1, 0x20, 0x40];
        let crc = crc32fast::hash(&index);
        index.extend_from_slice(&crc.to_le_bytes());
        let mut records = Vec::new();
        parse_index(&mut index.as_slice(), index.len() as u64, |a, b| {
            records.push((a, b));
            Ok(())
        })
        .unwrap();
        assert_eq!(records, vec![(0x20, 0x40)]);
        index[2] ^= 1;
        let error = parse_index(&mut index.as_slice(), index.len() as u64, |_, _| Ok(())).unwrap_err();
        assert!(error.contains("CRC"), "{error}");
    }

    #[test]
    fn dictionary_sizes_decode_as_the_format_says() {
        assert_eq!(lzma2_dictionary(0), Some(4 << 10));
        assert_eq!(lzma2_dictionary(1), Some(6 << 10));
        assert_eq!(lzma2_dictionary(37), Some(3 << 29));
        assert_eq!(lzma2_dictionary(40), Some(u64::from(u32::MAX)));
        assert_eq!(lzma2_dictionary(41), None);
    }

    /// Decodes with the given budget; returns the outcome.
    fn decode(bytes: &[u8], budget: MemoryBudget) -> io::Result<Vec<u8>> {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("data.xz");
        std::fs::write(&path, bytes).unwrap();
        let image = crate::Image::open_with_budget(&path, budget).unwrap();
        let mut decoded = Vec::new();
        image.reader().unwrap().read_to_end(&mut decoded).map(|_| decoded)
    }

    #[test]
    fn multi_block_files_decode_in_order_on_several_threads() {
        let data = sample();
        let bytes = compress(&["-T2", "--block-size=64KiB"], &data);
        assert!(decode(&bytes, MemoryBudget::new(64 << 20, 3)).unwrap() == data);
    }

    #[test]
    fn a_damaged_block_check_is_caught() {
        let data = sample();
        let mut bytes = compress(&["-T2", "--block-size=64KiB"], &data);
        // The third block's CRC64 check, which follows its data and the block padding.
        let mut position = 12;
        for _ in 0..2 {
            let header_len = (usize::from(bytes[position]) + 1) * 4;
            let mut varint_at = position + 2;
            let unpadded = read_varint(&bytes, &mut varint_at).unwrap();
            let unpadded = usize::try_from(unpadded).unwrap() + header_len + 8;
            position += unpadded.next_multiple_of(4);
        }
        let header_len = (usize::from(bytes[position]) + 1) * 4;
        let mut varint_at = position + 2;
        let compressed = usize::try_from(read_varint(&bytes, &mut varint_at).unwrap()).unwrap();
        bytes[position + (header_len + compressed).next_multiple_of(4)] ^= 0x01;
        let error = decode(&bytes, MemoryBudget::new(64 << 20, 3)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
