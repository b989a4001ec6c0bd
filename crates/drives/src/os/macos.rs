//! macOS: drives from `diskutil`, written through the raw node `/dev/rdiskN` with `F_NOCACHE`.
//!
//! Every fact about a disk comes from `diskutil list -plist` and
//! `diskutil info -plist diskN`, read by [`crate::os::macos_parse`]; this module
//! only runs the commands, asks the kernel which device a path is mounted from
//! (`statfs`), and opens devices: directly as root, otherwise through the system's
//! `authopen` (its own administrator prompt), so no Graver code runs as root.

use std::ffi::{CStr, CString};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use super::size_by_seek;
use crate::os::macos_parse::{self, DiskInfo, ListedDisk};
use crate::os::plan::{self, SyncStep, darwin};
use crate::{Drive, DriveError, Ejected, Target, io_error};

/// By full path: Graver may run as root (an administrator's command line) and must not pick up another `diskutil` from `PATH`.
const DISKUTIL: &str = "/usr/sbin/diskutil";

// From <sys/disk.h>: _IOR('d', 24, uint32_t), _IOR('d', 25, uint64_t) and _IO('d', 22).
const DKIOCGETBLOCKSIZE: libc::c_ulong = 0x4004_6418;
const DKIOCGETBLOCKCOUNT: libc::c_ulong = 0x4008_6419;
const DKIOCSYNCHRONIZECACHE: libc::c_ulong = 0x2000_6416;

// The pure decisions name macOS's errno values without the C library; they must agree.
const _: () = assert!(darwin::ENOTTY == libc::ENOTTY && darwin::ENOTSUP == libc::ENOTSUP);

/// Runs `diskutil` with `args`; its standard output on success, else what it said went wrong.
fn diskutil(args: &[&str]) -> Result<Vec<u8>, String> {
    let output = Command::new(DISKUTIL)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {DISKUTIL}: {e}"))?;
    if output.status.success() {
        return Ok(output.stdout);
    }
    // diskutil prints some errors on standard output ("Could not find disk: disk9").
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let message = [stderr.trim(), stdout.trim()]
        .into_iter()
        .find(|m| !m.is_empty())
        .map_or_else(
            || format!("diskutil {} failed ({})", args.join(" "), output.status),
            str::to_owned,
        );
    Err(message)
}

/// A `diskutil` failure as the error the user sees, on `path`.
fn diskutil_error(path: &Path, message: String) -> DriveError {
    io_error(path, io::Error::other(message))
}

/// `diskutil info -plist <what>`, parsed.
fn info(what: &str) -> Result<DiskInfo, String> {
    let bytes = diskutil(&["info", "-plist", what])?;
    macos_parse::parse_info(&bytes).map_err(|e| e.to_string())
}

/// `diskutil list -plist`, parsed.
fn listed_disks() -> Result<Vec<ListedDisk>, DriveError> {
    let dev = Path::new("/dev");
    let bytes = diskutil(&["list", "-plist"]).map_err(|m| diskutil_error(dev, m))?;
    macos_parse::parse_list(&bytes).map_err(|e| diskutil_error(dev, e.to_string()))
}

/// Every whole disk: physical disks, APFS containers and attached disk images.
pub(crate) fn list() -> Result<Vec<Drive>, DriveError> {
    let disks = listed_disks()?;
    // A disk that vanished between the two commands is simply left out.
    let infos: Vec<DiskInfo> = disks.iter().filter_map(|disk| info(&disk.name).ok()).collect();
    let root = mounted_from(Path::new("/"));
    let exe = std::env::current_exe().ok().and_then(|exe| mounted_from(&exe));
    Ok(macos_parse::drives(&disks, &infos, root.as_deref(), exe.as_deref()))
}

/// The BSD name (`disk3s5`) of the device the file system holding `path` is mounted from.
fn mounted_from(path: &Path) -> Option<String> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a writable statfs; both outlive the call.
    if unsafe { libc::statfs(path.as_ptr(), &raw mut stat) } != 0 {
        return None;
    }
    device_name(&stat.f_mntfromname)
}

/// [`mounted_from`] for an open file.
fn file_mounted_from(file: &File) -> Option<String> {
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is open for as long as `file` is borrowed; `stat` is a writable statfs.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &raw mut stat) } != 0 {
        return None;
    }
    device_name(&stat.f_mntfromname)
}

/// `disk3s5` from a statfs `f_mntfromname` of "/dev/disk3s5"; `None` for "devfs", "map auto_home", a server.
fn device_name(field: &[libc::c_char]) -> Option<String> {
    c_field(field).strip_prefix("/dev/").map(str::to_owned)
}

