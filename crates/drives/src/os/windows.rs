//! Windows: `\\.\PhysicalDriveN` through `DeviceIoControl`, the way Rufus and Etcher do it.
//!
//! Listing needs no administrator rights: every query here is one Windows
//! allows on a handle opened with no access at all. Writing does: `prepare`
//! locks and dismounts every volume on the disk (keeping the locks until the
//! [`Target`] is dropped, so Windows cannot mount them again mid-write) and
//! takes the drive letters of a removable disk's volumes away, opens the disk
//! unbuffered, write-through and for exclusive writing, deletes the drive
//! layout (or zeroes both ends of the disk when that fails), then locks the
//! volume Windows may make of the now empty disk too. `finish` re-reads the
//! partition table unless the drive is ejected next; `eject` locks and
//! dismounts the new volumes before it ejects. The decisions (parsing, mapping
//! volumes to disks, which volumes to lock, which errors to retry or forgive,
//! which disks are system disks, error mapping) are in `windows_map` and
//! `plan`, where they are unit-tested on every OS.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    ERROR_FILE_NOT_FOUND, ERROR_INVALID_FUNCTION, ERROR_NOT_FOUND, ERROR_SUCCESS, INVALID_HANDLE_VALUE, MAX_PATH,
};
use windows_sys::Win32::Storage::FileSystem::{
    DeleteVolumeMountPointW, FILE_FLAG_NO_BUFFERING, FILE_FLAG_WRITE_THROUGH, FILE_NAME_NORMALIZED, FILE_SHARE_READ,
    FILE_SHARE_WRITE, FindFirstVolumeW, FindNextVolumeW, FindVolumeClose, GetFinalPathNameByHandleW, GetLogicalDrives,
    GetVolumeNameForVolumeMountPointW, GetVolumePathNameW, GetVolumePathNamesForVolumeNameW,
    IOCTL_VOLUME_GET_VOLUME_DISK_EXTENTS, QueryDosDeviceW, VOLUME_NAME_DOS,
};
use windows_sys::Win32::System::IO::DeviceIoControl;
use windows_sys::Win32::System::Ioctl::{
    FSCTL_DISMOUNT_VOLUME, FSCTL_LOCK_VOLUME, IOCTL_DISK_DELETE_DRIVE_LAYOUT, IOCTL_DISK_GET_DRIVE_GEOMETRY_EX,
    IOCTL_DISK_GET_LENGTH_INFO, IOCTL_DISK_IS_WRITABLE, IOCTL_DISK_UPDATE_PROPERTIES, IOCTL_STORAGE_EJECT_MEDIA,
    IOCTL_STORAGE_GET_DEVICE_NUMBER, IOCTL_STORAGE_MEDIA_REMOVAL, IOCTL_STORAGE_QUERY_PROPERTY,
};
use windows_sys::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RRF_RT_REG_MULTI_SZ, RRF_RT_REG_SZ, RegGetValueW};
use windows_sys::Win32::System::SystemInformation::GetWindowsDirectoryW;

use super::size_by_seek;
use crate::os::plan;
use crate::os::windows_map::{
    self, DescriptorInfo, ERROR_MORE_DATA, ERROR_WRITE_PROTECT, FailedDeletion, SystemHolder, SystemPart, Volume,
};
use crate::{Bus, Drive, DriveError, Ejected, Identity, Target, io_error};

// The pure half names these without windows-sys; they must agree.
const _: () = assert!(
    windows_map::SHARE_READ == FILE_SHARE_READ
        && windows_map::SHARE_WRITE == FILE_SHARE_WRITE
        && windows_map::ERROR_INVALID_FUNCTION as u32 == ERROR_INVALID_FUNCTION
        && windows_map::ERROR_FILE_NOT_FOUND as u32 == ERROR_FILE_NOT_FOUND
        && windows_map::ERROR_NOT_FOUND as u32 == ERROR_NOT_FOUND
);

/// How many `PhysicalDriveN` numbers `list` tries; numbers have gaps after a drive is unplugged.
const MAX_DISKS: u32 = 64;
/// How many the watcher's fingerprint looks at on every tick.
const FINGERPRINT_DISKS: u32 = 32;
/// How long Windows gets to bring up the volume of an emptied disk where it cannot say when it is done.
const VOLUMES_SETTLE: Duration = Duration::from_millis(500);
/// Where the registry lists the page files in use (`ExistingPageFiles`).
const MEMORY_MANAGEMENT: &str = r"SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management";
/// Where the registry names the partition Windows booted from (`SystemPartition`).
const SETUP: &str = r"SYSTEM\Setup";

