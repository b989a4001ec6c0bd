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
    /// The bytes at these offsets are flipped after they are written, as bad flash cells would.
    corrupt_at: Vec<u64>,
    /// Cancel this token after this many writes.
    cancel_after: Option<(usize, CancelToken)>,
    /// A counterfeit: claims the whole buffer but keeps this many bytes, storing offset `o` at `o % real`.
    real: Option<usize>,
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
            corrupt_at: Vec::new(),
            cancel_after: None,
            real: None,
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
        match self.real {
            Some(real) => {
                for (i, &b) in buf.iter().enumerate() {
                    log.data[(offset as usize + i) % real] = b;
                }
            }
            None => log.data[offset as usize..end as usize].copy_from_slice(buf),
        }
        for &c in self.corrupt_at.iter().filter(|c| (offset..end).contains(c)) {
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
        match self.real {
            Some(real) => {
                for (i, b) in buf[..n].iter_mut().enumerate() {
                    *b = log.data[(start + i) % real];
                }
            }
            None => buf[..n].copy_from_slice(&log.data[start..start + n]),
        }
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
        // The first MiB is written twice (it was once): first of all zeroed, the wipe
        // that makes a half-written drive unrecognisable, and last of all with the
        // image's own first MiB, once the body verified.
        assert_eq!(log.writes.first(), Some(&(0, MIB)), "{len}: the wipe must come first");
        let (last_offset, _) = *log.writes.last().unwrap();
        assert_eq!(last_offset, 0, "{len}: the first MiB must be the last write");
        let in_first: Vec<_> = log.writes.iter().filter(|(o, _)| *o < HOLD_BACK).collect();
        assert_eq!(in_first.len(), 2, "{len}: {in_first:?}");
        assert!(
            log.writes.contains(&(15 * MIB as u64, MIB)),
            "{len}: the last MiB was not wiped"
        );
    }
}

/// Old contents at both ends of a drive, as a stick that held an ISO would have.
fn with_old_contents(log: &Arc<Mutex<Log>>) {
    let mut log = log.lock().unwrap();
    let len = log.data.len();
    log.data[..MIB].fill(0xee);
    log.data[len - MIB..].fill(0xee);
}

fn ends_are_zero(log: &Arc<Mutex<Log>>) -> bool {
    let log = log.lock().unwrap();
    let len = log.data.len();
    log.data[..MIB].iter().all(|&b| b == 0) && log.data[len - MIB..].iter().all(|&b| b == 0)
}

#[test]
fn a_failed_cancelled_or_refused_write_leaves_no_old_signature_behind() {
    let source = || MemSource {
        data: pattern(6 * MIB),
        fail_after: None,
    };
    // A write error half-way: the old first and last MiB are gone.
    let (mut device, log) = MemDevice::new(16 * MIB);
    with_old_contents(&log);
    device.fail_at = Some(3 * MIB as u64);
    let report = write_one(&source(), &mut device, &CancelToken::new()).unwrap();
    assert!(matches!(report.devices[0].result, Err(WriteError::Write { .. })));
    assert!(ends_are_zero(&log));

    // A corrupt image late in the stream.
    let (mut device, log) = MemDevice::new(16 * MIB);
    with_old_contents(&log);
    let corrupt = MemSource {
        data: pattern(12 * MIB),
        fail_after: Some(9 * MIB),
    };
    let error = write_one(&corrupt, &mut device, &CancelToken::new()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BadInput);
    assert!(ends_are_zero(&log));

    // A cancel.
    let (mut device, log) = MemDevice::new(16 * MIB);
    with_old_contents(&log);
    let cancel = CancelToken::new();
    device.cancel_after = Some((4, cancel.clone()));
    assert!(matches!(
        write_one(&source(), &mut device, &cancel),
        Err(WriteError::Cancelled)
    ));
    assert!(ends_are_zero(&log));

    // Refused before anything was touched: the drive is as it was.
    let (mut device, log) = MemDevice::new(4 * MIB);
    with_old_contents(&log);
    let report = write_one(&source(), &mut device, &CancelToken::new()).unwrap();
    assert!(matches!(report.devices[0].result, Err(WriteError::TooSmall { .. })));
    assert!(log.lock().unwrap().writes.is_empty());
}

#[test]
fn an_empty_image_is_refused_and_the_drive_is_not_touched() {
    let source = MemSource {
        data: Vec::new(),
        fail_after: None,
    };
    let (mut device, log) = MemDevice::new(8 * MIB);
    let error = write_one(&source, &mut device, &CancelToken::new()).unwrap_err();
    assert!(matches!(error, WriteError::EmptyImage), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::BadInput);
    assert!(log.lock().unwrap().writes.is_empty());
}

