//! Windows: `\\.\PhysicalDriveN` through `DeviceIoControl`, the way Rufus and Etcher do it.
//!
//! Listing needs no administrator rights: every query here is one Windows
//! allows on a handle opened with no access at all. Writing does: `prepare`
//! locks and dismounts every volume on the disk (keeping the locks until the
//! [`Target`] is dropped, so Windows cannot mount them again mid-write),
//! deletes the drive layout, and opens the disk unbuffered and write-through.
//! The decisions (parsing, mapping volumes to disks, error mapping) are in
//! `windows_map`, where they are unit-tested on every OS.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::time::Duration;

use windows_sys::Win32::Foundation::{INVALID_HANDLE_VALUE, MAX_PATH};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_NO_BUFFERING, FILE_FLAG_WRITE_THROUGH, FILE_SHARE_READ, FILE_SHARE_WRITE, FindFirstVolumeW,
    FindNextVolumeW, FindVolumeClose, GetLogicalDrives, GetVolumeNameForVolumeMountPointW, GetVolumePathNameW,
    GetVolumePathNamesForVolumeNameW, IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS,
};
use windows_sys::Win32::System::IO::DeviceIoControl;
use windows_sys::Win32::System::Ioctl::{
    FSCTL_DISMOUNT_VOLUME, FSCTL_LOCK_VOLUME, IOCTL_DISK_DELETE_DRIVE_LAYOUT, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX,
    IOCTL_DISK_GET_LENGTH_INFO, IOCTL_DISK_IS_WRITABLE, IOCTL_DISK_UPDATE_PROPERTIES, IOCTL_STORAGE_EJECT_MEDIA,
    IOCTL_STORAGE_QUERY_PROPERTY,
};
use windows_sys::Win32::System::SystemInformation::GetWindowsDirectoryW;

use crate::windows_map::{self, DescriptorInfo, ERROR_MORE_DATA, ERROR_WRITE_PROTECT, SystemHolder, Volume};
use crate::{Bus, Drive, DriveError, Ejected, Target, io_error, size_by_seek};

/// How many `PhysicalDriveN` numbers `list` tries; numbers have gaps after a drive is unplugged.
const MAX_DISKS: u32 = 64;
/// How many the watcher's fingerprint looks at on every tick.
const FINGERPRINT_DISKS: u32 = 32;
/// How often and how long `prepare` tries to lock a volume that Explorer or an indexer still touches.
const LOCK_TRIES: u32 = 20;
const LOCK_RETRY: Duration = Duration::from_millis(100);

pub(crate) fn list() -> Result<Vec<Drive>, DriveError> {
    let volumes = volumes();
    let mut partitions = windows_map::volumes_by_disk(&volumes);
    let holders = system_holders(&volumes);
    let mut drives = Vec::new();
    for disk in 0..MAX_DISKS {
        let path = windows_map::physical_drive_path(disk);
        let Ok(handle) = open_for_queries(&path) else {
            continue;
        };
        let Some((logical, size)) = geometry(&handle) else {
            // A card reader without a card: nothing to write to until one is inserted.
            continue;
        };
        let info = device_descriptor(&handle).unwrap_or(DescriptorInfo {
            vendor: None,
            product: None,
            serial: None,
            bus: Bus::Other,
            removable: false,
        });
        let name = windows_map::physical_drive_name(disk);
        drives.push(Drive {
            id: windows_map::drive_id(&name, info.serial.as_deref()),
            path,
            name,
            size,
            vendor: info.vendor,
            model: info.product,
            bus: info.bus,
            removable: info.removable,
            read_only: is_write_protected(&handle),
            logical_block_size: logical,
            physical_block_size: physical_sector(&handle).unwrap_or(logical),
            partitions: partitions.remove(&disk).unwrap_or_default(),
            system: windows_map::system_reason(disk, &holders),
        });
    }
    Ok(drives)
}

pub(crate) fn drive_holding(path: &Path) -> Option<String> {
    let (_, volume) = volume_of(path)?;
    let disk = *volume_extents(&volume).first()?;
    Some(windows_map::physical_drive_name(disk.disk))
}

pub(crate) fn prepare(drive: &Drive) -> Result<Target, DriveError> {
    let disk = windows_map::physical_drive_number(&drive.path).ok_or_else(|| DriveError::NotWritable {
        path: drive.path.clone(),
        kind: "not a \\\\.\\PhysicalDriveN path",
    })?;
    check_still_the_listed_drive(drive)?;
    let mut locks = Vec::new();
    for volume in volumes()
        .iter()
        .filter(|v| windows_map::disks_in(&v.extents).contains(&disk))
    {
        locks.push(lock_and_dismount(volume)?);
    }
    let target = open_device(&drive.path, true)?;
    // Without a layout Windows has no partitions to mount again while the image is written.
    ioctl(target.file(), IOCTL_DISK_DELETE_DRIVE_LAYOUT, &[], &mut []).map_err(|e| io_error(&drive.path, e))?;
    // Refresh the driver's view of the now empty disk; if this fails the write still proceeds.
    let _ = ioctl(target.file(), IOCTL_DISK_UPDATE_PROPERTIES, &[], &mut []);
    Ok(target.with_guard(locks))
}

