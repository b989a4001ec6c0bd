//! The Windows backend's decisions, kept free of Windows calls so they are
//! unit-tested on every OS: reading the structures that `DeviceIoControl`
//! fills in, mapping volumes to the physical disks they live on, deciding which
//! disk holds the running system, and turning Win32 error codes into
//! [`DriveError`]s.
//!
//! The byte layouts are the x86-64 and ARM64 ones (both little-endian, 8-byte
//! alignment for `LARGE_INTEGER`), which are the only Windows targets Graver builds.
#![cfg_attr(not(windows), allow(dead_code))]

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use crate::{Bus, DriveError, Partition, io_error};

// Win32 error codes (winerror.h) that decide which DriveError an open or ioctl failure becomes.
pub(crate) const ERROR_INVALID_FUNCTION: i32 = 1;
pub(crate) const ERROR_FILE_NOT_FOUND: i32 = 2;
pub(crate) const ERROR_PATH_NOT_FOUND: i32 = 3;
pub(crate) const ERROR_ACCESS_DENIED: i32 = 5;
pub(crate) const ERROR_WRITE_PROTECT: i32 = 19;
pub(crate) const ERROR_NOT_READY: i32 = 21;
pub(crate) const ERROR_SHARING_VIOLATION: i32 = 32;
pub(crate) const ERROR_LOCK_VIOLATION: i32 = 33;
pub(crate) const ERROR_MORE_DATA: i32 = 234;
pub(crate) const ERROR_NOT_FOUND: i32 = 1168;

/// `FILE_SHARE_READ` and `FILE_SHARE_WRITE` (winnt.h); `windows.rs` checks them against windows-sys.
pub(crate) const SHARE_READ: u32 = 1;
pub(crate) const SHARE_WRITE: u32 = 2;

/// `CTL_CODE` of winioctl.h: the code of a device I/O control.
pub(crate) const fn ctl_code(device_type: u32, function: u32, method: u32, access: u32) -> u32 {
    (device_type << 16) | (access << 14) | (function << 2) | method
}

/// `IOCTL_DISK_ARE_VOLUMES_READY` (Windows 8 and later), which windows-sys lacks:
/// waits until Windows has finished bringing the disk's volumes up or down.
pub(crate) const IOCTL_DISK_ARE_VOLUMES_READY: u32 = ctl_code(0x07, 0x0087, 0, 1);

/// `StorageDeviceProperty` and `StorageAccessAlignmentProperty` (winioctl.h `STORAGE_PROPERTY_ID`).
pub(crate) const STORAGE_DEVICE_PROPERTY: i32 = 0;
pub(crate) const STORAGE_ACCESS_ALIGNMENT_PROPERTY: i32 = 6;

/// The fixed part of `STORAGE_DEVICE_DESCRIPTOR`, up to `RawDeviceProperties`.
const DEVICE_DESCRIPTOR_HEADER: usize = 36;

/// What `IOCTL_STORAGE_QUERY_PROPERTY` with `StorageDeviceProperty` tells about a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DescriptorInfo {
    /// `VendorIdOffset`'s string, trimmed.
    pub(crate) vendor: Option<String>,
    /// `ProductIdOffset`'s string, trimmed.
    pub(crate) product: Option<String>,
    /// `SerialNumberOffset`'s string, trimmed.
    pub(crate) serial: Option<String>,
    /// `BusType`, mapped.
    pub(crate) bus: Bus,
    /// `RemovableMedia`.
    pub(crate) removable: bool,
}

/// The input of `IOCTL_STORAGE_QUERY_PROPERTY`: a `STORAGE_PROPERTY_QUERY` for
/// `property` with `PropertyStandardQuery`, as the 12 bytes Windows expects.
pub(crate) fn property_query(property: i32) -> [u8; 12] {
    let mut query = [0u8; 12];
    query[0..4].copy_from_slice(&property.to_le_bytes());
    // QueryType PropertyStandardQuery is 0; AdditionalParameters (plus padding) stays zero.
    query
}

/// Reads a `STORAGE_DEVICE_DESCRIPTOR` as `IOCTL_STORAGE_QUERY_PROPERTY` returns it:
/// the fixed header, then NUL-terminated ASCII strings at the offsets it gives
/// (an offset of 0 means the string is absent). `None` when the buffer is shorter
/// than the header; strings pointing past the buffer or past `Size` are dropped.
pub(crate) fn parse_device_descriptor(buf: &[u8]) -> Option<DescriptorInfo> {
    if buf.len() < DEVICE_DESCRIPTOR_HEADER {
        return None;
    }
    let size = usize::try_from(read_u32(buf, 4)?).ok()?;
    let valid = &buf[..buf.len().min(size.max(DEVICE_DESCRIPTOR_HEADER))];
    let string_at = |field: usize| read_u32(buf, field).and_then(|offset| c_string(valid, offset));
    Some(DescriptorInfo {
        removable: buf[10] != 0,
        vendor: string_at(12),
        product: string_at(16),
        serial: string_at(24).filter(|s| is_meaningful_serial(s)),
        bus: bus_from_storage_bus_type(read_i32(buf, 28)?),
    })
}

/// The NUL-terminated, space-padded ASCII string at `offset`; `None` when absent or blank.
fn c_string(buf: &[u8], offset: u32) -> Option<String> {
    let start = usize::try_from(offset).ok()?;
    if start < DEVICE_DESCRIPTOR_HEADER || start >= buf.len() {
        return None;
    }
    let bytes = &buf[start..];
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
    (!text.is_empty()).then(|| text.to_owned())
}

/// Card readers and cheap sticks report serials of zeros or dots; those identify nothing.
fn is_meaningful_serial(serial: &str) -> bool {
    serial.chars().any(|c| c.is_ascii_alphanumeric() && c != '0')
}