#[test]
fn a_counterfeit_drive_that_cannot_hold_the_image_fails_naming_its_real_size() {
    let (report, log) = within_a_minute(|| {
        let source = MemSource {
            data: pattern(48 * MIB),
            fail_after: None,
        };
        let (mut device, log) = MemDevice::new(256 * MIB);
        device.real = Some(32 * MIB);
        (write_one(&source, &mut device, &CancelToken::new()).unwrap(), log)
    });
    let error = report.devices[0].result.as_ref().unwrap_err();
    assert!(
        matches!(error, WriteError::Counterfeit { claimed, keeps_at_most: Some(real), image_len, .. }
            if *claimed == 256 * MIB as u64 && *real == 32 * MIB as u64 && *image_len == 48 * MIB as u64),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Mismatch);
    let message = error.to_string();
    assert!(message.contains("256 MiB") && message.contains("32 MiB"), "{message}");
    assert!(log.lock().unwrap().data[..MIB].iter().all(|&b| b == 0));
    assert_eq!(log.lock().unwrap().finished, None);
}

#[test]
fn a_counterfeit_drive_that_holds_the_image_succeeds_with_a_warning() {
    let image = pattern(16 * MIB + 5);
    let expected = image.clone();
    let (report, log) = within_a_minute(move || {
        let source = MemSource {
            data: image,
            fail_after: None,
        };
        let (mut device, log) = MemDevice::new(256 * MIB);
        device.real = Some(32 * MIB);
        (write_one(&source, &mut device, &CancelToken::new()).unwrap(), log)
    });
    assert!(matches!(report.devices[0].result, Ok(true)), "{:?}", report.devices[0]);
    let warning = report.devices[0].warning.as_deref().unwrap();
    assert!(warning.contains("256 MiB") && warning.contains("32 MiB"), "{warning}");
    let log = log.lock().unwrap();
    assert_eq!(&log.data[..expected.len()], &expected[..]);
}

#[test]
fn a_drive_that_is_as_large_as_it_claims_gets_no_warning_and_keeps_no_stamp() {
    let source = MemSource {
        data: pattern(3 * MIB),
        fail_after: None,
    };
    let (mut device, log) = MemDevice::new(64 * MIB);
    let report = write_one(&source, &mut device, &CancelToken::new()).unwrap();
    assert!(matches!(report.devices[0].result, Ok(true)));
    assert_eq!(report.devices[0].warning, None);
    assert!(
        log.lock().unwrap().data[3 * MIB..].iter().all(|&b| b == 0),
        "a stamp was left"
    );
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
    device.corrupt_at = vec![bad];
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

/// Runs `job` on its own thread and fails the test if it has not returned after a minute:
/// a hang must show as a failure, not as a test run that never ends.
fn within_a_minute<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(job());
    });
    result
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the job hung")
}

#[test]
fn a_difference_anywhere_in_a_long_image_ends_the_job_at_its_exact_offset() {
    // Long enough that the read-back still has chunks to come when the first
    // difference is found: the case that used to hang with the read-back thread
    // blocked on a full queue that nobody would ever take from again.
    let len = 48 * MIB;
    for corrupt in [
        vec![MIB as u64],
        vec![2 * MIB as u64 + 100],
        vec![20 * MIB as u64 + 100],
        vec![len as u64 - 1],
        vec![30 * MIB as u64 + 7, 9 * MIB as u64 + 4096 + 3, 40 * MIB as u64],
    ] {
        let first = *corrupt.iter().min().unwrap();
        let (report, log) = within_a_minute(move || {
            let source = MemSource {
                data: pattern(len),
                fail_after: None,
            };
            let (mut device, log) = MemDevice::new(64 * MIB);
            device.corrupt_at = corrupt;
            (write_one(&source, &mut device, &CancelToken::new()), log)
        });
        match &report.unwrap().devices[0].result {
            Err(WriteError::Mismatch { offset, .. }) => assert_eq!(*offset, first),
            other => panic!("expected a mismatch at {first}, got {other:?}"),
        }
        let log = log.lock().unwrap();
        assert!(
            log.data[..MIB].iter().all(|&b| b == 0),
            "first MiB written after a mismatch at {first}"
        );
        assert_eq!(log.finished, None);
    }
}