pub(crate) fn eject(drive: &Drive) -> Result<Ejected, DriveError> {
    let file = OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(&drive.path)
        .map_err(|e| windows_map::open_error(&drive.path, e))?;
    match ioctl(&file, IOCTL_STORAGE_EJECT_MEDIA, &[], &mut []) {
        Ok(_) => Ok(Ejected::Ejected),
        Err(_) if !drive.removable => Ok(Ejected::NotSupported(
            "Windows cannot eject a fixed disk; use \"Safely Remove Hardware\" before unplugging it".into(),
        )),
        Err(e) => Err(io_error(&drive.path, e)),
    }
}

pub(crate) fn open_device(path: &Path, write: bool) -> Result<Target, DriveError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .custom_flags(FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH)
        .open(path)
        .map_err(|e| windows_map::open_error(path, e))?;
    // Opening a write-protected disk for writing succeeds; only the writes would fail.
    if write && is_write_protected(&file) {
        return Err(DriveError::ReadOnly(path.to_path_buf()));
    }
    let geometry = geometry(&file);
    let capacity = match length(&file).or(geometry.map(|(_, size)| size)) {
        Some(size) => size,
        None => size_by_seek(&file).map_err(|e| io_error(path, e))?,
    };
    if capacity == 0 {
        return Err(io_error(
            path,
            io::Error::other("Windows reports no size for this drive"),
        ));
    }
    let logical = geometry.map_or(512, |(logical, _)| logical);
    Ok(Target::device(
        file,
        path,
        capacity,
        usize::try_from(logical).unwrap_or(512),
    ))
}

pub(crate) fn reread_partitions(file: &File) {
    // Failure is harmless: Windows reads the new table when the drive is next plugged in.
    let _ = ioctl(file, IOCTL_DISK_UPDATE_PROPERTIES, &[], &mut []);
}

/// Every step is `FlushFileBuffers`: Windows needs no other (see [`crate::plan::sync_steps`]).
pub(crate) fn sync_step(file: &File, _step: crate::plan::SyncStep) -> io::Result<()> {
    file.sync_data()
}

pub(crate) fn fingerprint() -> u64 {
    // SAFETY: GetLogicalDrives takes no arguments and only returns a bitmask.
    let letters = unsafe { GetLogicalDrives() };
    let disks: Vec<(u32, Option<u64>)> = (0..FINGERPRINT_DISKS)
        .filter_map(|disk| {
            let handle = open_for_queries(&windows_map::physical_drive_path(disk)).ok()?;
            Some((disk, geometry(&handle).map(|(_, size)| size)))
        })
        .collect();
    windows_map::fingerprint_of(letters, &disks)
}

/// A locked, dismounted volume; dropping it closes the handle, which releases the lock.
struct VolumeLock {
    _handle: File,
}

fn lock_and_dismount(volume: &Volume) -> Result<VolumeLock, DriveError> {
    let label = PathBuf::from(windows_map::volume_label(volume));
    let handle = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(windows_map::volume_device_path(&volume.guid_path))
        .map_err(|e| windows_map::open_error(&label, e))?;
    let mut tries = 0;
    while ioctl(&handle, FSCTL_LOCK_VOLUME, &[], &mut []).is_err() {
        tries += 1;
        if tries == LOCK_TRIES {
            return Err(DriveError::Busy(label));
        }
        std::thread::sleep(LOCK_RETRY);
    }
    ioctl(&handle, FSCTL_DISMOUNT_VOLUME, &[], &mut []).map_err(|e| io_error(&label, e))?;
    Ok(VolumeLock { _handle: handle })
}

/// The worker re-lists drives, but a drive swapped for another between listing and
/// preparing would otherwise be written: the size must still match.
fn check_still_the_listed_drive(drive: &Drive) -> Result<(), DriveError> {
    let handle = open_for_queries(&drive.path).map_err(|e| windows_map::open_error(&drive.path, e))?;
    match geometry(&handle) {
        Some((_, size)) if size == drive.size => Ok(()),
        _ => Err(io_error(
            &drive.path,
            io::Error::other("the drive changed since it was listed; list the drives again"),
        )),
    }
}

