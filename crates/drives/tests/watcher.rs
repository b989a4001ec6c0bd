//! The drive watcher notices a loop device being attached and detached (as root, on Linux).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use graver_drives::{Drive, Watcher};

/// Detaches the loop device and removes its file when dropped, also when the test fails.
struct Attached {
    device: Option<PathBuf>,
    backing: PathBuf,
}

impl Attached {
    fn detach(&mut self) {
        if let Some(device) = self.device.take() {
            let _ = Command::new("losetup").arg("-d").arg(device).status();
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.detach();
        let _ = std::fs::remove_file(&self.backing);
    }
}

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
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let watcher = Watcher::start(Duration::from_millis(250)).unwrap();
    let initial = watcher
        .drives()
        .recv_timeout(Duration::from_secs(10))
        .expect("a first list");
    let backing = PathBuf::from(format!("/dev/shm/graver-watcher-test-{}.img", std::process::id()));
    std::fs::File::create(&backing).unwrap().set_len(8 << 20).unwrap();
    let mut attached = Attached { device: None, backing };
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&attached.backing)
        .output()
        .unwrap();
    assert!(out.status.success());
    let device = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    attached.device = Some(device.clone());
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
