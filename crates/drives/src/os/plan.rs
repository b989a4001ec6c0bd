//! Decisions the OS backends share, kept free of system calls so they are
//! unit-tested on every OS (and under wine): how long to wait for a busy
//! device, which calls make a write durable, which of their errors mean
//! "this node does not do that" rather than "the data may be lost", and
//! whether to re-read the partition table before an eject.

#![cfg_attr(not(any(windows, target_os = "macos")), allow(dead_code))]

use std::time::Duration;

use crate::TargetKind;

/// An operating system, as far as these decisions tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Os {
    /// Linux.
    Linux,
    /// macOS.
    Mac,
    /// Windows.
    Windows,
    /// Anything else (no drive backend; files only).
    Other,
}

impl Os {
    /// The OS this build runs on.
    pub(crate) const CURRENT: Os = if cfg!(target_os = "linux") {
        Os::Linux
    } else if cfg!(target_os = "macos") {
        Os::Mac
    } else if cfg!(windows) {
        Os::Windows
    } else {
        Os::Other
    };
}

/// Waits between tries: doubling from `first`, never longer than `cap`, until
/// they add up to at least `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The first wait.
    pub(crate) first: Duration,
    /// The longest single wait.
    pub(crate) cap: Duration,
    /// How long to keep trying in all.
    pub(crate) total: Duration,
}

impl Backoff {
    /// The waits, in order; empty when `total` is zero.
    pub(crate) fn delays(self) -> Vec<Duration> {
        let mut delays = Vec::new();
        let mut next = self.first.min(self.cap);
        let mut waited = Duration::ZERO;
        while waited < self.total && !next.is_zero() {
            delays.push(next);
            waited += next;
            next = (next * 2).min(self.cap);
        }
        delays
    }
}

/// A volume that Explorer, Defender or the search indexer touches right after the
/// stick arrived refuses to be locked for a while. Rufus keeps trying for 15 s;
/// Raspberry Pi Imager doubles its wait from 100 ms. Both, here.
pub(crate) const BUSY_VOLUME: Backoff = Backoff {
    first: Duration::from_millis(100),
    cap: Duration::from_secs(2),
    total: Duration::from_secs(15),
};

/// Opening a disk exclusively fails while something still holds it with write
/// access, typically for a moment after its volumes were dismounted (Rufus waits
/// up to 15 s for its drive handle, Raspberry Pi Imager about 6 s).
pub(crate) const BUSY_DISK: Backoff = BUSY_VOLUME;

/// How long to keep asking a drive to eject while the OS lets go of it
/// (Raspberry Pi Imager: five tries half a second apart).
pub(crate) const EJECT: Backoff = Backoff {
    first: Duration::from_millis(250),
    cap: Duration::from_secs(1),
    total: Duration::from_secs(5),
};

/// How long Disk Arbitration gets after the raw node is closed, before the
/// eject: it probes the new partition table and mounts what it can read, and
/// an eject sent in the middle of that fails as "busy".
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) const DISK_ARBITRATION_SETTLE: Duration = Duration::from_secs(1);

/// Calls `attempt` until it succeeds, fails with an error `transient` does not
/// accept, or `delays` run out (sleeping each delay between two tries).
///
/// # Errors
/// The last error of `attempt`.
pub(crate) fn retry<T, E>(
    delays: &[Duration],
    mut attempt: impl FnMut() -> Result<T, E>,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E> {
    let mut delays = delays.iter();
    loop {
        match attempt() {
            Err(error) if transient(&error) => match delays.next() {
                Some(delay) => std::thread::sleep(*delay),
                None => return Err(error),
            },
            done => return done,
        }
    }
}

/// One call that makes what was written durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncStep {
    /// `fdatasync` (Linux), `FlushFileBuffers` (Windows), `F_FULLFSYNC` (macOS): what
    /// the standard library's `sync_data` does.
    DataSync,
    /// Plain `fsync`.
    Fsync,
    /// macOS's `DKIOCSYNCHRONIZECACHE` ioctl: the disk flushes its own write cache.
    SynchronizeCache,
}

/// The calls that make a target's writes durable, in order.
///
/// On macOS the standard library's `sync_data` is `fcntl(F_FULLFSYNC)`, which a
/// raw disk node (`/dev/rdiskN`) rejects with ENOTTY: every write would fail at
/// its first sync (caligula documents this and skips the call). A raw disk gets
/// `fsync` and then the disk's own cache flush instead.
pub(crate) fn sync_steps(os: Os, kind: TargetKind) -> &'static [SyncStep] {
    match (os, kind) {
        (Os::Mac, TargetKind::BlockDevice) => &[SyncStep::Fsync, SyncStep::SynchronizeCache],
        _ => &[SyncStep::DataSync],
    }
}

/// macOS's errno values (`<sys/errno.h>`), which differ from Linux's; `macos.rs`
/// checks them against the C library at compile time.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(crate) mod darwin {
    /// "Inappropriate ioctl for device".
    pub(crate) const ENOTTY: i32 = 25;
    /// "Operation not supported".
    pub(crate) const ENOTSUP: i32 = 45;
}

