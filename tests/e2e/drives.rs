//! Drives as `graver list` and `graver write` see them: partitions and mounts of
//! real loop devices, unmounting before a write, the root disk, an image stored
//! on its own target, and a loop device dressed up as a system disk.
//!
//! Never is a write attempted on the machine's real disk, not even one expected
//! to be refused: the system-disk refusal is tested on a loop device whose
//! partition is mounted at /boot in a private mount namespace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

use crate::support::{Loop, MIB, check, fixture, graver, read_at, require_root, run, scratch, tool, write_to};

/// A private mount namespace copies every mount there is, so while one lives a loop
/// device mounted by a test running beside it stays in use after it is unmounted here,
/// and the write finds it busy (as it would with a container holding the mount). The
/// tests that make namespaces take this lock to write; those that need their own mount
/// to come off take it to read.
static NAMESPACES: RwLock<()> = RwLock::new(());

fn own_mounts() -> RwLockReadGuard<'static, ()> {
    NAMESPACES.read().unwrap_or_else(PoisonError::into_inner)
}

fn private_namespaces() -> RwLockWriteGuard<'static, ()> {
    NAMESPACES.write().unwrap_or_else(PoisonError::into_inner)
}

/// Mounts and partitions made on a loop device, undone before the device is detached.
struct Mounted {
    mount_points: Vec<PathBuf>,
    partitioned: Option<PathBuf>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for mount_point in &self.mount_points {
            let _ = Command::new("umount").arg("-l").arg(mount_point).output();
        }
        if let Some(dev) = &self.partitioned {
            let _ = Command::new("partx").arg("-d").arg(dev).output();
        }
    }
}

/// Gives `loop_dev` an MBR with two partitions (8 MiB and the rest) and an ext4 on the first.
fn partition(loop_dev: &Path) -> (PathBuf, PathBuf) {
    let mut sfdisk = tool("sfdisk");
    sfdisk.args(["-q", "--no-reread"]).arg(loop_dev);
    let out = crate::support::run_with_stdin(&mut sfdisk, "label: dos\n,8M,83\n,,83\n");
    out.expect_code(0);
    check(tool("partx").arg("-a").arg(loop_dev));
    let p1 = PathBuf::from(format!("{}p1", loop_dev.display()));
    let p2 = PathBuf::from(format!("{}p2", loop_dev.display()));
    check(tool("mkfs.ext4").args(["-q", "-F"]).arg(&p1));
    (p1, p2)
}

fn list_all() -> Vec<Value> {
    let out = run(graver().args(["list", "--all", "--json"]));
    out.expect_code(0);
    let value: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}\n{out}"));
    value["drives"].as_array().cloned().unwrap_or_default()
}

fn listed<'a>(drives: &'a [Value], dev: &Path) -> Option<&'a Value> {
    drives.iter().find(|d| d["path"] == dev.display().to_string())
}

fn is_mounted(mount_point: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let wanted = mount_point.display().to_string();
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(wanted.as_str()))
}

