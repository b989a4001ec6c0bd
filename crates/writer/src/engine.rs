//! The write pipeline: one reader, one hasher and one writer per device, joined
//! by bounded channels of shared, recycled, aligned buffers.
//!
//! ```text
//! reader (decompress) ──Arc<Chunk>──▶ writer 0 ─▶ device 0     then per device:
//!        │            ──Arc<Chunk>──▶ writer 1 ─▶ device 1       read back + compare digests,
//!        └────────────Arc<Chunk>──▶ hasher (SHA-256, xxh3)       write the first MiB, finish
//! ```
//!
//! A buffer returns to the pool when the last of its users drops it, so the
//! slowest consumer sets the pace and memory stays fixed.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use graver_image::{DirectReader, ImageSize, read_up_to};
use serde::Serialize;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_64;

use crate::buffer::{AlignedBuf, Chunk, Pool, round_up};
use crate::progress::{DeviceState, Phase, Progress, Tracker, run_ticker};
use crate::wipe::{Pace, ReadFailure, read_pieces, scrub, write_pieces};
use crate::{Device, Source, WriteError, stamps, wipe};

/// Size of one transfer: the `bs=4M` of the manual's `dd`.
pub const CHUNK_SIZE: usize = 4 << 20;
/// The first bytes of an image (partition tables, boot code) are written last.
pub const HOLD_BACK: u64 = 1 << 20;
/// Granularity of the verification digests.
const REGION: usize = 1 << 20;
/// Buffers in flight between the reader and the slowest consumer.
///
/// Three keep the decoder and the drive both busy: one being filled, one being
/// written, one queued between. More only cost: every buffer's pages are touched for
/// the first time during the job, which on the virtual machine this was measured on
/// costs ~11 ms per 4 MiB of huge pages; writing `scripts/bench`'s 1 GiB `.zst`
/// (interleaved, 15 runs each) took 436 ms median with six and 406 ms with three.
const POOL_BUFFERS: usize = 3;

/// A flag that stops a job at the next chunk boundary.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelToken::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What to do besides writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Read every device back and compare it with what was written.
    pub verify: bool,
    /// Compute the SHA-256 of the image on the way (on its own thread).
    pub sha256: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            verify: true,
            sha256: true,
        }
    }
}

/// How one device fared.
#[derive(Debug)]
pub struct DeviceReport {
    /// The device's name.
    pub name: String,
    /// `Ok(true)` written and verified, `Ok(false)` written without verification.
    pub result: Result<bool, WriteError>,
    /// Something the user must know about a write that succeeded, such as a drive that
    /// holds the image but is smaller than it claims.
    pub warning: Option<String>,
}

/// What a device that was written reports besides success.
type Written = (bool, Option<String>);

/// Where one device's counterfeit stamps go, and the job's nonce they carry.
struct Stamps {
    offsets: Vec<u64>,
    nonce: u64,
}

/// The outcome of [`write()`].
#[derive(Debug)]
pub struct WriteReport {
    /// Bytes of image written to each successful device.
    pub image_len: u64,
    /// SHA-256 of the decompressed image, when asked for and the image was read to the end.
    pub sha256: Option<[u8; 32]>,
    /// One entry per device, in the order given.
    pub devices: Vec<DeviceReport>,
    /// Wall time of the whole job.
    pub elapsed: Duration,
}

/// The outcome of [`compare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CompareReport {
    /// Bytes of image compared, all equal.
    pub image_len: u64,
}

enum Msg {
    Chunk(Arc<Chunk>),
    End,
}

/// Where the reader stage gets the image's bytes.
enum Decoder {
    /// Any image, read into each buffer.
    Stream(Box<dyn Read + Send>),
    /// A decoder that writes into the buffers itself, its history kept in the
    /// buffer before: no copy between decoding and writing.
    Direct(DirectReader),
}

impl Decoder {
    /// The direct decoder when the source has one, else its stream; and the counter of
    /// compressed bytes consumed.
    fn open(source: &dyn Source) -> io::Result<(Decoder, Arc<AtomicU64>)> {
        if let Some(direct) = source.open_direct()? {
            let consumed = direct.consumed();
            return Ok((Decoder::Direct(direct), consumed));
        }
        let opened = source.open()?;
        Ok((Decoder::Stream(opened.reader), opened.consumed))
    }