/// Opens a disk or volume with no access rights: enough for every query `list` makes,
/// and allowed without administrator rights.
fn open_for_queries(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .access_mode(0)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(path)
}

/// Sends `code` with `input`, filling `output`; returns how many bytes were written to it.
fn ioctl(handle: &impl AsRawHandle, code: u32, input: &[u8], output: &mut [u8]) -> io::Result<usize> {
    let in_len = u32::try_from(input.len()).map_err(io::Error::other)?;
    let out_len = u32::try_from(output.len()).map_err(io::Error::other)?;
    let in_ptr = if input.is_empty() {
        std::ptr::null()
    } else {
        input.as_ptr().cast()
    };
    let out_ptr = if output.is_empty() {
        std::ptr::null_mut()
    } else {
        output.as_mut_ptr().cast()
    };
    let mut returned = 0u32;
    // SAFETY: the handle is open for the whole call; the buffers are valid for the
    // lengths passed (or null with length 0); the call is synchronous (no OVERLAPPED).
    let ok = unsafe {
        DeviceIoControl(
            handle.as_raw_handle(),
            code,
            in_ptr,
            in_len,
            out_ptr,
            out_len,
            &raw mut returned,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(returned).unwrap_or(output.len()))
}

/// Logical sector size and disk size; `None` when there is no medium.
fn geometry(handle: &File) -> Option<(u32, u64)> {
    // Room for the partition and detection information that follows DISK_GEOMETRY_EX.
    let mut buf = [0u8; 256];
    let n = ioctl(handle, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX, &[], &mut buf).ok()?;
    let (logical, size) = windows_map::parse_geometry_ex(&buf[..n])?;
    (size > 0).then_some((if logical == 0 { 512 } else { logical }, size))
}

/// The exact size, which needs read access (so only on a handle opened for I/O).
fn length(handle: &File) -> Option<u64> {
    let mut buf = [0u8; 8];
    ioctl(handle, IOCTL_DISK_GET_LENGTH_INFO, &[], &mut buf).ok()?;
    u64::try_from(i64::from_le_bytes(buf)).ok()
}

fn is_write_protected(handle: &File) -> bool {
    ioctl(handle, IOCTL_DISK_IS_WRITABLE, &[], &mut []).is_err_and(|e| e.raw_os_error() == Some(ERROR_WRITE_PROTECT))
}

fn device_descriptor(handle: &File) -> Option<DescriptorInfo> {
    let query = windows_map::property_query(windows_map::STORAGE_DEVICE_PROPERTY);
    let mut buf = vec![0u8; 1024];
    let n = ioctl(handle, IOCTL_STORAGE_QUERY_PROPERTY, &query, &mut buf).ok()?;
    // The header's Size says how much the whole descriptor needs.
    let needed = buf.get(4..8).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)?;
    let needed = usize::try_from(needed).ok()?;
    if needed > buf.len() {
        buf = vec![0u8; needed];
        let n = ioctl(handle, IOCTL_STORAGE_QUERY_PROPERTY, &query, &mut buf).ok()?;
        return windows_map::parse_device_descriptor(&buf[..n]);
    }
    windows_map::parse_device_descriptor(&buf[..n])
}

/// The physical sector size, where the driver reports alignment (most USB bridges do not).
fn physical_sector(handle: &File) -> Option<u32> {
    let query = windows_map::property_query(windows_map::STORAGE_ACCESS_ALIGNMENT_PROPERTY);
    let mut buf = [0u8; 28];
    let n = ioctl(handle, IOCTL_STORAGE_QUERY_PROPERTY, &query, &mut buf).ok()?;
    windows_map::parse_physical_sector(&buf[..n])
}

/// Every volume with its extents and mount points.
fn volumes() -> Vec<Volume> {
    let mut names = Vec::new();
    let mut buf = [0u16; MAX_PATH as usize + 1];
    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    // SAFETY: `buf` is valid for `len` UTF-16 units.
    let find = unsafe { FindFirstVolumeW(buf.as_mut_ptr(), len) };
    if find == INVALID_HANDLE_VALUE {
        return Vec::new();
    }
    loop {
        names.push(windows_map::from_wide(&buf));
        // SAFETY: `find` is a live search handle; `buf` is valid for `len` units.
        if unsafe { FindNextVolumeW(find, buf.as_mut_ptr(), len) } == 0 {
            break;
        }
    }
    // SAFETY: `find` came from FindFirstVolumeW and is closed exactly once.
    unsafe { FindVolumeClose(find) };
    names
        .into_iter()
        .map(|guid_path| Volume {
            extents: volume_extents(&guid_path),
            mount_points: mount_points(&guid_path),
            guid_path,
        })
        .collect()
}

