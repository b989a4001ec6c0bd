//! What the engine writes to: anything with positional, block-aligned I/O.

use std::io;

use graver_drives::Target;

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
        positional::write_all_at(self.file(), buf, offset)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        positional::read_full_at(self.file(), buf, offset)
    }

    fn sync(&mut self) -> io::Result<()> {
        Target::sync(self)
    }

    fn finish(&mut self, image_len: u64) -> io::Result<()> {
        Target::finish(self, image_len).map_err(io::Error::other)
    }
}

#[cfg(unix)]
mod positional {
    use std::fs::File;
    use std::io;
    use std::os::unix::fs::FileExt;

    pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        file.write_all_at(buf, offset)
    }

    pub(super) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        graver_image::fill_with(buf, |rest, done| file.read_at(rest, offset + done as u64))
    }
}

#[cfg(windows)]
mod positional {
    use std::fs::File;
    use std::io;
    use std::os::windows::fs::FileExt;

    pub(super) fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match file.seek_write(&buf[done..], offset + done as u64) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(super) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        graver_image::fill_with(buf, |rest, done| file.seek_read(rest, offset + done as u64))
    }
}