    /// Image bytes per chunk: [`CHUNK_SIZE`], or a multiple of it that holds a
    /// direct decoder's window.
    fn chunk_len(&self) -> usize {
        match self {
            Decoder::Stream(_) => CHUNK_SIZE,
            Decoder::Direct(direct) => direct.min_want().next_multiple_of(CHUNK_SIZE),
        }
    }

    /// The length of each pooled buffer.
    fn buffer_len(&self) -> usize {
        match self {
            Decoder::Stream(_) => self.chunk_len(),
            Decoder::Direct(_) => self.chunk_len() + DirectReader::SLACK,
        }
    }

    /// Fills `buf` with the next `want` bytes, fewer only at the end of the image.
    /// `previous` is the chunk the last call filled, which a direct decoder reads its
    /// history from.
    fn fill(&mut self, previous: Option<&Chunk>, buf: &mut [u8], want: usize) -> io::Result<usize> {
        match self {
            Decoder::Stream(reader) => read_up_to(reader, &mut buf[..want]),
            Decoder::Direct(direct) => direct.fill(previous.map(Chunk::whole), buf, want),
        }
    }

    /// Whether [`Decoder::fill`] needs the previous chunk.
    fn keeps_history(&self) -> bool {
        matches!(self, Decoder::Direct(_))
    }
}

/// Digests of everything that was written, from the hasher thread.
struct Digests {
    sha256: Option<[u8; 32]>,
    regions: Vec<u64>,
}

/// Writes `source` to every device, verifies each (if asked), then writes each
/// device's first MiB and finishes it.
///
/// A device that fails is dropped and reported in its [`DeviceReport`] while
/// the others go on. An image whose exact size exceeds a device is refused for
/// that device before a byte is written.
///
/// # Errors
/// Only failures that concern every device: an unreadable or corrupt image
/// ([`WriteError::BadImage`], [`WriteError::SourceIo`]) and cancellation.
pub fn write(
    source: &dyn Source,
    devices: &mut [&mut dyn Device],
    options: WriteOptions,
    on_progress: &(dyn Fn(&Progress) + Sync),
    cancel: &CancelToken,
) -> Result<WriteReport, WriteError> {
    let start = Instant::now();
    let (decoder, consumed) = Decoder::open(source).map_err(WriteError::from_source)?;
    let tracker = Tracker::new(
        devices.iter().map(|d| d.name()).collect(),
        consumed,
        source.file_size(),
        source.size(),
    );
    let block = devices.iter().map(|d| d.block_size()).max().unwrap_or(4096).max(4096);

    let mut results: Vec<Option<Result<Written, WriteError>>> = devices.iter().map(|_| None).collect();
    let nonce = stamps::nonce();
    let stamps: Vec<Stamps> = devices
        .iter()
        .map(|d| Stamps {
            offsets: d
                .capacity()
                .map(|c| stamps::plan(c, source.size().bytes(), block))
                .unwrap_or_default(),
            nonce,
        })
        .collect();
    if let ImageSize::Exact(needed) = source.size() {
        for (i, device) in devices.iter().enumerate() {
            if let Some(capacity) = device.capacity().filter(|&c| c < needed) {
                results[i] = Some(Err(WriteError::TooSmall {
                    device: device.name(),
                    needed,
                    capacity,
                }));
                tracker.devices[i].set_phase(Phase::Failed);
            }
        }
    }

    let (stop_ticker, ticker_stop) = crossbeam_channel::bounded::<()>(0);
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| run_ticker(&tracker, &ticker_stop, on_progress));
        let outcome = pipeline(
            decoder,
            devices,
            &mut results,
            &stamps,
            &tracker,
            options,
            block,
            source,
            cancel,
        );
        drop(stop_ticker);
        outcome
    });
    let sha256 = match outcome {
        Ok(sha256) => sha256,
        Err(error) => {
            finish_progress(&tracker, on_progress);
            return Err(error);
        }
    };
    finish_progress(&tracker, on_progress);
    let devices = devices
        .iter()
        .zip(results)
        .map(|(d, r)| {
            let (result, warning) = match r.unwrap_or(Err(WriteError::SourceFailed)) {
                Ok((verified, warning)) => (Ok(verified), warning),
                Err(e) => (Err(e), None),
            };
            DeviceReport {
                name: d.name(),
                result,
                warning,
            }
        })
        .collect();
    Ok(WriteReport {
        image_len: tracker.image_len.load(Ordering::Relaxed),
        sha256,
        devices,
        elapsed: start.elapsed(),
    })
}

