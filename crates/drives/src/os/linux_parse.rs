//! The pure half of the Linux backend: mountinfo, swaps and sysfs values read as
//! bytes, which block devices a mount stands on, `zpool status -P` member lists,
//! which bus a sysfs path means, which block devices are never listed. Tested on
//! every OS.

use std::path::{Path, PathBuf};

use crate::Bus;

/// Reads a short attribute (sysfs style) as bytes and trims it; `None` when absent or
/// empty. Bytes that are not UTF-8 (a loop device's backing file may have any name)
/// are shown as U+FFFD rather than losing the whole value.
// The fuzzing feature builds these parsers on every OS; only Linux reads sysfs.
#[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
pub(crate) fn read_attr(path: impl AsRef<Path>) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Block devices that are never a target: device-mapper and RAID volumes (their
/// disks are listed instead), optical drives, RAM and compressed-RAM disks, and
/// an eMMC's boot and RPMB areas.
pub(crate) fn is_listable(name: &str) -> bool {
    const SKIP: [&str; 6] = ["dm-", "md", "sr", "ram", "zram", "fd"];
    !SKIP.iter().any(|p| name.starts_with(p)) && !name.contains("boot") && !name.ends_with("rpmb")
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The device number `st_dev` reports: a real block device, or `0:N` for an
    /// anonymous one (btrfs subvolumes, ZFS, tmpfs, overlay, NFS, …).
    pub(crate) dev: (u32, u32),
    /// Where it is mounted, byte for byte (a mount point's name need not be UTF-8).
    pub(crate) mount_point: PathBuf,
    /// The file system type (`ext4`, `btrfs`, `zfs`, `fuse.sshfs`).
    pub(crate) fstype: String,
    /// The mount source: a device path, `pool/dataset`, `dev1:dev2`, `server:/export`, `tmpfs`.
    pub(crate) source: Vec<u8>,
}

/// Why a mount table could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadTable(pub(crate) String);

/// A path from the bytes the kernel gave; exact on Unix, where paths are bytes.
#[cfg_attr(not(unix), allow(clippy::needless_pass_by_value))]
pub(crate) fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        PathBuf::from(std::ffi::OsString::from_vec(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline,
/// `\134` backslash); every other byte, UTF-8 or not, is kept as it is.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(code) = field.get(i + 1..i + 4).and_then(octal_byte)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Three octal digits (`040`) as the byte they stand for; `None` for anything else.
fn octal_byte(digits: &[u8]) -> Option<u8> {
    digits.iter().try_fold(0u8, |value, &digit| {
        let digit = (b'0'..=b'7').contains(&digit).then(|| digit - b'0')?;
        value.checked_mul(8)?.checked_add(digit)
    })
}

/// A sysfs `size` attribute (in 512-byte sectors whatever the block size) in bytes;
/// 0, like an empty reader, for a value that is not a number or overflows.
pub(crate) fn parse_sectors(text: &str) -> u64 {
    text.parse::<u64>()
        .ok()
        .and_then(|sectors| sectors.checked_mul(512))
        .unwrap_or(0)
}

/// Parses `major:minor`.
pub(crate) fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn parse_mount_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // mount id, parent id, major:minor, root, mount point, options, optional fields…, "-", type, source, super options.
    let [id, parent, dev, _root, mount_point, _options, rest @ ..] = fields.as_slice() else {
        return None;
    };
    std::str::from_utf8(id).ok()?.parse::<u64>().ok()?;
    std::str::from_utf8(parent).ok()?.parse::<u64>().ok()?;
    let dev = parse_dev(std::str::from_utf8(dev).ok()?)?;
    if !mount_point.starts_with(b"/") {
        return None;
    }
    let dash = rest.iter().position(|f| *f == b"-")?;
    let [fstype, source, _super_options, ..] = &rest[dash + 1..] else {
        return None;
    };
    let fstype = std::str::from_utf8(&unescape(fstype)).ok()?.to_owned();
    if fstype.is_empty() {
        return None;
    }
    Some(Mount {
        dev,
        mount_point: path_from_bytes(unescape(mount_point)),
        fstype,
        source: unescape(source),
    })
}

/// Parses `/proc/self/mountinfo` as the kernel writes it: bytes, not text.
///
/// # Errors
/// When any line does not have mountinfo's shape, or there is no line at all: a
/// table read only in part would hide the mounts it dropped, so none of it is used.
pub(crate) fn parse_mountinfo(bytes: &[u8]) -> Result<Vec<Mount>, BadTable> {
    let mut mounts = Vec::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let mount = parse_mount_line(line).ok_or_else(|| {
            BadTable(format!(
                "line {} of the mount table is not in mountinfo's form",
                number + 1
            ))
        })?;
        mounts.push(mount);
    }
    if mounts.is_empty() {
        return Err(BadTable("the mount table is empty".into()));
    }
    Ok(mounts)
}

/// One active swap area of `/proc/swaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Swap {
    /// The device or file, byte for byte.
    pub(crate) path: PathBuf,
    /// `partition` for a block device, `file` for a swap file.
    pub(crate) kind: String,
}

