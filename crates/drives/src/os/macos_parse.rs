//! macOS: reading what `diskutil list -plist` and `diskutil info -plist` print.
//!
//! Pure functions over the tools' XML property lists, so they are tested on
//! every OS with fixtures; `macos.rs` only runs the commands and calls them.
//!
//! Two facts shape the model:
//!
//! - APFS *containers* are synthesized whole disks (`disk3`) whose data lives
//!   on a partition of a physical disk, their *physical store* (`disk0s2`).
//!   A container is listed as [`Bus::Virtual`]; anything that makes it a
//!   system drive makes its physical store's disk one too, and the volumes of
//!   a container are also listed among the partitions of that disk, because
//!   writing the disk destroys them.
//! - The running macOS is a sealed snapshot (`disk3s1s1`) of a volume of such
//!   a container, mounted at `/`; its data volume is at `/System/Volumes/Data`.

#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};

use crate::{Bus, Drive, Identity, Partition};

/// Mount points under this prefix belong to the running system.
const SYSTEM_VOLUMES: &str = "/System/Volumes";
/// Where macOS keeps its swap files.
const VM_VOLUME: &str = "/System/Volumes/VM";

/// A `diskutil` output that is not the property list it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub(crate) String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected diskutil output: {}", self.0)
    }
}

impl std::error::Error for ParseError {}

/// A volume of a listed disk: a partition, or an APFS volume of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedVolume {
    /// Its BSD name: `disk4s1`, `disk3s5`.
    pub(crate) name: String,
    /// Size in bytes (for an APFS volume: the container's, as diskutil reports it).
    pub(crate) size: u64,
    /// Where it (or a snapshot of it, such as the system's at `/`) is mounted.
    pub(crate) mount_points: Vec<PathBuf>,
    /// The partition type or content hint: `DOS_FAT_32`, `Apple_APFS`.
    pub(crate) content: Option<String>,
    /// The volume's name: `STICK`, `Macintosh HD`.
    pub(crate) volume_name: Option<String>,
    /// The BSD names of its mounted snapshots (`disk3s1s1`).
    pub(crate) snapshots: Vec<String>,
}

/// One whole disk of `diskutil list -plist` (an `AllDisksAndPartitions` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedDisk {
    /// Its BSD name: `disk4`.
    pub(crate) name: String,
    /// Size in bytes.
    pub(crate) size: u64,
    /// Partition scheme or content: `GUID_partition_scheme`, or the APFS container type.
    pub(crate) content: Option<String>,
    /// Whether macOS flags it as its own internal media.
    pub(crate) os_internal: bool,
    /// Where the whole disk itself is mounted (a disk without a partition map).
    pub(crate) mount_point: Option<PathBuf>,
    /// Its partitions, then its APFS volumes.
    pub(crate) volumes: Vec<ListedVolume>,
    /// For an APFS container: the partitions it is stored on (`disk0s2`).
    pub(crate) physical_stores: Vec<String>,
}

/// What `diskutil info -plist diskN` says about a disk (or volume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiskInfo {
    /// BSD name: `disk4`.
    pub(crate) identifier: String,
    /// Device node: `/dev/disk4`.
    pub(crate) node: Option<String>,
    /// The device's media name: `Cruzer`, `APPLE SSD AP0512Q`.
    pub(crate) media_name: Option<String>,
    /// The I/O Registry entry: `SanDisk Cruzer Media`.
    pub(crate) registry_name: Option<String>,
    /// Size in bytes.
    pub(crate) size: Option<u64>,
    /// `USB`, `Secure Digital`, `PCI-Express`, `SATA`, `Disk Image`, `Apple Fabric`, …
    pub(crate) bus_protocol: Option<String>,
    /// Whether the device is inside the Mac.
    pub(crate) internal: Option<bool>,
    /// Whether the medium is removable (sticks, cards, disk images).
    pub(crate) removable: bool,
    /// Whether the device can be ejected.
    pub(crate) ejectable: bool,
    /// Whether the medium is write-protected.
    pub(crate) read_only: bool,
    /// Logical block size.
    pub(crate) block_size: Option<u32>,
    /// Whether it is virtual: an APFS container, a disk image, a RAM disk.
    pub(crate) virtual_disk: bool,
    /// `MediaUUID` or `DiskUUID`, when diskutil reports one.
    pub(crate) uuid: Option<String>,
    /// Where the device sits in the I/O Registry's device tree, when diskutil says.
    pub(crate) device_tree_path: Option<String>,
    /// The whole disk it belongs to (itself for a whole disk).
    pub(crate) parent_whole_disk: Option<String>,
    /// Whether macOS flags it as its own internal media.
    pub(crate) os_internal: bool,
    /// For an APFS container or volume: the partitions it is stored on (`disk0s2`).
    pub(crate) physical_stores: Vec<String>,
    /// Where it is mounted, when it is a mounted volume.
    pub(crate) mount_point: Option<PathBuf>,
}

