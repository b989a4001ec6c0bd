//! Buffers aligned for direct I/O, recycled through a bounded pool.
//!
//! `O_DIRECT` (and `FILE_FLAG_NO_BUFFERING` on Windows) need the memory address,
//! the offset and the length of every transfer to be multiples of the device's
//! logical block size, so buffers come from `std::alloc` with that alignment.
//! They are allocated once per job and travel reader → writers and hasher →
//! back to the pool, so a write allocates nothing per chunk.
//!
//! A buffer of a huge page or more starts on a huge-page boundary and asks the OS
//! for huge pages before its first touch (see [`os::prefer_huge_pages`]): pinning a
//! 4 MiB transfer for direct I/O then takes two page-table entries instead of 1,024,
//! which on a fast drive is a measurable share of the writer's CPU time.

use std::alloc::{Layout, alloc, dealloc};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crossbeam_channel::{Receiver, Sender};

use crate::os;

/// The huge-page size buffers this large are aligned to (x86-64 and arm64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

/// A heap buffer whose address is a multiple of its alignment.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out &[u8].
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes aligned to `align` (a power of two).
    ///
    /// # Panics
    /// When `align` is not a power of two or the allocation fails, which are
    /// programming errors or out-of-memory, not user input.
    pub(crate) fn new(len: usize, align: usize) -> Self {
        let huge = len >= HUGE_PAGE;
        let align = if huge { align.max(HUGE_PAGE) } else { align };
        let layout = Layout::from_size_align(len.max(1), align).expect("valid buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        if huge {
            // Before the first touch: the pages are chosen when they are first written.
            os::prefer_huge_pages(ptr, layout.size());
        }
        // SAFETY: `ptr` is valid for `layout.size()` bytes, which this initialises.
        unsafe { ptr.as_ptr().write_bytes(0, layout.size()) };
        Self { ptr, layout }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for layout.size() initialised (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

/// A fixed set of buffers; taking one blocks until a chunk using one is dropped.
pub(crate) struct Pool {
    free: Receiver<AlignedBuf>,
    give_back: Sender<AlignedBuf>,
}

impl Pool {
    pub(crate) fn new(count: usize, len: usize, align: usize) -> Self {
        let (give_back, free) = crossbeam_channel::bounded(count);
        for _ in 0..count {
            // The channel has room for every buffer, so this cannot block or fail.
            let _ = give_back.send(AlignedBuf::new(len, align));
        }
        Self { free, give_back }
    }

    /// Waits for a free buffer; `None` only if every buffer was lost, which cannot happen while the pool lives.
    pub(crate) fn take(&self) -> Option<AlignedBuf> {
        self.free.recv().ok()
    }

    /// The handle that returns a buffer to this pool when a [`Chunk`] is dropped.
    pub(crate) fn recycler(&self) -> Sender<AlignedBuf> {
        self.give_back.clone()
    }
}

/// One filled buffer of image data at a fixed offset, shared by the writers and the hasher.
pub(crate) struct Chunk {
    buf: Option<AlignedBuf>,
    /// Image offset of the first byte.
    pub(crate) offset: u64,
    /// Number of image bytes in the buffer.
    pub(crate) len: usize,
    /// `len` rounded up to the block size; the bytes between are zero.
    pub(crate) padded_len: usize,
    recycle: Sender<AlignedBuf>,
}

impl Chunk {
    pub(crate) fn new(
        buf: AlignedBuf,
        offset: u64,
        len: usize,
        padded_len: usize,
        recycle: Sender<AlignedBuf>,
    ) -> Self {
        Self {
            buf: Some(buf),
            offset,
            len,
            padded_len,
            recycle,
        }
    }

    /// The image bytes.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.as_deref().map_or(&[], |b| &b[..self.len])
    }

    /// The image bytes plus zero padding to the block size: what is written.
    pub(crate) fn padded(&self) -> &[u8] {
        self.buf.as_deref().map_or(&[], |b| &b[..self.padded_len])
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // The pool may be gone at the end of a job; then the buffer is simply freed.
            let _ = self.recycle.send(buf);
        }
    }
}

/// Rounds `n` up to a multiple of `block` (a power of two).
pub(crate) fn round_up(n: u64, block: usize) -> u64 {
    let block = block as u64;
    n.div_ceil(block) * block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_zeroed_and_aligned_large_ones_to_a_huge_page() {
        for (len, align, boundary) in [(4096, 512, 512), (1 << 20, 4096, 4096), (4 << 20, 512, HUGE_PAGE)] {
            let buf = AlignedBuf::new(len, align);
            assert_eq!(buf.len(), len);
            assert_eq!(buf.as_ptr() as usize % boundary, 0, "a {len}-byte buffer");
            assert!(buf.iter().all(|&b| b == 0), "a {len}-byte buffer starts zeroed");
        }
    }
}
