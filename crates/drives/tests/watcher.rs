//! The drive watcher notices a loop device being attached and detached (as root, on Linux).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use graver_drives::{Drive, Watcher};
use graver_testkit::{LoopDevice, is_root};

/// Waits for a list for which `wanted` holds; the timeout only guards against a hang.
fn wait_for(watcher: &Watcher, what: &str, wanted: impl Fn(&[Drive]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(drives) = watcher.drives().recv_timeout(Duration::from_millis(500))
            && wanted(&drives)
        {
            return;
        }
    }
    panic!("the watcher never reported {what}");
}

#[test]
fn the_watcher_sees_a_loop_device_come_and_go() {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let watcher = Watcher::start(Duration::from_millis(250)).unwrap();
    let initial = watcher
        .drives()
        .recv_timeout(Duration::from_secs(10))
        .expect("a first list");
    let mut attached = LoopDevice::new(8 << 20);
    let device = attached.dev.clone();
    assert!(
        !initial.iter().any(|d| d.path == device),
        "listed before it was attached"
    );

    wait_for(&watcher, "the new loop device", |drives| {
        drives.iter().any(|d| d.path == device && d.size == 8 << 20)
    });
    attached.detach();
    wait_for(&watcher, "the loop device gone", |drives| {
        !drives.iter().any(|d| d.path == device)
    });
}