/// Maps winioctl.h's `STORAGE_BUS_TYPE` to a [`Bus`].
pub(crate) fn bus_from_storage_bus_type(bus_type: i32) -> Bus {
    match bus_type {
        7 => Bus::Usb,            // BusTypeUsb
        12 | 13 => Bus::Sd,       // BusTypeSd, BusTypeMmc
        17 => Bus::Nvme,          // BusTypeNvme
        3 | 11 | 10 => Bus::Sata, // BusTypeAta, BusTypeSata, BusTypeSas
        1 | 2 | 9 => Bus::Scsi,   // BusTypeScsi, BusTypeAtapi, BusTypeiScsi
        14..=16 => Bus::Virtual,  // BusTypeVirtual, BusTypeFileBackedVirtual, BusTypeSpaces
        _ => Bus::Other,
    }
}

/// One run of a volume on a physical disk (`DISK_EXTENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extent {
    /// The N of `\\.\PhysicalDriveN`.
    pub(crate) disk: u32,
    /// Byte offset on the disk.
    pub(crate) offset: u64,
    /// Length in bytes.
    pub(crate) length: u64,
}

/// Reads the `VOLUME_DISK_EXTENTS` that `IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS` returns:
/// a `u32` count, padding to 8, then 24-byte `DISK_EXTENT`s (`u32` disk number,
/// padding, `i64` offset, `i64` length). Extents beyond the buffer are ignored.
pub(crate) fn parse_disk_extents(buf: &[u8]) -> Vec<Extent> {
    let Some(count) = read_u32(buf, 0) else {
        return Vec::new();
    };
    (0..usize::try_from(count).unwrap_or(0))
        .map_while(|i| {
            let at = 8 + i * 24;
            Some(Extent {
                disk: read_u32(buf, at)?,
                offset: u64::try_from(read_i64(buf, at + 8)?).ok()?,
                length: u64::try_from(read_i64(buf, at + 16)?).ok()?,
            })
        })
        .collect()
}

/// The size in bytes `IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS` needs for `count` extents.
pub(crate) fn disk_extents_len(count: usize) -> usize {
    8 + count.max(1) * 24
}

/// `DISK_GEOMETRY_EX`'s `BytesPerSector` and `DiskSize` from `IOCTL_DISK_GET_DRIVE_GEOMETRY_EX`.
pub(crate) fn parse_geometry_ex(buf: &[u8]) -> Option<(u32, u64)> {
    let bytes_per_sector = read_u32(buf, 20)?;
    let size = u64::try_from(read_i64(buf, 24)?).ok()?;
    Some((bytes_per_sector, size))
}

/// `STORAGE_ACCESS_ALIGNMENT_DESCRIPTOR`'s `BytesPerPhysicalSector`; `None` when unset.
pub(crate) fn parse_physical_sector(buf: &[u8]) -> Option<u32> {
    read_u32(buf, 20).filter(|&n| n > 0)
}

/// A volume as Windows enumerates it (`FindFirstVolumeW`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Volume {
    /// `\\?\Volume{GUID}\`, with the trailing backslash `FindNextVolumeW` gives.
    pub(crate) guid_path: String,
    /// Where it lives; empty for volumes that are not on a disk (optical drives without a disc).
    pub(crate) extents: Vec<Extent>,
    /// `C:\`, `D:\Mounted\`…; empty when it has no drive letter or folder.
    pub(crate) mount_points: Vec<String>,
}

/// The path to open a volume itself rather than its root directory: the GUID path without the trailing backslash.
pub(crate) fn volume_device_path(guid_path: &str) -> &str {
    guid_path.strip_suffix('\\').unwrap_or(guid_path)
}

/// How a volume is named to the user: its first drive letter or mount folder, else its GUID path.
pub(crate) fn volume_label(volume: &Volume) -> &str {
    volume
        .mount_points
        .first()
        .map_or_else(|| volume_device_path(&volume.guid_path), String::as_str)
}

/// Every disk's partitions: each volume goes to each disk it has an extent on,
/// sized by its extents there, ordered by where it starts on the disk.
pub(crate) fn volumes_by_disk(volumes: &[Volume]) -> BTreeMap<u32, Vec<Partition>> {
    let mut by_disk: BTreeMap<u32, Vec<(u64, Partition)>> = BTreeMap::new();
    for volume in volumes {
        for disk in disks_in(&volume.extents) {
            let on_disk = volume.extents.iter().filter(|e| e.disk == disk);
            let start = on_disk.clone().map(|e| e.offset).min().unwrap_or(0);
            // Lengths come from the volume manager as i64s; a sum of several can overflow.
            let size = on_disk.fold(0u64, |total, e| total.saturating_add(e.length));
            by_disk.entry(disk).or_default().push((
                start,
                Partition {
                    path: PathBuf::from(volume_device_path(&volume.guid_path)),
                    size,
                    mount_points: volume.mount_points.iter().map(PathBuf::from).collect(),
                    swap: false,
                },
            ));
        }
    }
    by_disk
        .into_iter()
        .map(|(disk, mut parts)| {
            parts.sort_by_key(|(start, _)| *start);
            (disk, parts.into_iter().map(|(_, p)| p).collect())
        })
        .collect()
}

/// The disks a volume with these extents lives on, each once.
pub(crate) fn disks_in(extents: &[Extent]) -> Vec<u32> {
    let mut disks: Vec<u32> = extents.iter().map(|e| e.disk).collect();
    disks.sort_unstable();
    disks.dedup();
    disks
}

