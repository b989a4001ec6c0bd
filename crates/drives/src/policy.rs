//! The safety policy, decided once: which drives may take which image, with a sentence
//! for each hazard, and what the user must do before a write may start. The CLI, the
//! window and the privileged worker all ask [`judge`]; nothing else decides whether a
//! drive may be written.

use serde::{Deserialize, Serialize};

use graver_image::human::decimal;

use crate::Drive;

/// Drives above this size carry a warning: few USB sticks are this big, many backup disks are.
pub const LARGE_DRIVE_BYTES: u64 = 128_000_000_000;

/// A reason to refuse or question writing to a drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    /// Graver cannot tell whether it holds the running system (the mount table could
    /// not be read, or a system file system could not be traced to its disks): refused,
    /// in unsafe mode too, since not even the user's typed name can say which drive it is.
    Unknown,
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

/// How a hazard affects a write.
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

impl Hazard {
    /// How the hazard affects a write.
    pub fn severity(self) -> Severity {
        match self {
            Self::Unknown | Self::HoldsSource | Self::TooSmall | Self::ReadOnly => Severity::Refuse,
            Self::System => Severity::Unsafe,
            Self::Large | Self::NonRemovable => Severity::Confirm,
        }
    }

    /// A one-word badge for lists: "system", "too small", …
    pub fn badge(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::System => "system",
            Self::HoldsSource => "holds image",
            Self::TooSmall => "too small",
            Self::ReadOnly => "read-only",
            Self::Large => "large",
            Self::NonRemovable => "not removable",
        }
    }
}

/// A hazard found on a drive, with the sentence the GUI and CLI show as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The hazard (`flag` in JSON, as `graver list --json` has always called it).
    #[serde(rename = "flag")]
    pub hazard: Hazard,
    /// What it means for this drive, in a full sentence.
    pub message: String,
}

/// What is known about the image a drive is judged for, worked out once per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// Bytes the image needs for sure: its exact size, or 0 when the size is an
    /// estimate, which may be wrong either way and so refuses no drive up front (the
    /// engine still stops at the end of a drive that turns out too small).
    pub size: u64,
    /// The [`Drive::name`]s of the drives the image file is stored on, from
    /// [`crate::drives_holding_file`].
    pub stored_on: Vec<String>,
}

impl ImageFacts {
    /// The facts of an opened image: its size and the drives holding the file it was
    /// opened from (not whatever its name says, which a worker cannot trust).
    pub fn of(image: &graver_image::Image) -> Self {
        Self::new(image.size(), crate::drives_holding_file(image.file()))
    }

    /// Facts for an image of `size` whose file is stored on the drives named `stored_on`.
    pub fn new(size: graver_image::ImageSize, stored_on: Vec<String>) -> Self {
        Self {
            size: if size.is_exact() { size.bytes() } else { 0 },
            stored_on,
        }
    }
}

/// What the user has agreed to, as far as it concerns one drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Consent<'a> {
    /// Unsafe mode is on (`--unsafe`, or the window's setting): system drives may be chosen.
    pub unsafe_mode: bool,
    /// What the user typed to confirm this drive's name, if anything yet.
    pub typed_name: Option<&'a str>,
    /// The user confirmed the warnings (`--yes`, or the window's confirmation).
    pub warnings_confirmed: bool,
}

/// Why a write to a drive is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Hazards that refuse every write (unknown, holds the image, too small,
    /// read-only), most serious first.
    Forbidden(Vec<Finding>),
    /// A system drive outside unsafe mode: the finding saying why it is one. Each front
    /// end says how to turn unsafe mode on.
    SystemDrive(Finding),
    /// The name typed to confirm a system drive is not its name.
    NameMismatch {
        /// The drive's name, which had to be typed.
        expected: String,
    },
}

/// Something the user must still do before the write may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Type the drive's name: it is a system drive (the finding says why).
    TypeName(Finding),
    /// Confirm a warning (large, not removable).
    Confirm(Finding),
}

/// The sentences of `findings`, joined into one paragraph.
pub fn sentences(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| f.message.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The policy's answer for one drive, one image and what the user agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The write is refused.
    Refused(Refusal),
    /// The write may start once the user has done each of these, in this order.
    Ask(Vec<Ask>),
    /// The write may start.
    Allowed,
}

impl Verdict {
    /// Whether the write may start now.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }

