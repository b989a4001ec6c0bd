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

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender};

use crate::os;

/// The huge-page size buffers this large are aligned to (x86-64 and arm64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

/// A heap buffer whose address is a multiple of its alignment.
pub(crate) struct AlignedBuf {
    /// The allocation, as the allocator gave it.
    raw: NonNull<u8>,
    /// Its layout: `len` plus room to reach the alignment, aligned only as the allocator likes.
    layout: Layout,
    /// The aligned start inside the allocation.
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: AlignedBuf owns its allocation exclusively, like a Box<[u8]>.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out &[u8].
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes aligned to `align` (a power of two).
    ///
    /// The memory comes zeroed from the allocator (`calloc`), which for blocks of a
    /// MiB and more usually maps fresh pages from the OS, zero without being written: the
    /// pages are only touched, and only then chosen (huge or not), when the buffer is
    /// first filled. Asking the allocator for the alignment itself would not do: a
    /// zeroed allocation with an alignment above 16 is an aligned one plus a `memset`
    /// that touches every page up front, which cost ~14 ms of a job's start when six
    /// transfer buffers were made up front.
    ///
    /// # Panics
    /// When `align` is not a power of two or the allocation fails, which are
    /// programming errors or out-of-memory, not user input.
    pub(crate) fn new(len: usize, align: usize) -> Self {
        assert!(
            align.is_power_of_two(),
            "buffer alignment {align} is not a power of two"
        );
        let huge = len >= HUGE_PAGE;
        let align = if huge { align.max(HUGE_PAGE) } else { align };
        let len = len.max(1);
        let layout = len
            .checked_add(align)
            .and_then(|size| Layout::from_size_align(size, 16).ok())
            .expect("valid buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(raw) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        let offset = (align - raw.as_ptr() as usize % align) % align;
        // SAFETY: `offset < align`, so `offset + len <= layout.size()`: inside the allocation.
        let ptr = unsafe { raw.add(offset) };
        if huge {
            // Before the first touch: the pages are chosen when they are first written.
            os::prefer_huge_pages(ptr, len);
        }
        Self { raw, layout, ptr, len }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { dealloc(self.raw.as_ptr(), self.layout) }
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

/// At most `count` buffers, made when first needed; taking one when all are in use
/// blocks until a chunk using one is dropped.
///
/// Buffers are made on demand because a job seldom needs them all: when the drive
/// keeps up with the decoder, two or three are ever in flight, and a buffer never
/// taken is memory never touched and time not spent at the start of the job.
pub(crate) struct Pool {
    free: Receiver<AlignedBuf>,
    give_back: Sender<AlignedBuf>,
    made: AtomicUsize,
    count: usize,
    len: usize,
    align: usize,
}

impl Pool {
    pub(crate) fn new(count: usize, len: usize, align: usize) -> Self {
        let (give_back, free) = crossbeam_channel::bounded(count);
        Self {
            free,
            give_back,
            made: AtomicUsize::new(0),
            count,
            len,
            align,
        }
    }

    /// A free buffer, a new one while fewer than `count` exist, or else waits for one
    /// to come back; `None` only if every buffer was lost, which cannot happen while
    /// the pool lives.
    pub(crate) fn take(&self) -> Option<AlignedBuf> {
        if let Ok(buf) = self.free.try_recv() {
            return Some(buf);
        }
        let fresh = self
            .made
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |made| {
                (made < self.count).then_some(made + 1)
            })
            .is_ok();
        if fresh {
            return Some(AlignedBuf::new(self.len, self.align));
        }
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

    /// The whole buffer, also past the image bytes.
    pub(crate) fn whole(&self) -> &[u8] {
        self.buf.as_deref().unwrap_or(&[])
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

    #[test]
    fn a_pool_makes_buffers_only_when_taken_and_never_more_than_its_count() {
        let pool = Pool::new(3, 4096, 512);
        assert_eq!(pool.made.load(Ordering::Relaxed), 0, "nothing is made up front");
        let first = pool.take().expect("a buffer");
        let first_at = first.as_ptr();
        let chunk = Chunk::new(first, 0, 4096, 4096, pool.recycler());
        let second = pool.take().expect("a buffer");
        assert_eq!(pool.made.load(Ordering::Relaxed), 2);
        drop(chunk);
        let again = pool.take().expect("a buffer");
        assert_eq!(
            again.as_ptr(),
            first_at,
            "a returned buffer is reused before a new one is made"
        );
        assert_eq!(pool.made.load(Ordering::Relaxed), 2);
        let third = pool.take().expect("a buffer");
        assert_eq!(pool.made.load(Ordering::Relaxed), 3);
        let held = [second, again, third].map(|b| Chunk::new(b, 0, 0, 0, pool.recycler()));
        drop(held);
        let taken: Vec<AlignedBuf> = (0..3).map(|_| pool.take().expect("a returned buffer")).collect();
        assert_eq!(pool.made.load(Ordering::Relaxed), 3, "the count is a ceiling");
        assert!(pool.free.is_empty(), "all three are out; a fourth take would wait");
        drop(taken);
    }
}