fn finish_progress(tracker: &Tracker, on_progress: &(dyn Fn(&Progress) + Sync)) {
    tracker.ended.store(true, Ordering::Relaxed);
    on_progress(&tracker.snapshot());
}

/// Runs the three stages; fills `results` for every device that was not refused up front.
#[expect(
    clippy::too_many_arguments,
    reason = "one internal call site; a struct would only rename them"
)]
fn pipeline(
    decoder: Decoder,
    devices: &mut [&mut dyn Device],
    results: &mut [Option<Result<Written, WriteError>>],
    stamps: &[Stamps],
    tracker: &Tracker,
    options: WriteOptions,
    block: usize,
    source: &dyn Source,
    cancel: &CancelToken,
) -> Result<Option<[u8; 32]>, WriteError> {
    let pool = Pool::new(POOL_BUFFERS, decoder.buffer_len(), block);
    let mut senders = Vec::new();
    let mut held = Vec::new();

    let (read_result, digests) = std::thread::scope(|scope| {
        let mut writers = Vec::new();
        for (((device, result), state), stamps) in
            devices.iter_mut().zip(results.iter()).zip(&tracker.devices).zip(stamps)
        {
            if result.is_some() {
                continue;
            }
            let (tx, rx) = crossbeam_channel::bounded(POOL_BUFFERS);
            senders.push(tx);
            let device: &mut dyn Device = &mut **device;
            writers.push(scope.spawn(move || write_stage(device, &rx, state, block, stamps, cancel)));
        }
        // Nothing to hash when nothing is verified and no SHA-256 is asked for: the
        // hasher is then not started, and the reader wakes no thread for it per chunk.
        let hasher = (options.sha256 || options.verify).then(|| {
            let (hash_tx, hash_rx) = crossbeam_channel::bounded(POOL_BUFFERS);
            senders.push(hash_tx);
            scope.spawn(move || hash_stage(&hash_rx, options.sha256, options.verify))
        });
        let read_result = read_stage(decoder, &pool, &senders, tracker, block, cancel);
        drop(senders);
        for writer in writers {
            held.push(writer.join().unwrap_or_else(|_| Err(WriteError::SourceFailed)));
        }
        (read_result, hasher.and_then(|hasher| hasher.join().ok()))
    });
    drop(pool);
    let image_len = read_result?;
    if image_len == 0 && results.iter().any(Option::is_none) {
        // Nothing reached the drives: a writer prepares its drive on the first chunk.
        return Err(WriteError::EmptyImage);
    }
    tracker.image_len.store(image_len, Ordering::Relaxed);
    let digests = digests.unwrap_or(Digests {
        sha256: None,
        regions: Vec::new(),
    });

    let mut held = held.into_iter();
    std::thread::scope(|scope| {
        let mut finishers = Vec::new();
        for (((device, result), state), stamps) in devices
            .iter_mut()
            .zip(results.iter_mut())
            .zip(&tracker.devices)
            .zip(stamps)
        {
            if result.is_some() {
                continue;
            }
            let Some(first) = held.next() else { break };
            let digests = &digests;
            let device: &mut dyn Device = &mut **device;
            finishers.push((
                result,
                state,
                scope.spawn(move || {
                    let first = first?;
                    let finished = finish_device(
                        device,
                        &first,
                        image_len,
                        digests,
                        state,
                        options.verify,
                        block,
                        stamps,
                        source,
                        cancel,
                    );
                    if finished.is_err() {
                        scrub(device, block, &stamps.offsets);
                    }
                    finished
                }),
            ));
        }
        for (result, state, finisher) in finishers {
            let outcome = finisher.join().unwrap_or(Err(WriteError::SourceFailed));
            if outcome.is_ok() {
                state.bytes.store(image_len, Ordering::Relaxed);
                state.set_phase(Phase::Done);
            } else {
                state.set_phase(Phase::Failed);
            }
            *result = Some(outcome.map(|warning| (options.verify, warning)));
        }
    });
    if cancel.is_cancelled() {
        return Err(WriteError::Cancelled);
    }
    Ok(digests.sha256)
}

