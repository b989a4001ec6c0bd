//! zstd decoded by libzstd's block-at-a-time API straight into the caller's buffers.
//!
//! The streaming decoder ([`crate::zstd::native_reader`]) keeps the window in a ring
//! of its own and copies every decoded byte out of it: two passes over memory per
//! byte. Here each block is decoded where the write pipeline will write it from, and
//! the history a block refers back to is the previous buffer, which the pipeline keeps
//! untouched (it is being written from) until the next one is full. Decoding
//! `scripts/bench`'s 1 GiB `.zst` alone, into three rotating 4 MiB buffers, took
//! 392 ms median through the streaming decoder and 323 ms this way (15 runs each).
//!
//! libzstd keeps one earlier segment of output besides the current one, so every
//! back-reference must land in the previous buffer or earlier in this one: the caller
//! asks for at least a window plus [`SLACK`] per buffer ([`Direct::min_want`]).
//! libzstd itself refuses an offset past the history it was given, so a frame that
//! lies about its window is an error, never a read outside the buffers.

use std::io::{self, Read};
use std::ptr::NonNull;

use zstd_sys as sys;

use crate::DirectReader;
use crate::Format;
use crate::format::{is_skippable_magic, le32};
use crate::reader::{invalid, name_error, truncated};
use crate::zstd::{BlockHeader, COMPRESSED, RLE, SINGLE_SEGMENT};

/// Room a buffer needs past the bytes asked for: the largest block the format allows,
/// since a block is decoded whole once decoding it has started.
const SLACK: usize = DirectReader::SLACK;
/// How much of the file is read at a time.
const INPUT: usize = 1 << 18;
/// Why a frame whose last block is empty but whose header records more is refused.
const SHORT_FRAME: &str = "a frame holds fewer bytes than its header records";
/// Why a compressed block of no bytes is refused.
const EMPTY_COMPRESSED_BLOCK: &str = "a compressed block of no bytes";
/// Why a repeated-byte block in a single-segment frame that records 0 bytes is refused.
const RLE_IN_EMPTY_FRAME: &str = "a repeated-byte block in a frame of no bytes";
/// What this decoder refuses and libzstd's streaming decoder lets through: its one-pass
/// decoder refuses the first two, and its block-at-a-time decoder, which the streaming
/// one uses unless the whole frame is at hand, the third.
pub(crate) const STRICTER: [&str; 3] = [SHORT_FRAME, EMPTY_COMPRESSED_BLOCK, RLE_IN_EMPTY_FRAME];
/// The longest zstd frame header.
const FRAME_HEADER_MAX: usize = 18;

/// A `ZSTD_DCtx`, freed when dropped.
struct Context(NonNull<sys::ZSTD_DCtx>);

impl Context {
    fn new() -> io::Result<Context> {
        // SAFETY: no preconditions; a null result is handled.
        let ctx = unsafe { sys::ZSTD_createDCtx() };
        NonNull::new(ctx)
            .map(Context)
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "libzstd could not make a decoding context"))
    }

    fn check(code: usize) -> io::Result<usize> {
        // SAFETY: both take any value and return a static string for error codes.
        if unsafe { sys::ZSTD_isError(code) } == 0 {
            return Ok(code);
        }
        // SAFETY: as above; the name is a NUL-terminated static string.
        let name = unsafe { std::ffi::CStr::from_ptr(sys::ZSTD_getErrorName(code)) };
        Err(invalid(name.to_string_lossy().into_owned()))
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context came from ZSTD_createDCtx and is freed once.
        unsafe {
            sys::ZSTD_freeDCtx(self.0.as_ptr());
        }
    }
}

// SAFETY: a ZSTD_DCtx belongs to no thread; it is only ever used through `&mut`.
unsafe impl Send for Context {}

