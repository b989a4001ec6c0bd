//! Linux: drives from `/sys/block`, mounts from `/proc/self/mountinfo` and
//! `/proc/swaps`, raw I/O through `O_DIRECT | O_EXCL` and the block ioctls.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::linux_parse::{
    Backing, BadTable, Mount, Tracer, backing, bus_of, is_listable, parse_dev, parse_mountinfo, parse_sectors,
    parse_swaps, read_attr,
};
use super::size_by_seek;
use crate::os::unix::ioctl_read;
use crate::{Bus, Drive, DriveError, Ejected, Identity, Partition, Target, io_error};

// From <linux/fs.h>: _IO(0x12, 104), _IO(0x12, 95), _IOR(0x12, 114, size_t) and _IOR(0x12, 128, __u64).
const BLKSSZGET: libc::c_ulong = 0x1268;
const BLKRRPART: libc::c_ulong = 0x125f;
const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
const BLKGETDISKSEQ: libc::c_ulong = 0x8008_1280;

/// Mount points that make the drive under them part of the running system.
const SYSTEM_MOUNTS: [&str; 7] = ["/", "/boot", "/boot/efi", "/efi", "/usr", "/var", "/home"];

const SYS_BLOCK: &str = "/sys/block";

/// What the running system uses: mounts, the block devices under file systems with
/// an anonymous device number, active swap, and whatever could not be found out.
struct Usage {
    mounts: Vec<Mount>,
    /// The sysfs names of the block devices under each anonymous device number
    /// (btrfs, ZFS, bcachefs), as far as they could be traced.
    members: BTreeMap<(u32, u32), Vec<String>>,
    /// Swap devices, and the file systems holding swap files.
    swaps: BTreeSet<(u32, u32)>,
    exe_dev: Option<(u32, u32)>,
    /// Why no drive can be said to be outside the running system, when that is so.
    unknown: Option<String>,
}

fn dev_of_node(path: &Path) -> Option<(u32, u32)> {
    let meta = std::fs::metadata(path).ok()?;
    let rdev = meta.rdev();
    Some((libc::major(rdev), libc::minor(rdev)))
}

fn dev_holding(path: &Path) -> Option<(u32, u32)> {
    let dev = std::fs::metadata(path).ok()?.dev();
    Some((libc::major(dev), libc::minor(dev)))
}

/// `zpool status -P pool`, when ZFS's tools are installed and answer. The worker runs
/// as root, so the tool is taken from the system's own folders, never from `PATH`.
fn zpool_status(pool: &str) -> Option<String> {
    let zpool = ["/usr/sbin/zpool", "/sbin/zpool", "/usr/bin/zpool", "/bin/zpool"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())?;
    let output = std::process::Command::new(zpool)
        .args(["status", "-P", pool])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn is_system_mount(mount_point: &Path) -> bool {
    SYSTEM_MOUNTS.iter().any(|s| Path::new(s) == mount_point)
}

impl Usage {
    fn read() -> Self {
        let tracer = Tracer {
            sys: Path::new("/sys"),
            dev: Path::new("/dev"),
            zpool_status: &zpool_status,
        };
        let exe_dev = std::env::current_exe().ok().and_then(|exe| dev_holding(&exe));
        Self::from_tables(
            std::fs::read("/proc/self/mountinfo"),
            std::fs::read("/proc/swaps"),
            exe_dev,
            &tracer,
        )
    }

    /// The usage from the mount and swap tables' bytes (or why they could not be
    /// read). Whatever cannot be read or traced makes every drive unknown: a drive
    /// is only ever called free of the running system when that was found out.
    fn from_tables(
        mountinfo: io::Result<Vec<u8>>,
        swaps: io::Result<Vec<u8>>,
        exe_dev: Option<(u32, u32)>,
        tracer: &Tracer<'_>,
    ) -> Self {
        let mut usage = Self {
            mounts: Vec::new(),
            members: BTreeMap::new(),
            swaps: BTreeSet::new(),
            exe_dev,
            unknown: None,
        };
        let mut unknown = Vec::new();
        match mountinfo {
            Err(e) => unknown.push(format!("the mount table (/proc/self/mountinfo) cannot be read: {e}")),
            Ok(bytes) => match parse_mountinfo(&bytes) {
                Err(BadTable(why)) => {
                    unknown.push(format!("the mount table (/proc/self/mountinfo) is unusable: {why}"));
                }
                Ok(mounts) => usage.mounts = mounts,
            },
        }
        // By what a mount stands on: a pool's datasets and a btrfs's subvolumes are traced once.
        let mut traced: BTreeMap<Backing, Result<Option<Vec<String>>, String>> = BTreeMap::new();
        for mount in &usage.mounts {
            let key = backing(mount);
            let members = match traced.get(&key) {
                // An untraceable mount's reason names its own source: never shared.
                Some(known) if key != Backing::Untraceable => known.clone(),
                _ => {
                    let found = match key {
                        // A device number sysfs does not know leads to no disk either.
                        Backing::Device((major, minor))
                            if !tracer.sys.join(format!("dev/block/{major}:{minor}")).exists() =>
                        {
                            Err(format!("its device {major}:{minor} is not in sysfs"))
                        }
                        _ => tracer.members(mount),
                    };
                    traced.insert(key, found.clone());
                    found
                }
            };
            match members {
                Ok(Some(names)) => {
                    usage.members.insert(mount.dev, names);
                }
                Ok(None) => {}
                // Only a system mount's disks matter here; the kernel's O_EXCL keeps
                // any other mounted file system's disks from being opened for writing.
                Err(why) if is_system_mount(&mount.mount_point) => {
                    unknown.push(format!(
                        "{} cannot be traced to its disks: {why}",
                        mount.mount_point.display()
                    ));
                }
                Err(_) => {}
            }
        }
        match swaps
            .map_err(|e| e.to_string())
            .and_then(|b| parse_swaps(&b).map_err(|BadTable(why)| why))
        {
            Err(why) => unknown.push(format!("the swap table (/proc/swaps) is unusable: {why}")),
            Ok(swaps) => {
                for swap in swaps {
                    // A swap partition is the device itself; a swap file lives on a file system.
                    let dev = if swap.kind == "file" {
                        dev_holding(&swap.path)
                    } else {
                        dev_of_node(&swap.path)
                    };
                    match dev {
                        Some(dev) => {
                            usage.swaps.insert(dev);
                        }
                        None => unknown.push(format!("the swap area {} cannot be found", swap.path.display())),
                    }
                }
            }
        }
        if !unknown.is_empty() {
            usage.unknown = Some(unknown.join("; "));
        }
        usage
    }

    /// Whether `used` (a mount's, a swap area's or Graver's device number) is the
    /// node `name` with device number `dev`, or an anonymous device standing on it.
    fn stands_on(&self, used: (u32, u32), dev: Option<(u32, u32)>, name: &str) -> bool {
        Some(used) == dev || self.members.get(&used).is_some_and(|m| m.iter().any(|n| n == name))
    }

    fn mount_points(&self, dev: Option<(u32, u32)>, name: &str) -> Vec<PathBuf> {
        self.mounts
            .iter()
            .filter(|m| self.stands_on(m.dev, dev, name))
            .map(|m| m.mount_point.clone())
            .collect()
    }

    fn is_swap(&self, dev: Option<(u32, u32)>, name: &str) -> bool {
        self.swaps.iter().any(|&s| self.stands_on(s, dev, name))
    }

    fn holds_exe(&self, dev: Option<(u32, u32)>, name: &str) -> bool {
        self.exe_dev.is_some_and(|e| self.stands_on(e, dev, name))
    }
}

/// A block device node as sysfs shows it: a disk, a partition, or a holder such as dm-0.
fn sys_dev(dir: &Path) -> Option<(u32, u32)> {
    parse_dev(&read_attr(dir.join("dev"))?)
}

/// Every device stacked on `dir` (device-mapper, RAID), recursively, with its sysfs directory.
fn holders(sys_block: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir.join("holders")) else {
        return;
    };
    for entry in entries.flatten() {
        let holder = sys_block.join(entry.file_name());
        if !out.contains(&holder) {
            out.push(holder.clone());
            holders(sys_block, &holder, out);
        }
    }
}

