//! The engine against in-memory devices that check every transfer's alignment.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::io::{self, Cursor, Read};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use graver_image::ImageSize;
use sha2::{Digest, Sha256};

use crate::{CancelToken, Device, ErrorKind, HOLD_BACK, Opened, Phase, Progress, Source, WriteError, WriteOptions};

const MIB: usize = 1 << 20;
const BLOCK: usize = 4096;

/// An image in memory; optionally its stream fails with `InvalidData` after `fail_after` bytes.
struct MemSource {
    data: Vec<u8>,
    fail_after: Option<usize>,
}

struct FailingReader {
    inner: Cursor<Vec<u8>>,
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "xz data is corrupt"));
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        self.left -= n;
        Ok(n)
    }
}

impl Source for MemSource {
    fn open(&self) -> io::Result<Opened> {
        let inner = Cursor::new(self.data.clone());
        let reader: Box<dyn Read + Send> = match self.fail_after {
            Some(left) => Box::new(FailingReader { inner, left }),
            None => Box::new(inner),
        };
        Ok(Opened {
            reader,
            consumed: Arc::new(AtomicU64::new(0)),
        })
    }
    fn size(&self) -> ImageSize {
        ImageSize::Exact(self.data.len() as u64)
    }
    fn file_size(&self) -> u64 {
        self.data.len() as u64
    }
}

#[derive(Default)]
struct Log {
    data: Vec<u8>,
    writes: Vec<(u64, usize)>,
    finished: Option<u64>,
}

/// A device in memory that panics on any unaligned transfer.
struct MemDevice {
    name: String,
    log: Arc<Mutex<Log>>,
    /// A write touching this offset fails.
    fail_at: Option<u64>,
    /// The byte at this offset is flipped after it is written, as a bad flash cell would.
    corrupt_at: Option<u64>,
    /// Cancel this token after this many writes.
    cancel_after: Option<(usize, CancelToken)>,
}

impl MemDevice {
    fn new(capacity: usize) -> (Self, Arc<Mutex<Log>>) {
        let log = Arc::new(Mutex::new(Log {
            data: vec![0; capacity],
            ..Log::default()
        }));
        let device = Self {
            name: "mem".into(),
            log: Arc::clone(&log),
            fail_at: None,
            corrupt_at: None,
            cancel_after: None,
        };
        (device, log)
    }
}

fn assert_aligned(offset: u64, buf: &[u8]) {
    assert_eq!(offset % BLOCK as u64, 0, "unaligned offset {offset}");
    assert_eq!(buf.len() % BLOCK, 0, "unaligned length {}", buf.len());
    assert_eq!(buf.as_ptr() as usize % BLOCK, 0, "unaligned buffer address");
}

impl Device for MemDevice {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn capacity(&self) -> Option<u64> {
        Some(self.log.lock().unwrap().data.len() as u64)
    }
    fn block_size(&self) -> usize {
        BLOCK
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        assert_aligned(offset, buf);
        let end = offset + buf.len() as u64;
        if self.fail_at.is_some_and(|f| (offset..end).contains(&f)) {
            return Err(io::Error::other("injected write failure"));
        }
        let mut log = self.log.lock().unwrap();
        log.data[offset as usize..end as usize].copy_from_slice(buf);
        if let Some(c) = self.corrupt_at.filter(|c| (offset..end).contains(c)) {
            log.data[c as usize] ^= 0x40;
        }
        log.writes.push((offset, buf.len()));
        if let Some((n, token)) = &self.cancel_after
            && log.writes.len() >= *n
        {
            token.cancel();
        }
        Ok(())
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        assert_aligned(offset, buf);
        let log = self.log.lock().unwrap();
        let start = offset as usize;
        let n = buf.len().min(log.data.len().saturating_sub(start));
        buf[..n].copy_from_slice(&log.data[start..start + n]);
        Ok(n)
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self, image_len: u64) -> io::Result<()> {
        self.log.lock().unwrap().finished = Some(image_len);
        Ok(())
    }
}

/// Bytes that are neither constant nor trivially periodic.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn no_progress(_: &Progress) {}

fn write_one(
    source: &MemSource,
    device: &mut MemDevice,
    cancel: &CancelToken,
) -> Result<crate::WriteReport, WriteError> {
    crate::write(source, &mut [device], WriteOptions::default(), &no_progress, cancel)
}

