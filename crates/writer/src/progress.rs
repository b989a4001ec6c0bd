//! Progress: shared counters the pipeline bumps, and the snapshots a ticker sends out.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use graver_image::ImageSize;
use serde::{Deserialize, Serialize};

/// How often progress is reported: more than four times a second.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);
/// A device that has not moved a byte for this long is reported as [`Phase::Stalled`].
pub const STALL_AFTER: Duration = Duration::from_secs(30);

/// Where a device is in its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening the image and the devices.
    Preparing,
    /// Streaming the image onto the device (all but the first MiB).
    Writing,
    /// Reading the device back and comparing digests.
    Verifying,
    /// Writing the held-back first MiB, syncing, re-reading the partition table.
    Finishing,
    /// Done, successfully.
    Done,
    /// Stopped by an error or a cancellation.
    Failed,
    /// Still at work, but the device has not answered for [`STALL_AFTER`]: the drive,
    /// its port or its hub has stopped responding. Only snapshots carry it; the
    /// device goes on from where it was if it answers again.
    Stalled,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Preparing,
            1 => Self::Writing,
            2 => Self::Verifying,
            3 => Self::Finishing,
            4 => Self::Done,
            6 => Self::Stalled,
            _ => Self::Failed,
        }
    }

    /// A lower-case word for people: "writing", "verifying", …
    pub fn label(self) -> &'static str {
        match self {
            Self::Preparing => "preparing",
            Self::Writing => "writing",
            Self::Verifying => "verifying",
            Self::Finishing => "finishing",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Stalled => "stalled",
        }
    }
}

/// One device's state in a [`Progress`] snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceProgress {
    /// The device's name (its path).
    pub name: String,
    /// Its phase.
    pub phase: Phase,
    /// Bytes of the image done in that phase (written, or read back).
    pub bytes: u64,
}

/// A snapshot of a running job, sent at least four times a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The phase of the slowest device still working.
    pub phase: Phase,
    /// Bytes done in that phase by the slowest device still working.
    pub bytes: u64,
    /// What `bytes` counts up to: exact, or an estimate while a compressed
    /// image without a recorded size is being written.
    pub total: ImageSize,
    /// Fraction of the phase done, 0 to 1. While an estimated image is being
    /// written it comes from the compressed bytes consumed, which is honest.
    pub fraction: f64,
    /// Recent throughput in bytes per second.
    pub rate: f64,
    /// Estimated seconds left in this phase, once there is enough to go on.
    pub eta_secs: Option<f64>,
    /// Every device, failed ones included.
    pub devices: Vec<DeviceProgress>,
}

/// Counters for one device, updated by its threads.
pub(crate) struct DeviceState {
    pub(crate) name: String,
    phase: AtomicU8,
    pub(crate) bytes: AtomicU64,
}

impl DeviceState {
    pub(crate) fn new(name: String) -> Self {
        Self {
            name,
            phase: AtomicU8::new(Phase::Preparing as u8),
            bytes: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    pub(crate) fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }
}

/// Everything the ticker reads to make a [`Progress`].
pub(crate) struct Tracker {
    pub(crate) devices: Vec<DeviceState>,
    /// Compressed bytes consumed, and the file size they count towards.
    pub(crate) consumed: Arc<AtomicU64>,
    pub(crate) file_size: u64,
    pub(crate) size: ImageSize,
    /// The exact image length once the source has been read to the end (0 before).
    pub(crate) image_len: AtomicU64,
    pub(crate) ended: AtomicBool,
    /// When each device last moved, for [`Phase::Stalled`].
    watches: Mutex<Vec<StallWatch>>,
}

/// Tells a device that stopped answering from one that is merely slow: nothing
/// changed in its phase or its byte count for [`STALL_AFTER`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct StallWatch {
    seen: Option<(Phase, u64)>,
    since: Instant,
}

impl StallWatch {
    pub(crate) fn new(now: Instant) -> Self {
        Self { seen: None, since: now }
    }

    /// Records what the device shows at `now`; true when it has shown the same for at
    /// least `after` while it had work to do.
    pub(crate) fn observe(&mut self, phase: Phase, bytes: u64, now: Instant, after: Duration) -> bool {
        if self.seen != Some((phase, bytes)) {
            self.seen = Some((phase, bytes));
            self.since = now;
        }
        matches!(phase, Phase::Writing | Phase::Verifying | Phase::Finishing) && now.duration_since(self.since) >= after
    }
}

impl Tracker {
    pub(crate) fn new(names: Vec<String>, consumed: Arc<AtomicU64>, file_size: u64, size: ImageSize) -> Self {
        let now = Instant::now();
        Self {
            watches: Mutex::new(names.iter().map(|_| StallWatch::new(now)).collect()),
            devices: names.into_iter().map(DeviceState::new).collect(),
            consumed,
            file_size,
            size,
            image_len: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        }
    }

    fn total(&self) -> ImageSize {
        match self.image_len.load(Ordering::Relaxed) {
            0 => self.size,
            len => ImageSize::Exact(len),
        }
    }