    /// The refusal, if the write is refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(refusal) => Some(refusal),
            _ => None,
        }
    }

    /// Whether the user must still type the drive's name.
    pub fn asks_for_name(&self) -> bool {
        matches!(self, Self::Ask(asks) if asks.iter().any(|a| matches!(a, Ask::TypeName(_))))
    }
}

/// The policy: whether `drive` may take an image with `facts` (none before an image is
/// chosen) given `consent`, and what the user must still do if it may.
pub fn judge(drive: &Drive, facts: Option<&ImageFacts>, consent: Consent<'_>) -> Verdict {
    let findings = classify(drive, facts);
    let forbidden: Vec<Finding> = findings
        .iter()
        .filter(|f| f.hazard.severity() == Severity::Refuse)
        .cloned()
        .collect();
    if !forbidden.is_empty() {
        return Verdict::Refused(Refusal::Forbidden(forbidden));
    }
    let mut asks = Vec::new();
    if let Some(system) = findings.iter().find(|f| f.hazard.severity() == Severity::Unsafe) {
        if !consent.unsafe_mode {
            return Verdict::Refused(Refusal::SystemDrive(system.clone()));
        }
        match consent.typed_name {
            Some(typed) if typed == drive.name => {}
            Some(_) => {
                return Verdict::Refused(Refusal::NameMismatch {
                    expected: drive.name.clone(),
                });
            }
            None => asks.push(Ask::TypeName(system.clone())),
        }
    }
    if !consent.warnings_confirmed {
        asks.extend(
            findings
                .iter()
                .filter(|f| f.hazard.severity() == Severity::Confirm)
                .cloned()
                .map(Ask::Confirm),
        );
    }
    if asks.is_empty() {
        Verdict::Allowed
    } else {
        Verdict::Ask(asks)
    }
}

/// Every hazard of `drive` (for an image with `image`'s facts), most serious first: what
/// lists show as badges and [`judge`] decides on.
pub fn classify(drive: &Drive, image: Option<&ImageFacts>) -> Vec<Finding> {
    let mut notes = Vec::new();
    let name = &drive.name;
    if let Some(reason) = &drive.unknown {
        notes.push(Finding {
            hazard: Hazard::Unknown,
            message: format!(
                "{name} cannot be told apart from the running system ({reason}); Graver writes only to drives it knows are not in use by it."
            ),
        });
    }
    if let Some(reason) = &drive.system {
        notes.push(Finding {
            hazard: Hazard::System,
            message: format!("{name} is a system drive ({reason}); writing to it would destroy the running system."),
        });
    }
    if let Some(image) = image {
        if image.stored_on.contains(&drive.name) {
            notes.push(Finding {
                hazard: Hazard::HoldsSource,
                message: format!(
                    "{} holds the image file itself; writing to it would destroy the image.",
                    drive.name
                ),
            });
        }
        if image.size > drive.size {
            notes.push(Finding {
                hazard: Hazard::TooSmall,
                message: format!(
                    "{name} is too small: it holds {} but the image needs {}.",
                    decimal(drive.size),
                    decimal(image.size)
                ),
            });
        }
    }
    if drive.read_only {
        notes.push(Finding {
            hazard: Hazard::ReadOnly,
            message: format!("{name} is read-only; check its write-protect switch."),
        });
    }
    if drive.size > LARGE_DRIVE_BYTES {
        notes.push(Finding {
            hazard: Hazard::Large,
            message: format!(
                "{name} is large ({}): it is more likely a backup or data disk than a USB stick.",
                decimal(drive.size)
            ),
        });
    }
    if !drive.removable && !matches!(drive.bus, crate::Bus::Usb | crate::Bus::Sd) {
        notes.push(Finding {
            hazard: Hazard::NonRemovable,
            message: format!("{name} is not a removable drive; make sure it is the one you mean to erase."),
        });
    }
    notes.sort_by_key(|n| n.hazard);
    notes
}

