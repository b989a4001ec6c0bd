//! A mount point whose name is not UTF-8 (any user can make one with FUSE) once
//! emptied Graver's mount table, and with it every system drive. Here, as root on
//! Linux, one is made for real in a private mount namespace (`unshare --mount`, so
//! nothing leaks to the rest of the machine): a tmpfs and a loop device's ext4 file
//! system mounted at names holding byte 0xff. The drive holding `/` must still be
//! system, nothing unknown, and the loop device's mount point listed byte for byte.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use graver_testkit::{LoopDevice, is_root, scratch};

/// Set by the outer test for the inner one: the scratch folder, then the loop device's partition.
const INSIDE: &str = "GRAVER_TEST_ODD_MOUNTS";

fn mount(source: &Path, target: &Path, fstype: &str) {
    let c = |p: &OsStr| CString::new(p.as_bytes()).unwrap();
    let (source, target, fstype) = (c(source.as_os_str()), c(target.as_os_str()), c(OsStr::new(fstype)));
    // SAFETY: every pointer is a NUL-terminated string alive for the call; no data argument.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    assert_eq!(rc, 0, "mount {target:?}: {}", std::io::Error::last_os_error());
}

#[test]
fn an_odd_mount_point_in_a_private_namespace_hides_no_system_drive() {
    if !is_root() {
        eprintln!("skipped: needs root for a mount namespace and a loop device");
        return;
    }
    if graver_drives::drives_holding(Path::new("/")).is_empty() {
        eprintln!("skipped: / is not on a block device here");
        return;
    }
    let stick = LoopDevice::partitioned(16 << 20);
    let dir = scratch();
    let mut arg = dir.path().as_os_str().as_bytes().to_vec();
    arg.push(b'\n');
    arg.extend_from_slice(stick.partition().as_os_str().as_bytes());
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "inside_a_private_namespace_with_odd_mount_points",
            "--ignored",
            "--nocapture",
        ])
        .env(INSIDE, OsString::from_vec(arg))
        .status()
        .expect("run unshare");
    assert!(status.success(), "the check inside the namespace failed: {status}");
    // The namespace ended with its process: nothing of it is mounted out here.
    let ours = std::fs::read("/proc/self/mountinfo").unwrap();
    assert!(
        !ours.windows(3).any(|w| w == b"\xffX\xff"),
        "an odd mount leaked out of its namespace"
    );
}

#[test]
#[ignore = "run by an_odd_mount_point_in_a_private_namespace_hides_no_system_drive inside its own mount namespace"]
fn inside_a_private_namespace_with_odd_mount_points() {
    let Some(arg) = std::env::var_os(INSIDE) else {
        eprintln!("skipped: only meaningful inside the namespace the outer test makes");
        return;
    };
    let arg = arg.into_vec();
    let split = arg.iter().position(|&b| b == b'\n').unwrap();
    let dir = PathBuf::from(OsString::from_vec(arg[..split].to_vec()));
    let partition = PathBuf::from(OsString::from_vec(arg[split + 1..].to_vec()));

    let tmpfs_dir = dir.join(OsStr::from_bytes(b"tmp \xffX\xff"));
    let stick_dir = dir.join(OsStr::from_bytes(b"stick-\xffX\xff"));
    std::fs::create_dir(&tmpfs_dir).unwrap();
    std::fs::create_dir(&stick_dir).unwrap();
    mount(Path::new("graver-odd"), &tmpfs_dir, "tmpfs");
    mount(&partition, &stick_dir, "ext4");
    let table = std::fs::read("/proc/self/mountinfo").unwrap();
    assert!(
        std::str::from_utf8(&table).is_err(),
        "the mount table should now hold bytes that are not UTF-8"
    );

    let drives = graver_drives::list().unwrap();
    let root = graver_drives::drives_holding(Path::new("/"))
        .into_iter()
        .next()
        .unwrap();
    let system = drives.iter().find(|d| d.name == root).unwrap();
    let reason = system
        .system
        .as_deref()
        .unwrap_or_else(|| panic!("the drive holding / is not system: {system:?}"));
    assert!(reason.contains("/ is mounted from"), "{reason}");
    for drive in &drives {
        assert_eq!(drive.unknown, None, "{drive:?}");
    }
    let stick_name = partition.file_name().unwrap().to_str().unwrap();
    let stick = drives
        .iter()
        .find(|d| stick_name.starts_with(&d.name))
        .unwrap_or_else(|| panic!("the loop device is not listed: {drives:?}"));
    assert_eq!(stick.system, None);
    assert_eq!(
        stick.mount_points().collect::<Vec<_>>(),
        [&stick_dir],
        "the loop device's odd mount point is listed byte for byte"
    );
    // The mounts go with the namespace; the folders are the outer test's scratch folder.
}