/// Reads the image into pooled chunks and hands each to every consumer (the writers,
/// and the hasher when there is one); returns the image length.
fn read_stage(
    mut decoder: Decoder,
    pool: &Pool,
    consumers: &[Sender<Msg>],
    tracker: &Tracker,
    block: usize,
    cancel: &CancelToken,
) -> Result<u64, WriteError> {
    for state in &tracker.devices {
        if state.phase() == Phase::Preparing {
            state.set_phase(Phase::Writing);
        }
    }
    let want = decoder.chunk_len();
    // The chunk filled last, held for a direct decoder: its history.
    let mut previous: Option<Arc<Chunk>> = None;
    let mut offset = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        if tracker.devices.iter().all(|d| d.phase() == Phase::Failed) {
            // Every consumer has failed and reported why; reading on would be wasted work.
            return Ok(offset);
        }
        let Some(mut buf) = pool.take() else {
            return Err(WriteError::SourceFailed);
        };
        let len = decoder
            .fill(previous.as_deref(), &mut buf, want)
            .map_err(WriteError::from_source)?;
        if len == 0 {
            break;
        }
        let padded = usize::try_from(round_up(len as u64, block)).unwrap_or(len);
        buf[len..padded].fill(0);
        let chunk = Arc::new(Chunk::new(buf, offset, len, padded, pool.recycler()));
        for consumer in consumers {
            let _ = consumer.send(Msg::Chunk(Arc::clone(&chunk)));
        }
        offset += len as u64;
        if len < want {
            break;
        }
        if decoder.keeps_history() {
            previous = Some(chunk);
        }
    }
    for consumer in consumers {
        let _ = consumer.send(Msg::End);
    }
    Ok(offset)
}

/// Prepares the device on the first chunk ([`prepare`]), then writes every chunk except
/// the first MiB, which it keeps; returns that first MiB.
fn write_stage(
    device: &mut dyn Device,
    chunks: &Receiver<Msg>,
    state: &DeviceState,
    block: usize,
    stamps: &Stamps,
    cancel: &CancelToken,
) -> Result<AlignedBuf, WriteError> {
    let mut first = AlignedBuf::new(usize::try_from(HOLD_BACK).unwrap_or(1 << 20), block);
    let mut touched = false;
    let mut pace = Pace::new();
    let outcome = (|| {
        loop {
            let chunk = match chunks.recv() {
                Ok(Msg::Chunk(chunk)) => chunk,
                Ok(Msg::End) => break,
                Err(_) => return Err(WriteError::SourceFailed),
            };
            if cancel.is_cancelled() {
                return Err(WriteError::Cancelled);
            }
            if !touched {
                touched = true;
                prepare(device, block, stamps, cancel)?;
            }
            let end = chunk.offset + chunk.len as u64;
            fits(device, end)?;
            let padded = chunk.padded();
            let skip =
                usize::try_from(HOLD_BACK.saturating_sub(chunk.offset)).map_or(padded.len(), |s| s.min(padded.len()));
            if skip > 0 {
                let at = usize::try_from(chunk.offset).unwrap_or(0);
                first[at..at + skip].copy_from_slice(&padded[..skip]);
            }
            if skip < padded.len() {
                let offset = chunk.offset + skip as u64;
                let len = on_device(device.capacity(), offset, padded.len() - skip);
                write_pieces(device, offset, &padded[skip..skip + len], cancel, &mut pace)?;
            }
            state.bytes.store(end, Ordering::Relaxed);
        }
        device.sync().map_err(|source| WriteError::Finish {
            device: device.name(),
            source,
        })
    })();
    if outcome.is_err() {
        state.set_phase(Phase::Failed);
        if touched {
            scrub(device, block, &stamps.offsets);
        }
        drain(chunks);
    }
    outcome.map(|()| first)
}