/// The whole disks a file is stored on; for a file on an APFS volume, the physical
/// disks its container is stored on (a Fusion drive has two).
pub(crate) fn drives_holding(path: &Path) -> Vec<String> {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|path| mounted_from(&path))
        .map(|device| disks_under(&device))
        .unwrap_or_default()
}

pub(crate) fn drives_holding_file(file: &File) -> Vec<String> {
    file_mounted_from(file)
        .map(|device| disks_under(&device))
        .unwrap_or_default()
}

/// The whole disk of the BSD device `device`, or the physical stores of its APFS container.
fn disks_under(device: &str) -> Vec<String> {
    let Some(whole) = macos_parse::whole_disk_of(device) else {
        return Vec::new();
    };
    let Ok(whole_info) = info(&whole) else {
        return vec![whole];
    };
    let mut stores: Vec<String> = whole_info
        .physical_stores
        .iter()
        .filter_map(|store| macos_parse::whole_disk_of(store))
        .filter(|store| *store != whole)
        .collect();
    stores.dedup();
    if stores.is_empty() { vec![whole] } else { stores }
}

/// The `/dev/diskN` node `diskutil` takes for a drive (whose path is `/dev/rdiskN`).
fn disk_node(drive: &Drive) -> String {
    format!("/dev/{}", drive.name)
}

/// Unmounts every volume of the drive and of the APFS containers stored on it,
/// then opens its raw node.
///
/// The unmounts are forced: Spotlight starts indexing a freshly inserted stick
/// and a plain `unmountDisk` then fails as busy (Raspberry Pi Imager #270; Etcher
/// and Raspberry Pi Imager both force it). The raw node is opened again while it
/// is busy, because Disk Arbitration may still be letting go of it.
pub(crate) fn prepare(drive: &Drive) -> Result<Target, DriveError> {
    let disks = listed_disks()?;
    for disk in macos_parse::unmount_order(&drive.name, &disks) {
        let node = format!("/dev/{disk}");
        diskutil(&["unmountDisk", "force", &node]).map_err(|message| {
            diskutil_error(
                &drive.path,
                format!(
                    "cannot unmount {disk}: {message}; close the programs using it (Finder windows, terminals, \
                     backups) and try again"
                ),
            )
        })?;
    }
    plan::retry(
        &plan::BUSY_DISK.delays(),
        || open_device(&drive.path, true),
        |e| matches!(e, DriveError::Busy(_)),
    )
}

/// Ejects a written drive with `diskutil eject`, once Disk Arbitration has had a
/// moment to notice the new partition table (an eject racing its probe and
/// remount fails as busy), and again while it fails.
pub(crate) fn eject(drive: &Drive) -> Result<Ejected, DriveError> {
    let node = disk_node(drive);
    std::thread::sleep(plan::DISK_ARBITRATION_SETTLE);
    plan::retry(&plan::EJECT.delays(), || diskutil(&["eject", &node]), |_| true)
        .map(|_| Ejected::Ejected)
        .map_err(|message| diskutil_error(&drive.path, format!("cannot eject {}: {message}", drive.name)))
}

/// Opens a disk node (`/dev/rdiskN` preferably) with the buffer cache bypassed: as root
/// (the tests, a command line run by an administrator) directly; otherwise through the
/// system's `authopen`, whose own administrator prompt names the device, so no Graver
/// code runs as root. Each open is its own prompt.
pub(crate) fn open_device(path: &Path, write: bool) -> Result<Target, DriveError> {
    let file = open_node(path, write)?;
    // SAFETY: F_NOCACHE takes an int argument; the descriptor is open for the call's duration.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_NOCACHE, 1) } == -1 {
        return Err(io_error(path, io::Error::last_os_error()));
    }
    let block_size = crate::os::unix::ioctl_read::<u32>(&file, DKIOCGETBLOCKSIZE)
        .unwrap_or(512)
        .max(1);
    let capacity = crate::os::unix::ioctl_read::<u64>(&file, DKIOCGETBLOCKCOUNT)
        .map(|count| count.saturating_mul(u64::from(block_size)))
        .or_else(|_| size_by_seek(&file))
        .map_err(|e| io_error(path, e))?;
    let block_size = usize::try_from(block_size).unwrap_or(crate::MIN_BLOCK_SIZE);
    Ok(Target::device(file, path, capacity, block_size))
}

