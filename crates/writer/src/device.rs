//! What the engine writes to: anything with positional, block-aligned I/O.

use std::io;

use graver_drives::Target;

use crate::os;

/// A write target as the engine sees it. Offsets and lengths passed to
/// [`Device::write_at`] and [`Device::read_at`] are always multiples of
/// [`Device::block_size`], and so are buffer addresses.
pub trait Device: Send {
    /// A name for messages, usually the path.
    fn name(&self) -> String;
    /// Bytes that fit on the device; `None` when it grows (a regular file).
    fn capacity(&self) -> Option<u64>;
    /// Alignment of every transfer, a power of two of at least 4096.
    fn block_size(&self) -> usize;
    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    /// Whatever the device reports.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Fills `buf` from `offset`; returns fewer bytes only at the end of the device.
    ///
    /// # Errors
    /// Whatever the device reports.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Makes everything written so far durable.
    ///
    /// # Errors
    /// Whatever the device reports.
    fn sync(&mut self) -> io::Result<()>;
    /// Called once the whole image (`image_len` bytes) is written and verified.
    ///
    /// # Errors
    /// Whatever the device reports.
    fn finish(&mut self, image_len: u64) -> io::Result<()>;
}

impl Device for Target {
    fn name(&self) -> String {
        self.path().display().to_string()
    }

    fn capacity(&self) -> Option<u64> {
        Target::capacity(self)
    }

    fn block_size(&self) -> usize {
        Target::block_size(self).next_power_of_two()
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        os::write_all_at(self.file(), buf, offset)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        os::read_full_at(self.file(), buf, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        Target::sync(self)
    }

    fn finish(&mut self, image_len: u64) -> io::Result<()> {
        Target::finish(self, image_len).map_err(io::Error::other)
    }
}