/// Makes the drive unrecognisable before the body: zeroes its first and last MiB
/// (every whole-disk signature lies there, see [`wipe`]), writes the counterfeit
/// stamps beyond the image, and syncs, so that from here on a write that stops
/// for any reason leaves neither the old image nor part of the new one.
fn prepare(device: &mut dyn Device, block: usize, stamps: &Stamps, cancel: &CancelToken) -> Result<(), WriteError> {
    wipe::wipe(device, block, cancel)?;
    stamps::write(device, &stamps.offsets, stamps.nonce, block, cancel)?;
    device.sync().map_err(|source| WriteError::Finish {
        device: device.name(),
        source,
    })
}

/// Refuses to go on when the image reaches past the end of the device.
fn fits(device: &dyn Device, end: u64) -> Result<(), WriteError> {
    match device.capacity().filter(|&capacity| capacity < end) {
        Some(capacity) => Err(WriteError::TooSmall {
            device: device.name(),
            needed: end,
            capacity,
        }),
        None => Ok(()),
    }
}

/// How much of a `len`-byte transfer at `offset` lies on a device of `capacity` bytes.
///
/// Transfers are padded to the engine's block (at least 4096), but a card's capacity
/// is only a multiple of its logical block size (512): an image that ends in the last
/// 4096 bytes of such a card has its padded last block cut at the end of the device,
/// which is still a whole number of the device's sectors because `offset` is.
pub(crate) fn on_device(capacity: Option<u64>, offset: u64, len: usize) -> usize {
    capacity.map_or(len, |capacity| {
        usize::try_from(capacity.saturating_sub(offset)).map_or(len, |room| room.min(len))
    })
}

/// Keeps taking chunks from a failed consumer's queue until the reader lets go of it.
///
/// A chunk left in the queue would keep its buffer from the pool for good, and the
/// reader, waiting for a free buffer, would never get to notice the failure.
fn drain(chunks: &Receiver<Msg>) {
    while chunks.recv().is_ok() {}
}

/// Computes the SHA-256 of the image (when asked for) and, for verification, an xxh3
/// digest of every 1 MiB region.
///
/// A write without verification needs no region digests: nothing reads the device back
/// to compare. Hashing every byte anyway would take CPU time from the decoder, and on a
/// machine with few cores the decoder is what sets the pace of a compressed image.
fn hash_stage(chunks: &Receiver<Msg>, want_sha256: bool, want_regions: bool) -> Digests {
    let mut sha = want_sha256.then(Sha256::new);
    let mut regions = Vec::new();
    while let Ok(Msg::Chunk(chunk)) = chunks.recv() {
        let data = chunk.data();
        if let Some(sha) = sha.as_mut() {
            sha.update(data);
        }
        if want_regions {
            regions.extend(data.chunks(REGION).map(xxh3_64));
        }
    }
    Digests {
        sha256: sha.map(|s| s.finalize().into()),
        regions,
    }
}

/// Checks the counterfeit stamps, verifies the body, writes and verifies the first MiB,
/// and finishes the device; returns a warning for a drive smaller than it claims that
/// still holds the image.
#[expect(
    clippy::too_many_arguments,
    reason = "one internal call site; a struct would only rename them"
)]
fn finish_device(
    device: &mut dyn Device,
    first: &AlignedBuf,
    image_len: u64,
    digests: &Digests,
    state: &DeviceState,
    verify: bool,
    block: usize,
    stamps: &Stamps,
    source: &dyn Source,
    cancel: &CancelToken,
) -> Result<Option<String>, WriteError> {
    let held_len = image_len.min(HOLD_BACK);
    if verify {
        state.set_phase(Phase::Verifying);
        state.bytes.store(held_len, Ordering::Relaxed);
    }
    let found = stamps::check(device, &stamps.offsets, image_len, stamps.nonce, block)?;
    let warning = match found.keeps_at_most() {
        None => {
            if verify {
                verify_range(device, held_len, image_len, digests, state, source, cancel)?;
            }
            None
        }
        Some(keeps_at_most) => Some(judge_counterfeit(
            device,
            &found,
            keeps_at_most,
            image_len,
            verify.then_some((digests, state, source, cancel)),
            block,
        )?),
    };
    if cancel.is_cancelled() {
        return Err(WriteError::Cancelled);
    }
    stamps::erase(device, &found.kept, block)?;
    state.set_phase(Phase::Finishing);
    let held_padded = usize::try_from(round_up(held_len, block)).unwrap_or(0);
    let name = device.name();
    let finish_error = |source| WriteError::Finish {
        device: name.clone(),
        source,
    };
    let held_padded = on_device(device.capacity(), 0, held_padded);
    if held_padded > 0 {
        device
            .write_at(0, &first[..held_padded])
            .map_err(|source| WriteError::Write {
                device: device.name(),
                offset: 0,
                source,
            })?;
        device.sync().map_err(finish_error)?;
        if verify {
            verify_range(device, 0, held_len, digests, state, source, cancel)?;
        }
    }
    device.finish(image_len).map_err(finish_error)?;
    Ok(warning)
}