/// Why the disk at `dir` cannot be checked, when sysfs gives no device number for it,
/// one of its partitions or a device stacked on them: mounts and swap on that node
/// could not be matched, so it is never taken to hold none.
fn unnumbered_node(sys_block: &Path, dir: &Path) -> Option<String> {
    let mut nodes = vec![dir.to_path_buf()];
    for part in partition_dirs(dir) {
        nodes.push(part.clone());
        holders(sys_block, &part, &mut nodes);
    }
    holders(sys_block, dir, &mut nodes);
    let node = nodes.iter().find(|n| sys_dev(n).is_none())?;
    let name = node
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(format!("sysfs gives no device number for {name}"))
}

/// Why the block device at `dir` (named `name`) is part of the running system, if it is.
fn system_reason(sys_block: &Path, dir: &Path, name: &str, usage: &Usage) -> Option<String> {
    let mut stack = vec![dir.to_path_buf()];
    holders(sys_block, dir, &mut stack);
    for node in &stack {
        let dev = sys_dev(node);
        let shown = node
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let via = if shown == name {
            String::new()
        } else {
            format!(" through {shown}")
        };
        for mount_point in usage.mount_points(dev, &shown) {
            if is_system_mount(&mount_point) {
                return Some(format!("{} is mounted from {name}{via}", mount_point.display()));
            }
        }
        if usage.is_swap(dev, &shown) {
            return Some(format!("{name}{via} is in use as swap"));
        }
        if usage.holds_exe(dev, &shown) {
            return Some(format!("Graver itself runs from {name}{via}"));
        }
    }
    None
}

/// `/dev/disk/by-id` names by the device they point at; the stable ids udev gives.
fn ids_by_device() -> BTreeMap<String, String> {
    let mut ids = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/dev/disk/by-id") else {
        return ids;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for link in names {
        let id = link
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if id.starts_with("wwn-") || id.contains("-part") {
            continue;
        }
        if let Some(target) = std::fs::canonicalize(&link)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
        {
            ids.entry(target).or_insert(id);
        }
    }
    ids
}

fn sectors_to_bytes(dir: &Path) -> u64 {
    read_attr(dir.join("size")).map_or(0, |text| parse_sectors(&text))
}

