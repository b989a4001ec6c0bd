//! Entry points for the fuzz targets in `fuzz/` and for the replay of their corpus in
//! `tests/fuzz_corpus.rs`: everything that reads what the system reports (mountinfo and
//! sysfs on Linux, `diskutil` property lists on macOS, the structures Windows ioctls fill
//! in), fed arbitrary bytes. A panic or a hang is a finding; what they return is not.
//! Not a stable interface.

use std::path::Path;

use crate::os::{linux_parse, macos_parse, windows_map};

/// `/proc/self/mountinfo` (and what each mount stands on), `/proc/swaps`, `zpool status -P`
/// and sysfs attributes (`dev`, `size`, the device path).
pub fn linux_proc(data: &[u8]) -> usize {
    let text = String::from_utf8_lossy(data);
    let mounts = linux_parse::parse_mountinfo(data).unwrap_or_default();
    for mount in &mounts {
        let _ = linux_parse::backing(mount);
    }
    let swaps = linux_parse::parse_swaps(data).map_or(0, |swaps| swaps.len());
    let _ = linux_parse::parse_zpool_status(&text);
    let (name, sys_path) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = linux_parse::parse_dev(&text);
    let _ = linux_parse::parse_sectors(text.trim());
    let _ = linux_parse::bus_of(name, sys_path);
    let _ = linux_parse::is_listable(name);
    mounts.len() + swaps
}

/// `diskutil list -plist` and `diskutil info -plist` output, and the drive list made from them.
pub fn macos_plist(data: &[u8]) -> usize {
    let disks = macos_parse::parse_list(data).unwrap_or_default();
    let infos: Vec<_> = macos_parse::parse_info(data).into_iter().collect();
    for disk in &disks {
        let _ = macos_parse::unmount_order(&disk.name, &disks);
    }
    let root = infos.first().map(|info| info.identifier.as_str());
    macos_parse::drives(&disks, &infos, root, root).len()
}

/// What `IOCTL_STORAGE_QUERY_PROPERTY`, `IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS` and
/// `IOCTL_DISK_GET_DRIVE_GEOMETRY_EX` return, the UTF-16 lists of the registry and the
/// volume enumeration, and the map of volumes to disks made from them.
pub fn windows_buffers(data: &[u8]) -> usize {
    let _ = windows_map::parse_device_descriptor(data);
    let _ = windows_map::parse_geometry_ex(data);
    let _ = windows_map::parse_physical_sector(data);
    let extents = windows_map::parse_disk_extents(data);
    let wide: Vec<u16> = data
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    let strings = windows_map::split_multi_sz(&wide);
    let guid_path = windows_map::from_wide(&wide);
    let _ = windows_map::page_files(&strings);
    let _ = windows_map::dos_device_name(&guid_path);
    let _ = windows_map::physical_drive_number(Path::new(&guid_path));
    let volume = windows_map::Volume {
        guid_path,
        extents: extents.clone(),
        mount_points: strings,
    };
    let _ = windows_map::volume_label(&volume);
    let _ = windows_map::disks_in(&extents);
    windows_map::volumes_by_disk(&[volume]).len()
}