/// Whether a sync step's failure (its raw OS error) only says the node does not
/// do that kind of flush: some disk drivers answer `DKIOCSYNCHRONIZECACHE` (and
/// `fsync` on a character node) with ENOTTY or ENOTSUP. Anything else may mean
/// lost data and fails the write.
pub(crate) fn sync_error_is_harmless(os: Os, step: SyncStep, errno: Option<i32>) -> bool {
    os == Os::Mac
        && matches!(step, SyncStep::Fsync | SyncStep::SynchronizeCache)
        && matches!(errno, Some(darwin::ENOTTY | darwin::ENOTSUP))
}

/// Whether finishing a written drive re-reads its partition table.
///
/// On Windows the re-read mounts the new partitions, and on an image with an
/// EFI system partition Windows then writes "System Volume Information" into it
/// (Rufus skips the remount for that reason): when the drive is ejected next,
/// nobody needs those mounts. Elsewhere the re-read is harmless.
pub(crate) fn reread_on_finish(os: Os, ejecting: bool) -> bool {
    !(os == Os::Windows && ejecting)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_until_the_total() {
        let ms = Duration::from_millis;
        let delays = BUSY_VOLUME.delays();
        assert_eq!(&delays[..6], &[ms(100), ms(200), ms(400), ms(800), ms(1600), ms(2000)]);
        assert!(delays[5..].iter().all(|&d| d == ms(2000)), "{delays:?}");
        let total: Duration = delays.iter().sum();
        assert!(total >= Duration::from_secs(15), "{total:?}");
        // The last wait is the one that reaches the total, not one more.
        assert!(total - *delays.last().unwrap() < Duration::from_secs(15), "{total:?}");

        let eject: Duration = EJECT.delays().iter().sum();
        assert!(
            eject >= Duration::from_secs(5) && eject < Duration::from_secs(7),
            "{eject:?}"
        );

        let nothing = Backoff {
            first: ms(100),
            cap: ms(100),
            total: Duration::ZERO,
        };
        assert!(nothing.delays().is_empty());
        let zero_wait = Backoff {
            first: Duration::ZERO,
            cap: ms(100),
            total: ms(500),
        };
        assert!(zero_wait.delays().is_empty(), "a zero wait would spin forever");
    }

    #[test]
    fn retry_stops_at_success_at_a_lasting_error_or_when_time_is_up() {
        let delays = [Duration::ZERO; 3];
        let mut calls = 0;
        let busy: Result<(), &str> = retry(
            &delays,
            || {
                calls += 1;
                Err("busy")
            },
            |e| *e == "busy",
        );
        assert_eq!((busy, calls), (Err("busy"), 4), "one try, then one per delay");

        let mut calls = 0;
        let gone: Result<(), &str> = retry(
            &delays,
            || {
                calls += 1;
                Err("gone")
            },
            |e| *e == "busy",
        );
        assert_eq!((gone, calls), (Err("gone"), 1), "a lasting error is not retried");

        let mut calls = 0;
        let second = retry(
            &delays,
            || {
                calls += 1;
                if calls < 2 { Err("busy") } else { Ok(calls) }
            },
            |e| *e == "busy",
        );
        assert_eq!(second, Ok(2));
    }

    #[test]
    fn a_raw_mac_disk_is_synced_without_full_fsync() {
        use SyncStep::{DataSync, Fsync, SynchronizeCache};
        assert_eq!(sync_steps(Os::Mac, TargetKind::BlockDevice), &[Fsync, SynchronizeCache]);
        // F_FULLFSYNC is right for a file on APFS or HFS+.
        assert_eq!(sync_steps(Os::Mac, TargetKind::File), &[DataSync]);
        for os in [Os::Linux, Os::Windows, Os::Other] {
            for kind in [TargetKind::BlockDevice, TargetKind::File] {
                assert_eq!(sync_steps(os, kind), &[DataSync], "{os:?} {kind:?}");
            }
        }
    }

    #[test]
    fn only_an_unsupported_flush_is_forgiven_and_only_on_macos() {
        use SyncStep::{DataSync, Fsync, SynchronizeCache};
        for errno in [darwin::ENOTTY, darwin::ENOTSUP] {
            assert!(sync_error_is_harmless(Os::Mac, SynchronizeCache, Some(errno)));
            assert!(sync_error_is_harmless(Os::Mac, Fsync, Some(errno)));
            assert!(!sync_error_is_harmless(Os::Mac, DataSync, Some(errno)));
            assert!(!sync_error_is_harmless(Os::Linux, Fsync, Some(errno)));
        }
        const EIO: i32 = 5;
        assert!(!sync_error_is_harmless(Os::Mac, SynchronizeCache, Some(EIO)));
        assert!(!sync_error_is_harmless(Os::Mac, SynchronizeCache, None));
    }

    #[test]
    fn windows_skips_the_remount_of_a_drive_about_to_be_ejected() {
        assert!(!reread_on_finish(Os::Windows, true));
        assert!(reread_on_finish(Os::Windows, false));
        for os in [Os::Linux, Os::Mac, Os::Other] {
            assert!(reread_on_finish(os, true) && reread_on_finish(os, false), "{os:?}");
        }
    }
}