fn parse_dict(bytes: &[u8]) -> Result<Dictionary, ParseError> {
    let value = Value::from_reader(Cursor::new(bytes)).map_err(|e| ParseError(e.to_string()))?;
    value
        .into_dictionary()
        .ok_or_else(|| ParseError("the property list is not a dictionary".into()))
}

fn string(dict: &Dictionary, key: &str) -> Option<String> {
    let text = dict.get(key)?.as_string()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn integer(dict: &Dictionary, key: &str) -> Option<u64> {
    dict.get(key)?.as_unsigned_integer()
}

/// A flag diskutil writes as `<true/>`, or in a few keys as "Yes"/"No".
fn flag(dict: &Dictionary, key: &str) -> Option<bool> {
    match dict.get(key)? {
        Value::Boolean(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => Some(true),
            "no" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn dicts<'a>(dict: &'a Dictionary, key: &str) -> impl Iterator<Item = &'a Dictionary> {
    dict.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_dictionary)
}

fn mount_point(dict: &Dictionary, key: &str) -> Option<PathBuf> {
    string(dict, key).map(PathBuf::from)
}

fn parse_volume(dict: &Dictionary) -> Option<ListedVolume> {
    let name = string(dict, "DeviceIdentifier")?;
    let mut mount_points: Vec<PathBuf> = mount_point(dict, "MountPoint").into_iter().collect();
    let mut snapshots = Vec::new();
    for snapshot in dicts(dict, "MountedSnapshots") {
        if let Some(bsd) = string(snapshot, "SnapshotBSD") {
            snapshots.push(bsd);
        }
        if let Some(mount) = mount_point(snapshot, "SnapshotMountPoint")
            && !mount_points.contains(&mount)
        {
            mount_points.push(mount);
        }
    }
    Some(ListedVolume {
        name,
        size: integer(dict, "Size").unwrap_or(0),
        mount_points,
        content: string(dict, "Content"),
        volume_name: string(dict, "VolumeName"),
        snapshots,
    })
}

/// Every whole disk of `diskutil list -plist`, in the order of their numbers.
///
/// # Errors
/// When the bytes are not a property list with an `AllDisksAndPartitions` array.
pub(crate) fn parse_list(bytes: &[u8]) -> Result<Vec<ListedDisk>, ParseError> {
    let root = parse_dict(bytes)?;
    if root.get("AllDisksAndPartitions").and_then(Value::as_array).is_none() {
        return Err(ParseError("no AllDisksAndPartitions in `diskutil list -plist`".into()));
    }
    let mut disks: Vec<ListedDisk> = dicts(&root, "AllDisksAndPartitions")
        .filter_map(|disk| {
            let name = string(disk, "DeviceIdentifier")?;
            let volumes = dicts(disk, "Partitions")
                .chain(dicts(disk, "APFSVolumes"))
                .filter_map(parse_volume)
                .collect();
            Some(ListedDisk {
                name,
                size: integer(disk, "Size").unwrap_or(0),
                content: string(disk, "Content"),
                os_internal: flag(disk, "OSInternal").unwrap_or(false),
                mount_point: mount_point(disk, "MountPoint"),
                volumes,
                physical_stores: dicts(disk, "APFSPhysicalStores")
                    .filter_map(|store| string(store, "DeviceIdentifier"))
                    .collect(),
            })
        })
        .collect();
    disks.sort_by_key(|d| disk_number(&d.name));
    Ok(disks)
}

/// What `diskutil info -plist <disk, volume or mount point>` says.
///
/// # Errors
/// When the bytes are not a property list naming a `DeviceIdentifier`.
pub(crate) fn parse_info(bytes: &[u8]) -> Result<DiskInfo, ParseError> {
    let dict = parse_dict(bytes)?;
    let identifier = string(&dict, "DeviceIdentifier")
        .ok_or_else(|| ParseError("no DeviceIdentifier in `diskutil info -plist`".into()))?;
    let virtual_disk = string(&dict, "VirtualOrPhysical").is_some_and(|v| v.eq_ignore_ascii_case("virtual"))
        || flag(&dict, "Virtual").unwrap_or(false);
    let writable = flag(&dict, "WritableMedia").or_else(|| flag(&dict, "Writable"));
    Ok(DiskInfo {
        node: string(&dict, "DeviceNode"),
        media_name: string(&dict, "MediaName"),
        registry_name: string(&dict, "IORegistryEntryName"),
        size: ["TotalSize", "Size", "IOKitSize"]
            .iter()
            .find_map(|key| integer(&dict, key).filter(|&size| size > 0)),
        bus_protocol: string(&dict, "BusProtocol"),
        internal: flag(&dict, "Internal"),
        removable: flag(&dict, "RemovableMedia").unwrap_or(false) || flag(&dict, "Removable").unwrap_or(false),
        ejectable: flag(&dict, "Ejectable").unwrap_or(false),
        read_only: writable == Some(false),
        block_size: integer(&dict, "DeviceBlockSize").and_then(|b| u32::try_from(b).ok()),
        virtual_disk,
        uuid: string(&dict, "MediaUUID").or_else(|| string(&dict, "DiskUUID")),
        device_tree_path: string(&dict, "DeviceTreePath"),
        parent_whole_disk: string(&dict, "ParentWholeDisk"),
        os_internal: flag(&dict, "OSInternalMedia").unwrap_or(false),
        physical_stores: dicts(&dict, "APFSPhysicalStores")
            .filter_map(|store| string(store, "APFSPhysicalStore").or_else(|| string(store, "DeviceIdentifier")))
            .collect(),
        mount_point: mount_point(&dict, "MountPoint"),
        identifier,
    })
}

/// The bus of a `BusProtocol` value.
pub(crate) fn bus_from_protocol(protocol: &str) -> Bus {
    match protocol.trim().to_ascii_lowercase().as_str() {
        "usb" => Bus::Usb,
        "secure digital" | "sd" | "mmc" => Bus::Sd,
        // Apple silicon's internal SSD sits on the "Apple Fabric"; Intel Macs' is NVMe over PCIe.
        "pci-express" | "pci" | "nvme" | "nvm express" | "apple fabric" => Bus::Nvme,
        "sata" | "ata" | "sas" => Bus::Sata,
        "scsi" | "fibre channel" | "fibre channel interface" | "iscsi" => Bus::Scsi,
        "disk image" | "virtual interface" => Bus::Virtual,
        _ => Bus::Other,
    }
}

/// The number of a BSD disk name: `disk12s3` → 12; names without one sort last.
fn disk_number(name: &str) -> u32 {
    let digits: String = name
        .strip_prefix("disk")
        .unwrap_or("")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap_or(u32::MAX)
}

/// The whole disk of a BSD name: `disk3s1s1` → `disk3`, `/dev/rdisk4` → `disk4`, `disk4` → `disk4`.
pub(crate) fn whole_disk_of(name: &str) -> Option<String> {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    let name = name.strip_prefix('r').filter(|n| n.starts_with("disk")).unwrap_or(name);
    let rest = name.strip_prefix("disk")?;
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || !(rest[digits..].is_empty() || rest[digits..].starts_with('s')) {
        return None;
    }
    Some(format!("disk{}", &rest[..digits]))
}

/// The physical whole disks an APFS container is stored on (none for a disk that is not a container).
pub(crate) fn stores_of<'a>(disk: &'a ListedDisk) -> impl Iterator<Item = (String, &'a str)> + 'a {
    disk.physical_stores
        .iter()
        .filter_map(|store| Some((whole_disk_of(store)?, store.as_str())))
        .filter(move |(whole, _)| *whole != disk.name)
}

/// The whole disks to unmount before `disk` is written, in order: every APFS
/// container stored on it, then the disk itself. A container is a synthesized
/// disk of its own, and `diskutil unmountDisk` on the physical disk leaves its
/// volumes mounted (Etcher #4490).
pub(crate) fn unmount_order(disk: &str, disks: &[ListedDisk]) -> Vec<String> {
    let mut order: Vec<String> = disks
        .iter()
        .filter(|container| stores_of(container).any(|(whole, _)| whole == disk))
        .map(|container| container.name.clone())
        .collect();
    order.push(disk.to_owned());
    order
}

/// Every system whole disk with the reason, shown in [`Drive::system`].
///
/// A disk is a system disk when it holds the running macOS (`root_device`,
/// the BSD name `/` is mounted from, e.g. `disk3s1s1`), a volume mounted at
/// `/` or under `/System/Volumes`, or the running program (`exe_device`), or
/// when macOS flags it as internal system media. What makes an APFS
/// container a system disk makes the disks it is stored on system disks too.
pub(crate) fn system_disks(
    disks: &[ListedDisk],
    infos: &[DiskInfo],
    root_device: Option<&str>,
    exe_device: Option<&str>,
) -> BTreeMap<String, String> {
    fn mark(reasons: &mut BTreeMap<String, String>, disk: String, reason: String) {
        reasons.entry(disk).or_insert(reason);
    }
    // A container's reason carries over to the disks it is stored on.
    fn carry_to_stores(reasons: &mut BTreeMap<String, String>, disks: &[ListedDisk]) {
        for disk in disks {
            let Some(reason) = reasons.get(&disk.name).cloned() else {
                continue;
            };
            for (whole, store) in stores_of(disk) {
                let reason = format!("{reason}, in the APFS container {} stored on {store}", disk.name);
                mark(reasons, whole, reason);
            }
        }
    }
    let mut reasons = BTreeMap::new();
    if let Some(root) = root_device
        && let Some(disk) = whole_disk_of(root)
    {
        mark(&mut reasons, disk, format!("the running macOS is on {root}"));
    }
    // Strongest reasons first: each tier is carried to the physical stores before the next.
    carry_to_stores(&mut reasons, disks);
    // `/` first, then the other system volumes (Data, Preboot, VM, …).
    let tiers: [fn(&Path) -> bool; 2] = [
        |mount| mount.as_os_str() == "/",
        |mount| mount.starts_with(SYSTEM_VOLUMES),
    ];
    for is_system in tiers {
        for disk in disks {
            let system_mount = disk.volumes.iter().find_map(|volume| {
                let mount = volume.mount_points.iter().find(|m| is_system(m))?;
                let from = if mount.as_os_str() == "/" {
                    volume.snapshots.first().unwrap_or(&volume.name)
                } else {
                    &volume.name
                };
                Some(format!("{} is mounted from {from}", mount.display()))
            });
            if let Some(reason) = system_mount {
                mark(&mut reasons, disk.name.clone(), reason);
            }
        }
        carry_to_stores(&mut reasons, disks);
    }
    if let Some(exe) = exe_device
        && let Some(disk) = whole_disk_of(exe)
    {
        mark(&mut reasons, disk, format!("Graver itself is running from {exe}"));
    }
    carry_to_stores(&mut reasons, disks);
    const INTERNAL: &str = "macOS uses it as internal system storage";
    for disk in disks.iter().filter(|d| d.os_internal) {
        mark(&mut reasons, disk.name.clone(), INTERNAL.into());
    }
    for info in infos.iter().filter(|i| i.os_internal) {
        mark(&mut reasons, info.identifier.clone(), INTERNAL.into());
    }
    carry_to_stores(&mut reasons, disks);
    reasons
}

/// Vendor and model: `MediaName` is the model ("Cruzer"); the vendor is what the
/// I/O Registry name ("SanDisk Cruzer Media") puts before it.
pub(crate) fn vendor_and_model(info: &DiskInfo) -> (Option<String>, Option<String>) {
    let model = info.media_name.clone();
    let vendor = match (&model, &info.registry_name) {
        (Some(model), Some(registry)) => registry
            .strip_suffix(" Media")
            .and_then(|full| full.strip_suffix(model.as_str()))
            .map(str::trim)
            .filter(|vendor| !vendor.is_empty())
            .map(str::to_owned),
        _ => None,
    };
    (vendor, model)
}

fn to_partition(volume: &ListedVolume) -> Partition {
    Partition {
        path: PathBuf::from(format!("/dev/{}", volume.name)),
        size: volume.size,
        swap: volume.mount_points.iter().any(|m| m.as_os_str() == VM_VOLUME),
        mount_points: volume.mount_points.clone(),
    }
}

/// The [`Drive`] of a whole disk: its `diskutil info`, its `diskutil list` entry
/// and, for a physical disk, the APFS containers stored on it (whose volumes
/// are listed among its partitions), with the reasons from [`system_disks`].
pub(crate) fn to_drive(
    info: &DiskInfo,
    listed: Option<&ListedDisk>,
    containers: &[&ListedDisk],
    system: &BTreeMap<String, String>,
) -> Drive {
    let name = info.identifier.clone();
    let (vendor, model) = vendor_and_model(info);
    let is_container =
        info.virtual_disk && !info.physical_stores.is_empty() || listed.is_some_and(|l| !l.physical_stores.is_empty());
    let bus = if is_container || info.virtual_disk {
        Bus::Virtual
    } else {
        info.bus_protocol.as_deref().map_or(Bus::Other, bus_from_protocol)
    };
    let mut partitions = Vec::new();
    if let Some(listed) = listed {
        if let Some(mount) = &listed.mount_point {
            partitions.push(Partition {
                path: PathBuf::from(format!("/dev/{}", listed.name)),
                size: listed.size,
                mount_points: vec![mount.clone()],
                swap: false,
            });
        }
        partitions.extend(listed.volumes.iter().map(to_partition));
    }
    for container in containers {
        partitions.extend(container.volumes.iter().map(to_partition));
    }
    let block_size = info.block_size.filter(|&b| b > 0).unwrap_or(512);
    let size = info.size.or(listed.map(|l| l.size)).unwrap_or(0);
    Drive {
        path: PathBuf::from(format!("/dev/r{name}")),
        id: info.uuid.clone().unwrap_or_else(|| name.clone()),
        size,
        // The BSD name is the path; the medium's UUID (or where it sits in the device
        // tree) tells a swapped medium under the same name apart.
        identity: Identity {
            sequence: None,
            media: info.uuid.clone().or_else(|| info.device_tree_path.clone()),
            serial: None,
            size,
        },
        vendor,
        model,
        bus,
        // An APFS container is never offered as removable: writing it means writing its physical store.
        removable: !is_container && (info.removable || (info.ejectable && info.internal == Some(false))),
        read_only: info.read_only,
        logical_block_size: block_size,
        physical_block_size: block_size,
        partitions,
        system: system.get(&name).cloned(),
        unknown: None,
        name,
    }
}

/// Every drive, from the list, the `diskutil info` of each whole disk that
/// answered, and the BSD names `/` and the running program are mounted from.
pub(crate) fn drives(
    disks: &[ListedDisk],
    infos: &[DiskInfo],
    root_device: Option<&str>,
    exe_device: Option<&str>,
) -> Vec<Drive> {
    let system = system_disks(disks, infos, root_device, exe_device);
    let mut drives: Vec<Drive> = infos
        .iter()
        .map(|info| {
            let listed = disks.iter().find(|d| d.name == info.identifier);
            let containers: Vec<&ListedDisk> = disks
                .iter()
                .filter(|c| stores_of(c).any(|(whole, _)| whole == info.identifier))
                .collect();
            to_drive(info, listed, &containers, &system)
        })
        .collect();
    drives.sort_by_key(|d| disk_number(&d.name));
    drives
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LIST: &[u8] = include_bytes!("../../tests/fixtures/macos/list.plist");
    const INFOS: [&[u8]; 7] = [
        include_bytes!("../../tests/fixtures/macos/info-disk0.plist"),
        include_bytes!("../../tests/fixtures/macos/info-disk1.plist"),
        include_bytes!("../../tests/fixtures/macos/info-disk2.plist"),
        include_bytes!("../../tests/fixtures/macos/info-disk3.plist"),
        include_bytes!("../../tests/fixtures/macos/info-disk4.plist"),
        include_bytes!("../../tests/fixtures/macos/info-disk5.plist"),
        include_bytes!("../../tests/fixtures/macos/info-disk6.plist"),
    ];

    fn all_drives() -> Vec<Drive> {
        let disks = parse_list(LIST).unwrap();
        let infos: Vec<DiskInfo> = INFOS.iter().map(|b| parse_info(b).unwrap()).collect();
        drives(&disks, &infos, Some("disk3s1s1"), Some("disk3s5"))
    }

    fn drive(name: &str) -> Drive {
        all_drives().into_iter().find(|d| d.name == name).unwrap()
    }

    #[test]
    fn macos_list_has_every_whole_disk_with_partitions_and_mounts() {
        let disks = parse_list(LIST).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["disk0", "disk1", "disk2", "disk3", "disk4", "disk5", "disk6"]);
        let disk4 = &disks[4];
        assert_eq!(disk4.size, 16_008_609_792);
        assert_eq!(disk4.content.as_deref(), Some("FDisk_partition_scheme"));
        assert_eq!(disk4.volumes.len(), 1);
        assert_eq!(disk4.volumes[0].name, "disk4s1");
        assert_eq!(disk4.volumes[0].volume_name.as_deref(), Some("STICK"));
        assert_eq!(disk4.volumes[0].mount_points, [PathBuf::from("/Volumes/STICK")]);
        let disk0 = &disks[0];
        assert!(disk0.os_internal);
        assert_eq!(disk0.volumes.len(), 3);
        assert!(disk0.volumes.iter().all(|v| v.mount_points.is_empty()));
        let disk3 = &disks[3];
        assert_eq!(disk3.physical_stores, ["disk0s2"]);
        assert_eq!(disk3.volumes.len(), 6);
        let system = &disk3.volumes[0];
        assert_eq!(system.volume_name.as_deref(), Some("Macintosh HD"));
        assert_eq!(system.snapshots, ["disk3s1s1"]);
        assert_eq!(system.mount_points, [PathBuf::from("/")]);
        assert_eq!(disk3.volumes[4].mount_points, [PathBuf::from("/System/Volumes/Data")]);
        let disk5 = &disks[5];
        assert_eq!(disk5.volumes.len(), 2);
        assert!(disk5.volumes[1].mount_points.is_empty());
    }

    #[test]
    fn macos_info_fields() {
        let disk4 = parse_info(INFOS[4]).unwrap();
        assert_eq!(disk4.identifier, "disk4");
        assert_eq!(disk4.node.as_deref(), Some("/dev/disk4"));
        assert_eq!(disk4.bus_protocol.as_deref(), Some("USB"));
        assert_eq!(disk4.size, Some(16_008_609_792));
        assert_eq!(disk4.block_size, Some(512));
        assert_eq!(disk4.internal, Some(false));
        assert!(disk4.removable && disk4.ejectable && !disk4.read_only && !disk4.virtual_disk);
        assert_eq!(disk4.parent_whole_disk.as_deref(), Some("disk4"));
        assert_eq!(disk4.mount_point, None);
        let disk3 = parse_info(INFOS[3]).unwrap();
        assert!(disk3.virtual_disk);
        assert_eq!(disk3.physical_stores, ["disk0s2"]);
        assert_eq!(disk3.media_name, None);
        assert!(parse_info(b"Could not find disk: disk9\n").is_err());
        assert!(parse_list(INFOS[0]).is_err());
    }

    #[test]
    fn macos_bus_mapping() {
        assert_eq!(bus_from_protocol("USB"), Bus::Usb);
        assert_eq!(bus_from_protocol("Secure Digital"), Bus::Sd);
        assert_eq!(bus_from_protocol("PCI-Express"), Bus::Nvme);
        assert_eq!(bus_from_protocol("Apple Fabric"), Bus::Nvme);
        assert_eq!(bus_from_protocol("SATA"), Bus::Sata);
        assert_eq!(bus_from_protocol("Disk Image"), Bus::Virtual);
        assert_eq!(bus_from_protocol("Thunderbolt"), Bus::Other);
        let buses: Vec<(String, Bus)> = all_drives().into_iter().map(|d| (d.name, d.bus)).collect();
        let expected = [
            ("disk0", Bus::Nvme),
            ("disk1", Bus::Virtual),
            ("disk2", Bus::Virtual),
            ("disk3", Bus::Virtual),
            ("disk4", Bus::Usb),
            ("disk5", Bus::Sd),
            ("disk6", Bus::Virtual),
        ];
        let expected: Vec<(String, Bus)> = expected.iter().map(|(n, b)| ((*n).to_owned(), *b)).collect();
        assert_eq!(buses, expected);
    }

    #[test]
    fn macos_system_disks_are_marked_with_reasons() {
        let disk3 = drive("disk3");
        assert_eq!(disk3.system.as_deref(), Some("the running macOS is on disk3s1s1"));
        let disk0 = drive("disk0");
        assert_eq!(
            disk0.system.as_deref(),
            Some("the running macOS is on disk3s1s1, in the APFS container disk3 stored on disk0s2")
        );
        assert!(
            drive("disk1")
                .system
                .as_deref()
                .unwrap()
                .contains("/System/Volumes/iSCPreboot")
        );
        assert_eq!(
            drive("disk2").system.as_deref(),
            Some("macOS uses it as internal system storage")
        );
        for name in ["disk4", "disk5", "disk6"] {
            assert_eq!(drive(name).system, None, "{name}");
        }
        // Without the root device, the mount table alone still finds the system.
        let disks = parse_list(LIST).unwrap();
        let system = system_disks(&disks, &[], None, None);
        assert_eq!(system.get("disk3").unwrap(), "/ is mounted from disk3s1s1");
        assert!(system.get("disk0").unwrap().ends_with("stored on disk0s2"));
        assert!(!system.contains_key("disk4"));
        // Graver running from the stick makes the stick a system drive.
        let system = system_disks(&disks, &[], None, Some("disk4s1"));
        assert_eq!(system.get("disk4").unwrap(), "Graver itself is running from disk4s1");
    }

    #[test]
    fn macos_drive_fields() {
        let stick = drive("disk4");
        assert_eq!(stick.path, PathBuf::from("/dev/rdisk4"));
        assert_eq!(stick.id, "disk4");
        assert_eq!(stick.size, 16_008_609_792);
        assert_eq!(stick.vendor.as_deref(), Some("SanDisk"));
        assert_eq!(stick.model.as_deref(), Some("Cruzer"));
        assert_eq!(stick.display_name(), "SanDisk Cruzer");
        assert!(stick.removable && !stick.read_only);
        assert_eq!((stick.logical_block_size, stick.physical_block_size), (512, 512));
        assert_eq!(stick.partitions.len(), 1);
        assert_eq!(stick.partitions[0].path, PathBuf::from("/dev/disk4s1"));
        assert_eq!(stick.partitions[0].size, 16_006_512_640);
        let mounts: Vec<&PathBuf> = stick.mount_points().collect();
        assert_eq!(mounts, [&PathBuf::from("/Volumes/STICK")]);

        let card = drive("disk5");
        assert!(card.read_only && card.removable);
        assert_eq!(card.path, PathBuf::from("/dev/rdisk5"));
        assert_eq!(card.size, 31_914_983_424);
        assert_eq!(card.display_name(), "APPLE SD Card Reader");

        let ssd = drive("disk0");
        assert_eq!(ssd.path, PathBuf::from("/dev/rdisk0"));
        assert_eq!(ssd.size, 500_277_790_720);
        assert_eq!(ssd.logical_block_size, 4096);
        assert_eq!(ssd.vendor, None);
        assert_eq!(ssd.display_name(), "APPLE SSD AP0512Q");
        assert!(!ssd.removable && !ssd.read_only);
        // Its own three partitions, then the volumes of the containers stored on it.
        assert_eq!(ssd.partitions.len(), 3 + 3 + 2 + 6);
        assert!(ssd.mount_points().any(|m| m.as_os_str() == "/"));
        assert!(ssd.partitions.iter().any(|p| p.swap));

        let image = drive("disk6");
        assert!(image.removable);
        assert_eq!(image.display_name(), "Disk Image");
        assert_eq!(image.size, 2_147_483_648);
        let container = drive("disk3");
        assert_eq!(container.display_name(), "disk3");
        assert_eq!(container.path, PathBuf::from("/dev/rdisk3"));
        assert!(!container.removable);
        assert!(!crate::is_flashable(&container));
        assert!(crate::is_flashable(&stick));
    }

    #[test]
    fn macos_id_prefers_media_uuid() {
        let mut info = parse_info(INFOS[4]).unwrap();
        assert_eq!(info.uuid, None);
        info.uuid = Some("9A3C6E1F-0B2D-4E5A-8C7F-1D3B5A7C9E0F".into());
        let drive = to_drive(&info, None, &[], &BTreeMap::new());
        assert_eq!(drive.id, "9A3C6E1F-0B2D-4E5A-8C7F-1D3B5A7C9E0F");
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>DeviceIdentifier</key>
	<string>disk7</string>
	<key>DiskUUID</key>
	<string>11111111-2222-4333-8444-555555555555</string>
	<key>MediaUUID</key>
	<string>66666666-7777-4888-9999-AAAAAAAAAAAA</string>
</dict>
</plist>
"#;
        let info = parse_info(xml).unwrap();
        assert_eq!(info.uuid.as_deref(), Some("66666666-7777-4888-9999-AAAAAAAAAAAA"));
        let drive = to_drive(&info, None, &[], &BTreeMap::new());
        assert_eq!((drive.bus, drive.size, drive.logical_block_size), (Bus::Other, 0, 512));
    }

    #[test]
    fn macos_whole_disk_names() {
        assert_eq!(whole_disk_of("disk3s1s1").as_deref(), Some("disk3"));
        assert_eq!(whole_disk_of("/dev/disk4s1").as_deref(), Some("disk4"));
        assert_eq!(whole_disk_of("/dev/rdisk12").as_deref(), Some("disk12"));
        assert_eq!(whole_disk_of("disk4").as_deref(), Some("disk4"));
        assert_eq!(whole_disk_of("devfs"), None);
        assert_eq!(whole_disk_of("diskette"), None);
    }

    #[test]
    fn macos_apfs_containers_are_unmounted_before_their_disk() {
        let mut disks = parse_list(LIST).unwrap();
        // The internal disk holds three containers; a plain stick holds none.
        assert_eq!(unmount_order("disk0", &disks), ["disk1", "disk2", "disk3", "disk0"]);
        assert_eq!(unmount_order("disk4", &disks), ["disk4"]);
        // An APFS-formatted stick: its container disk9 is stored on disk4's only partition.
        disks.push(ListedDisk {
            name: "disk9".into(),
            size: 16_000_000_000,
            content: Some("EF57347C-0000-11AA-AA11-00306543ECAC".into()),
            os_internal: false,
            mount_point: None,
            volumes: Vec::new(),
            physical_stores: vec!["disk4s1".into()],
        });
        assert_eq!(unmount_order("disk4", &disks), ["disk9", "disk4"]);
        // The container itself has no container on it.
        assert_eq!(unmount_order("disk9", &disks), ["disk9"]);
    }
}