/// Parses `/proc/swaps` (bytes; the kernel escapes spaces as in mountinfo).
///
/// # Errors
/// When the header is missing or a line has no type.
pub(crate) fn parse_swaps(bytes: &[u8]) -> Result<Vec<Swap>, BadTable> {
    let mut lines = bytes.split(|&b| b == b'\n');
    if !lines.next().is_some_and(|header| header.starts_with(b"Filename")) {
        return Err(BadTable("the swap table has no header".into()));
    }
    lines
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split(u8::is_ascii_whitespace).filter(|f| !f.is_empty());
            match (fields.next(), fields.next()) {
                (Some(path), Some(kind)) => Ok(Swap {
                    path: path_from_bytes(unescape(path)),
                    kind: String::from_utf8_lossy(kind).into_owned(),
                }),
                _ => Err(BadTable("a line of the swap table has no type".into())),
            }
        })
        .collect()
}

/// What a mount stands on, as far as the mount table alone tells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Backing {
    /// A block device, by number: its sysfs entry says which.
    Device((u32, u32)),
    /// An anonymous device number over these block device nodes, named in the source
    /// (btrfs names one member, and `/sys/fs/btrfs` gives the rest; bcachefs names
    /// every member, `dev1:dev2`).
    Nodes(Vec<PathBuf>),
    /// A ZFS dataset of this pool: its members come from the pool's configuration.
    ZfsPool(String),
    /// An anonymous device whose source names nothing Graver can find a disk from.
    Untraceable,
    /// No block device at all: tmpfs, proc, overlay, NFS, FUSE without a device, …
    Nothing,
}

/// File systems that keep their data in one or more block devices yet show an
/// anonymous device number.
const MULTI_DEVICE: [&str; 2] = ["btrfs", "bcachefs"];

/// What `mount` stands on. Anonymous devices are traced by their source: only a
/// source under `/dev` (or a bcachefs list of them) names block devices, so
/// `tmpfs`, `overlay`, `server:/export` or `sshfs#host:` stand on nothing.
pub(crate) fn backing(mount: &Mount) -> Backing {
    if mount.dev.0 != 0 {
        return Backing::Device(mount.dev);
    }
    if mount.fstype == "zfs" {
        let pool = mount.source.split(|&b| b == b'/').next().unwrap_or_default();
        return match std::str::from_utf8(pool) {
            Ok(pool) if !pool.is_empty() => Backing::ZfsPool(pool.to_owned()),
            _ => Backing::Untraceable,
        };
    }
    let is_node = |p: &[u8]| p.starts_with(b"/dev/");
    if mount.fstype == "bcachefs" {
        let members: Vec<&[u8]> = mount.source.split(|&b| b == b':').collect();
        return if members.iter().all(|m| is_node(m)) {
            Backing::Nodes(members.into_iter().map(|m| path_from_bytes(m.to_vec())).collect())
        } else {
            Backing::Untraceable
        };
    }
    if is_node(&mount.source) {
        return Backing::Nodes(vec![path_from_bytes(mount.source.clone())]);
    }
    if MULTI_DEVICE.contains(&mount.fstype.as_str()) {
        Backing::Untraceable
    } else {
        Backing::Nothing
    }
}

/// The device paths of every vdev in `zpool status -P` output: data, log, cache and
/// spare devices alike, since each belongs to the pool. `None` when the text has no
/// configuration section or names no device, so a pool is never taken to have no disks.
pub(crate) fn parse_zpool_status(text: &str) -> Option<Vec<PathBuf>> {
    let mut in_config = false;
    let mut members = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("config:") {
            in_config = true;
            continue;
        }
        if in_config && trimmed.starts_with("errors:") {
            break;
        }
        if in_config
            && let Some(first) = trimmed.split_whitespace().next()
            && first.starts_with('/')
        {
            members.push(PathBuf::from(first));
        }
    }
    (!members.is_empty()).then_some(members)
}