fn partition_dirs(disk_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(disk_dir) else {
        return Vec::new();
    };
    let mut parts: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("partition").exists())
        .collect();
    parts.sort_by_key(|p| {
        read_attr(p.join("partition"))
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    parts
}

fn read_drive(sys_block: &Path, name: &str, usage: &Usage, ids: &BTreeMap<String, String>) -> Option<Drive> {
    let dir = sys_block.join(name);
    let size = sectors_to_bytes(&dir);
    if size == 0 {
        // Empty card readers and unattached loop devices.
        return None;
    }
    let sys_path = std::fs::canonicalize(&dir).ok()?.to_string_lossy().into_owned();
    let bus = bus_of(name, &sys_path);
    let flag = |attr: &str| read_attr(dir.join(attr)).is_some_and(|v| v == "1");
    let block = |attr: &str| {
        read_attr(dir.join("queue").join(attr))
            .and_then(|v| v.parse().ok())
            .unwrap_or(512)
    };
    let (vendor, model) = if name.starts_with("loop") {
        let backing = read_attr(dir.join("loop/backing_file"));
        (None, backing.map(|b| format!("loop device backed by {b}")))
    } else if bus == Bus::Sd {
        (None, read_attr(dir.join("device/name")))
    } else {
        // virtio and some bridges report a PCI id ("0x1af4") as the vendor: no help to a person.
        let vendor = read_attr(dir.join("device/vendor")).filter(|v| !v.starts_with("0x"));
        (vendor, read_attr(dir.join("device/model")))
    };
    let id = match (ids.get(name), read_attr(dir.join("loop/backing_file"))) {
        (Some(id), _) => id.clone(),
        (None, Some(backing)) => format!("{name}:{backing}"),
        (None, None) => read_attr(dir.join("device/serial")).map_or_else(|| name.to_owned(), |s| format!("{name}:{s}")),
    };
    let mut partitions = Vec::new();
    let mut system = None;
    // A disk formatted without a partition table (a "superfloppy", or an ISO) is mounted whole.
    let whole_dev = sys_dev(&dir);
    let whole_mounts = usage.mount_points(whole_dev, name);
    let whole_swap = usage.is_swap(whole_dev, name);
    if !whole_mounts.is_empty() || whole_swap {
        partitions.push(Partition {
            path: Path::new("/dev").join(name),
            size,
            mount_points: whole_mounts,
            swap: whole_swap,
        });
    }
    for part_dir in partition_dirs(&dir) {
        let part_name = part_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dev = sys_dev(&part_dir);
        system = system.or_else(|| system_reason(sys_block, &part_dir, &part_name, usage));
        partitions.push(Partition {
            path: Path::new("/dev").join(&part_name),
            size: sectors_to_bytes(&part_dir),
            mount_points: usage.mount_points(dev, &part_name),
            swap: usage.is_swap(dev, &part_name),
        });
    }
    let system = system.or_else(|| system_reason(sys_block, &dir, name, usage));
    let unknown = usage.unknown.clone().or_else(|| unnumbered_node(sys_block, &dir));
    let identity = Identity {
        sequence: read_attr(dir.join("diskseq")).and_then(|s| s.parse().ok()),
        media: None,
        serial: read_attr(dir.join("device/serial")).or_else(|| read_attr(dir.join("serial"))),
        size,
    };
    Some(Drive {
        path: Path::new("/dev").join(name),
        name: name.to_owned(),
        id,
        size,
        vendor,
        model,
        bus,
        removable: flag("removable"),
        read_only: flag("ro"),
        logical_block_size: block("logical_block_size"),
        physical_block_size: block("physical_block_size"),
        partitions,
        system,
        unknown,
        identity,
    })
}

fn block_names(sys_block: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(sys_block) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_listable(n))
        .collect();
    names.sort();
    names
}

pub(crate) fn list() -> Result<Vec<Drive>, DriveError> {
    if !Path::new(SYS_BLOCK).is_dir() {
        return Err(DriveError::NotFound(PathBuf::from(SYS_BLOCK)));
    }
    let usage = Usage::read();
    let ids = ids_by_device();
    let sys_block = Path::new(SYS_BLOCK);
    Ok(block_names(sys_block)
        .iter()
        .filter_map(|n| read_drive(sys_block, n, &usage, &ids))
        .collect())
}

/// A cheap summary that changes when a drive comes, goes, changes size or read-only
/// state, or when anything is mounted or unmounted.
pub(crate) fn fingerprint() -> u64 {
    let mut hasher = DefaultHasher::new();
    for name in block_names(Path::new(SYS_BLOCK)) {
        let dir = Path::new(SYS_BLOCK).join(&name);
        name.hash(&mut hasher);
        read_attr(dir.join("size")).hash(&mut hasher);
        read_attr(dir.join("ro")).hash(&mut hasher);
    }
    std::fs::read("/proc/self/mountinfo")
        .unwrap_or_default()
        .hash(&mut hasher);
    std::fs::read("/proc/swaps").unwrap_or_default().hash(&mut hasher);
    hasher.finish()
}

/// The whole disks under a block device number, following partitions and stacked
/// devices (device-mapper, RAID: every member) down.
fn disks_of_dev(dev: (u32, u32), disks: &mut BTreeSet<String>) {
    if let Ok(dir) = std::fs::canonicalize(format!("/sys/dev/block/{}:{}", dev.0, dev.1)) {
        disks_of_sys_dir(&dir, 0, disks);
    }
}

