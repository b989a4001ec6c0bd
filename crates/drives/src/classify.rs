//! The safety policy, decided once: which drives may take which image, with a sentence for each flag.

use serde::Serialize;

use crate::Drive;

/// Drives above this size carry a warning: few USB sticks are this big, many backup disks are.
pub const LARGE_DRIVE_BYTES: u64 = 128_000_000_000;

/// A reason to refuse or question writing to a drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// It holds the running system: never written unless in unsafe mode and confirmed by name.
    System,
    /// It holds the image being written: refused.
    HoldsSource,
    /// The image does not fit: refused.
    TooSmall,
    /// It is write-protected: refused.
    ReadOnly,
    /// It is over [`LARGE_DRIVE_BYTES`]: needs a confirmation.
    Large,
    /// The OS does not call it removable: needs a confirmation.
    NonRemovable,
}

/// How a flag affects a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The write is refused.
    Refuse,
    /// Only in unsafe mode, with the drive's name typed.
    Unsafe,
    /// Allowed after an explicit confirmation that names the warning.
    Confirm,
}

impl Flag {
    /// How the flag affects a write.
    pub fn severity(self) -> Severity {
        match self {
            Self::HoldsSource | Self::TooSmall | Self::ReadOnly => Severity::Refuse,
            Self::System => Severity::Unsafe,
            Self::Large | Self::NonRemovable => Severity::Confirm,
        }
    }

    /// A one-word badge for lists: "system", "too small", …
    pub fn badge(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::HoldsSource => "holds image",
            Self::TooSmall => "too small",
            Self::ReadOnly => "read-only",
            Self::Large => "large",
            Self::NonRemovable => "not removable",
        }
    }
}

/// A flag with the sentence the GUI and CLI show as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// The flag.
    pub flag: Flag,
    /// What it means for this drive, in a full sentence.
    pub message: String,
}

/// What is known about the image a drive is judged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFacts<'a> {
    /// Bytes the image needs (exact, or the best estimate).
    pub size: u64,
    /// The [`Drive::name`] of the drive the image file is stored on, from [`crate::drive_holding`].
    pub stored_on: Option<&'a str>,
}

impl<'a> ImageFacts<'a> {
    /// Facts for an image of `bytes`. An estimated size (`exact` false) may be wrong
    /// either way, so it refuses no drive up front; the engine still stops at the end
    /// of a drive that turns out too small.
    pub fn new(bytes: u64, exact: bool, stored_on: Option<&'a str>) -> Self {
        Self {
            size: if exact { bytes } else { 0 },
            stored_on,
        }
    }
}

/// The sentences of every flag that refuses a write, joined; `None` when nothing refuses it.
pub fn refusal(notes: &[Note]) -> Option<String> {
    let sentences: Vec<&str> = notes
        .iter()
        .filter(|n| n.flag.severity() == Severity::Refuse)
        .map(|n| n.message.as_str())
        .collect();
    (!sentences.is_empty()).then(|| sentences.join(" "))
}

/// Every flag that applies to `drive`, most serious first.
pub fn classify(drive: &Drive, image: Option<ImageFacts<'_>>) -> Vec<Note> {
    let mut notes = Vec::new();
    let name = &drive.name;
    if let Some(reason) = &drive.system {
        notes.push(Note {
            flag: Flag::System,
            message: format!("{name} is a system drive ({reason}); writing to it would destroy the running system."),
        });
    }
    if let Some(image) = image {
        if image.stored_on == Some(drive.name.as_str()) {
            notes.push(Note {
                flag: Flag::HoldsSource,
                message: format!(
                    "{} holds the image file itself; writing to it would destroy the image.",
                    drive.name
                ),
            });
        }
        if image.size > drive.size {
            notes.push(Note {
                flag: Flag::TooSmall,
                message: format!(
                    "{name} is too small: it holds {} but the image needs {}.",
                    human_size(drive.size),
                    human_size(image.size)
                ),
            });
        }
    }
    if drive.read_only {
        notes.push(Note {
            flag: Flag::ReadOnly,
            message: format!("{name} is read-only; check its write-protect switch."),
        });
    }
    if drive.size > LARGE_DRIVE_BYTES {
        notes.push(Note {
            flag: Flag::Large,
            message: format!(
                "{name} is large ({}): it is more likely a backup or data disk than a USB stick.",
                human_size(drive.size)
            ),
        });
    }
    if !drive.removable && !matches!(drive.bus, crate::Bus::Usb | crate::Bus::Sd) {
        notes.push(Note {
            flag: Flag::NonRemovable,
            message: format!("{name} is not a removable drive; make sure it is the one you mean to erase."),
        });
    }
    notes.sort_by_key(|n| n.flag);
    notes
}