/// A block of zeros aligned for unbuffered writes of any sector size up to 4096.
#[repr(C, align(4096))]
struct ZeroBlock([u8; 4096]);
static ZEROS: ZeroBlock = ZeroBlock([0; 4096]);

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
        let identity = Identity {
            sequence: device_number(&handle),
            media: None,
            serial: info.serial.clone(),
            size,
        };
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
            unknown: None,
            identity,
        });
    }
    Ok(drives)
}

/// The disks under the volume holding `path`: several for a spanned or striped volume.
pub(crate) fn drives_holding(path: &Path) -> Vec<String> {
    let Some((_, volume)) = volume_of(path) else {
        return Vec::new();
    };
    let mut disks: Vec<u32> = volume_extents(&volume).iter().map(|extent| extent.disk).collect();
    disks.sort_unstable();
    disks.dedup();
    disks.into_iter().map(windows_map::physical_drive_name).collect()
}

/// [`drives_holding`] for an open file: the path Windows itself gives the handle.
pub(crate) fn drives_holding_file(file: &File) -> Vec<String> {
    let mut buf = vec![0u16; 32 * 1024];
    let Ok(len) = u32::try_from(buf.len()) else {
        return Vec::new();
    };
    // SAFETY: the handle is open for as long as `file` is borrowed; `buf` is valid for `len` units.
    let written = unsafe {
        GetFinalPathNameByHandleW(
            file.as_raw_handle(),
            buf.as_mut_ptr(),
            len,
            FILE_NAME_NORMALIZED | VOLUME_NAME_DOS,
        )
    };
    match usize::try_from(written) {
        Ok(n) if n > 0 && n < buf.len() => drives_holding(Path::new(&windows_map::from_wide(&buf[..n]))),
        _ => Vec::new(),
    }
}

pub(crate) fn prepare(drive: &Drive) -> Result<Target, DriveError> {
    let disk = windows_map::physical_drive_number(&drive.path).ok_or_else(|| DriveError::NotWritable {
        path: drive.path.clone(),
        kind: "not a \\\\.\\PhysicalDriveN path",
    })?;
    check_still_the_listed_drive(drive)?;
    let mut locks = Vec::new();
    for volume in windows_map::volumes_to_lock(&volumes(), disk, &[]) {
        locks.push(lock_and_dismount(volume, drive.removable)?);
    }
    let target = open_device(&drive.path, true)?;
    clear_layout(&target)?;
    // Without a layout, Windows drops the old partitions' volumes and shows an empty
    // removable disk as a volume of its own, which Explorer offers to format (a click
    // on Format destroys the write: Etcher #2308, #2210). Lock that one too, once
    // Windows has brought it up. Best effort: the disk is already held exclusively.
    if ioctl(target.file(), windows_map::IOCTL_DISK_ARE_VOLUMES_READY, &[], &mut []).is_err() {
        std::thread::sleep(VOLUMES_SETTLE);
    }
    let held: Vec<String> = locks.iter().map(|lock| lock.guid_path.clone()).collect();
    for volume in windows_map::volumes_to_lock(&volumes(), disk, &held) {
        if let Ok(lock) = lock_and_dismount(volume, drive.removable) {
            locks.push(lock);
        }
    }
    Ok(target.with_guard(locks))
}

/// Deletes the drive layout so that no old partition is found while the image is
/// written; when the deletion fails for another reason than a missing table,
/// zeroes both ends of the disk instead (Rufus clears MBR and GPT itself).
///
/// There is deliberately no `IOCTL_DISK_UPDATE_PROPERTIES` here: it makes Explorer
/// poll the locked volumes' letters and ask for a disk (Raspberry Pi Imager #1665);
/// the re-read comes after the write, in `finish`.
fn clear_layout(target: &Target) -> Result<(), DriveError> {
    let Err(error) = ioctl(target.file(), IOCTL_DISK_DELETE_DRIVE_LAYOUT, &[], &mut []) else {
        return Ok(());
    };
    match windows_map::after_failed_deletion(error.raw_os_error()) {
        FailedDeletion::NoTable => Ok(()),
        FailedDeletion::ZeroHeadAndTail => {
            let capacity = target.capacity().unwrap_or(0);
            for (offset, len) in windows_map::head_and_tail(capacity) {
                zero(target.file(), offset, len).map_err(|e| io_error(target.path(), e))?;
            }
            Ok(())
        }
    }
}

/// Writes `len` zero bytes at `offset` in aligned blocks (the last one cut to whole sectors).
fn zero(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let block = ZEROS.0.len() as u64;
    let mut done = 0;
    while done < len {
        let n = usize::try_from((len - done).min(block)).unwrap_or(ZEROS.0.len());
        let written = file.seek_write(&ZEROS.0[..n], offset + done)?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        done += written as u64;
    }
    Ok(())
}