/// Decides what a drive that lost some stamps means for this write. It holds the image
/// only if the stamp at 0 survived (nothing of the body wrapped onto the first MiB,
/// which is written last) and the body reads back right; then the write stands with a
/// warning naming the real size. Otherwise, or without verification to tell, the write
/// fails as counterfeit, with the real size measured now that nothing on it is worth keeping.
fn judge_counterfeit(
    device: &mut dyn Device,
    found: &stamps::Found,
    keeps_at_most: u64,
    image_len: u64,
    verify: Option<(&Digests, &DeviceState, &dyn Source, &CancelToken)>,
    block: usize,
) -> Result<String, WriteError> {
    let claimed = device.capacity().unwrap_or(0);
    let held = image_len.min(HOLD_BACK);
    let verified = match verify {
        Some((digests, state, source, cancel)) if keeps_at_most > 0 => {
            match verify_range(device, held, image_len, digests, state, source, cancel) {
                Ok(()) => true,
                Err(WriteError::Mismatch { .. }) => false,
                Err(other) => return Err(other),
            }
        }
        _ => false,
    };
    if verified && found.lost.first() != Some(&0) {
        return Ok(format!(
            "{}: the drive is not as large as it claims: it reports {} but keeps at most about {} (what is written beyond that lands on earlier data). The image fits and was verified, but do not trust the rest of the drive; a full check of the drive (`graver check`, planned for a later version) will tell more.",
            device.name(),
            graver_image::human::binary(claimed),
            graver_image::human::binary(keeps_at_most)
        ));
    }
    Err(WriteError::Counterfeit {
        device: device.name(),
        claimed,
        keeps_at_most: stamps::probe(device, block),
        image_len,
    })
}

/// Reads `[from, to)` back (from a region boundary) and compares it region by region with the digests.
///
/// A reader thread keeps the next transfers in flight while this thread hashes, so
/// verification runs at the device's read speed.
fn verify_range(
    device: &mut dyn Device,
    from: u64,
    to: u64,
    digests: &Digests,
    state: &DeviceState,
    source: &dyn Source,
    cancel: &CancelToken,
) -> Result<(), WriteError> {
    let name = device.name();
    let block = device.block_size();
    let pool = Pool::new(3, CHUNK_SIZE, block);
    let (tx, rx) = crossbeam_channel::bounded::<Result<Chunk, WriteError>>(2);
    std::thread::scope(|scope| {
        let pool = &pool;
        let reader_name = name.clone();
        scope.spawn(move || read_back(device, from, to, pool, &tx, &reader_name, cancel));
        // `rx` is moved into the comparison and dropped the moment it ends, whatever
        // the reason: the read-back thread's next send then fails and it stops. Kept
        // alive until the scope joins, a full queue would hold it (and the scope) for ever.
        compare_read_back(rx, from, to, digests, state, &name, source, cancel)
    })
}