/// The compressed file, read ahead into a buffer that hands out exact pieces.
struct Input<R> {
    file: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> Input<R> {
    /// Makes `n` bytes ready at `buf[start..]`; `false` when the file ends first.
    fn ready(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.buf.len() - self.start < n {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() < n {
                let mut bigger = vec![0; n.next_power_of_two()].into_boxed_slice();
                bigger[..self.end].copy_from_slice(&self.buf[..self.end]);
                self.buf = bigger;
            }
        }
        while self.end - self.start < n {
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Up to `n` bytes ahead, fewer only where the file ends; not consumed.
    fn peek(&mut self, n: usize) -> io::Result<&[u8]> {
        let _ = self.ready(n)?;
        let end = self.end.min(self.start + n);
        Ok(&self.buf[self.start..end])
    }

    /// The next `n` bytes, consumed.
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if !self.ready(n)? {
            return Err(truncated("the file ends inside a zstd frame"));
        }
        let piece = &self.buf[self.start..self.start + n];
        self.start += n;
        Ok(piece)
    }

    /// Passes over the next `n` bytes. They are read, not sought past: a file cut
    /// after it was opened must fail here, not look like a clean end after a seek.
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        loop {
            let here = self.end - self.start;
            let step = usize::try_from(n).map_or(here, |n| n.min(here));
            self.start += step;
            n -= step as u64;
            if n == 0 {
                return Ok(());
            }
            if !self.ready(1)? {
                return Err(truncated("the file ends inside a skippable zstd frame"));
            }
        }
    }
}

/// Where the previous call left its output, so the next can check it was handed back.
#[derive(Clone, Copy)]
struct Last {
    /// The buffer's address, only ever compared.
    buf: usize,
    /// Decoded bytes reach this far into that buffer.
    end: usize,
    /// What was asked for; bytes past it go to the front of the next buffer.
    want: usize,
}

/// The decoder: every zstd frame of the file in turn, skippable frames skipped, each
/// frame's content checksum checked by libzstd.
pub(crate) struct Direct<R> {
    ctx: Context,
    input: Input<R>,
    in_frame: bool,
    /// The content size the current frame's header records, and what it has decoded.
    frame_size: Option<u64>,
    frame_decoded: u64,
    /// Whether the current frame's window is 0 bytes: a single-segment frame that
    /// records 0 bytes, where no block may be larger than nothing.
    empty_window: bool,
    finished: bool,
    last: Option<Last>,
    min_want: usize,
}

impl<R: Read> Direct<R> {
    /// A decoder of `file` (at its start), whose frames ask for at most `largest_window`.
    pub(crate) fn new(file: R, largest_window: u64) -> io::Result<Direct<R>> {
        let window = usize::try_from(largest_window)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a zstd window larger than memory"))?;
        Ok(Direct {
            ctx: Context::new()?,
            input: Input {
                file,
                buf: vec![0; INPUT].into_boxed_slice(),
                start: 0,
                end: 0,
            },
            in_frame: false,
            frame_size: None,
            frame_decoded: 0,
            empty_window: false,
            finished: false,
            last: None,
            min_want: window.saturating_add(SLACK),
        })
    }

    /// The least a caller may ask [`Direct::fill`] for, so that every back-reference
    /// lands in the previous buffer.
    pub(crate) fn min_want(&self) -> usize {
        self.min_want
    }

    /// Decodes the next `want` bytes of the image into `dst[..want]` and returns how
    /// many there were: `want`, or fewer at the end of the image.
    ///
    /// `dst` must be at least `want + SLACK` long. `previous` must be the buffer the
    /// previous call filled, unchanged since (the bytes decoded past its `want` are
    /// moved from it to the front of `dst`); the first call passes `None`.
    ///
    /// # Errors
    /// Corrupt or truncated data ([`io::ErrorKind::InvalidData`] naming zstd), a failed
    /// read of the file, or buffers that break the rules above
    /// ([`io::ErrorKind::InvalidInput`]).
    pub(crate) fn fill(&mut self, previous: Option<&[u8]>, dst: &mut [u8], want: usize) -> io::Result<usize> {
        self.fill_inner(previous, dst, want).map_err(|e| {
            self.finished = true;
            if e.kind() == io::ErrorKind::InvalidInput {
                e
            } else {
                name_error(e, Format::Zstd)
            }
        })
    }

