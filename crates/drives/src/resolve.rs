//! What a path names, decided once: a whole drive, a partition of one, a regular
//! file, or nothing Graver may write. The CLI, the window, the client and the
//! privileged worker ask [`path_kind`] and [`resolve`]; no other code decides it.

use std::path::{Path, PathBuf};

use crate::{Drive, DriveError, Identity};

/// What a path is before any drive list is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A regular file, or a path where one would be created (also a directory or other
    /// non-device, which opening then refuses with its own sentence).
    File,
    /// A device node, or a name that can only be one (`/dev/sdz` unplugged, `\\.\PhysicalDrive3`).
    Device,
}

/// What a path names among the listed drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved<'a> {
    /// A whole listed drive.
    Drive(&'a Drive),
    /// A partition (or volume) of a listed drive.
    Partition(&'a Drive),
    /// A regular file, or a path where a new one would be created.
    File,
    /// A device no listed drive owns. `present` is false when the OS has no such device
    /// with a medium (unplugged: its node may outlive it); true for devices Graver does
    /// not write to.
    Unlisted {
        /// Whether the OS still has a device with a medium there.
        present: bool,
    },
}

/// Whether `path` is a file target or a device, following symlinks. Device names
/// (`\\.\…`, `/dev/…`) count as devices even when nothing is there, so a gone drive
/// never becomes a new regular file.
pub fn path_kind(path: &Path) -> PathKind {
    if is_windows_device(path) {
        return PathKind::Device;
    }
    match std::fs::metadata(path) {
        Ok(metadata) if crate::os::is_device(&metadata) => PathKind::Device,
        Ok(_) => PathKind::File,
        Err(_) if crate::is_device_name(path) => PathKind::Device,
        Err(_) => PathKind::File,
    }
}

/// What `path` names among `drives`: symlinks (`/dev/disk/by-id/…`) are followed,
/// `/dev/diskN` stands for the listed `/dev/rdiskN` (and
/// `diskNsM` for `rdiskNsM`), and `\\.\physicaldrive2` for `\\.\PhysicalDrive2` (Windows
/// device names ignore case).
pub fn resolve<'a>(drives: &'a [Drive], path: &Path) -> Resolved<'a> {
    if path_kind(path) == PathKind::File {
        return Resolved::File;
    }
    let real = if is_windows_device(path) {
        Some(path.to_path_buf())
    } else {
        std::fs::canonicalize(path).ok()
    };
    let Some(real) = real else {
        return Resolved::Unlisted { present: false };
    };
    match find(drives, &real) {
        Some(found) => found,
        None => Resolved::Unlisted {
            present: crate::os::has_medium(&real),
        },
    }
}

/// The listed drive at `path`, provided it is still the drive the user chose: the one
/// with `identity`. A job names its drive by both, so a path that has come to name
/// another drive (a stick swapped while the administrator prompt was open, a loop
/// device re-attached to another file) is refused rather than written.
///
/// # Errors
/// [`DriveError::NotFound`] when nothing is at `path` any more,
/// [`DriveError::NotWritable`] when `path` is no listed whole drive, and
/// [`DriveError::Changed`] when it is another drive than the one chosen.
pub fn chosen<'a>(drives: &'a [Drive], path: &Path, identity: &Identity) -> Result<&'a Drive, DriveError> {
    decide(resolve(drives, path), path, identity)
}

/// [`chosen`]'s decision, once `path` is resolved.
fn decide<'a>(resolved: Resolved<'a>, path: &Path, identity: &Identity) -> Result<&'a Drive, DriveError> {
    match resolved {
        Resolved::Drive(drive) => same_drive(drive, path, identity),
        Resolved::Unlisted { present: false } => Err(DriveError::NotFound(path.to_path_buf())),
        Resolved::Partition(_) | Resolved::Unlisted { present: true } | Resolved::File => {
            Err(DriveError::NotWritable {
                path: path.to_path_buf(),
                kind: "not a whole drive in the list of drives",
            })
        }
    }
}