/// Where a volume lives; empty for volumes not on a disk (optical drives, no medium).
fn volume_extents(guid_path: &str) -> Vec<windows_map::Extent> {
    let Ok(handle) = open_for_queries(Path::new(windows_map::volume_device_path(guid_path))) else {
        return Vec::new();
    };
    let mut buf = vec![0u8; windows_map::disk_extents_len(4)];
    loop {
        match ioctl(&handle, IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS, &[], &mut buf) {
            Ok(n) => return windows_map::parse_disk_extents(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(ERROR_MORE_DATA) && buf.len() < 1 << 20 => {
                // The count arrived; size the buffer for all of them.
                let count = buf
                    .get(0..4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_le_bytes);
                let wanted = windows_map::disk_extents_len(usize::try_from(count).unwrap_or(0));
                buf = vec![0u8; wanted.max(buf.len() * 2)];
            }
            Err(_) => return Vec::new(),
        }
    }
}

/// The drive letters and folders a volume is mounted at.
fn mount_points(guid_path: &str) -> Vec<String> {
    let name = wide(OsStr::new(guid_path));
    let mut buf = vec![0u16; 256];
    loop {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let mut needed = 0u32;
        // SAFETY: `name` is NUL-terminated; `buf` is valid for `len` units; `needed` outlives the call.
        let ok = unsafe { GetVolumePathNamesForVolumeNameW(name.as_ptr(), buf.as_mut_ptr(), len, &raw mut needed) };
        if ok != 0 {
            return windows_map::split_multi_sz(&buf);
        }
        let error = io::Error::last_os_error().raw_os_error();
        if error != Some(ERROR_MORE_DATA) || needed as usize <= buf.len() || needed > 1 << 16 {
            return Vec::new();
        }
        buf = vec![0u16; needed as usize];
    }
}

/// The mount point (`C:\`) and volume GUID path of the volume a path is stored on.
fn volume_of(path: &Path) -> Option<(String, String)> {
    let path = std::path::absolute(path).ok()?;
    let wide_path = wide(path.as_os_str());
    let mut mount = vec![0u16; wide_path.len().max(MAX_PATH as usize) + 1];
    let len = u32::try_from(mount.len()).ok()?;
    // SAFETY: `wide_path` is NUL-terminated; `mount` is valid for `len` units.
    if unsafe { GetVolumePathNameW(wide_path.as_ptr(), mount.as_mut_ptr(), len) } == 0 {
        return None;
    }
    let mount = windows_map::from_wide(&mount);
    let mut volume = [0u16; 64];
    let mount_wide = wide(OsStr::new(&mount));
    let volume_len = u32::try_from(volume.len()).ok()?;
    // SAFETY: `mount_wide` is NUL-terminated and ends in a backslash as the call requires;
    // `volume` is valid for `volume_len` units (a GUID path needs 50).
    if unsafe { GetVolumeNameForVolumeMountPointW(mount_wide.as_ptr(), volume.as_mut_ptr(), volume_len) } == 0 {
        return None;
    }
    Some((mount, windows_map::from_wide(&volume)))
}

/// The disks that hold Windows itself and the running program.
fn system_holders(volumes: &[Volume]) -> Vec<SystemHolder> {
    let disks_of_guid = |guid: &str| {
        volumes
            .iter()
            .find(|v| v.guid_path.eq_ignore_ascii_case(guid))
            .map_or_else(
                || windows_map::disks_in(&volume_extents(guid)),
                |v| windows_map::disks_in(&v.extents),
            )
    };
    let mut holders = Vec::new();
    if let Some((mount, guid)) = windows_directory().and_then(|dir| volume_of(&dir)) {
        holders.push(SystemHolder::windows(&mount, disks_of_guid(&guid)));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some((_, guid)) = volume_of(&exe)
    {
        holders.push(SystemHolder::running_program(&exe, disks_of_guid(&guid)));
    }
    holders
}

fn windows_directory() -> Option<PathBuf> {
    let mut buf = vec![0u16; MAX_PATH as usize + 1];
    // Two tries: when the first buffer is too small, the call returns the size it needs.
    for _ in 0..2 {
        let len = u32::try_from(buf.len()).ok()?;
        // SAFETY: `buf` is valid for `len` units.
        let n = unsafe { GetWindowsDirectoryW(buf.as_mut_ptr(), len) } as usize;
        if n == 0 {
            return None;
        }
        if n < buf.len() {
            return Some(PathBuf::from(windows_map::from_wide(&buf[..n])));
        }
        buf = vec![0u16; n + 1];
    }
    None
}

/// A NUL-terminated UTF-16 copy of `s` for the W functions.
fn wide(s: &OsStr) -> Vec<u16> {
    s.encode_wide().chain(std::iter::once(0)).collect()
}