/// Whether a drive is one a user would flash: removable or on USB/SD, and known not to be a system drive.
pub fn is_flashable(drive: &Drive) -> bool {
    drive.system.is_none()
        && drive.unknown.is_none()
        && (drive.removable || matches!(drive.bus, crate::Bus::Usb | crate::Bus::Sd))
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
            unknown: None,
            identity: crate::Identity {
                sequence: Some(9),
                media: None,
                serial: None,
                size: 16_000_000_000,
            },
        }
    }

    fn flags(notes: &[Finding]) -> Vec<Hazard> {
        notes.iter().map(|n| n.hazard).collect()
    }

    #[test]
    fn a_plain_usb_stick_has_no_flags_and_is_flashable() {
        let image = ImageFacts {
            size: 2_000_000_000,
            stored_on: vec!["sda".into()],
        };
        assert!(classify(&stick(), Some(&image)).is_empty());
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
            stored_on: vec!["sdb".into()],
        };
        let notes = classify(&drive, Some(&image));
        assert_eq!(
            flags(&notes),
            [
                Hazard::System,
                Hazard::HoldsSource,
                Hazard::TooSmall,
                Hazard::ReadOnly,
                Hazard::Large,
                Hazard::NonRemovable
            ]
        );
        for note in &notes {
            assert!(note.message.starts_with("sdb "), "{}", note.message);
            assert!(note.message.ends_with('.'), "{}", note.message);
        }
        assert!(notes[0].message.contains("/ is mounted from sdb1"));
        assert!(notes[2].message.contains("500.0 GB") && notes[2].message.contains("600.0 GB"));
        let severities: Vec<Severity> = notes.iter().map(|n| n.hazard.severity()).collect();
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
    fn a_drive_of_unknown_use_is_refused_first_and_never_flashable() {
        let mut drive = stick();
        drive.unknown = Some("the mount table (/proc/self/mountinfo) cannot be read".into());
        let notes = classify(&drive, None);
        assert_eq!(flags(&notes), [Hazard::Unknown]);
        assert_eq!(Hazard::Unknown.severity(), Severity::Refuse);
        assert!(
            notes[0]
                .message
                .starts_with("sdb cannot be told apart from the running system")
        );
        assert!(notes[0].message.contains("/proc/self/mountinfo"));
        assert!(!is_flashable(&drive));
        let unsafe_typed = Consent {
            unsafe_mode: true,
            typed_name: Some("sdb"),
            warnings_confirmed: true,
        };
        match judge(&drive, None, unsafe_typed) {
            Verdict::Refused(Refusal::Forbidden(why)) => assert_eq!(why, notes[..1]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn size_limits_are_exact() {
        let mut drive = stick();
        let fits = ImageFacts {
            size: drive.size,
            stored_on: Vec::new(),
        };
        assert!(
            classify(&drive, Some(&fits)).is_empty(),
            "an image exactly the drive's size fits"
        );
        let over = ImageFacts {
            size: drive.size + 1,
            stored_on: Vec::new(),
        };
        assert_eq!(flags(&classify(&drive, Some(&over))), [Hazard::TooSmall]);
        drive.size = LARGE_DRIVE_BYTES;
        assert!(classify(&drive, None).is_empty(), "128 GB itself is not large");
        drive.size = LARGE_DRIVE_BYTES + 1;
        assert_eq!(flags(&classify(&drive, None)), [Hazard::Large]);
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
        assert_eq!(flags(&classify(&loop_device, None)), [Hazard::NonRemovable]);
        assert!(!is_flashable(&loop_device));
    }

    /// The shape of a verdict, for the table.
    #[derive(Debug, PartialEq, Eq)]
    enum Shape {
        Allowed,
        Forbidden,
        NeedsUnsafe,
        WrongName,
        /// Type the name (`true`) or confirm a warning (`false`), in order.
        Asks(Vec<bool>),
    }

    fn shape(verdict: &Verdict) -> Shape {
        match verdict {
            Verdict::Allowed => Shape::Allowed,
            Verdict::Refused(Refusal::Forbidden(_)) => Shape::Forbidden,
            Verdict::Refused(Refusal::SystemDrive(_)) => Shape::NeedsUnsafe,
            Verdict::Refused(Refusal::NameMismatch { .. }) => Shape::WrongName,
            Verdict::Ask(asks) => Shape::Asks(asks.iter().map(|a| matches!(a, Ask::TypeName(_))).collect()),
        }
    }

    #[test]
    fn drives_by_images_by_consent_give_one_verdict_each() {
        let system = {
            let mut d = stick();
            d.name = "sda".into();
            d.system = Some("/ is mounted from sda2".into());
            d
        };
        let big_disk = {
            let mut d = stick();
            d.name = "sdc".into();
            d.bus = Bus::Sata;
            d.removable = false;
            d.size = 2_000_000_000_000;
            d
        };
        let read_only = {
            let mut d = stick();
            d.read_only = true;
            d
        };
        let system_disk = {
            let mut d = big_disk.clone();
            d.name = "nvme0n1".into();
            d.system = Some("/ is mounted from nvme0n1p2".into());
            d
        };
        let unknown_stick = {
            let mut d = stick();
            d.unknown = Some("the mount table (/proc/self/mountinfo) cannot be read".into());
            d
        };
        let small = ImageFacts::new(graver_image::ImageSize::Exact(1 << 30), vec!["sda".into()]);
        let huge = ImageFacts::new(graver_image::ImageSize::Exact(20_000_000_000), Vec::new());
        // An estimate may be wrong either way: it refuses no drive up front.
        let huge_estimate = ImageFacts::new(graver_image::ImageSize::Estimate(20_000_000_000), Vec::new());
        let on_the_stick = ImageFacts::new(graver_image::ImageSize::Exact(1 << 30), vec!["sdb".into()]);
        let nothing = Consent::default();
        let confirmed = Consent {
            warnings_confirmed: true,
            ..Consent::default()
        };
        let unsafe_only = Consent {
            unsafe_mode: true,
            ..Consent::default()
        };
        let typed = |name| Consent {
            unsafe_mode: true,
            typed_name: Some(name),
            warnings_confirmed: true,
        };
        let stick = stick();
        let table: Vec<(&Drive, Option<&ImageFacts>, Consent<'_>, Shape)> = vec![
            (&stick, None, nothing, Shape::Allowed),
            (&stick, Some(&small), nothing, Shape::Allowed),
            (&stick, Some(&small), typed("sdb"), Shape::Allowed),
            (&stick, Some(&huge), confirmed, Shape::Forbidden),
            (&stick, Some(&huge_estimate), nothing, Shape::Allowed),
            (&stick, Some(&on_the_stick), typed("sdb"), Shape::Forbidden),
            (&read_only, Some(&small), typed("sdb"), Shape::Forbidden),
            (&big_disk, Some(&small), nothing, Shape::Asks(vec![false, false])),
            (&big_disk, Some(&small), confirmed, Shape::Allowed),
            (&system, None, nothing, Shape::NeedsUnsafe),
            (&system, Some(&huge_estimate), confirmed, Shape::NeedsUnsafe),
            // The image's own drive is refused even in unsafe mode with the name typed.
            (&system, Some(&small), typed("sda"), Shape::Forbidden),
            (&system, Some(&huge_estimate), unsafe_only, Shape::Asks(vec![true])),
            (&system, Some(&huge_estimate), typed("sda"), Shape::Allowed),
            (&system, Some(&huge_estimate), typed("SDA"), Shape::WrongName),
            (&system, Some(&huge_estimate), typed(""), Shape::WrongName),
            (&system_disk, None, unsafe_only, Shape::Asks(vec![true, false, false])),
            (&system_disk, None, typed("nvme0n1"), Shape::Allowed),
            (&system_disk, Some(&huge), typed("nvme0n1"), Shape::Allowed),
            // A drive whose use cannot be known is refused whatever the user agreed to.
            (&unknown_stick, None, nothing, Shape::Forbidden),
            (&unknown_stick, Some(&small), confirmed, Shape::Forbidden),
            (&unknown_stick, Some(&small), typed("sdb"), Shape::Forbidden),
        ];
        for (row, (drive, image, consent, expected)) in table.into_iter().enumerate() {
            let verdict = judge(drive, image, consent);
            assert_eq!(
                shape(&verdict),
                expected,
                "row {row}: {} {image:?} {consent:?}",
                drive.name
            );
            // Every sentence names the drive and is a whole sentence.
            let sentences: Vec<&str> = match &verdict {
                Verdict::Refused(Refusal::Forbidden(found)) => found.iter().map(|f| f.message.as_str()).collect(),
                Verdict::Refused(Refusal::SystemDrive(f)) => vec![f.message.as_str()],
                Verdict::Ask(asks) => asks
                    .iter()
                    .map(|a| match a {
                        Ask::TypeName(f) | Ask::Confirm(f) => f.message.as_str(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for sentence in sentences {
                assert!(
                    sentence.starts_with(&format!("{} ", drive.name)),
                    "row {row}: {sentence}"
                );
                assert!(sentence.ends_with('.'), "row {row}: {sentence}");
            }
        }
    }
}