#[test]
fn a_drive_that_differs_beside_healthy_ones_fails_alone() {
    let len = 40 * MIB + 5;
    let image = pattern(len);
    let expected = image.clone();
    let (report, logs) = within_a_minute(move || {
        let source = MemSource {
            data: image,
            fail_after: None,
        };
        let (mut first, first_log) = MemDevice::new(64 * MIB);
        let (mut bad, bad_log) = MemDevice::new(64 * MIB);
        bad.name = "bad".into();
        bad.corrupt_at = vec![3 * MIB as u64 + 1];
        let (mut last, last_log) = MemDevice::new(64 * MIB);
        let report = crate::write(
            &source,
            &mut [&mut first, &mut bad, &mut last],
            WriteOptions::default(),
            &no_progress,
            &CancelToken::new(),
        );
        (report, [first_log, bad_log, last_log])
    });
    let report = report.unwrap();
    assert!(matches!(report.devices[0].result, Ok(true)), "{:?}", report.devices[0]);
    assert!(
        matches!(&report.devices[1].result, Err(WriteError::Mismatch { device, offset }) if device == "bad" && *offset == 3 * MIB as u64 + 1),
        "{:?}",
        report.devices[1]
    );
    assert!(matches!(report.devices[2].result, Ok(true)), "{:?}", report.devices[2]);
    for i in [0, 2] {
        assert_eq!(&logs[i].lock().unwrap().data[..len], &expected[..]);
    }
    assert!(logs[1].lock().unwrap().data[..MIB].iter().all(|&b| b == 0));
}

#[test]
fn cancel_while_the_image_is_decoded_again_to_name_the_difference_ends_the_job() {
    // A source that cannot seek is decoded again up to the difference; a long image
    // makes that take a while, so Cancel must reach it. The second stream cancels
    // the job on its first read, as a user pressing Cancel then would.
    struct Source2 {
        inner: MemSource,
        opens: AtomicU64,
        cancel: CancelToken,
    }
    struct CancelOnRead(Box<dyn Read + Send>, CancelToken);
    impl Read for CancelOnRead {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1.cancel();
            self.0.read(buf)
        }
    }
    impl Source for Source2 {
        fn open(&self) -> io::Result<Opened> {
            let opened = self.inner.open()?;
            if self.opens.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                return Ok(opened);
            }
            Ok(Opened {
                reader: Box::new(CancelOnRead(opened.reader, self.cancel.clone())),
                consumed: opened.consumed,
            })
        }
        fn size(&self) -> ImageSize {
            self.inner.size()
        }
        fn file_size(&self) -> u64 {
            self.inner.file_size()
        }
    }
    let cancel = CancelToken::new();
    let job_cancel = cancel.clone();
    let (error, log, opens) = within_a_minute(move || {
        let source = Source2 {
            inner: MemSource {
                data: pattern(40 * MIB),
                fail_after: None,
            },
            opens: AtomicU64::new(0),
            cancel: job_cancel.clone(),
        };
        let (mut device, log) = MemDevice::new(64 * MIB);
        device.corrupt_at = vec![36 * MIB as u64];
        let error = crate::write(
            &source,
            &mut [&mut device],
            WriteOptions::default(),
            &no_progress,
            &job_cancel,
        );
        (error.map(|_| ()), log, source.opens.into_inner())
    });
    assert!(matches!(error, Err(WriteError::Cancelled)), "{error:?}");
    assert!(cancel.is_cancelled());
    assert_eq!(opens, 2, "the image was not decoded again to find the byte");
    assert!(log.lock().unwrap().data[..MIB].iter().all(|&b| b == 0));
}

#[test]
fn corruption_in_the_first_mib_is_caught_too() {
    let source = MemSource {
        data: pattern(2 * MIB),
        fail_after: None,
    };
    let (mut device, _log) = MemDevice::new(4 * MIB);
    device.corrupt_at = vec![510];
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
    // Two wipes and seven stamps, then two pieces of the body.
    device.cancel_after = Some((11, cancel.clone()));
    let error = write_one(&source, &mut device, &cancel).unwrap_err();
    assert!(matches!(error, WriteError::Cancelled), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    let log = log.lock().unwrap();
    // The first MiB is written to (the wipe, zeroed again after the cancel) but never
    // with the image's own bytes.
    assert!(log.data[..MIB].iter().all(|&b| b == 0));
    let image = pattern(40 * MIB);
    let landed = (1..40)
        .filter(|m| log.data[m * MIB..(m + 1) * MIB] == image[m * MIB..(m + 1) * MIB])
        .count();
    assert!(
        (1..10).contains(&landed),
        "the write went on after cancellation: {landed} MiB of the body landed"
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
    device.corrupt_at = vec![2 * MIB as u64];
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
