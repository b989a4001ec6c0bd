//! The loop devices the other tests stand on: attached as asked, and nothing left
//! behind afterwards (no device, no backing file), also when the test panics.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use graver_testkit::{LoopDevice, is_root, scratch, tool};

/// Whether `losetup` still lists `device` backed by `backing`. Both are asked for, as
/// the tests here run in parallel and a device number freed by one is soon reused.
fn attached(device: &Path, backing: &Path) -> bool {
    let out = tool("losetup").arg("-a").output().expect("losetup -a");
    String::from_utf8_lossy(&out.stdout).lines().any(|line| {
        line.split(':').next() == Some(&*device.to_string_lossy()) && line.contains(&*backing.to_string_lossy())
    })
}

/// The device's size in bytes as the kernel reports it.
fn kernel_size(device: &Path) -> u64 {
    let out = tool("blockdev")
        .arg("--getsize64")
        .arg(device)
        .output()
        .expect("blockdev");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a size")
}

fn root() -> bool {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
    }
    is_root()
}

#[test]
fn a_loop_device_is_attached_writable_and_gone_after_drop() {
    if !root() {
        return;
    }
    let lo = LoopDevice::new(3 << 20);
    let (dev, backing) = (lo.dev.clone(), lo.backing.clone());
    assert!(attached(&dev, &backing), "{} is attached", dev.display());
    assert_eq!(kernel_size(&dev), 3 << 20);
    lo.assert_all_zeros("a new device is blank");
    lo.flip_byte(4097);
    assert_eq!(lo.read(4098)[4097], 0xff, "the flipped byte reached the backing file");
    drop(lo);
    assert!(!attached(&dev, &backing), "{} is detached after drop", dev.display());
    assert!(!backing.exists(), "{} is removed after drop", backing.display());
}

#[test]
fn a_read_only_loop_device_refuses_writes() {
    if !root() {
        return;
    }
    let lo = LoopDevice::read_only(1 << 20);
    let out = tool("blockdev").arg("--getro").arg(&lo.dev).output().expect("blockdev");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(&lo.dev)
        .and_then(|mut f| f.write_all(&[1; 4096]).and_then(|()| f.sync_all()));
    assert!(written.is_err(), "a write to {} went through", lo.dev.display());
    lo.assert_all_zeros("nothing was written");
}

#[test]
fn a_partitioned_loop_device_has_an_ext4_partition_and_drops_it() {
    if !root() {
        return;
    }
    let lo = LoopDevice::partitioned(16 << 20);
    let part = lo.partition();
    assert!(part.exists(), "{} exists", part.display());
    assert_eq!(kernel_size(&part), 4 << 20);
    let out = tool("blkid")
        .args(["-o", "value", "-s", "TYPE"])
        .arg(&part)
        .output()
        .expect("blkid");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ext4");
    drop(lo);
    assert!(!part.exists(), "{} is gone after drop", part.display());
}

#[test]
fn an_unplugged_device_is_gone_at_once_and_its_file_at_drop() {
    if !root() {
        return;
    }
    let mut lo = LoopDevice::new(1 << 20);
    let (dev, backing) = (lo.dev.clone(), lo.backing.clone());
    lo.detach();
    assert!(!attached(&dev, &backing), "{} is detached", dev.display());
    assert!(backing.exists(), "the backing file stays until drop");
    drop(lo);
    assert!(!backing.exists());
}

#[test]
fn a_panicking_test_still_releases_its_device() {
    if !root() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let lo = LoopDevice::new(1 << 20);
        tx.send((lo.dev.clone(), lo.backing.clone())).unwrap();
        panic!("a failing test");
    })
    .join();
    assert!(result.is_err());
    let (dev, backing) = rx.recv().unwrap();
    assert!(
        !attached(&dev, &backing) && !backing.exists(),
        "{} released",
        dev.display()
    );
}

#[test]
fn what_a_killed_run_left_is_swept_by_the_next() {
    if !root() {
        return;
    }
    // What a run that was killed before it could clean up leaves: a backing file named
    // after a process that no longer exists, still attached, and a scratch folder.
    let out = Command::new("sh").arg("-c").arg("echo $$").output().expect("sh");
    let dead: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(!Path::new(&format!("/proc/{dead}")).exists(), "the shell has exited");
    let backing = Path::new(graver_testkit::SHM).join(format!("graver-test-{dead}-loop-0.img"));
    std::fs::File::create(&backing).unwrap().set_len(1 << 20).unwrap();
    let out = tool("losetup")
        .args(["--find", "--show"])
        .arg(&backing)
        .output()
        .unwrap();
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(attached(Path::new(&dev), &backing));
    let folder = Path::new(graver_testkit::SHM).join(format!("graver-test-{dead}-scratch"));
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("image.img"), b"left over").unwrap();
    // This process's own scratch folder is not touched.
    let mine = scratch();
    graver_testkit::sweep_stale_now();
    assert!(
        !attached(Path::new(&dev), &backing),
        "{dev} of the dead run is detached"
    );
    assert!(!backing.exists(), "{} of the dead run is removed", backing.display());
    assert!(!folder.exists(), "{} of the dead run is removed", folder.display());
    assert!(mine.path().is_dir(), "a live run's folder stays");
}