/// Whether a drive is one a user would flash: removable or on USB/SD, and not a system drive.
pub fn is_flashable(drive: &Drive) -> bool {
    drive.system.is_none() && (drive.removable || matches!(drive.bus, crate::Bus::Usb | crate::Bus::Sd))
}

/// Sizes as drive makers print them (decimal): "16.0 GB", "512 MB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::PathBuf;

    use super::*;
    use crate::{Bus, Partition};

    fn stick() -> Drive {
        Drive {
            path: PathBuf::from("/dev/sdb"),
            name: "sdb".into(),
            id: "usb-SanDisk_Cruzer".into(),
            size: 16_000_000_000,
            vendor: Some("SanDisk".into()),
            model: Some("Cruzer Blade".into()),
            bus: Bus::Usb,
            removable: true,
            read_only: false,
            logical_block_size: 512,
            physical_block_size: 512,
            partitions: vec![Partition {
                path: PathBuf::from("/dev/sdb1"),
                size: 15_999_000_000,
                mount_points: vec![PathBuf::from("/media/STICK")],
                swap: false,
            }],
            system: None,
        }
    }

    fn flags(notes: &[Note]) -> Vec<Flag> {
        notes.iter().map(|n| n.flag).collect()
    }

    #[test]
    fn a_plain_usb_stick_has_no_flags_and_is_flashable() {
        let image = ImageFacts {
            size: 2_000_000_000,
            stored_on: Some("sda"),
        };
        assert!(classify(&stick(), Some(image)).is_empty());
        assert!(is_flashable(&stick()));
    }

    #[test]
    fn every_flag_has_its_severity_and_a_sentence_naming_the_drive() {
        let mut drive = stick();
        drive.system = Some("/ is mounted from sdb1".into());
        drive.read_only = true;
        drive.removable = false;
        drive.bus = Bus::Sata;
        drive.size = 500_000_000_000;
        let image = ImageFacts {
            size: 600_000_000_000,
            stored_on: Some("sdb"),
        };
        let notes = classify(&drive, Some(image));
        assert_eq!(
            flags(&notes),
            [
                Flag::System,
                Flag::HoldsSource,
                Flag::TooSmall,
                Flag::ReadOnly,
                Flag::Large,
                Flag::NonRemovable
            ]
        );
        for note in &notes {
            assert!(note.message.starts_with("sdb "), "{}", note.message);
            assert!(note.message.ends_with('.'), "{}", note.message);
        }
        assert!(notes[0].message.contains("/ is mounted from sdb1"));
        assert!(notes[2].message.contains("500.0 GB") && notes[2].message.contains("600.0 GB"));
        let severities: Vec<Severity> = notes.iter().map(|n| n.flag.severity()).collect();
        assert_eq!(
            severities,
            [
                Severity::Unsafe,
                Severity::Refuse,
                Severity::Refuse,
                Severity::Refuse,
                Severity::Confirm,
                Severity::Confirm
            ]
        );
        assert!(!is_flashable(&drive));
    }

    #[test]
    fn size_limits_are_exact() {
        let mut drive = stick();
        let fits = ImageFacts {
            size: drive.size,
            stored_on: None,
        };
        assert!(
            classify(&drive, Some(fits)).is_empty(),
            "an image exactly the drive's size fits"
        );
        let over = ImageFacts {
            size: drive.size + 1,
            stored_on: None,
        };
        assert_eq!(flags(&classify(&drive, Some(over))), [Flag::TooSmall]);
        drive.size = LARGE_DRIVE_BYTES;
        assert!(classify(&drive, None).is_empty(), "128 GB itself is not large");
        drive.size = LARGE_DRIVE_BYTES + 1;
        assert_eq!(flags(&classify(&drive, None)), [Flag::Large]);
    }

    #[test]
    fn sd_cards_on_a_fixed_reader_are_not_flagged_non_removable() {
        let mut card = stick();
        card.bus = Bus::Sd;
        card.removable = false;
        assert!(classify(&card, None).is_empty());
        assert!(is_flashable(&card));
        let mut loop_device = stick();
        loop_device.bus = Bus::Virtual;
        loop_device.removable = false;
        assert_eq!(flags(&classify(&loop_device, None)), [Flag::NonRemovable]);
        assert!(!is_flashable(&loop_device));
    }

    #[test]
    fn human_sizes_are_decimal_like_drive_labels() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(16_000_000_000), "16.0 GB");
        assert_eq!(human_size(1_500_000), "1.5 MB");
    }
}
