//! What Graver knows about a drive, the same on every OS.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How a drive is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    /// USB mass storage.
    Usb,
    /// SD or MMC card reader on the SD/MMC bus.
    Sd,
    /// NVMe.
    Nvme,
    /// SATA, ATA or SAS.
    Sata,
    /// SCSI or anything else the OS reports as such.
    Scsi,
    /// Virtual: loop devices, disk images, RAM disks, virtio.
    Virtual,
    /// Unknown.
    Other,
}

impl Bus {
    /// A short label for lists: "USB", "SD", "NVMe", …
    pub fn label(self) -> &'static str {
        match self {
            Self::Usb => "USB",
            Self::Sd => "SD",
            Self::Nvme => "NVMe",
            Self::Sata => "SATA",
            Self::Scsi => "SCSI",
            Self::Virtual => "virtual",
            Self::Other => "other",
        }
    }
}

/// A partition (or volume) of a drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Its device path (`/dev/sdb1`, `/dev/disk4s1`, `\\.\HarddiskVolume7` or a drive letter).
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Where it is mounted (several on Linux bind mounts), empty when not mounted.
    /// A name that is not UTF-8 is kept exactly here and shown lossily in JSON.
    #[serde(serialize_with = "lossy_paths")]
    pub mount_points: Vec<PathBuf>,
    /// Whether it is active swap.
    pub swap: bool,
}

/// What tells one plugged-in drive from every other, now and later: a job names its
/// target by this, so a path that names another drive by the time the job runs (a
/// stick swapped during the administrator prompt, a loop device re-attached to another
/// file) is refused. A bus path or a card reader's id names a port or a reader, not
/// the medium in it, so neither is part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// A number the OS gives this attachment of the medium. Linux: the disk sequence
    /// number, new on every plug, media change and loop attach. Windows: the device
    /// number (`IOCTL_STORAGE_GET_DEVICE_NUMBER`).
    pub sequence: Option<u64>,
    /// The medium's own identity where the OS has one (macOS: media UUID, or the
    /// device tree path when there is none).
    pub media: Option<String>,
    /// The drive's serial number, where it reports one.
    pub serial: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

/// A whole-disk device that an image can be written to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drive {
    /// The path the engine opens: `/dev/sdb`, `/dev/rdisk4`, `\\.\PhysicalDrive2`.
    pub path: PathBuf,
    /// The OS's short name for it: `sdb`, `disk4`, `PhysicalDrive2`; what a user types to confirm.
    pub name: String,
    /// An id that stays the same while the drive stays plugged in (serial-based where the OS has one).
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Vendor, when the OS reports one.
    pub vendor: Option<String>,
    /// Model, when the OS reports one.
    pub model: Option<String>,
    /// How it is attached.
    pub bus: Bus,
    /// Whether the OS calls it removable (USB sticks and SD cards usually are).
    pub removable: bool,
    /// Whether it is write-protected.
    pub read_only: bool,
    /// Logical block size: every transfer's alignment.
    pub logical_block_size: u32,
    /// Physical block size.
    pub physical_block_size: u32,
    /// Its partitions with their mount points.
    pub partitions: Vec<Partition>,
    /// Why it belongs to the running system, if it does ("/ is mounted from sda2").
    pub system: Option<String>,
    /// Why Graver cannot tell whether it belongs to the running system, when it cannot
    /// (the mount table could not be read, or a system file system could not be traced
    /// to its disks). The policy refuses such a drive.
    pub unknown: Option<String>,
    /// What tells this drive from any other that may later have its path.
    pub identity: Identity,
}

/// Paths as JSON strings, with bytes that are not UTF-8 shown as U+FFFD: serde's own
/// path serializer fails on them, and one odd mount point must not hide a listing.
fn lossy_paths<S: serde::Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

impl Drive {
    /// A removable USB stick of `size` bytes at `path`, with no partitions and nothing
    /// that makes it a system drive: the drive examples and tests start from, changing
    /// the fields they are about. Its identity's sequence number comes from `name`, so
    /// sticks with different names are different drives.
    pub fn usb_stick(path: impl Into<PathBuf>, name: &str, size: u64) -> Self {
        Self {
            path: path.into(),
            name: name.into(),
            id: format!("usb-SanDisk_Cruzer_{name}"),
            size,
            vendor: Some("SanDisk".into()),
            model: Some("Cruzer Blade".into()),
            bus: Bus::Usb,
            removable: true,
            read_only: false,
            logical_block_size: 512,
            physical_block_size: 512,
            partitions: Vec::new(),
            system: None,
            unknown: None,
            identity: Identity {
                sequence: Some(
                    name.bytes()
                        .fold(0, |sum: u64, byte| sum.wrapping_mul(31).wrapping_add(u64::from(byte))),
                ),
                media: None,
                serial: None,
                size,
            },
        }
    }

    /// "SanDisk Cruzer Blade" or the name when the OS knows no vendor or model.
    pub fn display_name(&self) -> String {
        match (&self.vendor, &self.model) {
            (Some(v), Some(m)) if !m.starts_with(v.as_str()) => format!("{v} {m}"),
            (_, Some(m)) => m.clone(),
            (Some(v), None) => v.clone(),
            (None, None) => self.name.clone(),
        }
    }

    /// Every mount point of every partition (and of the whole disk, listed as a partition too).
    pub fn mount_points(&self) -> impl Iterator<Item = &PathBuf> {
        self.partitions.iter().flat_map(|p| p.mount_points.iter())
    }
}
