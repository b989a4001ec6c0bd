//! The pure half of the Linux backend: mountinfo, swaps and sysfs values read from
//! text, which bus a sysfs path means, which block devices are never listed. Tested
//! on every OS.

use std::path::{Path, PathBuf};

use crate::Bus;

/// Reads a short text attribute (sysfs style) and trims it; `None` when absent or empty.
// The fuzzing feature builds these parsers on every OS; only Linux reads sysfs.
#[cfg_attr(not(any(target_os = "linux", test)), allow(dead_code))]
pub(crate) fn read_attr(path: impl AsRef<Path>) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
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

/// One line of `/proc/self/mountinfo`: the device number and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) dev: (u32, u32),
    pub(crate) mount_point: PathBuf,
    pub(crate) source: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Bytes, not a str slice: the three bytes after a backslash may end inside a character.
        if bytes[i] == b'\\'
            && let Some(code) = bytes.get(i + 1..i + 4).and_then(octal_byte)
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

pub(crate) fn parse_dev(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Parses `/proc/self/mountinfo`.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dev = parse_dev(fields.get(2)?)?;
            let mount_point = PathBuf::from(unescape(fields.get(4)?));
            let dash = fields.iter().position(|f| *f == "-")?;
            let source = unescape(fields.get(dash + 2)?);
            Some(Mount {
                dev,
                mount_point,
                source,
            })
        })
        .collect()
}

/// Parses `/proc/swaps` into the swap devices' paths.
pub(crate) fn parse_swaps(text: &str) -> Vec<PathBuf> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
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
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:2 / / rw,relatime - ext4 /dev/sda2 rw
28 27 8:1 / /boot/efi rw,relatime - vfat /dev/sda1 rw,fmask=0077
35 27 8:17 / /media/user/MY\\040STICK rw,nosuid,nodev - vfat /dev/sdb1 rw
36 27 253:0 / /home rw,relatime - ext4 /dev/mapper/vg-home rw
";

    #[test]
    fn mountinfo_escapes_are_undone_by_bytes_and_anything_else_is_kept() {
        // A backslash two bytes before a multi-byte character used to
        // slice the line inside that character and panic.
        assert_eq!(unescape("/media/\\abé"), "/media/\\abé");
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        // Not three octal digits, or more than a byte: left as they are.
        assert_eq!(unescape("\\400\\+12\\08"), "\\400\\+12\\08");
        let line = "35 27 8:17 / /media/\\xyé rw - vfat /dev/sdb1 rw";
        assert_eq!(parse_mountinfo(line)[0].mount_point, PathBuf::from("/media/\\xyé"));
    }

    #[test]
    fn sysfs_sizes_that_overflow_are_no_size() {
        assert_eq!(parse_sectors("2048"), 1 << 20);
        assert_eq!(parse_sectors("36028797018963967"), 36_028_797_018_963_967 * 512);
        // A count of sectors whose bytes do not fit in a u64 used to overflow.
        assert_eq!(parse_sectors("36028797018963968"), 0);
        assert_eq!(parse_sectors("-1"), 0);
    }
    #[test]
    fn mountinfo_gives_devices_mount_points_and_sources_with_escapes_undone() {
        let mounts = parse_mountinfo(MOUNTINFO);
        assert_eq!(mounts.len(), 5);
        assert_eq!(mounts[1].dev, (8, 2));
        assert_eq!(mounts[1].mount_point, PathBuf::from("/"));
        assert_eq!(mounts[3].mount_point, PathBuf::from("/media/user/MY STICK"));
        assert_eq!(mounts[3].source, "/dev/sdb1");
        assert_eq!(mounts[4].dev, (253, 0));
    }

    #[test]
    fn swaps_lists_the_devices() {
        let text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda3                               partition\t8388604\t\t0\t\t-2\n/swapfile file 1 0 -3\n";
        assert_eq!(
            parse_swaps(text),
            vec![PathBuf::from("/dev/sda3"), PathBuf::from("/swapfile")]
        );
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