fn disks_of_sys_dir(dir: &Path, depth: u32, disks: &mut BTreeSet<String>) {
    if depth > 8 {
        return;
    }
    if dir.join("partition").exists() {
        if let Some(disk) = dir.parent().and_then(Path::file_name) {
            disks.insert(disk.to_string_lossy().into_owned());
        }
        return;
    }
    let slaves: Vec<PathBuf> = std::fs::read_dir(dir.join("slaves"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::canonicalize(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    if slaves.is_empty()
        && let Some(disk) = dir.file_name()
    {
        disks.insert(disk.to_string_lossy().into_owned());
    }
    for slave in slaves {
        disks_of_sys_dir(&slave, depth + 1, disks);
    }
}

/// The disks under the file system with device number `dev`: for an anonymous device
/// (btrfs, ZFS, bcachefs), the disks of every traced member.
fn disks_holding_dev(dev: (u32, u32)) -> Vec<String> {
    let mut disks = BTreeSet::new();
    if dev.0 != 0 {
        disks_of_dev(dev, &mut disks);
    } else {
        for member in Usage::read().members.get(&dev).into_iter().flatten() {
            if let Ok(dir) = std::fs::canonicalize(Path::new("/sys/class/block").join(member)) {
                disks_of_sys_dir(&dir, 0, &mut disks);
            }
        }
    }
    disks.into_iter().collect()
}

pub(crate) fn drives_holding(path: &Path) -> Vec<String> {
    dev_holding(path).map(disks_holding_dev).unwrap_or_default()
}

pub(crate) fn drives_holding_file(file: &File) -> Vec<String> {
    file.metadata()
        .map(|meta| disks_holding_dev((libc::major(meta.dev()), libc::minor(meta.dev()))))
        .unwrap_or_default()
}

/// Who holds `paths` open, and who works under `mount_points`: "bash (pid 412), vim (pid 977)".
fn holders_of(paths: &[PathBuf], mount_points: &[PathBuf]) -> Option<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let proc_dir = entry.path();
        let mut links: Vec<PathBuf> = std::fs::read_dir(proc_dir.join("fd"))
            .map(|fds| {
                fds.flatten()
                    .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        links.extend(std::fs::read_link(proc_dir.join("cwd")));
        let uses = links
            .iter()
            .any(|l| paths.contains(l) || mount_points.iter().any(|m| m != Path::new("/") && l.starts_with(m)));
        if uses {
            let comm = read_attr(proc_dir.join("comm")).unwrap_or_else(|| "?".into());
            found.insert(format!("{comm} (pid {pid})"));
        }
    }
    (!found.is_empty()).then(|| found.into_iter().collect::<Vec<_>>().join(", "))
}

fn busy(drive_path: &Path, what: &str, paths: &[PathBuf], mount_points: &[PathBuf]) -> DriveError {
    let detail = match holders_of(paths, mount_points) {
        Some(who) => format!("{what} is in use by {who}; close it and try again"),
        None => format!("{what} is in use; close the programs using it and try again"),
    };
    DriveError::InUse {
        path: drive_path.to_path_buf(),
        detail,
    }
}

pub(crate) fn prepare(drive: &Drive) -> Result<Target, DriveError> {
    let node_paths: Vec<PathBuf> = std::iter::once(drive.path.clone())
        .chain(
            partition_dirs(&Path::new(SYS_BLOCK).join(&drive.name))
                .iter()
                .filter_map(|d| d.file_name().map(|n| Path::new("/dev").join(n))),
        )
        .collect();
    let nodes: Vec<(Option<(u32, u32)>, String)> = node_paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (dev_of_node(p), name)
        })
        .collect();
    // Read the mounts afresh: the list the user chose from may be seconds old.
    let usage = Usage::read();
    if let Some(why) = &usage.unknown {
        return Err(io_error(
            &drive.path,
            io::Error::other(format!(
                "Graver cannot tell whether the running system uses this drive ({why}), so it does not touch it"
            )),
        ));
    }
    let mut mount_points: Vec<PathBuf> = usage
        .mounts
        .iter()
        .filter(|m| nodes.iter().any(|(dev, name)| usage.stands_on(m.dev, *dev, name)))
        .map(|m| m.mount_point.clone())
        .collect();
    // A file system may be mounted several times (btrfs subvolumes, bind mounts).
    mount_points.sort();
    mount_points.dedup();
    // Deepest first, so nested mounts come off before their parents.
    mount_points.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for mount_point in &mount_points {
        unmount(mount_point).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                busy(
                    &drive.path,
                    &mount_point.display().to_string(),
                    &node_paths,
                    &mount_points,
                )
            } else {
                io_error(
                    &drive.path,
                    io::Error::new(e.kind(), format!("unmounting {} failed: {e}", mount_point.display())),
                )
            }
        })?;
    }
    open_device(&drive.path, true).map_err(|e| match e {
        DriveError::Busy(path) => busy(&path, "the drive", &node_paths, &[]),
        other => other,
    })
}

fn unmount(mount_point: &Path) -> io::Result<()> {
    let c_path = std::ffi::CString::new(mount_point.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mount point contains a NUL byte"))?;
    // SAFETY: c_path is a valid NUL-terminated string for the duration of the call.
    let rc = unsafe { libc::umount2(c_path.as_ptr(), 0) };
    if rc == 0 {
        return Ok(());
    }
    let error = io::Error::last_os_error();
    // Already gone (another program unmounted it meanwhile) is what we wanted.
    if error.raw_os_error() == Some(libc::EINVAL) {
        Ok(())
    } else {
        Err(error)
    }
}

pub(crate) fn eject(drive: &Drive) -> Result<Ejected, DriveError> {
    if matches!(drive.bus, Bus::Virtual) {
        return Ok(Ejected::NotSupported(format!(
            "{} is virtual: there is nothing to eject; its partition table was re-read",
            drive.name
        )));
    }
    let udisks = std::process::Command::new("udisksctl")
        .args(["power-off", "--no-user-interaction", "-b"])
        .arg(&drive.path)
        .output();
    if let Ok(output) = udisks
        && output.status.success()
    {
        return Ok(Ejected::Ejected);
    }
    // Without udisks, USB and SCSI disks can still be detached from the kernel, which
    // flushes their caches and lets them be pulled; that is most of what a power-off does.
    if matches!(drive.bus, Bus::Usb | Bus::Scsi) {
        let delete = Path::new(SYS_BLOCK).join(&drive.name).join("device/delete");
        if std::fs::write(&delete, "1").is_ok() {
            return Ok(Ejected::Ejected);
        }
    }
    Ok(Ejected::NotSupported(format!(
        "{} cannot be powered off here (udisks is not available); its partition table was re-read",
        drive.name
    )))
}

/// The `/sys/class/block/<name>` directory of a device node, following symlinks such as `/dev/disk/by-id/…`.
fn sys_dir(path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let name = real.file_name()?.to_str()?;
    let dir = Path::new("/sys/class/block").join(name);
    dir.exists().then_some(dir)
}

fn is_read_only(path: &Path) -> bool {
    sys_dir(path)
        .and_then(|dir| read_attr(dir.join("ro")))
        .is_some_and(|ro| ro == "1")
}

/// Opens a whole block device for direct, exclusive I/O.
pub(crate) fn open_device(path: &Path, write: bool) -> Result<Target, DriveError> {
    if write && is_read_only(path) {
        return Err(DriveError::ReadOnly(path.to_path_buf()));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT | libc::O_EXCL)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EBUSY) => DriveError::Busy(path.to_path_buf()),
            Some(libc::EROFS) => DriveError::ReadOnly(path.to_path_buf()),
            Some(libc::EACCES | libc::EPERM) => DriveError::PermissionDenied(path.to_path_buf()),
            Some(libc::ENOENT | libc::ENXIO | libc::ENODEV) => DriveError::NotFound(path.to_path_buf()),
            _ => io_error(path, e),
        })?;
    let capacity = ioctl_read::<u64>(&file, BLKGETSIZE64).or_else(|_| size_by_seek(&file));
    let capacity = capacity.map_err(|e| io_error(path, e))?;
    let logical = ioctl_read::<libc::c_int>(&file, BLKSSZGET)
        .ok()
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(512);
    Ok(Target::device(file, path, capacity, logical))
}

/// The disk sequence number of the disk open as `file` (Linux 5.15 and later), which
/// changes whenever another medium or backing file takes the node.
pub(crate) fn open_sequence(file: &File) -> Option<u64> {
    ioctl_read::<u64>(file, BLKGETDISKSEQ).ok()
}