    fn fill_inner(&mut self, previous: Option<&[u8]>, dst: &mut [u8], want: usize) -> io::Result<usize> {
        let misuse = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        if want < self.min_want || dst.len() < want.saturating_add(SLACK) {
            return Err(misuse("a zstd output buffer smaller than its window needs"));
        }
        let mut pos = 0;
        if let Some(last) = self.last {
            // libzstd holds pointers into the previous buffer (its history) and reads
            // them below: it must be that very buffer, lent whole for this call.
            let previous = previous
                .filter(|p| p.as_ptr().addr() == last.buf && p.len() >= last.end)
                .ok_or_else(|| misuse("the previous zstd output buffer was not handed back"))?;
            let carried = &previous[last.want.min(last.end)..last.end];
            dst[..carried.len()].copy_from_slice(carried);
            pos = carried.len();
        }
        while pos < want && !self.finished {
            if !self.in_frame {
                if !self.begin_frame()? {
                    self.finished = true;
                    break;
                }
                continue;
            }
            // SAFETY: the context is valid.
            let need = unsafe { sys::ZSTD_nextSrcSizeToDecompress(self.ctx.0.as_ptr()) };
            if need == 0 {
                // libzstd checks the recorded size after a last block that holds data,
                // not after an empty one (its streaming decoder lets such a frame
                // through): checked here for every frame.
                if self.frame_size.is_some_and(|size| size != self.frame_decoded) {
                    return Err(invalid(SHORT_FRAME));
                }
                self.in_frame = false;
                continue;
            }
            // SAFETY: the context is valid.
            let kind = unsafe { sys::ZSTD_nextInputType(self.ctx.0.as_ptr()) };
            let src = self.input.take(need)?;
            if kind == sys::ZSTD_nextInputType_e::ZSTDnit_blockHeader
                && let Ok(bytes) = <[u8; 3]>::try_from(src)
            {
                // A compressed block of no bytes: libzstd's one-pass decoder refuses it,
                // its block-at-a-time one (and so its streaming one) takes it for an
                // empty block. Refused here.
                let header = BlockHeader::parse(bytes);
                if header.kind == COMPRESSED && header.size == 0 {
                    return Err(invalid(EMPTY_COMPRESSED_BLOCK));
                }
                // libzstd's block-at-a-time decoder measures a repeated-byte block by
                // its one stored byte, more than a window of 0 allows, and calls the
                // data corrupt; its one-pass decoder, which the streaming one takes
                // when the whole frame is at hand, lets the block through. Refused
                // here with a reason of its own.
                if header.kind == RLE && self.empty_window {
                    return Err(invalid(RLE_IN_EMPTY_FRAME));
                }
            }
            let room = &mut dst[pos..];
            // SAFETY: `src` is exactly the size libzstd asked for. libzstd writes at most
            // `room.len()` bytes at `room`, and reads history only from what it wrote
            // earlier in this frame: earlier in `dst`, or in `previous`, which the check
            // above proved is the buffer it wrote, lent unchanged for this call. Before
            // each call `pos < want`, so `room` holds more than a whole block.
            let written = Context::check(unsafe {
                sys::ZSTD_decompressContinue(
                    self.ctx.0.as_ptr(),
                    room.as_mut_ptr().cast(),
                    room.len(),
                    src.as_ptr().cast(),
                    need,
                )
            })?;
            pos += written;
            self.frame_decoded += written as u64;
        }
        self.last = Some(Last {
            buf: dst.as_ptr().addr(),
            end: pos,
            want,
        });
        Ok(pos.min(want))
    }

    /// Starts the next zstd frame, passing over skippable ones; `false` at a clean end
    /// of the file.
    fn begin_frame(&mut self) -> io::Result<bool> {
        loop {
            if !self.input.ready(1)? {
                return Ok(false);
            }
            if !self.input.ready(4)? {
                return Err(truncated("the file ends inside a zstd frame header"));
            }
            let magic = le32(&self.input.buf[self.input.start..self.input.start + 4]);
            if !is_skippable_magic(magic) {
                let header = self.input.peek(FRAME_HEADER_MAX)?;
                // SAFETY: reads at most `header.len()` bytes of `header`.
                let size = unsafe { sys::ZSTD_getFrameContentSize(header.as_ptr().cast(), header.len()) };
                // Unknown, or a header libzstd is about to refuse as corrupt.
                self.frame_size = (size < u64::MAX - 1).then_some(size);
                self.empty_window = header
                    .get(4)
                    .is_some_and(|&descriptor| descriptor & SINGLE_SEGMENT != 0)
                    && self.frame_size == Some(0);
                self.frame_decoded = 0;
                // SAFETY: the context is valid; this resets it for a new frame, with no
                // history from the last.
                Context::check(unsafe { sys::ZSTD_decompressBegin(self.ctx.0.as_ptr()) })?;
                self.in_frame = true;
                return Ok(true);
            }
            let header = self.input.take(8)?;
            let len = le32(&header[4..8]);
            self.input.skip(u64::from(len))?;
        }
    }
}