    /// A snapshot; `rate` and `eta_secs` are filled in by [`Ticker`].
    pub(crate) fn snapshot(&self) -> Progress {
        let mut devices: Vec<DeviceProgress> = self
            .devices
            .iter()
            .map(|d| DeviceProgress {
                name: d.name.clone(),
                phase: d.phase(),
                bytes: d.bytes.load(Ordering::Relaxed),
            })
            .collect();
        let working = devices.iter().filter(|d| d.phase != Phase::Failed);
        let slowest = working.min_by_key(|d| (d.phase, d.bytes));
        let (phase, bytes) = slowest.map_or((Phase::Failed, 0), |d| (d.phase, d.bytes));
        let now = Instant::now();
        let mut any_stalled = false;
        if let Ok(mut watches) = self.watches.lock() {
            for (device, watch) in devices.iter_mut().zip(watches.iter_mut()) {
                if watch.observe(device.phase, device.bytes, now, STALL_AFTER) {
                    device.phase = Phase::Stalled;
                    any_stalled = true;
                }
            }
        }
        let total = self.total();
        let fraction = match (phase, total) {
            (Phase::Writing, ImageSize::Estimate(_) | ImageSize::Unknown) if self.file_size > 0 => {
                self.consumed.load(Ordering::Relaxed) as f64 / self.file_size as f64
            }
            (Phase::Done, _) => 1.0,
            (_, t) if t.bytes() > 0 => bytes as f64 / t.bytes() as f64,
            _ => 0.0,
        };
        Progress {
            // One stalled drive holds up the whole job, so the job is stalled.
            phase: if any_stalled { Phase::Stalled } else { phase },
            bytes,
            total,
            fraction: fraction.clamp(0.0, 1.0),
            rate: 0.0,
            eta_secs: None,
            devices,
        }
    }
}

/// Turns successive snapshots into rates and times left.
pub(crate) struct Ticker {
    phase: Phase,
    phase_start: Instant,
    last: (Instant, u64),
    rate: f64,
}

impl Ticker {
    pub(crate) fn new() -> Self {
        let now = Instant::now();
        Self {
            phase: Phase::Preparing,
            phase_start: now,
            last: (now, 0),
            rate: 0.0,
        }
    }

    pub(crate) fn fill(&mut self, progress: &mut Progress) {
        let now = Instant::now();
        if progress.phase != self.phase {
            self.phase = progress.phase;
            self.phase_start = now;
            self.last = (now, progress.bytes);
            self.rate = 0.0;
        }
        let dt = now.duration_since(self.last.0).as_secs_f64();
        if dt > 0.05 {
            let instant = progress.bytes.saturating_sub(self.last.1) as f64 / dt;
            // A short moving average: steady enough to read, quick to follow a slowing stick.
            self.rate = if self.rate == 0.0 {
                instant
            } else {
                0.7 * self.rate + 0.3 * instant
            };
            self.last = (now, progress.bytes);
        }
        progress.rate = self.rate;
        let elapsed = now.duration_since(self.phase_start).as_secs_f64();
        progress.eta_secs = (progress.fraction > 0.01 && progress.fraction < 1.0 && elapsed > 0.5)
            .then(|| elapsed * (1.0 - progress.fraction) / progress.fraction);
    }
}

/// Calls `on_progress` every [`PROGRESS_INTERVAL`] until `stop` is signalled or dropped.
pub(crate) fn run_ticker(tracker: &Tracker, stop: &Receiver<()>, on_progress: &(dyn Fn(&Progress) + Sync)) {
    let mut ticker = Ticker::new();
    loop {
        let mut progress = tracker.snapshot();
        ticker.fill(&mut progress);
        on_progress(&progress);
        match stop.recv_timeout(PROGRESS_INTERVAL) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_stalled_only_after_the_whole_time_without_a_change() {
        let start = Instant::now();
        let mut watch = StallWatch::new(start);
        let after = STALL_AFTER;
        assert!(!watch.observe(Phase::Writing, 10, start, after));
        assert!(!watch.observe(Phase::Writing, 10, start + after / 2, after));
        assert!(watch.observe(Phase::Writing, 10, start + after, after));
        // One more byte and it is moving again.
        assert!(!watch.observe(Phase::Writing, 11, start + after * 2, after));
        // A new phase is a change too.
        let verifying = start + after * 3;
        assert!(!watch.observe(Phase::Verifying, 11, verifying, after));
        assert!(!watch.observe(
            Phase::Verifying,
            11,
            verifying + after - Duration::from_millis(1),
            after
        ));
        assert!(watch.observe(Phase::Verifying, 11, verifying + after, after));
    }

    #[test]
    fn a_finished_or_failed_device_is_never_stalled() {
        let start = Instant::now();
        for phase in [Phase::Preparing, Phase::Done, Phase::Failed] {
            let mut watch = StallWatch::new(start);
            assert!(!watch.observe(phase, 5, start, STALL_AFTER));
            assert!(!watch.observe(phase, 5, start + STALL_AFTER * 10, STALL_AFTER));
        }
    }
}