/// Reads `[from, to)` into pooled chunks until the comparison stops taking them.
fn read_back(
    device: &mut dyn Device,
    from: u64,
    to: u64,
    pool: &Pool,
    chunks: &Sender<Result<Chunk, WriteError>>,
    name: &str,
    cancel: &CancelToken,
) {
    let block = device.block_size();
    let capacity = device.capacity();
    let mut offset = from;
    let mut pace = Pace::new();
    while offset < to && !cancel.is_cancelled() {
        let Some(mut buf) = pool.take() else { return };
        let len = usize::try_from((to - offset).min(CHUNK_SIZE as u64)).unwrap_or(CHUNK_SIZE);
        let padded = usize::try_from(round_up(len as u64, block)).unwrap_or(CHUNK_SIZE);
        let padded = on_device(capacity, offset, padded);
        let read = match read_pieces(device, offset, &mut buf[..padded], cancel, &mut pace) {
            Ok(got) => Ok(Chunk::new(buf, offset, got.min(len), padded, pool.recycler())),
            Err(ReadFailure::Cancelled) => Err(WriteError::Cancelled),
            Err(ReadFailure::Io(at, source)) => Err(WriteError::ReadBack {
                device: name.to_owned(),
                offset: at,
                source,
            }),
        };
        let failed = read.is_err();
        if chunks.send(read).is_err() || failed {
            return;
        }
        offset += len as u64;
    }
}

/// Compares the read-back chunks with the region digests; names the exact first differing byte.
#[expect(
    clippy::too_many_arguments,
    reason = "one internal call site; a struct would only rename them"
)]
fn compare_read_back(
    chunks: Receiver<Result<Chunk, WriteError>>,
    from: u64,
    to: u64,
    digests: &Digests,
    state: &DeviceState,
    name: &str,
    source: &dyn Source,
    cancel: &CancelToken,
) -> Result<(), WriteError> {
    let mut offset = from;
    while offset < to {
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        let Ok(chunk) = chunks.recv() else {
            return Err(WriteError::Cancelled);
        };
        let chunk = chunk?;
        let differs = chunk.data().chunks(REGION).enumerate().find_map(|(i, region)| {
            let region_offset = offset + (i * REGION) as u64;
            let index = usize::try_from(region_offset / REGION as u64).unwrap_or(usize::MAX);
            (digests.regions.get(index) != Some(&xxh3_64(region))).then(|| (region_offset, region.to_vec()))
        });
        if let Some((region_offset, found)) = differs {
            // Let the read-back thread go before the (possibly long) search in the image.
            drop(chunk);
            drop(chunks);
            let at = locate_difference(source, region_offset, &found, cancel)?.unwrap_or(region_offset);
            return Err(WriteError::Mismatch {
                device: name.to_owned(),
                offset: at,
            });
        }
        let expected = usize::try_from((to - offset).min(CHUNK_SIZE as u64)).unwrap_or(CHUNK_SIZE);
        if chunk.len < expected {
            // The device ended before the image did.
            return Err(WriteError::Mismatch {
                device: name.to_owned(),
                offset: offset + chunk.len as u64,
            });
        }
        offset += chunk.len as u64;
        state.bytes.store(offset, Ordering::Relaxed);
    }
    Ok(())
}

/// Finds the exact first byte where `found`, read back from `offset`, differs from the image.
///
/// The region digests only say which MiB differs; the image's own bytes say where.
/// A source that can seek (a raw image) is opened right at `offset`; any other is
/// decoded again up to it, which honours `cancel`. `Ok(None)` when the image cannot
/// be read again: the region's start is then the best answer there is.
fn locate_difference(
    source: &dyn Source,
    offset: u64,
    found: &[u8],
    cancel: &CancelToken,
) -> Result<Option<u64>, WriteError> {
    let mut reader = match source.open_at(offset) {
        Ok(Some(reader)) => reader,
        Ok(None) => match source.open() {
            Ok(opened) => {
                let mut reader = opened.reader;
                if !skip(&mut reader, offset, cancel)? {
                    return Ok(None);
                }
                reader
            }
            Err(_) => return Ok(None),
        },
        Err(_) => return Ok(None),
    };
    let mut expected = vec![0; found.len()];
    let Ok(n) = read_up_to(&mut reader, &mut expected) else {
        return Ok(None);
    };
    let same = expected[..n].iter().zip(found).take_while(|(a, b)| a == b).count();
    Ok(Some(offset + same as u64))
}

/// Reads and discards `len` bytes, checking for cancellation between transfers;
/// `Ok(false)` when the stream fails or ends first.
fn skip(reader: &mut dyn Read, len: u64, cancel: &CancelToken) -> Result<bool, WriteError> {
    let mut scratch = vec![0; CHUNK_SIZE];
    let mut left = len;
    while left > 0 {
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        let want = usize::try_from(left.min(CHUNK_SIZE as u64)).unwrap_or(CHUNK_SIZE);
        match read_up_to(reader, &mut scratch[..want]) {
            Ok(0) | Err(_) => return Ok(false),
            Ok(n) => left -= n as u64,
        }
    }
    Ok(true)
}