#[test]
fn writes_and_verifies_images_of_awkward_sizes() {
    for len in [100, BLOCK, MIB, MIB + 1, 5 * MIB + 123, 8 * MIB, 9 * MIB - 1] {
        let image = pattern(len);
        let source = MemSource {
            data: image.clone(),
            fail_after: None,
        };
        let (mut device, log) = MemDevice::new(16 * MIB);
        let report = write_one(&source, &mut device, &CancelToken::new()).unwrap();
        assert_eq!(report.image_len, len as u64);
        assert!(
            matches!(report.devices[0].result, Ok(true)),
            "{len}: {:?}",
            report.devices[0].result
        );
        assert_eq!(report.sha256.unwrap(), <[u8; 32]>::from(Sha256::digest(&image)));
        let log = log.lock().unwrap();
        assert_eq!(&log.data[..len], &image[..], "{len}: device differs from image");
        assert!(log.data[len..].iter().all(|&b| b == 0), "{len}: padding is not zero");
        assert_eq!(log.finished, Some(len as u64));
        let (last_offset, _) = *log.writes.last().unwrap();
        assert_eq!(last_offset, 0, "{len}: the first MiB must be the last write");
        assert_eq!(log.writes.iter().filter(|(o, _)| *o < HOLD_BACK).count(), 1);
    }
}