/// Ejects the medium the way Raspberry Pi Imager does: every volume on the disk
/// locked and dismounted first (Windows may have mounted the new partitions),
/// media removal allowed, then the eject, tried again while the drive is busy.
pub(crate) fn eject(drive: &Drive) -> Result<Ejected, DriveError> {
    let disk = windows_map::physical_drive_number(&drive.path);
    let volumes = volumes();
    let _locks: Vec<VolumeLock> = disk
        .map(|disk| windows_map::volumes_to_lock(&volumes, disk, &[]))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|volume| lock_and_dismount(volume, false).ok())
        .collect();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(&drive.path)
        .map_err(|e| windows_map::open_error(&drive.path, e))?;
    // PREVENT_MEDIA_REMOVAL { PreventMediaRemoval: FALSE }; a drive that never locked its medium refuses it.
    let _ = ioctl(&file, IOCTL_STORAGE_MEDIA_REMOVAL, &[0], &mut []);
    let ejected = plan::retry(
        &plan::EJECT.delays(),
        || ioctl(&file, IOCTL_STORAGE_EJECT_MEDIA, &[], &mut []),
        |_| drive.removable,
    );
    match ejected {
        Ok(_) => Ok(Ejected::Ejected),
        Err(_) if !drive.removable => Ok(Ejected::NotSupported(
            "Windows cannot eject a fixed disk; use \"Safely Remove Hardware\" before unplugging it".into(),
        )),
        Err(e) => Err(io_error(&drive.path, e)),
    }
}

/// Opens a disk unbuffered and write-through; for writing, exclusively (others
/// may only read), tried again for a while when something else still has it.
pub(crate) fn open_device(path: &Path, write: bool) -> Result<Target, DriveError> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(write)
            .share_mode(windows_map::disk_share_mode(write))
            .custom_flags(FILE_FLAG_NO_BUFFERING | FILE_FLAG_WRITE_THROUGH)
            .open(path)
    };
    let delays = if write { plan::BUSY_DISK.delays() } else { Vec::new() };
    let file = plan::retry(&delays, open, |e| windows_map::is_sharing_conflict(e.raw_os_error()))
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

/// Every step is `FlushFileBuffers`: Windows needs no other (see [`crate::os::plan::sync_steps`]).
pub(crate) fn sync_step(file: &File, _step: crate::os::plan::SyncStep) -> io::Result<()> {
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

/// A locked (or at least dismounted) volume; dropping it closes the handle, which releases the lock.
struct VolumeLock {
    guid_path: String,
    _handle: File,
}

/// Locks and dismounts `volume`, and on a removable disk takes its drive letters away.
///
/// The lock is tried for about 15 s (Explorer, Defender or the indexer may hold a
/// fresh stick's volume for a while); when it never succeeds, the volume is
/// dismounted anyway, which closes everybody else's handles on it, as Raspberry
/// Pi Imager does. Only a failed dismount of an unlocked volume is "busy".
fn lock_and_dismount(volume: &Volume, removable: bool) -> Result<VolumeLock, DriveError> {
    let label = PathBuf::from(windows_map::volume_label(volume));
    let handle = OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(windows_map::volume_device_path(&volume.guid_path))
        .map_err(|e| windows_map::open_error(&label, e))?;
    let locked = plan::retry(
        &plan::BUSY_VOLUME.delays(),
        || ioctl(&handle, FSCTL_LOCK_VOLUME, &[], &mut []),
        |_| true,
    )
    .is_ok();
    match ioctl(&handle, FSCTL_DISMOUNT_VOLUME, &[], &mut []) {
        Ok(_) => {}
        Err(_) if !locked => return Err(DriveError::Busy(label)),
        Err(e) => return Err(io_error(&label, e)),
    }
    for mount_point in windows_map::mount_points_to_remove(volume, removable) {
        let name = wide(OsStr::new(mount_point));
        // A letter that stays only means Explorer may still poll the volume.
        // SAFETY: `name` is NUL-terminated and ends in a backslash, as the call requires.
        let _ = unsafe { DeleteVolumeMountPointW(name.as_ptr()) };
    }
    Ok(VolumeLock {
        guid_path: volume.guid_path.clone(),
        _handle: handle,
    })
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

/// The disk's device number (`IOCTL_STORAGE_GET_DEVICE_NUMBER`): the `N` of the
/// `\\.\PhysicalDriveN` the disk has now, which a disk plugged in later may take over.
fn device_number(handle: &File) -> Option<u64> {
    // STORAGE_DEVICE_NUMBER: DeviceType, DeviceNumber, PartitionNumber (three u32).
    let mut buf = [0u8; 12];
    let n = ioctl(handle, IOCTL_STORAGE_GET_DEVICE_NUMBER, &[], &mut buf).ok()?;
    let number = buf.get(4..8).filter(|_| n >= 8)?;
    Some(u64::from(u32::from_le_bytes(number.try_into().ok()?)))
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

/// The disks that hold the running system: Windows, the running program, the
/// user profile, ProgramData and Program Files, the page files, and the partition
/// Windows boots from (which may be on another disk than Windows itself).
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
        holders.push(SystemHolder::new(&SystemPart::Windows(mount), disks_of_guid(&guid)));
    }
    let mut stored: Vec<(SystemPart, PathBuf)> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        stored.push((SystemPart::RunningProgram(exe.clone()), exe));
    }
    for part in windows_map::system_folders(|name| std::env::var(name).ok()) {
        if let SystemPart::UserProfile(dir) | SystemPart::ProgramFolder(dir) = &part {
            let dir = dir.clone();
            stored.push((part, dir));
        }
    }
    let page_files = registry_strings(MEMORY_MANAGEMENT, "ExistingPageFiles").unwrap_or_default();
    for file in windows_map::page_files(&page_files) {
        let path = PathBuf::from(&file);
        stored.push((SystemPart::PageFile(file), path));
    }
    for (part, path) in stored {
        if let Some((_, guid)) = volume_of(&path) {
            holders.push(SystemHolder::new(&part, disks_of_guid(&guid)));
        }
    }
    if let Some(device) = registry_strings(SETUP, "SystemPartition").and_then(|v| v.into_iter().next())
        && let Some(volume) = volumes
            .iter()
            .find(|v| nt_device_of(&v.guid_path).is_some_and(|d| d.eq_ignore_ascii_case(&device)))
    {
        let disks = windows_map::disks_in(&volume.extents);
        holders.push(SystemHolder::new(&SystemPart::BootPartition(device), disks));
    }
    holders
}