/// The open node at `path`, a raw disk node unless opened by root (who may open what it likes).
fn open_node(path: &Path, write: bool) -> Result<File, DriveError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EBUSY) => DriveError::Busy(path.to_path_buf()),
                Some(libc::EROFS) => DriveError::ReadOnly(path.to_path_buf()),
                Some(libc::EACCES | libc::EPERM) => DriveError::PermissionDenied(path.to_path_buf()),
                Some(libc::ENOENT | libc::ENXIO) => DriveError::NotFound(path.to_path_buf()),
                _ => io_error(path, e),
            });
    }
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => DriveError::NotFound(path.to_path_buf()),
        _ => io_error(path, e),
    })?;
    if !is_block_device(path, &metadata) {
        // authopen would open any file after its prompt; only disk nodes go to it.
        return Err(DriveError::NotWritable {
            path: path.to_path_buf(),
            kind: "not a disk node",
        });
    }
    let file = crate::os::unix::open_through_authopen(Path::new(crate::os::unix::AUTHOPEN), path, write)?;
    let opened = file.metadata().map_err(|e| io_error(path, e))?;
    if !is_block_device(path, &opened) {
        return Err(io_error(
            path,
            io::Error::other("authopen handed over something that is not a disk node"),
        ));
    }
    Ok(file)
}

/// Runs one step of [`crate::os::plan::sync_steps`].
pub(crate) fn sync_step(file: &File, step: SyncStep) -> io::Result<()> {
    let fd = file.as_raw_fd();
    let rc = match step {
        SyncStep::DataSync => return file.sync_data(),
        // SAFETY: the descriptor is open for the call's duration.
        SyncStep::Fsync => unsafe { libc::fsync(fd) },
        // SAFETY: DKIOCSYNCHRONIZECACHE takes no argument; the descriptor is open for the call's duration.
        SyncStep::SynchronizeCache => unsafe { libc::ioctl(fd, DKIOCSYNCHRONIZECACHE) },
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Nothing to do: once the raw node is closed, DiskArbitration notices the new
/// partition table and mounts what it can read (and `diskutil eject` follows).
pub(crate) fn reread_partitions(_file: &File) {}

/// A cheap hash of the disk nodes in `/dev` and of the mount table: it changes
/// when a disk arrives or leaves and when a volume is mounted or unmounted.
pub(crate) fn fingerprint() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut names: Vec<Vec<u8>> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().as_bytes().to_vec())
        .filter(|name| name.starts_with(b"disk"))
        .collect();
    names.sort();
    names.hash(&mut hasher);
    mounts().hash(&mut hasher);
    hasher.finish()
}

/// `(device, mount point)` of every mounted file system, sorted.
fn mounts() -> Vec<(String, String)> {
    // SAFETY: a null buffer asks only for the number of mounted file systems.
    let count = unsafe { libc::getfsstat(std::ptr::null_mut(), 0, libc::MNT_NOWAIT) };
    let Ok(count) = usize::try_from(count) else {
        return Vec::new();
    };
    // Room for a few mounts more, in case one appears between the two calls.
    let capacity = count + 8;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut buffer: Vec<libc::statfs> = vec![unsafe { std::mem::zeroed() }; capacity];
    let Ok(bytes) = libc::c_int::try_from(capacity * std::mem::size_of::<libc::statfs>()) else {
        return Vec::new();
    };
    // SAFETY: `buffer` holds `capacity` statfs entries, exactly `bytes` bytes, and outlives the call.
    let filled = unsafe { libc::getfsstat(buffer.as_mut_ptr(), bytes, libc::MNT_NOWAIT) };
    let Ok(filled) = usize::try_from(filled) else {
        return Vec::new();
    };
    let mut mounts: Vec<(String, String)> = buffer
        .iter()
        .take(filled)
        .map(|stat| (c_field(&stat.f_mntfromname), c_field(&stat.f_mntonname)))
        .collect();
    mounts.sort();
    mounts
}

/// A NUL-terminated `char` array of a statfs as text.
fn c_field(field: &[libc::c_char]) -> String {
    // SAFETY: c_char and u8 have the same size and alignment; the slice stays borrowed.
    let bytes = unsafe { std::slice::from_raw_parts(field.as_ptr().cast::<u8>(), field.len()) };
    CStr::from_bytes_until_nul(bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) use crate::os::unix::is_device;

/// Whether the OS still has a device with a medium at `real`; a gone disk's node goes
/// with it, so a node that resolves is one.
pub(crate) fn has_medium(_real: &Path) -> bool {
    true
}

/// The attachment number of the disk open as `_file`: macOS has none to ask the open
/// node for, so the size alone is checked.
pub(crate) fn open_sequence(_file: &File) -> Option<u64> {
    None
}

/// Whether `metadata` is a raw disk node: a block device, or a character device under
/// `/dev` (the raw nodes `/dev/rdiskN`).
pub(crate) fn is_block_device(path: &Path, metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_block_device() || (metadata.file_type().is_char_device() && path.starts_with("/dev"))
}

/// Only Windows names disks `\\.\PhysicalDriveN`.
pub(crate) fn is_physical_drive_path(_path: &Path) -> bool {
    false
}