fn same_drive<'a>(drive: &'a Drive, path: &Path, identity: &Identity) -> Result<&'a Drive, DriveError> {
    if drive.identity == *identity {
        Ok(drive)
    } else {
        Err(DriveError::Changed(path.to_path_buf()))
    }
}

/// The drive or partition whose node `real` (a path with symlinks resolved) is.
pub(crate) fn find<'a>(drives: &'a [Drive], real: &Path) -> Option<Resolved<'a>> {
    if let Some(drive) = drives.iter().find(|d| same_node(&d.path, real)) {
        return Some(Resolved::Drive(drive));
    }
    drives.iter().find_map(|d| {
        d.partitions
            .iter()
            .any(|p| same_node(&p.path, real))
            .then_some(Resolved::Partition(d))
    })
}

/// Whether two device paths name the same node: equal, or in the same directory with
/// the same name once a raw node's `r` (`rdisk4` for `disk4`) is set aside, and case
/// in the Windows device namespace, which ignores it.
fn same_node(listed: &Path, given: &Path) -> bool {
    if listed == given {
        return true;
    }
    let (Some((listed_dir, listed_name)), Some((given_dir, given_name))) = (split(listed), split(given)) else {
        return false;
    };
    let (listed_name, given_name) = (block_name(&listed_name), block_name(&given_name));
    listed_dir == given_dir
        && (listed_name == given_name || (is_windows_device(given) && listed_name.eq_ignore_ascii_case(given_name)))
}

