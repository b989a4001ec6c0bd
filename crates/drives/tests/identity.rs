//! A drive's identity on Linux, against real loop devices (as root): the list and the
//! open descriptor agree on it, and it changes when the node is given to another file.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use graver_drives::{Access, DriveError, Identity, chosen, list, open_target};
use graver_testkit::{LoopDevice, is_root};

fn listed_identity(device: &std::path::Path) -> Identity {
    let drives = list().unwrap();
    let drive = drives
        .iter()
        .find(|d| d.path == device)
        .unwrap_or_else(|| panic!("{} is not listed", device.display()));
    drive.identity.clone()
}

#[test]
fn the_open_device_is_checked_against_the_chosen_identity() {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let lo = LoopDevice::new(8 << 20);
    let identity = listed_identity(&lo.dev);
    assert_eq!(identity.size, 8 << 20);
    assert!(identity.sequence.is_some(), "no disk sequence number: {identity:?}");

    let target = open_target(&lo.dev, Access::Read).unwrap();
    target.check_identity(&identity).unwrap();
    let mut other_attachment = identity.clone();
    other_attachment.sequence = identity.sequence.map(|s| s + 1);
    assert!(matches!(
        target.check_identity(&other_attachment),
        Err(DriveError::Changed(_))
    ));
    let mut other_size = identity.clone();
    other_size.size += 4096;
    assert!(matches!(
        target.check_identity(&other_size),
        Err(DriveError::Changed(_))
    ));
}

#[test]
fn re_attaching_a_loop_device_gives_it_another_identity() {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let first = LoopDevice::new(8 << 20);
    let identity = listed_identity(&first.dev);
    let drives = list().unwrap();
    assert_eq!(chosen(&drives, &first.dev, &identity).unwrap().path, first.dev);
    let node = first.dev.clone();
    drop(first);
    // Another file of the same size, very likely under the same node; either way the
    // old identity must not match what is there now.
    let second = LoopDevice::new(8 << 20);
    let drives = list().unwrap();
    match chosen(&drives, &node, &identity) {
        Err(DriveError::Changed(_) | DriveError::NotFound(_) | DriveError::NotWritable { .. }) => {}
        other => panic!("the old identity still names {}: {other:?}", node.display()),
    }
    assert_ne!(listed_identity(&second.dev), identity);
}