/// Finds the block devices under file systems, from a sysfs tree (`/sys`, or a
/// small copy of it in the tests) and a way to ask ZFS for a pool's devices.
// A fuzzing build may compile these parsers on every OS; only Linux traces real mounts.
#[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
pub(crate) struct Tracer<'a> {
    /// Where sysfs is: `/sys`.
    pub(crate) sys: &'a Path,
    /// Where device nodes are: `/dev`; mount sources and ZFS vdevs are named under it.
    pub(crate) dev: &'a Path,
    /// `zpool status -P <pool>`'s output, or `None` when it cannot be had.
    pub(crate) zpool_status: &'a dyn Fn(&str) -> Option<String>,
}

#[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
impl Tracer<'_> {
    /// The sysfs name of the block device node at `path` (`/dev/mapper/vg-root` → `dm-1`).
    fn node_name(&self, path: &Path) -> Option<String> {
        let real = std::fs::canonicalize(self.dev.join(path.strip_prefix("/dev").ok()?)).ok()?;
        let name = real.file_name()?.to_str()?.to_owned();
        self.sys.join("class/block").join(&name).exists().then_some(name)
    }

    /// Every member of the btrfs file system that has `member` among its devices:
    /// `/sys/fs/btrfs/<uuid>/devices/` lists them all, whichever one was mounted.
    fn btrfs_members(&self, member: &str) -> Option<Vec<String>> {
        for fs in std::fs::read_dir(self.sys.join("fs/btrfs")).ok()?.flatten() {
            let devices = fs.path().join("devices");
            if devices.join(member).exists() {
                let mut names: Vec<String> = std::fs::read_dir(&devices)
                    .ok()?
                    .flatten()
                    .filter_map(|d| d.file_name().to_str().map(str::to_owned))
                    .collect();
                names.sort();
                return Some(names);
            }
        }
        None
    }

    /// The sysfs names of the block devices `mount` stands on: `Ok(None)` when it
    /// stands on none, or on a device number sysfs already links to its disk;
    /// `Err` with the reason when it stands on devices that cannot be found.
    pub(crate) fn members(&self, mount: &Mount) -> Result<Option<Vec<String>>, String> {
        let shown = String::from_utf8_lossy(&mount.source).into_owned();
        match backing(mount) {
            Backing::Device(_) | Backing::Nothing => Ok(None),
            Backing::Untraceable => Err(format!("its {} source {shown} names no device", mount.fstype)),
            Backing::Nodes(paths) => {
                let mut names = Vec::new();
                for path in &paths {
                    let name = self.node_name(path).ok_or_else(|| {
                        format!("its device {} is not a block device Graver can find", path.display())
                    })?;
                    if mount.fstype == "btrfs" {
                        let all = self
                            .btrfs_members(&name)
                            .ok_or_else(|| format!("btrfs does not list {name} among any file system's devices"))?;
                        names.extend(all);
                    } else {
                        names.push(name);
                    }
                }
                Ok(Some(names))
            }
            Backing::ZfsPool(pool) => {
                let status = (self.zpool_status)(&pool).ok_or_else(|| {
                    format!("the devices of ZFS pool {pool} cannot be read (`zpool status -P {pool}`)")
                })?;
                let paths =
                    parse_zpool_status(&status).ok_or_else(|| format!("`zpool status -P {pool}` names no device"))?;
                paths
                    .iter()
                    .map(|p| {
                        self.node_name(p)
                            .ok_or_else(|| format!("ZFS pool {pool} uses {}, which Graver cannot find", p.display()))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some)
            }
        }
    }
}