#[test]
fn corrupted_byte_is_caught_at_its_exact_offset_and_first_mib_stays_unwritten() {
    let image = pattern(6 * MIB + 5);
    let source = MemSource {
        data: image,
        fail_after: None,
    };
    let (mut device, log) = MemDevice::new(8 * MIB);
    let bad = 3 * MIB as u64 + 17;
    device.corrupt_at = Some(bad);
    let report = write_one(&source, &mut device, &CancelToken::new()).unwrap();
    match &report.devices[0].result {
        Err(WriteError::Mismatch { offset, .. }) => assert_eq!(*offset, bad),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let log = log.lock().unwrap();
    assert!(
        log.data[..MIB].iter().all(|&b| b == 0),
        "first MiB was written despite the failure"
    );
    assert_eq!(log.finished, None);
}

#[test]
fn corruption_in_the_first_mib_is_caught_too() {
    let source = MemSource {
        data: pattern(2 * MIB),
        fail_after: None,
    };
    let (mut device, _log) = MemDevice::new(4 * MIB);
    device.corrupt_at = Some(510);
    let report = write_one(&source, &mut device, &CancelToken::new()).unwrap();
    assert!(matches!(
        report.devices[0].result,
        Err(WriteError::Mismatch { offset: 510, .. })
    ));
}

#[test]
fn cancellation_leaves_the_first_mib_unwritten() {
    let source = MemSource {
        data: pattern(40 * MIB),
        fail_after: None,
    };
    let (mut device, log) = MemDevice::new(64 * MIB);
    let cancel = CancelToken::new();
    device.cancel_after = Some((2, cancel.clone()));
    let error = write_one(&source, &mut device, &cancel).unwrap_err();
    assert!(matches!(error, WriteError::Cancelled), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    let log = log.lock().unwrap();
    assert!(log.data[..MIB].iter().all(|&b| b == 0));
    assert!(log.writes.iter().all(|(o, _)| *o >= HOLD_BACK));
    assert!(
        log.writes.len() < 10,
        "the write went on after cancellation: {} writes",
        log.writes.len()
    );
}

#[test]
fn image_larger_than_device_is_refused_before_any_write() {
    let source = MemSource {
        data: pattern(3 * MIB),
        fail_after: None,
    };
    let (mut device, log) = MemDevice::new(2 * MIB);
    let report = write_one(&source, &mut device, &CancelToken::new()).unwrap();
    match &report.devices[0].result {
        Err(e @ WriteError::TooSmall { needed, capacity, .. }) => {
            assert_eq!((*needed, *capacity), (3 * MIB as u64, 2 * MIB as u64));
            assert_eq!(e.kind(), ErrorKind::Refused);
        }
        other => panic!("expected too small, got {other:?}"),
    }
    assert!(log.lock().unwrap().writes.is_empty());
}

#[test]
fn corrupt_source_fails_the_job_as_bad_input_without_the_first_mib() {
    let source = MemSource {
        data: pattern(12 * MIB),
        fail_after: Some(9 * MIB + 3),
    };
    let (mut device, log) = MemDevice::new(16 * MIB);
    let error = write_one(&source, &mut device, &CancelToken::new()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadInput, "{error}");
    assert!(log.lock().unwrap().data[..MIB].iter().all(|&b| b == 0));
}

#[test]
fn a_failing_device_is_dropped_while_the_others_finish() {
    let image = pattern(10 * MIB + 7);
    let source = MemSource {
        data: image.clone(),
        fail_after: None,
    };
    let (mut good, good_log) = MemDevice::new(16 * MIB);
    let (mut bad, bad_log) = MemDevice::new(16 * MIB);
    bad.name = "bad".into();
    bad.fail_at = Some(5 * MIB as u64);
    let (mut small, _) = MemDevice::new(4 * MIB);
    small.name = "small".into();
    let report = crate::write(
        &source,
        &mut [&mut good, &mut bad, &mut small],
        WriteOptions::default(),
        &no_progress,
        &CancelToken::new(),
    )
    .unwrap();
    assert!(matches!(report.devices[0].result, Ok(true)));
    assert!(matches!(report.devices[1].result, Err(WriteError::Write { .. })));
    assert!(matches!(report.devices[2].result, Err(WriteError::TooSmall { .. })));
    assert_eq!(&good_log.lock().unwrap().data[..image.len()], &image[..]);
    assert!(bad_log.lock().unwrap().data[..MIB].iter().all(|&b| b == 0));
}

#[test]
fn without_verification_nothing_is_read_and_the_report_says_unverified() {
    let source = MemSource {
        data: pattern(3 * MIB),
        fail_after: None,
    };
    let (mut device, _) = MemDevice::new(4 * MIB);
    device.corrupt_at = Some(2 * MIB as u64);
    let options = WriteOptions {
        verify: false,
        sha256: false,
    };
    let report = crate::write(&source, &mut [&mut device], options, &no_progress, &CancelToken::new()).unwrap();
    assert!(matches!(report.devices[0].result, Ok(false)));
    assert_eq!(report.sha256, None);
}

#[test]
fn progress_reaches_done_with_every_byte() {
    let source = MemSource {
        data: pattern(6 * MIB),
        fail_after: None,
    };
    let (mut device, _) = MemDevice::new(8 * MIB);
    let seen = Mutex::new(Vec::new());
    let record = |p: &Progress| seen.lock().unwrap().push(p.clone());
    crate::write(
        &source,
        &mut [&mut device],
        WriteOptions::default(),
        &record,
        &CancelToken::new(),
    )
    .unwrap();
    let seen = seen.into_inner().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.phase, Phase::Done);
    assert!((last.fraction - 1.0).abs() < f64::EPSILON);
    assert_eq!(last.total, ImageSize::Exact(6 * MIB as u64));
}

#[test]
fn compare_finds_the_first_differing_byte() {
    let image = pattern(7 * MIB + 9);
    let source = MemSource {
        data: image.clone(),
        fail_after: None,
    };
    let (mut device, log) = MemDevice::new(8 * MIB);
    log.lock().unwrap().data[..image.len()].copy_from_slice(&image);
    let report = crate::compare(&source, &mut device, &no_progress, &CancelToken::new()).unwrap();
    assert_eq!(report.image_len, image.len() as u64);

    log.lock().unwrap().data[5 * MIB + 3] ^= 1;
    let error = crate::compare(&source, &mut device, &no_progress, &CancelToken::new()).unwrap_err();
    assert!(
        matches!(error, WriteError::Mismatch { offset, .. } if offset == 5 * MIB as u64 + 3),
        "{error:?}"
    );

    let (mut small, _) = MemDevice::new(4 * MIB);
    let error = crate::compare(&source, &mut small, &no_progress, &CancelToken::new()).unwrap_err();
    assert!(matches!(error, WriteError::TooSmall { .. }), "{error:?}");
}

#[test]
fn a_padded_transfer_stops_at_the_end_of_the_device() {
    use crate::engine::on_device;
    let end = 48 * MIB as u64 + 512;
    let capacity = Some(end);
    let last = 48 * MIB as u64;
    // The image's last 100 bytes sit in the device's last 512-byte sector.
    assert_eq!(on_device(capacity, last, BLOCK), 512);
    assert_eq!(on_device(capacity, last - 4 * MIB as u64, 4 * MIB), 4 * MIB);
    assert_eq!(
        on_device(capacity, last - 4 * MIB as u64, 4 * MIB + BLOCK),
        4 * MIB + 512
    );
    // A whole-block device and a file (no capacity) are never cut.
    assert_eq!(on_device(Some(16 * MIB as u64), 15 * MIB as u64, MIB), MIB);
    assert_eq!(on_device(None, u64::MAX - 1, 4 * MIB), 4 * MIB);
    assert_eq!(on_device(capacity, end + 4096, BLOCK), 0);
}