/// A `REG_SZ` or `REG_MULTI_SZ` value under `HKEY_LOCAL_MACHINE\<key>`, as its strings.
fn registry_strings(key: &str, value: &str) -> Option<Vec<String>> {
    let key = wide(OsStr::new(key));
    let value = wide(OsStr::new(value));
    let flags = RRF_RT_REG_SZ | RRF_RT_REG_MULTI_SZ;
    // Called twice: with no buffer for the size, then with a buffer of that size.
    let get = |buf: Option<&mut [u16]>, bytes: &mut u32| {
        let data = buf.map_or(std::ptr::null_mut(), |buf| buf.as_mut_ptr().cast());
        // SAFETY: both names are NUL-terminated; `data` is null (asking only for the
        // size, written to `bytes`) or valid for `bytes` bytes.
        unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                value.as_ptr(),
                flags,
                std::ptr::null_mut(),
                data,
                bytes,
            )
        }
    };
    let mut bytes = 0u32;
    if get(None, &mut bytes) != ERROR_SUCCESS {
        return None;
    }
    let mut buf = vec![0u16; usize::try_from(bytes).ok()? / 2 + 1];
    let mut bytes = u32::try_from(buf.len() * 2).ok()?;
    let status = get(Some(&mut buf), &mut bytes);
    (status == ERROR_SUCCESS).then(|| windows_map::split_multi_sz(&buf))
}

/// The NT device name (`\Device\HarddiskVolume3`) of a volume.
fn nt_device_of(guid_path: &str) -> Option<String> {
    let name = wide(OsStr::new(windows_map::dos_device_name(guid_path)?));
    let mut buf = [0u16; 512];
    let len = u32::try_from(buf.len()).ok()?;
    // SAFETY: `name` is NUL-terminated; `buf` is valid for `len` units.
    if unsafe { QueryDosDeviceW(name.as_ptr(), buf.as_mut_ptr(), len) } == 0 {
        return None;
    }
    Some(windows_map::from_wide(&buf))
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

pub(crate) use super::fallback::{has_medium, is_device, open_sequence};

/// Raw disks have no file metadata on Windows; their name says what they are.
pub(crate) fn is_block_device(_path: &Path, _metadata: &std::fs::Metadata) -> bool {
    false
}

/// `\\.\PhysicalDriveN`, whatever its case: a raw disk, which has no file metadata.
pub(crate) fn is_physical_drive_path(path: &Path) -> bool {
    path.to_string_lossy()
        .to_ascii_lowercase()
        .starts_with(r"\\.\physicaldrive")
}