#[test]
fn loop_devices_are_listed_with_partitions_and_mounts_and_unmounted_before_writing() {
    require_root!();
    let _mounts = own_mounts();
    let device = Loop::new(64 * MIB);
    let (p1, p2) = partition(&device.dev);
    let dir = scratch();
    let mount_point = dir.path().join("mnt");
    std::fs::create_dir(&mount_point).unwrap();
    let _mounted = Mounted {
        mount_points: vec![mount_point.clone()],
        partitioned: Some(device.dev.clone()),
    };
    check(Command::new("mount").arg(&p1).arg(&mount_point));

    let drives = list_all();
    let drive =
        listed(&drives, &device.dev).unwrap_or_else(|| panic!("{} not listed: {drives:?}", device.dev.display()));
    assert_eq!(drive["size"], 64 * MIB);
    assert_eq!(drive["bus"], "virtual");
    assert_eq!(drive["read_only"], false);
    let lsblk = check(
        tool("lsblk")
            .args(["-b", "-n", "-d", "-o", "SIZE,LOG-SEC,PHY-SEC"])
            .arg(&device.dev),
    );
    let lsblk: Vec<u64> = lsblk.split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(
        [
            drive["size"].as_u64().unwrap(),
            drive["logical_block_size"].as_u64().unwrap(),
            drive["physical_block_size"].as_u64().unwrap()
        ],
        [lsblk[0], lsblk[1], lsblk[2]],
        "graver and lsblk disagree"
    );
    let partitions = drive["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2, "{drive}");
    assert_eq!(partitions[0]["path"], p1.display().to_string());
    assert_eq!(partitions[0]["size"], 8 * MIB);
    assert_eq!(partitions[0]["mount_points"][0], mount_point.display().to_string());
    assert_eq!(partitions[1]["path"], p2.display().to_string());
    assert!(partitions[1]["mount_points"].as_array().unwrap().is_empty());
    assert!(
        drive["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["flag"] == "non_removable"),
        "{drive}"
    );

    let default = run(graver().args(["list", "--json"]));
    let shown: Value = serde_json::from_str(default.stdout.trim()).unwrap();
    assert!(
        listed(shown["drives"].as_array().unwrap(), &device.dev).is_none(),
        "loop devices are hidden by default"
    );

    let image = fixture().file("img");
    run(write_to(&image, &device.dev).arg("--yes")).expect_code(0);
    assert!(
        !is_mounted(&mount_point),
        "the mounted partition was not unmounted before writing"
    );
    crate::support::assert_cmp(&image, &device.dev, crate::support::IMAGE_LEN);
}

#[test]
fn the_root_disk_is_listed_as_a_system_drive() {
    let source = check(Command::new("findmnt").args(["-n", "-o", "SOURCE", "/"]));
    let source = PathBuf::from(source.trim());
    if !source.starts_with("/dev") {
        eprintln!("skipped: / is not on a block device here ({})", source.display());
        return;
    }
    let drives = list_all();
    let disk = drives
        .iter()
        .find(|d| {
            let name = d["name"].as_str().unwrap_or_default();
            source
                .file_name()
                .is_some_and(|s| s.to_string_lossy().starts_with(name))
        })
        .unwrap_or_else(|| panic!("the disk under {} is not listed: {drives:?}", source.display()));
    assert!(disk["system"].as_str().is_some_and(|r| r.contains('/')), "{disk}");
    assert!(
        disk["flags"].as_array().unwrap().iter().any(|f| f["flag"] == "system"),
        "{disk}"
    );
}

#[test]
fn an_image_stored_on_the_target_drive_is_refused() {
    require_root!();
    let device = Loop::new(64 * MIB);
    check(tool("mkfs.ext4").args(["-q", "-F"]).arg(&device.dev));
    let dir = scratch();
    let mount_point = dir.path().join("mnt");
    std::fs::create_dir(&mount_point).unwrap();
    let _mounted = Mounted {
        mount_points: vec![mount_point.clone()],
        partitioned: None,
    };
    check(Command::new("mount").arg(&device.dev).arg(&mount_point));
    let image = mount_point.join("image.img");
    std::fs::write(&image, vec![0x5a; 3 * MIB as usize]).unwrap();
    let out = run(write_to(&image, &device.dev).arg("--yes"));
    out.expect_code(4).expect_stderr("holds the image file");
    assert!(is_mounted(&mount_point), "a refused drive must not even be unmounted");
}

#[test]
fn a_system_disk_look_alike_is_refused_unless_unsafe_and_named() {
    require_root!();
    let _namespaces = private_namespaces();
    let device = Loop::new(64 * MIB);
    let (p1, _) = partition(&device.dev);
    let _partitioned = Mounted {
        mount_points: Vec::new(),
        partitioned: Some(device.dev.clone()),
    };
    let image = fixture().file("img");
    let name = device.dev.file_name().unwrap().to_string_lossy().into_owned();
    // graver runs in a private mount namespace in which the loop partition is /boot.
    let in_namespace = |extra: &[&str]| {
        let mut command = Command::new("unshare");
        command
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                r#"mount "$1" /boot && shift && exec "$@""#,
                "sh",
            ])
            .arg(&p1)
            .arg(crate::support::graver_bin())
            .arg("write")
            .arg(&image)
            .arg("--to")
            .arg(&device.dev)
            .arg("--yes")
            .args(extra);
        run(&mut command)
    };
    let tail_before = read_at(&device.dev, 9 * MIB, (39 * MIB) as usize);
    in_namespace(&[]).expect_code(4).expect_stderr("system drive");
    in_namespace(&["--unsafe", "--confirm-name", "sda"])
        .expect_code(4)
        .expect_stderr("does not match");
    assert_eq!(
        read_at(&device.dev, 9 * MIB, (39 * MIB) as usize),
        tail_before,
        "a refused write changed the drive"
    );
    in_namespace(&["--unsafe", "--confirm-name", &name]).expect_code(0);
    crate::support::assert_cmp(&image, &device.dev, crate::support::IMAGE_LEN);
}