/// Asks the kernel to re-read the partition table; failure (busy, no table) is harmless.
pub(crate) fn reread_partitions(file: &File) {
    // SAFETY: BLKRRPART takes no argument; the descriptor is open for the call's duration.
    let _ = unsafe { libc::ioctl(file.as_raw_fd(), BLKRRPART, 0) };
}

/// Every step is `fdatasync`: Linux needs no other (see [`crate::os::plan::sync_steps`]).
pub(crate) fn sync_step(file: &File, _step: crate::os::plan::SyncStep) -> io::Result<()> {
    file.sync_data()
}

pub(crate) use crate::os::unix::is_device;

/// Whether the kernel still has a device with a medium at `real`: a detached loop
/// device or an empty card reader keeps its node but has no size.
pub(crate) fn has_medium(real: &Path) -> bool {
    real.file_name().is_some_and(|name| {
        read_attr(Path::new("/sys/class/block").join(name).join("size"))
            .and_then(|size| size.parse::<u64>().ok())
            .is_some_and(|sectors| sectors > 0)
    })
}

/// Whether `metadata` is a block device.
pub(crate) fn is_block_device(_path: &Path, metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_block_device()
}

/// Only Windows names disks `\\.\PhysicalDriveN`.
pub(crate) fn is_physical_drive_path(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn this_machines_root_disk_is_listed_as_system() {
        // Only reads: listing is harmless, and every Linux machine has a root file system.
        let drives = list().unwrap();
        let Some(root) = drives_holding(Path::new("/")).into_iter().next() else {
            eprintln!("skipped: / is not on a block device here (a container's overlay?)");
            return;
        };
        let drive = drives.iter().find(|d| d.name == root);
        let drive = drive.unwrap_or_else(|| panic!("the root disk {root} is not listed: {drives:?}"));
        let reason = drive
            .system
            .as_deref()
            .unwrap_or_else(|| panic!("{drive:?} is not system"));
        assert!(reason.contains("/ is mounted from"), "{reason}");
    }

    /// A miniature `/sys` with a SATA system disk (root on LVM), a USB stick with a
    /// mounted partition, a read-only loop device and the dm volume in between.
    fn fake_sysfs() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{text}\n")).unwrap();
        };
        let sata = "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda";
        let usb = "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb";
        let dm = "devices/virtual/block/dm-0";
        let lo = "devices/virtual/block/loop3";
        for (dir, dev, size, removable, ro) in [
            (sata, "8:0", "1000215216", "0", "0"),
            (usb, "8:16", "31260672", "1", "0"),
            (dm, "253:0", "900000000", "0", "0"),
            (lo, "7:3", "131072", "0", "1"),
        ] {
            write(&format!("{dir}/dev"), dev);
            write(&format!("{dir}/size"), size);
            write(&format!("{dir}/removable"), removable);
            write(&format!("{dir}/ro"), ro);
            write(&format!("{dir}/queue/logical_block_size"), "512");
            write(&format!("{dir}/queue/physical_block_size"), "4096");
        }
        write(&format!("{sata}/device/vendor"), "ATA     ");
        write(&format!("{sata}/device/model"), "Samsung SSD 870");
        write(&format!("{sata}/sda1/partition"), "1");
        write(&format!("{sata}/sda1/dev"), "8:1");
        write(&format!("{sata}/sda1/size"), "1048576");
        write(&format!("{sata}/sda2/partition"), "2");
        write(&format!("{sata}/sda2/dev"), "8:2");
        write(&format!("{sata}/sda2/size"), "999000000");
        std::fs::create_dir_all(root.path().join(format!("{sata}/sda2/holders"))).unwrap();
        std::os::unix::fs::symlink(
            root.path().join(dm),
            root.path().join(format!("{sata}/sda2/holders/dm-0")),
        )
        .unwrap();
        write(&format!("{usb}/device/vendor"), "SanDisk ");
        write(&format!("{usb}/device/model"), "Cruzer Blade    ");
        write(&format!("{usb}/sdb1/partition"), "1");
        write(&format!("{usb}/sdb1/dev"), "8:17");
        write(&format!("{usb}/sdb1/size"), "31258624");
        write(&format!("{lo}/loop/backing_file"), "/dev/shm/test.img");
        std::fs::create_dir_all(root.path().join("block")).unwrap();
        for (name, dir) in [("sda", sata), ("sdb", usb), ("dm-0", dm), ("loop3", lo)] {
            std::os::unix::fs::symlink(root.path().join(dir), root.path().join("block").join(name)).unwrap();
        }
        root
    }

    fn fake_usage() -> Usage {
        Usage {
            mounts: parse_mountinfo(
                b"27 1 253:0 / / rw - ext4 /dev/mapper/vg-root rw\n\
                 28 27 8:1 / /boot/efi rw - vfat /dev/sda1 rw\n\
                 35 27 8:17 / /media/user/STICK rw - vfat /dev/sdb1 rw\n",
            )
            .unwrap(),
            members: BTreeMap::new(),
            swaps: BTreeSet::new(),
            exe_dev: None,
            unknown: None,
        }
    }

    #[test]
    fn sysfs_fixture_lists_disks_with_partitions_mounts_and_system_reasons() {
        let sysfs = fake_sysfs();
        let sys_block = sysfs.path().join("block");
        let names = block_names(&sys_block);
        assert_eq!(names, ["loop3", "sda", "sdb"], "dm-0 is a stacked volume, not a disk");
        let usage = fake_usage();
        let ids = BTreeMap::from([("sdb".to_owned(), "usb-SanDisk_Cruzer_Blade_4C5300-0:0".to_owned())]);
        let drives: Vec<Drive> = names
            .iter()
            .filter_map(|n| read_drive(&sys_block, n, &usage, &ids))
            .collect();
        let [lo, sda, sdb] = drives.as_slice() else {
            panic!("{drives:?}")
        };

        assert_eq!(sda.bus, Bus::Sata);
        assert_eq!(sda.size, 1_000_215_216 * 512);
        assert!(!sda.removable);
        assert_eq!((sda.logical_block_size, sda.physical_block_size), (512, 4096));
        assert_eq!(sda.partitions.len(), 2);
        assert_eq!(sda.partitions[0].mount_points, [PathBuf::from("/boot/efi")]);
        assert_eq!(sda.system.as_deref(), Some("/boot/efi is mounted from sda1"));
        assert_eq!(sda.display_name(), "ATA Samsung SSD 870");

        assert_eq!(sdb.bus, Bus::Usb);
        assert!(sdb.removable && !sdb.read_only);
        assert_eq!(sdb.id, "usb-SanDisk_Cruzer_Blade_4C5300-0:0");
        assert_eq!(sdb.display_name(), "SanDisk Cruzer Blade");
        assert_eq!(sdb.path, PathBuf::from("/dev/sdb"));
        assert_eq!(sdb.partitions[0].path, PathBuf::from("/dev/sdb1"));
        assert_eq!(sdb.partitions[0].mount_points, [PathBuf::from("/media/user/STICK")]);
        assert_eq!(sdb.system, None);

        assert_eq!(lo.bus, Bus::Virtual);
        assert!(lo.read_only);
        assert_eq!(lo.id, "loop3:/dev/shm/test.img");
        assert_eq!(lo.size, 64 << 20);
    }

    #[test]
    fn root_on_a_stacked_volume_marks_the_disk_under_it() {
        let sysfs = fake_sysfs();
        let sys_block = sysfs.path().join("block");
        let mut usage = fake_usage();
        usage.mounts.retain(|m| m.mount_point == Path::new("/"));
        let sda = read_drive(&sys_block, "sda", &usage, &BTreeMap::new()).unwrap();
        assert_eq!(sda.system.as_deref(), Some("/ is mounted from sda2 through dm-0"));
        usage.mounts.clear();
        usage.swaps.insert((8, 1));
        let sda = read_drive(&sys_block, "sda", &usage, &BTreeMap::new()).unwrap();
        assert_eq!(sda.system.as_deref(), Some("sda1 is in use as swap"));
        assert!(sda.partitions[0].swap);
    }

    /// A small `/sys` and `/dev` in a temporary folder: four disks (a SATA system
    /// disk `sda` with three partitions, USB sticks `sdb`, `sdc` and `sdd` with one
    /// each), to which each test adds its stacked devices and btrfs file systems.
    struct FakeTree {
        root: tempfile::TempDir,
    }

    impl FakeTree {
        fn new() -> Self {
            let tree = Self {
                root: tempfile::tempdir().unwrap(),
            };
            let sata = "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block";
            tree.disk(sata, "sda", 0, &["sda1", "sda2", "sda3"]);
            for (i, name) in ["sdb", "sdc", "sdd"].into_iter().enumerate() {
                let usb = format!(
                    "devices/pci0000:00/0000:00:14.0/usb2/2-{i}/2-{i}:1.0/host{i}/target{i}:0:0/{i}:0:0:0/block"
                );
                tree.disk(&usb, name, 16 * (i as u32 + 1), &[&format!("{name}1")]);
            }
            tree
        }

        fn sys(&self) -> PathBuf {
            self.root.path().join("sys")
        }

        fn dev(&self) -> PathBuf {
            self.root.path().join("dev")
        }

        fn write(&self, rel: &str, text: &str) {
            let path = self.sys().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("{text}\n")).unwrap();
        }

        fn link(&self, target: &Path, link: &Path) {
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, link).unwrap();
        }

        /// A device known to sysfs by name, with a node in `/dev`.
        fn register(&self, name: &str, dir: &str, dev: &str) {
            self.write(&format!("{dir}/dev"), dev);
            self.link(&self.sys().join(dir), &self.sys().join("class/block").join(name));
            self.link(&self.sys().join(dir), &self.sys().join("dev/block").join(dev));
            std::fs::create_dir_all(self.dev()).unwrap();
            std::fs::write(self.dev().join(name), "").unwrap();
        }

        fn disk(&self, parent: &str, name: &str, major_minor: u32, parts: &[&str]) {
            let dir = format!("{parent}/{name}");
            self.register(name, &dir, &format!("8:{major_minor}"));
            self.write(&format!("{dir}/size"), "62521344");
            self.write(&format!("{dir}/removable"), if name == "sda" { "0" } else { "1" });
            self.write(&format!("{dir}/ro"), "0");
            self.link(&self.sys().join(&dir), &self.sys().join("block").join(name));
            for (i, part) in parts.iter().enumerate() {
                let part_dir = format!("{dir}/{part}");
                self.register(part, &part_dir, &format!("8:{}", major_minor + 1 + i as u32));
                self.write(&format!("{part_dir}/partition"), &(i + 1).to_string());
                self.write(&format!("{part_dir}/size"), "1048576");
            }
        }

        /// A device-mapper or RAID device `name` stacked on `under`, as sysfs links them.
        fn stack(&self, name: &str, dev: &str, under: &[&str]) {
            let dir = format!("devices/virtual/block/{name}");
            self.register(name, &dir, dev);
            self.write(&format!("{dir}/size"), "1048576");
            self.link(&self.sys().join(&dir), &self.sys().join("block").join(name));
            for lower in under {
                let lower_dir = std::fs::canonicalize(self.sys().join("class/block").join(lower)).unwrap();
                self.link(&lower_dir, &self.sys().join(&dir).join("slaves").join(lower));
                self.link(&self.sys().join(&dir), &lower_dir.join("holders").join(name));
            }
        }

        /// A btrfs file system with these member devices.
        fn btrfs(&self, uuid: &str, members: &[&str]) {
            for member in members {
                let dir = std::fs::canonicalize(self.sys().join("class/block").join(member)).unwrap();
                self.link(
                    &dir,
                    &self.sys().join("fs/btrfs").join(uuid).join("devices").join(member),
                );
            }
        }

        /// A `/dev` alias (`mapper/vg-root`, `disk/by-id/…`) of the node `name`.
        fn alias(&self, alias: &str, name: &str) {
            self.link(&self.dev().join(name), &self.dev().join(alias));
        }

        /// The drives, given a mount table and what `zpool status -P` says of each pool.
        fn drives(&self, mountinfo: io::Result<Vec<u8>>, zpool: &dyn Fn(&str) -> Option<String>) -> Vec<Drive> {
            let (sys, dev) = (self.sys(), self.dev());
            let tracer = Tracer {
                sys: &sys,
                dev: &dev,
                zpool_status: zpool,
            };
            let swaps = Ok(b"Filename\tType\tSize\tUsed\tPriority\n".to_vec());
            let usage = Usage::from_tables(mountinfo, swaps, None, &tracer);
            let sys_block = sys.join("block");
            block_names(&sys_block)
                .iter()
                .filter_map(|n| read_drive(&sys_block, n, &usage, &BTreeMap::new()))
                .collect()
        }
    }

    fn fixture(name: &str) -> io::Result<Vec<u8>> {
        Ok(crate::os::linux_parse::tests::fixture(name))
    }

    fn no_zfs(_: &str) -> Option<String> {
        None
    }

    /// Each drive's name with its system reason, "-" when it is not system; unknown drives fail the test.
    fn system_of(drives: &[Drive]) -> Vec<(String, String)> {
        drives
            .iter()
            .map(|d| {
                assert_eq!(d.unknown, None, "{} should be known", d.name);
                (d.name.clone(), d.system.clone().unwrap_or_else(|| "-".into()))
            })
            .collect()
    }

    fn expect(rows: &[(&str, &str)]) -> Vec<(String, String)> {
        rows.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn btrfs_root_on_an_anonymous_device_is_traced_to_its_disk() {
        let tree = FakeTree::new();
        tree.btrfs("4f1c2a9e-0d7b-4c55-9a0e-3b8d2f6c1e77", &["sda2"]);
        let drives = tree.drives(fixture("btrfs-single.mountinfo"), &no_zfs);
        assert_eq!(
            system_of(&drives),
            expect(&[
                ("sda", "/ is mounted from sda2"),
                ("sdb", "-"),
                ("sdc", "-"),
                ("sdd", "-")
            ])
        );
        // Both subvolumes show as mounted from the partition.
        assert_eq!(
            drives[0].partitions[1].mount_points,
            [PathBuf::from("/"), PathBuf::from("/home")]
        );
    }

    #[test]
    fn a_btrfs_root_btrfs_does_not_list_makes_every_drive_unknown() {
        let tree = FakeTree::new();
        let drives = tree.drives(fixture("btrfs-single.mountinfo"), &no_zfs);
        for drive in &drives {
            let why = drive.unknown.as_deref().unwrap_or_else(|| panic!("{drive:?}"));
            assert!(
                why.starts_with("/ cannot be traced to its disks: btrfs does not list sda2"),
                "{why}"
            );
        }
    }

    #[test]
    fn every_member_of_a_multi_device_btrfs_home_is_system() {
        let tree = FakeTree::new();
        tree.btrfs("9a0e3b8d-2f6c-1e77-4f1c-2a9e0d7b4c55", &["sdb1", "sdc1"]);
        let drives = tree.drives(fixture("btrfs-multi.mountinfo"), &no_zfs);
        assert_eq!(
            system_of(&drives),
            expect(&[
                ("sda", "/boot/efi is mounted from sda1"),
                ("sdb", "/home is mounted from sdb1"),
                ("sdc", "/home is mounted from sdc1"),
                ("sdd", "-"),
            ])
        );
    }

    #[test]
    fn btrfs_on_dm_crypt_is_traced_through_the_mapping() {
        let tree = FakeTree::new();
        tree.stack("dm-0", "253:0", &["sdc1"]);
        tree.alias("mapper/luks-home", "dm-0");
        tree.btrfs("2a9e0d7b-4c55-9a0e-3b8d-2f6c1e774f1c", &["dm-0"]);
        let mountinfo = b"21 1 8:2 / / rw - ext4 /dev/sda2 rw\n22 21 0:36 /@home /home rw - btrfs /dev/mapper/luks-home rw,subvol=/@home\n";
        let drives = tree.drives(Ok(mountinfo.to_vec()), &no_zfs);
        assert_eq!(
            system_of(&drives),
            expect(&[
                ("sda", "/ is mounted from sda2"),
                ("sdb", "-"),
                ("sdc", "/home is mounted from sdc1 through dm-0"),
                ("sdd", "-"),
            ])
        );
    }

    #[test]
    fn zfs_root_pool_members_are_system_from_zpool_status() {
        let tree = FakeTree::new();
        tree.alias("disk/by-id/ata-Samsung_SSD_870-part3", "sda3");
        let status = String::from_utf8(fixture("zpool-status-rpool.txt").unwrap()).unwrap();
        let asked = std::cell::RefCell::new(Vec::new());
        let zpool = |pool: &str| {
            asked.borrow_mut().push(pool.to_owned());
            (pool == "rpool").then(|| status.clone())
        };
        let drives = tree.drives(fixture("zfs.mountinfo"), &zpool);
        assert_eq!(
            system_of(&drives),
            expect(&[
                // /boot/efi on sda1 is found first; sda3 is a member as well.
                ("sda", "/boot/efi is mounted from sda1"),
                ("sdb", "/ is mounted from sdb1"),
                ("sdc", "/ is mounted from sdc1"),
                ("sdd", "-"),
            ])
        );
        assert_eq!(
            drives[0].partitions[2].mount_points,
            [PathBuf::from("/"), PathBuf::from("/home")]
        );
        // Each pool is asked once; the data pool "tank" cannot be traced, which only matters for system mounts.
        assert_eq!(*asked.borrow(), ["rpool", "tank"]);
    }

    #[test]
    fn a_zfs_root_that_cannot_be_traced_makes_every_drive_unknown() {
        let tree = FakeTree::new();
        let drives = tree.drives(fixture("zfs.mountinfo"), &no_zfs);
        assert_eq!(drives.len(), 4);
        for drive in &drives {
            let why = drive.unknown.as_deref().unwrap_or_else(|| panic!("{drive:?}"));
            assert!(
                why.contains("/ cannot be traced to its disks: the devices of ZFS pool rpool cannot be read"),
                "{why}"
            );
            assert!(why.contains("/home cannot be traced"), "{why}");
            assert!(!why.contains("tank"), "a data pool is not the system's: {why}");
        }
    }

    #[test]
    fn bcachefs_members_from_the_source_are_system_and_a_missing_one_is_unknown() {
        let tree = FakeTree::new();
        let drives = tree.drives(fixture("bcachefs.mountinfo"), &no_zfs);
        assert_eq!(
            system_of(&drives),
            expect(&[
                ("sda", "-"),
                ("sdb", "/ is mounted from sdb1"),
                ("sdc", "/ is mounted from sdc1"),
                ("sdd", "-"),
            ])
        );
        let drives = tree.drives(fixture("bcachefs-missing-member.mountinfo"), &no_zfs);
        for drive in &drives {
            let why = drive.unknown.as_deref().unwrap_or_else(|| panic!("{drive:?}"));
            assert!(why.contains("/dev/sdz1 is not a block device Graver can find"), "{why}");
        }
    }

    #[test]
    fn root_on_lvm_on_dm_crypt_on_md_raid_marks_every_raid_member() {
        let tree = FakeTree::new();
        tree.stack("md0", "9:0", &["sdb1", "sdc1"]);
        tree.stack("dm-0", "253:0", &["md0"]);
        tree.stack("dm-1", "253:1", &["dm-0"]);
        tree.alias("mapper/vg-root", "dm-1");
        let drives = tree.drives(fixture("lvm-md-crypt.mountinfo"), &no_zfs);
        assert_eq!(
            system_of(&drives),
            expect(&[
                ("sda", "-"),
                ("sdb", "/ is mounted from sdb1 through dm-1"),
                ("sdc", "/ is mounted from sdc1 through dm-1"),
                ("sdd", "-"),
            ])
        );
    }

    #[test]
    fn a_file_on_raid_under_lvm_is_held_by_every_member_disk() {
        let tree = FakeTree::new();
        tree.stack("md0", "9:0", &["sdb1", "sdc1"]);
        tree.stack("dm-0", "253:0", &["md0"]);
        let held = |name: &str| {
            let dir = std::fs::canonicalize(tree.sys().join("class/block").join(name)).unwrap();
            let mut disks = BTreeSet::new();
            disks_of_sys_dir(&dir, 0, &mut disks);
            disks.into_iter().collect::<Vec<_>>()
        };
        assert_eq!(held("dm-0"), ["sdb", "sdc"]);
        assert_eq!(held("sda2"), ["sda"]);
        assert_eq!(held("sdd"), ["sdd"]);
    }

    #[test]
    fn odd_mount_point_names_hide_nothing_and_deviceless_mounts_change_nothing() {
        use std::os::unix::ffi::OsStrExt;
        let tree = FakeTree::new();
        let drives = tree.drives(fixture("non-utf8.mountinfo"), &no_zfs);
        assert_eq!(
            system_of(&drives),
            expect(&[
                ("sda", "/ is mounted from sda2"),
                ("sdb", "-"),
                ("sdc", "-"),
                ("sdd", "-")
            ])
        );
        let stick = &drives[1].partitions[0];
        assert_eq!(stick.mount_points.len(), 1);
        assert_eq!(
            stick.mount_points[0].as_os_str().as_bytes(),
            b"/media/user/\xff\xfe stick"
        );
        // JSON shows the name lossily rather than failing the whole listing.
        let json = serde_json::to_string(&drives[1]).unwrap();
        assert!(json.contains("/media/user/\u{fffd}\u{fffd} stick"), "{json}");
    }

    #[test]
    fn a_node_without_a_device_number_makes_its_drive_unknown() {
        let tree = FakeTree::new();
        tree.stack("dm-0", "253:0", &["sdc1"]);
        std::fs::remove_file(tree.sys().join("devices/virtual/block/dm-0/dev")).unwrap();
        let drives = tree.drives(Ok(b"21 1 8:2 / / rw - ext4 /dev/sda2 rw\n".to_vec()), &no_zfs);
        let unknown: Vec<(&str, Option<&str>)> =
            drives.iter().map(|d| (d.name.as_str(), d.unknown.as_deref())).collect();
        assert_eq!(
            unknown,
            [
                ("sda", None),
                ("sdb", None),
                ("sdc", Some("sysfs gives no device number for dm-0")),
                ("sdd", None)
            ]
        );
    }

    #[test]
    fn a_system_mount_on_a_device_sysfs_does_not_know_makes_every_drive_unknown() {
        let tree = FakeTree::new();
        let mountinfo = b"21 1 259:3 / / rw - ext4 /dev/nvme0n1p3 rw\n22 21 8:17 / /mnt rw - vfat /dev/sdb1 rw\n";
        let drives = tree.drives(Ok(mountinfo.to_vec()), &no_zfs);
        for drive in &drives {
            let why = drive.unknown.as_deref().unwrap_or_else(|| panic!("{drive:?}"));
            assert_eq!(why, "/ cannot be traced to its disks: its device 259:3 is not in sysfs");
        }
    }

    #[test]
    fn a_mount_table_that_cannot_be_read_or_parsed_makes_every_drive_unknown() {
        let tree = FakeTree::new();
        let unreadable = Err(io::Error::from(io::ErrorKind::PermissionDenied));
        for (table, says) in [
            (unreadable, "the mount table (/proc/self/mountinfo) cannot be read"),
            (fixture("garbage.mountinfo"), "is unusable: line 2 of the mount table"),
            (Ok(Vec::new()), "is unusable: the mount table is empty"),
        ] {
            let drives = tree.drives(table, &no_zfs);
            assert_eq!(drives.len(), 4);
            for drive in &drives {
                let why = drive.unknown.as_deref().unwrap_or_else(|| panic!("{drive:?}"));
                assert!(why.contains(says), "{why}");
                let verdict = crate::judge(
                    drive,
                    None,
                    crate::Consent {
                        unsafe_mode: true,
                        typed_name: Some(&drive.name),
                        warnings_confirmed: true,
                    },
                );
                assert!(
                    matches!(verdict, crate::Verdict::Refused(crate::Refusal::Forbidden(_))),
                    "{verdict:?}"
                );
            }
        }
    }
}