/// Compares a device with an image without writing: streams the image and reads
/// the device in step, stopping at the first differing byte.
///
/// # Errors
/// [`WriteError::Mismatch`] with the first differing offset, [`WriteError::TooSmall`]
/// when the device is smaller than the image, I/O and image errors, cancellation.
pub fn compare(
    source: &dyn Source,
    device: &mut dyn Device,
    on_progress: &(dyn Fn(&Progress) + Sync),
    cancel: &CancelToken,
) -> Result<CompareReport, WriteError> {
    if let (ImageSize::Exact(needed), Some(capacity)) = (source.size(), device.capacity())
        && needed > capacity
    {
        return Err(WriteError::TooSmall {
            device: device.name(),
            needed,
            capacity,
        });
    }
    let (decoder, consumed) = Decoder::open(source).map_err(WriteError::from_source)?;
    let tracker = Tracker::new(vec![device.name()], consumed, source.file_size(), source.size());
    let block = device.block_size().max(4096);
    let pool = Pool::new(POOL_BUFFERS, decoder.buffer_len(), block);
    let (tx, rx) = crossbeam_channel::bounded(POOL_BUFFERS);
    let (stop_ticker, ticker_stop) = crossbeam_channel::bounded::<()>(0);
    let state = &tracker.devices[0];
    let outcome = std::thread::scope(|scope| {
        scope.spawn(|| run_ticker(&tracker, &ticker_stop, on_progress));
        let reader = scope.spawn(|| read_stage(decoder, &pool, &[tx], &tracker, block, cancel));
        state.set_phase(Phase::Verifying);
        let compared = compare_stage(device, &rx, state, block, cancel);
        if compared.is_err() {
            state.set_phase(Phase::Failed);
            drain(&rx);
        }
        drop(rx);
        let read = reader.join().unwrap_or(Err(WriteError::SourceFailed));
        drop(stop_ticker);
        match (read, compared) {
            (Err(e), _) if !matches!(e, WriteError::SourceFailed) => Err(e),
            (_, Err(e)) => Err(e),
            (Ok(len), Ok(())) => Ok(CompareReport { image_len: len }),
            (Err(e), Ok(())) => Err(e),
        }
    });
    state.set_phase(if outcome.is_ok() { Phase::Done } else { Phase::Failed });
    finish_progress(&tracker, on_progress);
    outcome
}

fn compare_stage(
    device: &mut dyn Device,
    chunks: &Receiver<Msg>,
    state: &DeviceState,
    block: usize,
    cancel: &CancelToken,
) -> Result<(), WriteError> {
    let mut buf = AlignedBuf::new(CHUNK_SIZE, block);
    loop {
        let chunk = match chunks.recv() {
            Ok(Msg::Chunk(chunk)) => chunk,
            Ok(Msg::End) => return Ok(()),
            Err(_) => return Err(WriteError::SourceFailed),
        };
        if cancel.is_cancelled() {
            return Err(WriteError::Cancelled);
        }
        let end = chunk.offset + chunk.len as u64;
        fits(device, end)?;
        let padded = on_device(device.capacity(), chunk.offset, chunk.padded_len);
        if buf.len() < padded {
            // A direct decoder's chunks can be a multiple of the usual size.
            buf = AlignedBuf::new(padded, block);
        }
        let got = device
            .read_at(chunk.offset, &mut buf[..padded])
            .map_err(|source| WriteError::ReadBack {
                device: device.name(),
                offset: chunk.offset,
                source,
            })?;
        let expected = chunk.data();
        let same = expected
            .iter()
            .zip(&buf[..got.min(expected.len())])
            .take_while(|(a, b)| a == b)
            .count();
        if same < expected.len() {
            return Err(WriteError::Mismatch {
                device: device.name(),
                offset: chunk.offset + same as u64,
            });
        }
        state.bytes.store(end, Ordering::Relaxed);
    }
}