/// A part of the running system that makes the disk holding it a system disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SystemPart {
    /// The Windows directory, on the volume mounted at this mount point (`C:\`).
    Windows(String),
    /// The running program.
    RunningProgram(PathBuf),
    /// The user's profile folder.
    UserProfile(PathBuf),
    /// A folder every program relies on: ProgramData, Program Files.
    ProgramFolder(PathBuf),
    /// A page file in use.
    PageFile(String),
    /// The partition Windows boots from (the EFI system partition, or "System
    /// Reserved"), by its NT device name; it may sit on another disk than Windows.
    BootPartition(String),
}

impl SystemPart {
    /// The sentence shown to the user.
    pub(crate) fn reason(&self) -> String {
        match self {
            Self::Windows(mount) => format!("Windows is installed on {mount}"),
            Self::RunningProgram(exe) => format!("the running program {} is stored on it", exe.display()),
            Self::UserProfile(dir) => format!("the user profile {} is stored on it", dir.display()),
            Self::ProgramFolder(dir) => format!("{} is stored on it", dir.display()),
            Self::PageFile(file) => format!("the page file {file} is on it"),
            Self::BootPartition(device) => format!("the partition Windows boots from ({device}) is on it"),
        }
    }
}

/// The folders in the environment that belong to the running system: the user
/// profile, ProgramData and Program Files (both of them on 64-bit Windows), each once.
pub(crate) fn system_folders(var: impl Fn(&str) -> Option<String>) -> Vec<SystemPart> {
    let mut parts: Vec<SystemPart> = Vec::new();
    let found = |name: &str| var(name).filter(|v| !v.trim().is_empty()).map(PathBuf::from);
    if let Some(dir) = found("USERPROFILE") {
        parts.push(SystemPart::UserProfile(dir));
    }
    for name in ["ProgramData", "ProgramFiles", "ProgramW6432", "ProgramFiles(x86)"] {
        let Some(dir) = found(name) else { continue };
        let part = SystemPart::ProgramFolder(dir);
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts
}

/// The page files of the registry's `ExistingPageFiles` list (`\??\C:\pagefile.sys`)
/// as Win32 paths (`C:\pagefile.sys`); entries without a drive letter are left out.
pub(crate) fn page_files(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| entry.trim())
        .map(|entry| entry.strip_prefix(r"\??\").unwrap_or(entry))
        .filter(|path| {
            let bytes = path.as_bytes();
            bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && bytes[2] == b'\\'
        })
        .map(str::to_owned)
        .collect()
}

/// The name `QueryDosDeviceW` takes for a volume: `Volume{GUID}` of `\\?\Volume{GUID}\`.
pub(crate) fn dos_device_name(guid_path: &str) -> Option<&str> {
    volume_device_path(guid_path)
        .strip_prefix(r"\\?\")
        .filter(|name| name.starts_with("Volume{"))
}

/// Something of the running system and the disks it is stored on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SystemHolder {
    /// The sentence shown to the user: "Windows is installed on C:\".
    pub(crate) reason: String,
    /// The disks holding it.
    pub(crate) disks: Vec<u32>,
}

impl SystemHolder {
    /// `part`, stored on `disks`.
    pub(crate) fn new(part: &SystemPart, disks: Vec<u32>) -> Self {
        Self {
            reason: part.reason(),
            disks,
        }
    }
}

/// Why `disk` belongs to the running system, every reason joined; `None` when it does not.
pub(crate) fn system_reason(disk: u32, holders: &[SystemHolder]) -> Option<String> {
    let mut reasons: Vec<&str> = Vec::new();
    for holder in holders.iter().filter(|h| h.disks.contains(&disk)) {
        if !reasons.contains(&holder.reason.as_str()) {
            reasons.push(&holder.reason);
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The volumes of `disk` that still need locking: every volume with an extent on
/// it whose GUID path is not among `held`. Run again after the layout is deleted,
/// because Windows then shows an empty removable disk as a new volume of its own
/// (and Explorer offers to format it: Etcher #2308).
pub(crate) fn volumes_to_lock<'a>(volumes: &'a [Volume], disk: u32, held: &[String]) -> Vec<&'a Volume> {
    volumes
        .iter()
        .filter(|v| v.extents.iter().any(|e| e.disk == disk))
        .filter(|v| !held.iter().any(|h| h.eq_ignore_ascii_case(&v.guid_path)))
        .collect()
}

/// The mount points to remove from a locked volume. On a removable disk, all:
/// a volume without a drive letter is one Explorer does not poll, so it cannot
/// ask to format the half-written disk, and Windows gives removable media a
/// letter again when they arrive. On a fixed disk, none: the Mount Manager keeps
/// that binding, and removing it would leave the disk without its letter for
/// good (Raspberry Pi Imager #1665); the held lock keeps it unmounted instead.
pub(crate) fn mount_points_to_remove(volume: &Volume, removable: bool) -> &[String] {
    if removable { &volume.mount_points } else { &[] }
}

/// Whether opening or locking failed only because something else has the disk
/// or volume open right now, so trying again later may succeed.
pub(crate) fn is_sharing_conflict(code: Option<i32>) -> bool {
    matches!(code, Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION))
}

/// The share mode for opening a disk: while writing, others may only read (Rufus
/// and Raspberry Pi Imager hold the disk this way, so Windows cannot mount a
/// partition mid-write); while reading it back, anyone may share it.
pub(crate) fn disk_share_mode(write: bool) -> u32 {
    if write { SHARE_READ } else { SHARE_READ | SHARE_WRITE }
}

/// What to do when `IOCTL_DISK_DELETE_DRIVE_LAYOUT` fails with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailedDeletion {
    /// "Invalid function" or "not found": the disk has no partition table to delete
    /// (Raspberry Pi Imager reads these two the same way).
    NoTable,
    /// Anything else: zero the table's places at both ends of the disk ourselves,
    /// as Rufus does, so no old partition is found while the image is written.
    ZeroHeadAndTail,
}

/// How to answer a failed layout deletion (its Win32 error code).
pub(crate) fn after_failed_deletion(code: Option<i32>) -> FailedDeletion {
    match code {
        Some(ERROR_INVALID_FUNCTION | ERROR_FILE_NOT_FOUND | ERROR_NOT_FOUND) => FailedDeletion::NoTable,
        _ => FailedDeletion::ZeroHeadAndTail,
    }
}

/// How much is zeroed at each end of a disk whose layout could not be deleted:
/// the MBR, a GPT header with its partition entries (the backup ones sit at the
/// end) and the boot sector of a partitionless FAT or NTFS stick, whatever the
/// sector size.
pub(crate) const CLEARED_AT_EACH_END: u64 = 1 << 20;

/// The `(offset, length)` ranges to zero on a disk of `capacity` bytes: its first
/// and last [`CLEARED_AT_EACH_END`] bytes, one range when they meet. Both stay
/// whole sectors, since `capacity` is.
pub(crate) fn head_and_tail(capacity: u64) -> Vec<(u64, u64)> {
    if capacity <= 2 * CLEARED_AT_EACH_END {
        return vec![(0, capacity)];
    }
    vec![
        (0, CLEARED_AT_EACH_END),
        (capacity - CLEARED_AT_EACH_END, CLEARED_AT_EACH_END),
    ]
}

/// `\\.\PhysicalDriveN`, the path the engine opens.
pub(crate) fn physical_drive_path(disk: u32) -> PathBuf {
    PathBuf::from(format!(r"\\.\PhysicalDrive{disk}"))
}

/// `PhysicalDriveN`, the name a user types to confirm.
pub(crate) fn physical_drive_name(disk: u32) -> String {
    format!("PhysicalDrive{disk}")
}

/// The N of `\\.\PhysicalDriveN` or `PhysicalDriveN`, in any case.
pub(crate) fn physical_drive_number(path: &Path) -> Option<u32> {
    let text = path.to_str()?;
    let name = text
        .strip_prefix(r"\\.\")
        .or_else(|| text.strip_prefix(r"\\?\"))
        .unwrap_or(text);
    let prefix = "physicaldrive";
    let head = name.get(..prefix.len())?;
    let digits = &name[prefix.len()..];
    if !head.eq_ignore_ascii_case(prefix) || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The drive's id: its serial number where the device reports one, which
/// survives re-plugging into another port, else its name.
pub(crate) fn drive_id(name: &str, serial: Option<&str>) -> String {
    serial.map_or_else(|| name.to_owned(), |s| format!("{name}:{s}"))
}

/// Splits the `REG_MULTI_SZ`-style list `GetVolumePathNamesForVolumeNameW` returns.
pub(crate) fn split_multi_sz(buf: &[u16]) -> Vec<String> {
    buf.split(|&c| c == 0)
        .take_while(|s| !s.is_empty())
        .map(String::from_utf16_lossy)
        .collect()
}

/// The string before the first NUL of a fixed-size wide buffer.
pub(crate) fn from_wide(buf: &[u16]) -> String {
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    String::from_utf16_lossy(&buf[..end])
}

/// A cheap summary of the machine's drives for the watcher: the logical-drive
/// bitmask (drive letters come and go with volumes) and each openable
/// `PhysicalDriveN` with its size (`None` when it has no medium).
pub(crate) fn fingerprint_of(logical_drives: u32, disks: &[(u32, Option<u64>)]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    logical_drives.hash(&mut hasher);
    disks.hash(&mut hasher);
    hasher.finish()
}

/// Maps an error from opening or locking `path` to the [`DriveError`] that tells the user what to do.
pub(crate) fn open_error(path: &Path, error: io::Error) -> DriveError {
    match error.raw_os_error() {
        Some(ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND) => DriveError::NotFound(path.to_path_buf()),
        Some(ERROR_ACCESS_DENIED) => DriveError::PermissionDenied(path.to_path_buf()),
        Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION) => DriveError::Busy(path.to_path_buf()),
        Some(ERROR_WRITE_PROTECT) => DriveError::ReadOnly(path.to_path_buf()),
        Some(ERROR_NOT_READY) => io_error(
            path,
            io::Error::other("no medium in the drive (insert a card or stick)"),
        ),
        _ => io_error(path, error),
    }
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn read_i32(buf: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

fn read_i64(buf: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(buf.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Lays out a STORAGE_DEVICE_DESCRIPTOR the way storport/usbstor fill it in.
    fn descriptor(
        removable: bool,
        bus_type: i32,
        vendor: Option<&str>,
        product: Option<&str>,
        serial: Option<&str>,
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 40]; // sizeof(STORAGE_DEVICE_DESCRIPTOR), RawDeviceProperties padded
        buf[0..4].copy_from_slice(&1u32.to_le_bytes()); // Version (= sizeof on real systems; unused)
        buf[8] = 0; // DeviceType: DIRECT_ACCESS_DEVICE
        buf[10] = u8::from(removable);
        buf[11] = 1; // CommandQueueing
        let put = |field: usize, text: Option<&str>, buf: &mut Vec<u8>| {
            if let Some(text) = text {
                let offset = u32::try_from(buf.len()).unwrap();
                buf.extend_from_slice(text.as_bytes());
                buf.push(0);
                buf[field..field + 4].copy_from_slice(&offset.to_le_bytes());
            }
        };
        put(12, vendor, &mut buf);
        put(16, product, &mut buf);
        put(20, Some("1.00"), &mut buf);
        put(24, serial, &mut buf);
        buf[28..32].copy_from_slice(&bus_type.to_le_bytes());
        let size = u32::try_from(buf.len()).unwrap();
        buf[4..8].copy_from_slice(&size.to_le_bytes());
        buf
    }

    #[test]
    fn a_usb_stick_descriptor_is_read() {
        let buf = descriptor(
            true,
            7,
            Some("SanDisk "),
            Some("Cruzer Blade    "),
            Some("4C530001230705117183"),
        );
        let info = parse_device_descriptor(&buf).unwrap();
        assert_eq!(
            info,
            DescriptorInfo {
                vendor: Some("SanDisk".into()),
                product: Some("Cruzer Blade".into()),
                serial: Some("4C530001230705117183".into()),
                bus: Bus::Usb,
                removable: true,
            }
        );
    }

    #[test]
    fn an_nvme_descriptor_without_vendor_is_read() {
        // NVMe disks report no vendor (offset 0) and the model as the product.
        let buf = descriptor(
            false,
            17,
            None,
            Some("Samsung SSD 980 PRO 1TB"),
            Some("S5GXNF0R123456A"),
        );
        let info = parse_device_descriptor(&buf).unwrap();
        assert_eq!(info.vendor, None);
        assert_eq!(info.product.as_deref(), Some("Samsung SSD 980 PRO 1TB"));
        assert_eq!(info.bus, Bus::Nvme);
        assert!(!info.removable);
    }

    #[test]
    fn blank_and_zero_serials_are_dropped() {
        let zeros = descriptor(true, 12, Some("Generic"), Some("SD/MMC"), Some("000000000000"));
        assert_eq!(parse_device_descriptor(&zeros).unwrap().serial, None);
        let blank = descriptor(true, 12, Some("Generic"), Some("SD/MMC"), Some("    "));
        assert_eq!(parse_device_descriptor(&blank).unwrap().serial, None);
        assert_eq!(parse_device_descriptor(&blank).unwrap().bus, Bus::Sd);
    }

    #[test]
    fn a_truncated_descriptor_keeps_what_fits() {
        let full = descriptor(
            true,
            7,
            Some("Kingston"),
            Some("DataTraveler 3.0"),
            Some("E0D55EA574F2"),
        );
        assert_eq!(parse_device_descriptor(&full[..20]), None);
        // Only the header arrived (the first call of the two-call pattern): no strings, the rest is there.
        let header = parse_device_descriptor(&full[..40]).unwrap();
        assert_eq!((header.vendor, header.product, header.bus), (None, None, Bus::Usb));
        // A string cut by the buffer's end is kept up to the end.
        let cut = parse_device_descriptor(&full[..44]).unwrap();
        assert_eq!(cut.vendor.as_deref(), Some("King"));
    }

    #[test]
    fn offsets_outside_the_descriptor_are_ignored() {
        let mut buf = descriptor(false, 11, Some("ATA"), Some("WDC WD10EZEX"), None);
        buf[16..20].copy_from_slice(&5000u32.to_le_bytes()); // ProductIdOffset past the end
        buf[12..16].copy_from_slice(&8u32.to_le_bytes()); // VendorIdOffset into the header
        let info = parse_device_descriptor(&buf).unwrap();
        assert_eq!((info.vendor, info.product), (None, None));
        assert_eq!(info.bus, Bus::Sata);
    }

    #[test]
    fn bus_types_map_to_buses() {
        let cases = [
            (7, Bus::Usb),
            (12, Bus::Sd),
            (13, Bus::Sd),
            (17, Bus::Nvme),
            (11, Bus::Sata),
            (3, Bus::Sata),
            (10, Bus::Sata),
            (1, Bus::Scsi),
            (14, Bus::Virtual),
            (15, Bus::Virtual),
            (0, Bus::Other),
            (8, Bus::Other),
        ];
        for (bus_type, bus) in cases {
            assert_eq!(bus_from_storage_bus_type(bus_type), bus, "bus type {bus_type}");
        }
    }

    #[test]
    fn the_property_query_is_laid_out_like_the_struct() {
        assert_eq!(
            property_query(STORAGE_ACCESS_ALIGNMENT_PROPERTY),
            [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(property_query(STORAGE_DEVICE_PROPERTY), [0; 12]);
    }

    fn extents_buffer(extents: &[(u32, i64, i64)]) -> Vec<u8> {
        let mut buf = vec![0u8; disk_extents_len(extents.len())];
        buf[0..4].copy_from_slice(&u32::try_from(extents.len()).unwrap().to_le_bytes());
        for (i, &(disk, offset, length)) in extents.iter().enumerate() {
            let at = 8 + i * 24;
            buf[at..at + 4].copy_from_slice(&disk.to_le_bytes());
            buf[at + 4..at + 8].copy_from_slice(&[0xcc; 4]); // padding is garbage on real systems
            buf[at + 8..at + 16].copy_from_slice(&offset.to_le_bytes());
            buf[at + 16..at + 24].copy_from_slice(&length.to_le_bytes());
        }
        buf
    }

    #[test]
    fn disk_extents_are_read() {
        let buf = extents_buffer(&[(2, 1_048_576, 4_000_000_000), (3, 65_536, 1_000)]);
        assert_eq!(
            parse_disk_extents(&buf),
            vec![
                Extent {
                    disk: 2,
                    offset: 1_048_576,
                    length: 4_000_000_000
                },
                Extent {
                    disk: 3,
                    offset: 65_536,
                    length: 1_000
                },
            ]
        );
        // A count larger than what arrived (ERROR_MORE_DATA) yields only what is there.
        let mut short = buf.clone();
        short[0..4].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(parse_disk_extents(&short).len(), 2);
        assert!(parse_disk_extents(&[1, 0]).is_empty());
    }

    #[test]
    fn geometry_and_alignment_are_read() {
        let mut geometry = vec![0u8; 32];
        geometry[0..8].copy_from_slice(&1_946i64.to_le_bytes()); // Cylinders
        geometry[8..12].copy_from_slice(&12i32.to_le_bytes()); // MediaType FixedMedia
        geometry[12..16].copy_from_slice(&255u32.to_le_bytes());
        geometry[16..20].copy_from_slice(&63u32.to_le_bytes());
        geometry[20..24].copy_from_slice(&512u32.to_le_bytes());
        geometry[24..32].copy_from_slice(&16_008_609_792i64.to_le_bytes());
        assert_eq!(parse_geometry_ex(&geometry), Some((512, 16_008_609_792)));
        assert_eq!(parse_geometry_ex(&geometry[..24]), None);

        let mut alignment = vec![0u8; 28];
        alignment[16..20].copy_from_slice(&512u32.to_le_bytes()); // BytesPerLogicalSector
        alignment[20..24].copy_from_slice(&4096u32.to_le_bytes()); // BytesPerPhysicalSector
        assert_eq!(parse_physical_sector(&alignment), Some(4096));
        assert_eq!(parse_physical_sector(&[0; 28]), None);
    }

    fn volume(guid: &str, extents: &[(u32, u64, u64)], mounts: &[&str]) -> Volume {
        Volume {
            guid_path: format!(r"\\?\Volume{{{guid}}}\"),
            extents: extents
                .iter()
                .map(|&(disk, offset, length)| Extent { disk, offset, length })
                .collect(),
            mount_points: mounts.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    #[test]
    fn a_volume_whose_extents_add_up_past_u64_has_the_largest_size() {
        // Found by fuzzing (fuzz/artifacts/windows_buffers): the sum of the extents'
        // lengths on one disk overflowed.
        let huge = i64::MAX.unsigned_abs();
        let spanned = volume("c", &[(1, 0, huge), (1, huge, huge), (1, 2 * huge, 2)], &[]);
        assert_eq!(volumes_by_disk(&[spanned])[&1][0].size, u64::MAX);
    }

    #[test]
    fn volumes_are_grouped_by_disk_in_disk_order() {
        let volumes = [
            volume("c", &[(0, 106_954_752, 500_000_000_000)], &["C:\\"]),
            volume("esp", &[(0, 1_048_576, 104_857_600)], &[]),
            volume("usb2", &[(2, 269_484_032, 7_000_000_000)], &["F:\\", "C:\\mnt\\usb\\"]),
            volume("usb1", &[(2, 1_048_576, 268_435_456)], &["E:\\"]),
            volume(
                "span",
                &[(3, 1_048_576, 1_000), (4, 1_048_576, 2_000), (3, 9_000_000, 500)],
                &["G:\\"],
            ),
            volume("cdrom", &[], &["D:\\"]),
        ];
        let by_disk = volumes_by_disk(&volumes);
        assert_eq!(by_disk.keys().copied().collect::<Vec<_>>(), vec![0, 2, 3, 4]);

        let disk0: Vec<_> = by_disk[&0].iter().map(|p| p.path.clone()).collect();
        assert_eq!(
            disk0,
            vec![PathBuf::from(r"\\?\Volume{esp}"), PathBuf::from(r"\\?\Volume{c}")]
        );

        let usb = &by_disk[&2];
        assert_eq!(usb[0].mount_points, vec![PathBuf::from("E:\\")]);
        assert_eq!(usb[1].size, 7_000_000_000);
        assert_eq!(
            usb[1].mount_points,
            vec![PathBuf::from("F:\\"), PathBuf::from("C:\\mnt\\usb\\")]
        );
        assert!(usb.iter().all(|p| !p.swap));

        assert_eq!(by_disk[&3][0].size, 1_500);
        assert_eq!(by_disk[&4][0].size, 2_000);
        assert_eq!(disks_in(&volumes[4].extents), vec![3, 4]);
    }

    #[test]
    fn volumes_are_named_by_letter_else_by_guid() {
        assert_eq!(volume_label(&volume("a", &[], &["E:\\"])), "E:\\");
        assert_eq!(volume_label(&volume("a", &[], &[])), r"\\?\Volume{a}");
        assert_eq!(volume_device_path(r"\\?\Volume{a}\"), r"\\?\Volume{a}");
        assert_eq!(volume_device_path(r"\\?\Volume{a}"), r"\\?\Volume{a}");
    }

    #[test]
    fn the_system_disk_says_why() {
        let holders = [
            SystemHolder::new(&SystemPart::Windows("C:\\".into()), vec![0]),
            SystemHolder::new(
                &SystemPart::RunningProgram(PathBuf::from(r"D:\tools\graver.exe")),
                vec![1],
            ),
            SystemHolder::new(&SystemPart::Windows("C:\\".into()), vec![0]),
        ];
        assert_eq!(
            system_reason(0, &holders).as_deref(),
            Some("Windows is installed on C:\\")
        );
        assert_eq!(
            system_reason(1, &holders).as_deref(),
            Some(r"the running program D:\tools\graver.exe is stored on it")
        );
        assert_eq!(system_reason(2, &holders), None);

        let both = [
            SystemHolder::new(&SystemPart::Windows("C:\\".into()), vec![0]),
            SystemHolder::new(&SystemPart::RunningProgram(PathBuf::from(r"C:\graver.exe")), vec![0]),
        ];
        assert_eq!(
            system_reason(0, &both).as_deref(),
            Some(r"Windows is installed on C:\; the running program C:\graver.exe is stored on it")
        );
    }

    #[test]
    fn profiles_program_folders_page_files_and_the_boot_partition_make_system_disks() {
        // Windows on disk 0, booted from an EFI partition on disk 1, the profile moved
        // to disk 2, a page file on disk 3; disk 4 is the stick.
        let holders = [
            SystemHolder::new(&SystemPart::Windows("C:\\".into()), vec![0]),
            SystemHolder::new(&SystemPart::BootPartition(r"\Device\HarddiskVolume1".into()), vec![1]),
            SystemHolder::new(&SystemPart::UserProfile(PathBuf::from(r"E:\Users\ana")), vec![2]),
            SystemHolder::new(&SystemPart::ProgramFolder(PathBuf::from(r"E:\ProgramData")), vec![2]),
            SystemHolder::new(&SystemPart::PageFile(r"F:\pagefile.sys".into()), vec![3]),
        ];
        assert_eq!(
            system_reason(1, &holders).as_deref(),
            Some(r"the partition Windows boots from (\Device\HarddiskVolume1) is on it")
        );
        assert_eq!(
            system_reason(2, &holders).as_deref(),
            Some(r"the user profile E:\Users\ana is stored on it; E:\ProgramData is stored on it")
        );
        assert_eq!(
            system_reason(3, &holders).as_deref(),
            Some(r"the page file F:\pagefile.sys is on it")
        );
        assert_eq!(system_reason(4, &holders), None);
    }

    #[test]
    fn system_folders_come_from_the_environment_once_each() {
        let env = |name: &str| {
            match name {
                "USERPROFILE" => Some(r"C:\Users\ana"),
                "ProgramData" => Some(r"C:\ProgramData"),
                "ProgramFiles" | "ProgramW6432" => Some(r"C:\Program Files"),
                "ProgramFiles(x86)" => Some(r"D:\Program Files (x86)"),
                _ => None,
            }
            .map(str::to_owned)
        };
        assert_eq!(
            system_folders(env),
            vec![
                SystemPart::UserProfile(PathBuf::from(r"C:\Users\ana")),
                SystemPart::ProgramFolder(PathBuf::from(r"C:\ProgramData")),
                SystemPart::ProgramFolder(PathBuf::from(r"C:\Program Files")),
                SystemPart::ProgramFolder(PathBuf::from(r"D:\Program Files (x86)")),
            ]
        );
        let sparse = |name: &str| (name == "ProgramData").then(|| "  ".to_owned());
        assert!(system_folders(sparse).is_empty(), "blank values name no folder");
    }

    #[test]
    fn page_files_are_read_from_the_registry_list() {
        let entries = [
            r"\??\C:\pagefile.sys".to_owned(),
            r"\??\D:\swap\pagefile.sys ".to_owned(),
            r"?:\pagefile.sys".to_owned(),
            String::new(),
        ];
        assert_eq!(page_files(&entries), vec![r"C:\pagefile.sys", r"D:\swap\pagefile.sys"]);
    }

    #[test]
    fn volumes_are_named_for_query_dos_device() {
        assert_eq!(
            dos_device_name(r"\\?\Volume{1b2c3d4e-0000-0000-0000-100000000000}\"),
            Some("Volume{1b2c3d4e-0000-0000-0000-100000000000}")
        );
        assert_eq!(dos_device_name(r"C:\"), None);
    }

    #[test]
    fn every_volume_of_the_disk_is_locked_once() {
        let volumes = [
            volume("c", &[(0, 106_954_752, 500_000_000_000)], &["C:\\"]),
            volume("usb1", &[(2, 1_048_576, 268_435_456)], &["E:\\"]),
            volume("usb2", &[(2, 269_484_032, 7_000_000_000)], &["F:\\"]),
            volume("span", &[(3, 1_048_576, 1_000), (2, 9_000_000_000, 500)], &[]),
        ];
        let guids = |found: Vec<&Volume>| found.iter().map(|v| v.guid_path.clone()).collect::<Vec<_>>();
        let first = guids(volumes_to_lock(&volumes, 2, &[]));
        assert_eq!(
            first,
            [r"\\?\Volume{usb1}\", r"\\?\Volume{usb2}\", r"\\?\Volume{span}\"]
        );
        // After the layout is deleted only the volume Windows made of the empty disk is new.
        let after = [
            volume("usb1", &[(2, 1_048_576, 268_435_456)], &["E:\\"]),
            volume("raw", &[(2, 0, 8_000_000_000)], &["G:\\"]),
        ];
        let held: Vec<String> = first.iter().map(|g| g.to_uppercase()).collect();
        assert_eq!(guids(volumes_to_lock(&after, 2, &held)), [r"\\?\Volume{raw}\"]);
        assert!(volumes_to_lock(&volumes, 5, &[]).is_empty());
    }

    #[test]
    fn mount_points_go_only_from_removable_disks() {
        let stick = volume("usb", &[(2, 1_048_576, 1_000)], &["E:\\", "C:\\mnt\\usb\\"]);
        assert_eq!(mount_points_to_remove(&stick, true), ["E:\\", "C:\\mnt\\usb\\"]);
        assert!(mount_points_to_remove(&stick, false).is_empty());
    }

    #[test]
    fn the_disk_is_shared_for_reading_only_while_written() {
        assert_eq!(disk_share_mode(true), SHARE_READ);
        assert_eq!(disk_share_mode(false), SHARE_READ | SHARE_WRITE);
        assert!(is_sharing_conflict(Some(ERROR_SHARING_VIOLATION)));
        assert!(is_sharing_conflict(Some(ERROR_LOCK_VIOLATION)));
        assert!(!is_sharing_conflict(Some(ERROR_ACCESS_DENIED)));
        assert!(!is_sharing_conflict(Some(ERROR_FILE_NOT_FOUND)));
        assert!(!is_sharing_conflict(None));
    }

    #[test]
    fn a_failed_layout_deletion_is_answered() {
        for code in [ERROR_INVALID_FUNCTION, ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND] {
            assert_eq!(after_failed_deletion(Some(code)), FailedDeletion::NoTable, "{code}");
        }
        const ERROR_IO_DEVICE: i32 = 1117;
        for code in [Some(ERROR_IO_DEVICE), Some(ERROR_ACCESS_DENIED), None] {
            assert_eq!(after_failed_deletion(code), FailedDeletion::ZeroHeadAndTail, "{code:?}");
        }
    }

    #[test]
    fn head_and_tail_cover_both_partition_tables() {
        const MIB: u64 = 1 << 20;
        // A card of 512-byte sectors that is not whole 4096-byte blocks.
        let capacity = 15_931_539_456 + 512;
        let ranges = head_and_tail(capacity);
        assert_eq!(ranges, vec![(0, MIB), (capacity - MIB, MIB)]);
        assert!(ranges.iter().all(|&(offset, len)| offset % 512 == 0 && len % 512 == 0));
        // The GPT backup (the last 33 sectors) and the MBR are inside.
        assert!(ranges[1].0 <= capacity - 33 * 512);
        assert_eq!(head_and_tail(2 * MIB), vec![(0, 2 * MIB)]);
        assert_eq!(head_and_tail(MIB + 512), vec![(0, MIB + 512)]);
    }

    #[test]
    fn ioctl_codes_are_built_like_winioctl() {
        // IOCTL_DISK_GET_DRIVE_GEOMETRY_EX and IOCTL_STORAGE_EJECT_MEDIA, as windows-sys has them.
        assert_eq!(ctl_code(0x07, 0x0028, 0, 0), 0x0007_00A0);
        assert_eq!(ctl_code(0x2D, 0x0202, 0, 1), 0x002D_4808);
        assert_eq!(IOCTL_DISK_ARE_VOLUMES_READY, 0x0007_421C);
    }

    #[test]
    fn physical_drive_names_round_trip() {
        assert_eq!(physical_drive_path(2), PathBuf::from(r"\\.\PhysicalDrive2"));
        assert_eq!(physical_drive_name(12), "PhysicalDrive12");
        assert_eq!(physical_drive_number(&physical_drive_path(7)), Some(7));
        assert_eq!(physical_drive_number(Path::new(r"\\.\physicaldrive3")), Some(3));
        assert_eq!(physical_drive_number(Path::new("PhysicalDrive10")), Some(10));
        assert_eq!(physical_drive_number(Path::new(r"\\.\PhysicalDrive")), None);
        assert_eq!(physical_drive_number(Path::new(r"\\.\PhysicalDrive1x")), None);
        assert_eq!(physical_drive_number(Path::new(r"\\.\C:")), None);
        assert_eq!(physical_drive_number(Path::new("é")), None);
    }

    #[test]
    fn ids_name_the_drive_and_its_serial() {
        assert_eq!(drive_id("PhysicalDrive2", Some("4C5300")), "PhysicalDrive2:4C5300");
        assert_eq!(drive_id("PhysicalDrive2", None), "PhysicalDrive2");
    }

    #[test]
    fn wide_strings_are_split() {
        let wide = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let mut list = wide("C:\\\0D:\\mnt\\\0\0");
        list.extend([0, 0]); // the rest of the buffer
        assert_eq!(split_multi_sz(&list), vec!["C:\\".to_owned(), "D:\\mnt\\".to_owned()]);
        assert!(split_multi_sz(&[0, 0]).is_empty());
        assert!(split_multi_sz(&[]).is_empty());
        assert_eq!(from_wide(&wide("C:\\Windows\0garbage")), "C:\\Windows");
        assert_eq!(from_wide(&wide("no nul")), "no nul");
    }

    #[test]
    fn the_fingerprint_changes_with_letters_disks_and_media() {
        let base = fingerprint_of(0b100, &[(0, Some(500)), (1, None)]);
        assert_eq!(base, fingerprint_of(0b100, &[(0, Some(500)), (1, None)]));
        assert_ne!(base, fingerprint_of(0b110, &[(0, Some(500)), (1, None)]));
        assert_ne!(base, fingerprint_of(0b100, &[(0, Some(500)), (1, Some(64))]));
        assert_ne!(base, fingerprint_of(0b100, &[(0, Some(500))]));
        assert_ne!(base, fingerprint_of(0b100, &[(0, Some(500)), (2, None)]));
    }

    #[test]
    fn win32_errors_become_drive_errors() {
        let path = Path::new(r"\\.\PhysicalDrive2");
        let err = |code| open_error(path, io::Error::from_raw_os_error(code));
        assert!(matches!(err(ERROR_FILE_NOT_FOUND), DriveError::NotFound(_)));
        assert!(matches!(err(ERROR_PATH_NOT_FOUND), DriveError::NotFound(_)));
        assert!(matches!(err(ERROR_ACCESS_DENIED), DriveError::PermissionDenied(_)));
        assert!(matches!(err(ERROR_SHARING_VIOLATION), DriveError::Busy(_)));
        assert!(matches!(err(ERROR_LOCK_VIOLATION), DriveError::Busy(_)));
        assert!(matches!(err(ERROR_WRITE_PROTECT), DriveError::ReadOnly(_)));
        let not_ready = err(ERROR_NOT_READY).to_string();
        assert!(not_ready.contains("no medium"), "{not_ready}");
        assert!(matches!(err(1117), DriveError::Io { .. }));
    }
}