/// A device path's directory and name; `\\.\` paths (whose name the standard library
/// does not split off) by hand.
fn split(path: &Path) -> Option<(PathBuf, String)> {
    let text = path.to_string_lossy();
    if is_windows_device(path) {
        return Some((PathBuf::from(r"\\.\"), text.get(4..)?.to_owned()));
    }
    Some((
        path.parent()?.to_path_buf(),
        path.file_name()?.to_string_lossy().into_owned(),
    ))
}

/// The name of a macOS raw node's block node (`rdisk4s1` → `disk4s1`); others as they are.
fn block_name(name: &str) -> &str {
    name.strip_prefix('r').filter(|n| n.starts_with("disk")).unwrap_or(name)
}

/// `\\.\PhysicalDrive2`, `\\.\C:` and the like: names in the Windows device namespace.
fn is_windows_device(path: &Path) -> bool {
    path.to_string_lossy().starts_with(r"\\.\")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Partition;

    fn drive(path: &str, name: &str, partitions: &[&str]) -> Drive {
        Drive {
            partitions: partitions
                .iter()
                .map(|p| Partition {
                    path: PathBuf::from(p),
                    size: 1,
                    mount_points: Vec::new(),
                    swap: false,
                })
                .collect(),
            ..Drive::usb_stick(path, name, 16_000_000_000)
        }
    }

    /// Each OS's names, matched without touching the file system.
    #[test]
    fn each_os_names_its_drives_and_partitions() {
        let drives = [
            drive("/dev/sdb", "sdb", &["/dev/sdb1", "/dev/sdb2"]),
            drive("/dev/rdisk4", "disk4", &["/dev/disk4s1"]),
            drive(r"\\.\PhysicalDrive2", "PhysicalDrive2", &[r"\\.\HarddiskVolume7"]),
        ];
        let name = |r: Option<Resolved<'_>>| match r {
            Some(Resolved::Drive(d)) => format!("drive {}", d.name),
            Some(Resolved::Partition(d)) => format!("partition of {}", d.name),
            other => format!("{other:?}"),
        };
        for (given, expected) in [
            ("/dev/sdb", "drive sdb"),
            ("/dev/SDB", "None"),
            ("/dev/sdb2", "partition of sdb"),
            ("/dev/rdisk4", "drive disk4"),
            ("/dev/disk4", "drive disk4"),
            ("/dev/rdisk4s1", "partition of disk4"),
            ("/dev/disk4s1", "partition of disk4"),
            (r"\\.\PhysicalDrive2", "drive PhysicalDrive2"),
            (r"\\.\physicaldrive2", "drive PhysicalDrive2"),
            (r"\\.\HarddiskVolume7", "partition of PhysicalDrive2"),
            ("/dev/sdc", "None"),
            ("/tmp/sdb", "None"),
            ("/dev/rdisk", "None"),
            (r"\\.\PhysicalDrive20", "None"),
        ] {
            assert_eq!(name(find(&drives, Path::new(given))), expected, "{given}");
        }
    }

    #[test]
    fn files_and_device_names_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.img");
        assert_eq!(path_kind(&file), PathKind::File, "a file to be created");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(path_kind(&file), PathKind::File);
        assert_eq!(
            path_kind(dir.path()),
            PathKind::File,
            "a directory is refused when opened"
        );
        assert_eq!(path_kind(Path::new(r"\\.\PhysicalDrive3")), PathKind::Device);
        assert_eq!(resolve(&[], &file), Resolved::File);
        assert_eq!(
            resolve(&[], Path::new(r"\\.\PhysicalDrive3")),
            Resolved::Unlisted {
                present: crate::os::has_medium(Path::new(r"\\.\PhysicalDrive3"))
            }
        );
        assert_eq!(path_kind(Path::new("/dev/sdzz")), PathKind::Device, "unplugged");
        assert_eq!(
            resolve(&[], Path::new("/dev/sdzz")),
            Resolved::Unlisted { present: false }
        );
    }

    /// A simulated machine: drives come, go, change names and sizes between the moment
    /// the user chooses one and the moment the worker looks again, the kernel numbering
    /// every attachment (`diskseq`) as Linux does.
    mod simulation {
        use proptest::prelude::*;

        use super::*;

        /// What happens between choosing and writing.
        #[derive(Debug, Clone)]
        enum Event {
            /// A new medium is plugged in and takes the first free name.
            Plug { size: u64, serial: Option<&'static str> },
            /// A drive is pulled out.
            Unplug(usize),
            /// A drive is pulled out and plugged in again (a loop device re-attached):
            /// the same medium, a new attachment, maybe another name.
            Replug(usize),
            /// A drive shows up under another free name, keeping its attachment.
            Rename(usize),
            /// Two drives trade names.
            Swap(usize, usize),
            /// A drive's size changes (a loop device's file grows, a card reader's card).
            Resize(usize, u64),
        }

        /// A drive of the simulation: the medium behind it is known only to the test (in
        /// `id`, which the decision never looks at).
        #[derive(Debug, Clone)]
        struct Machine {
            drives: Vec<Drive>,
            next_sequence: u64,
            next_medium: u32,
        }

        // Few sizes and serials, so that different media often look alike in both.
        const SIZES: [u64; 3] = [8_000_000_000, 16_000_000_000, 32_000_000_000];
        const SERIALS: [Option<&str>; 3] = [None, Some("0000000000"), Some("AA00000000001234")];

        impl Machine {
            fn free_name(&self) -> String {
                (b'a'..=b'z')
                    .map(|c| format!("sd{}", char::from(c)))
                    .find(|n| !self.drives.iter().any(|d| &d.name == n))
                    .unwrap_or_else(|| "sdzz".into())
            }

            fn attach(&mut self, name: &str, medium: String, size: u64, serial: Option<String>) {
                self.next_sequence += 1;
                let mut d = drive(&format!("/dev/{name}"), name, &[]);
                d.id = medium;
                d.size = size;
                d.identity = Identity {
                    sequence: Some(self.next_sequence),
                    media: None,
                    serial,
                    size,
                };
                self.drives.push(d);
            }

            fn plug(&mut self, size: u64, serial: Option<&str>) {
                self.next_medium += 1;
                let medium = format!("medium-{}", self.next_medium);
                self.attach(&self.free_name(), medium, size, serial.map(str::to_owned));
            }

            fn index(&self, i: usize) -> Option<usize> {
                (!self.drives.is_empty()).then(|| i % self.drives.len())
            }

            fn apply(&mut self, event: &Event) {
                match *event {
                    Event::Plug { size, serial } => self.plug(size, serial),
                    Event::Unplug(i) => {
                        if let Some(i) = self.index(i) {
                            self.drives.remove(i);
                        }
                    }
                    Event::Replug(i) => {
                        if let Some(i) = self.index(i) {
                            let gone = self.drives.remove(i);
                            let name = self.free_name();
                            self.attach(&name, gone.id, gone.size, gone.identity.serial);
                        }
                    }
                    Event::Rename(i) => {
                        if let Some(i) = self.index(i) {
                            let name = self.free_name();
                            let d = &mut self.drives[i];
                            d.path = PathBuf::from(format!("/dev/{name}"));
                            d.name = name;
                        }
                    }
                    Event::Swap(i, j) => {
                        if let (Some(i), Some(j)) = (self.index(i), self.index(j)) {
                            let (a, b) = (self.drives[i].clone(), self.drives[j].clone());
                            self.drives[i].path = b.path;
                            self.drives[i].name = b.name;
                            self.drives[j].path = a.path;
                            self.drives[j].name = a.name;
                        }
                    }
                    Event::Resize(i, size) => {
                        if let Some(i) = self.index(i) {
                            self.drives[i].size = size;
                            self.drives[i].identity.size = size;
                        }
                    }
                }
            }
        }

        fn event() -> impl Strategy<Value = Event> {
            let size = prop::sample::select(SIZES.to_vec());
            let serial = prop::sample::select(SERIALS.to_vec());
            prop_oneof![
                (size.clone(), serial).prop_map(|(size, serial)| Event::Plug { size, serial }),
                any::<usize>().prop_map(Event::Unplug),
                any::<usize>().prop_map(Event::Replug),
                any::<usize>().prop_map(Event::Rename),
                (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Event::Swap(i, j)),
                (any::<usize>(), size).prop_map(|(i, size)| Event::Resize(i, size)),
            ]
        }

        proptest! {
            // Thousands of histories; a failure is printed with its minimal case, not saved.
            #![proptest_config(ProptestConfig {
                cases: 5000,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// The job writes exactly the drive the user chose, or is refused; never another.
            /// And it is refused only when the drive at that path is no longer the same
            /// attachment of the same size.
            #[test]
            fn the_job_writes_the_chosen_drive_or_nothing(
                plugged in prop::collection::vec((prop::sample::select(SIZES.to_vec()), prop::sample::select(SERIALS.to_vec())), 1..6),
                choice in any::<usize>(),
                events in prop::collection::vec(event(), 0..12),
            ) {
                let mut machine = Machine { drives: Vec::new(), next_sequence: 0, next_medium: 0 };
                for (size, serial) in &plugged {
                    machine.plug(*size, *serial);
                }
                let chosen = machine.drives[choice % machine.drives.len()].clone();
                for event in &events {
                    machine.apply(event);
                }
                let resolved = find(&machine.drives, &chosen.path).unwrap_or(Resolved::Unlisted { present: false });
                let decided = decide(resolved, &chosen.path, &chosen.identity);
                let unchanged = machine.drives.iter().any(|d| {
                    d.path == chosen.path && d.id == chosen.id && d.identity == chosen.identity
                });
                match decided {
                    Ok(written) => {
                        prop_assert_eq!(&written.id, &chosen.id, "another medium would be written");
                        prop_assert_eq!(&written.identity, &chosen.identity);
                    }
                    Err(e) => prop_assert!(!unchanged, "the unchanged chosen drive was refused: {e}"),
                }
                if events.is_empty() {
                    prop_assert!(unchanged);
                }
            }
        }
    }
}