/// The bus a disk is on, from its name and its sysfs device path.
pub(crate) fn bus_of(name: &str, sys_path: &str) -> Bus {
    if sys_path.contains("/usb") {
        Bus::Usb
    } else if name.starts_with("mmcblk") || sys_path.contains("/mmc_host/") {
        Bus::Sd
    } else if name.starts_with("nvme") {
        Bus::Nvme
    } else if sys_path.contains("/devices/virtual/") || sys_path.contains("/virtio") || name.starts_with("loop") {
        Bus::Virtual
    } else if sys_path.contains("/ata") {
        Bus::Sata
    } else if sys_path.contains("/host") {
        Bus::Scsi
    } else {
        Bus::Other
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A fixture of `tests/fixtures/linux`, as bytes.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/linux")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw
28 27 8:1 / /boot/efi rw,relatime - vfat /dev/sda1 rw,fmask=0077
35 27 8:17 / /media/user/MY\\040STICK rw,nosuid,nodev shared:7 master:1 - vfat /dev/sdb1 rw
36 27 253:0 / /home rw,relatime - ext4 /dev/mapper/vg-home rw
";

    #[test]
    fn sysfs_sizes_that_overflow_are_no_size() {
        assert_eq!(parse_sectors("2048"), 1 << 20);
        assert_eq!(parse_sectors("36028797018963967"), 36_028_797_018_963_967 * 512);
        // A count of sectors whose bytes do not fit in a u64 used to overflow.
        assert_eq!(parse_sectors("36028797018963968"), 0);
        assert_eq!(parse_sectors("-1"), 0);
    }

    #[test]
    fn mountinfo_gives_devices_mount_points_types_and_sources_with_escapes_undone() {
        let mounts = parse_mountinfo(MOUNTINFO.as_bytes()).unwrap();
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[1].dev, (8, 2));
        assert_eq!(mounts[1].mount_point, PathBuf::from("/"));
        assert_eq!(mounts[1].fstype, "ext4");
        assert_eq!(mounts[3].mount_point, PathBuf::from("/media/user/MY STICK"));
        assert_eq!(mounts[3].source, b"/dev/sdb1");
        assert_eq!(mounts[4].dev, (253, 0));
    }

    #[cfg(unix)]
    #[test]
    fn mount_points_that_are_not_utf8_are_kept_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt;
        let mounts = parse_mountinfo(&fixture("non-utf8.mountinfo")).unwrap();
        assert_eq!(mounts.len(), 14, "every line counts, the odd ones too");
        let bytes = |i: usize| mounts[i].mount_point.as_os_str().as_bytes().to_vec();
        assert_eq!(bytes(0), b"/");
        assert_eq!(bytes(1), b"/media/user/\xff\xfe stick");
        assert_eq!(bytes(2), b"/tmp/caf\xe9\t\\x");
        assert_eq!(bytes(3), b"/home/user/\xff");
        assert_eq!(backing(&mounts[1]), Backing::Device((8, 17)));
        assert_eq!(backing(&mounts[2]), Backing::Nothing);
        assert_eq!(backing(&mounts[3]), Backing::Nothing);
    }

    #[test]
    fn escapes_are_three_octal_digits_of_one_byte_and_anything_else_is_kept() {
        assert_eq!(unescape(b"a\\040b\\011c\\012d\\134e"), b"a b\tc\nd\\e");
        // A backslash before a multi-byte character, too few digits, not octal, over a byte.
        for kept in [
            &b"/media/\\ab\xc3\xa9"[..],
            b"x\\04",
            b"\\08x",
            b"\\400",
            b"\\+12",
            b"end\\",
        ] {
            assert_eq!(unescape(kept), kept, "{}", String::from_utf8_lossy(kept));
        }
    }

    #[test]
    fn a_mount_table_that_is_garbage_or_empty_is_refused_whole() {
        let garbage = parse_mountinfo(&fixture("garbage.mountinfo")).unwrap_err();
        assert!(garbage.0.contains("line 2"), "{garbage:?}");
        assert!(parse_mountinfo(b"").unwrap_err().0.contains("empty"));
        assert!(parse_mountinfo(b"\n\n").is_err());
        // A line cut short, a device number that is not one, a mount point that is not absolute.
        for line in [
            "27 1 8:2 / / rw,relatime - ext4",
            "27 1 8-2 / / rw,relatime - ext4 /dev/sda2 rw",
            "27 1 8:2 / relative rw,relatime - ext4 /dev/sda2 rw",
            "x 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw",
        ] {
            assert!(parse_mountinfo(line.as_bytes()).is_err(), "{line}");
        }
    }

    #[test]
    fn each_mount_says_what_it_stands_on() {
        let kinds =
            |name: &str| -> Vec<Backing> { parse_mountinfo(&fixture(name)).unwrap().iter().map(backing).collect() };
        let btrfs = kinds("btrfs-single.mountinfo");
        assert_eq!(btrfs[0], Backing::Nodes(vec![PathBuf::from("/dev/sda2")]));
        assert_eq!(btrfs[1], Backing::Nodes(vec![PathBuf::from("/dev/sda2")]));
        assert_eq!(btrfs[2], Backing::Device((8, 17)));
        // proc, sysfs, devtmpfs, devpts, tmpfs, cgroup2, overlay, NFS, sshfs, tmpfs.
        assert!(btrfs[3..].iter().all(|b| *b == Backing::Nothing), "{btrfs:?}");
        let zfs = kinds("zfs.mountinfo");
        assert_eq!(zfs[0], Backing::ZfsPool("rpool".into()));
        assert_eq!(zfs[1], Backing::ZfsPool("rpool".into()));
        assert_eq!(zfs[2], Backing::ZfsPool("tank".into()));
        let bcachefs = kinds("bcachefs.mountinfo");
        assert_eq!(
            bcachefs[0],
            Backing::Nodes(vec![PathBuf::from("/dev/sdb1"), PathBuf::from("/dev/sdc1")])
        );
        assert_eq!(kinds("lvm-md-crypt.mountinfo")[0], Backing::Device((253, 1)));
        let odd = |fstype: &str, source: &[u8]| Mount {
            dev: (0, 60),
            mount_point: PathBuf::from("/"),
            fstype: fstype.into(),
            source: source.to_vec(),
        };
        // A multi-device file system whose source names no device cannot be traced.
        assert_eq!(backing(&odd("btrfs", b"none")), Backing::Untraceable);
        assert_eq!(backing(&odd("bcachefs", b"/dev/sdb1:UUID=1234")), Backing::Untraceable);
        assert_eq!(backing(&odd("zfs", b"")), Backing::Untraceable);
        // An unknown anonymous file system over a device node is traced through it.
        assert_eq!(
            backing(&odd("erofs", b"/dev/loop4")),
            Backing::Nodes(vec![PathBuf::from("/dev/loop4")])
        );
    }

    #[test]
    fn zpool_status_gives_every_vdev_data_log_cache_and_spare() {
        let text = String::from_utf8(fixture("zpool-status-rpool.txt")).unwrap();
        assert_eq!(
            parse_zpool_status(&text).unwrap(),
            [
                PathBuf::from("/dev/disk/by-id/ata-Samsung_SSD_870-part3"),
                PathBuf::from("/dev/sdb1"),
                PathBuf::from("/dev/sdc1"),
            ]
        );
        assert_eq!(parse_zpool_status("cannot open 'rpool': no such pool\n"), None);
        assert_eq!(parse_zpool_status("config:\n\trpool ONLINE\nerrors: none\n"), None);
    }

    /// A `/sys` and `/dev` of plain files and folders, so the tracer is tested on every OS:
    /// `sda` with `sda1`–`sda3`, `sdb1`, `sdc1`, `dm-0`, and a two-device btrfs.
    fn plain_tree() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let touch = |rel: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        };
        for name in ["sda", "sda1", "sda2", "sda3", "sdb1", "sdc1", "dm-0"] {
            touch(&format!("dev/{name}"));
            touch(&format!("sys/class/block/{name}/dev"));
        }
        touch("sys/fs/btrfs/9a0e3b8d-2f6c-1e77-4f1c-2a9e0d7b4c55/devices/sdb1");
        touch("sys/fs/btrfs/9a0e3b8d-2f6c-1e77-4f1c-2a9e0d7b4c55/devices/sdc1");
        touch("sys/fs/btrfs/4f1c2a9e-0d7b-4c55-9a0e-3b8d2f6c1e77/devices/dm-0");
        root
    }

    #[test]
    fn the_tracer_finds_each_file_systems_member_devices() {
        let tree = plain_tree();
        let (sys, dev) = (tree.path().join("sys"), tree.path().join("dev"));
        let status = String::from_utf8(fixture("zpool-status-rpool.txt")).unwrap();
        // The fixture names sda3 through a by-id link; this tree has no links, so name it plainly.
        let status = status.replace("/dev/disk/by-id/ata-Samsung_SSD_870-part3", "/dev/sda3");
        let zpool = |pool: &str| (pool == "rpool").then(|| status.clone());
        let tracer = Tracer {
            sys: &sys,
            dev: &dev,
            zpool_status: &zpool,
        };
        let members = |name: &str| -> Vec<Result<Option<Vec<String>>, String>> {
            parse_mountinfo(&fixture(name))
                .unwrap()
                .iter()
                .map(|m| tracer.members(m))
                .collect()
        };
        let names = |list: &[&str]| Ok(Some(list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()));

        let multi = members("btrfs-multi.mountinfo");
        assert_eq!(multi[0], Ok(None), "ext4 on sda2 is found by its device number");
        assert_eq!(multi[2], names(&["sdb1", "sdc1"]));
        assert!(multi[3..].iter().all(|m| *m == Ok(None)), "{multi:?}");

        // sda2 is in no btrfs's device list: not silently "no disks".
        let single = members("btrfs-single.mountinfo");
        assert!(
            single[0].as_ref().unwrap_err().contains("btrfs does not list sda2"),
            "{single:?}"
        );

        let zfs = members("zfs.mountinfo");
        assert_eq!(zfs[0], names(&["sda3", "sdb1", "sdc1"]));
        assert_eq!(zfs[1], zfs[0]);
        assert!(zfs[2].as_ref().unwrap_err().contains("ZFS pool tank"), "{zfs:?}");

        assert_eq!(members("bcachefs.mountinfo")[0], names(&["sdb1", "sdc1"]));
        let missing = members("bcachefs-missing-member.mountinfo");
        assert!(missing[0].as_ref().unwrap_err().contains("/dev/sdz1"), "{missing:?}");

        let on_crypt = parse_mountinfo(b"22 21 0:36 /@home /home rw - btrfs /dev/dm-0 rw\n").unwrap();
        assert_eq!(tracer.members(&on_crypt[0]), names(&["dm-0"]));
        // Sources outside /dev name no block device.
        let odd = parse_mountinfo(&fixture("non-utf8.mountinfo")).unwrap();
        assert!(odd.iter().all(|m| tracer.members(m) == Ok(None)));
    }

    #[test]
    fn swaps_lists_the_areas_with_their_kind() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda3                               partition\t8388604\t\t0\t\t-2\n/swap\\040file file 1 0 -3\n";
        let swaps = parse_swaps(text.as_bytes()).unwrap();
        assert_eq!(swaps[0].path, PathBuf::from("/dev/sda3"));
        assert_eq!(swaps[0].kind, "partition");
        assert_eq!(swaps[1].path, PathBuf::from("/swap file"));
        assert_eq!(swaps[1].kind, "file");
        assert!(parse_swaps(b"").is_err());
        assert!(parse_swaps(b"Filename Type\n/dev/sda3\n").is_err());
        assert_eq!(parse_swaps(b"Filename\tType\n").unwrap(), []);
    }

    #[test]
    fn bus_comes_from_the_sysfs_path() {
        assert_eq!(
            bus_of(
                "sdb",
                "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb"
            ),
            Bus::Usb
        );
        assert_eq!(
            bus_of(
                "mmcblk0",
                "/sys/devices/platform/soc/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0"
            ),
            Bus::Sd
        );
        assert_eq!(
            bus_of(
                "nvme0n1",
                "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1"
            ),
            Bus::Nvme
        );
        assert_eq!(
            bus_of(
                "sda",
                "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda"
            ),
            Bus::Sata
        );
        assert_eq!(bus_of("loop3", "/sys/devices/virtual/block/loop3"), Bus::Virtual);
        assert_eq!(
            bus_of("vda", "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda"),
            Bus::Virtual
        );
    }

    #[test]
    fn only_real_disks_are_listable() {
        for name in ["sda", "mmcblk0", "nvme0n1", "loop0", "vda"] {
            assert!(is_listable(name), "{name}");
        }
        for name in ["dm-0", "md127", "sr0", "zram0", "ram1", "mmcblk0boot0", "mmcblk0rpmb"] {
            assert!(!is_listable(name), "{name}");
        }
    }

    #[test]
    fn sysfs_attributes_are_trimmed_and_empty_ones_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("size"), "31116288\n").unwrap();
        std::fs::write(dir.path().join("model"), "  \n").unwrap();
        assert_eq!(read_attr(dir.path().join("size")).as_deref(), Some("31116288"));
        assert_eq!(read_attr(dir.path().join("model")), None);
        assert_eq!(read_attr(dir.path().join("missing")), None);
    }
}
