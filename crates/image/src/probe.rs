//! A look at the start of the decoded image before any drive is touched.
//!
//! An archive can be well-formed and still hold nothing (an empty `.gz`, `.xz`,
//! `.zst`, or a zip holding a 0-byte file): writing it would wipe a drive for
//! nothing and "verify" an empty range. And a file without a partition table or
//! a file system at its start is most likely not a disk image at all. Both show
//! in the first MiB, which decodes in a moment whatever the format.

use std::io;

use crate::{Format, Image, ImageError, read_up_to};

/// How much of the image is decoded to look at.
pub const PROBE_LEN: usize = 1 << 20;
/// The smallest thing that can be a disk image: one 512-byte sector.
pub const SECTOR: u64 = 512;

/// What the first MiB of a decoded image shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The image's format, for messages.
    pub format: Format,
    /// Decoded bytes looked at: the whole image when it is shorter than [`PROBE_LEN`].
    pub len: u64,
    /// The first signature found, such as "an MBR partition table" or "an ISO 9660 file system".
    pub signature: Option<&'static str>,
}

impl Probe {
    /// The sentence refusing an image that decodes to nothing, or `None` when there is something to write.
    pub fn refusal(&self) -> Option<String> {
        (self.len == 0).then(|| match self.format {
            Format::Raw => "the image is empty: there is nothing to write".to_owned(),
            Format::Zip => "the zip archive holds an image of 0 bytes: there is nothing to write".to_owned(),
            format => format!("the {format} image decodes to 0 bytes: there is nothing to write"),
        })
    }

    /// A warning for an image that is probably not a disk image, or `None` for one that looks like one.
    pub fn warning(&self) -> Option<String> {
        if self.len == 0 {
            return None;
        }
        if self.len < SECTOR {
            return Some(format!(
                "the image is only {} bytes, less than one 512-byte sector: it is probably not a disk image",
                self.len
            ));
        }
        self.signature.is_none().then(|| {
            "the image has no partition table and no file system at its start: it may not be a bootable disk image"
                .to_owned()
        })
    }
}

/// Decodes the first MiB of `image` and looks at it.
///
/// # Errors
/// When the image cannot be read or its start does not decode ([`ImageError::Corrupt`]
/// for damaged data, [`ImageError::Io`] for the file).
pub fn probe(image: &Image) -> Result<Probe, ImageError> {
    let mut reader = image.reader()?;
    let mut start = vec![0; PROBE_LEN];
    let len = read_up_to(&mut reader, &mut start).map_err(|error| match error.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => ImageError::Corrupt {
            path: image.path().to_path_buf(),
            format: image.format(),
            reason: error.to_string(),
        },
        _ => ImageError::Io {
            path: image.path().to_path_buf(),
            source: error,
        },
    })?;
    Ok(Probe {
        format: image.format(),
        len: len as u64,
        signature: signature(&start[..len]),
    })
}

/// The first partition table or file system signature in `start`, the image's first bytes.
pub fn signature(start: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| start.get(offset..offset + magic.len()) == Some(magic);
    let signatures: [(bool, &'static str); 12] = [
        (at(512, b"EFI PART") || at(4096, b"EFI PART"), "a GPT partition table"),
        (at(0x8001, b"CD001"), "an ISO 9660 file system"),
        (
            at(0x8001, b"BEA01") || at(0x8001, b"NSR02") || at(0x8001, b"NSR03"),
            "a UDF file system",
        ),
        (at(0, b"XFSB"), "an XFS file system"),
        (at(0, b"hsqs"), "a squashfs file system"),
        (at(0, b"LUKS\xba\xbe"), "a LUKS volume"),
        (at(512, b"LABELONE"), "an LVM volume"),
        (at(0x10040, b"_BHRfS_M"), "a Btrfs file system"),
        (at(1080, &[0x53, 0xef]), "an ext2/3/4 file system"),
        (at(1024, &[0x10, 0x20, 0xf5, 0xf2]), "an F2FS file system"),
        (at(0, b"ER") && at(512, b"PM"), "an Apple partition map"),
        // Last: FAT and NTFS boot sectors carry it as well as MBR partition tables.
        (at(510, &[0x55, 0xaa]), "an MBR partition table or boot sector"),
    ];
    signatures.into_iter().find_map(|(found, name)| found.then_some(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signatures_are_found_where_they_live() {
        let mut iso = vec![0; 64 << 10];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(signature(&iso), Some("an ISO 9660 file system"));
        let mut mbr = vec![0; 512];
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        assert_eq!(signature(&mbr), Some("an MBR partition table or boot sector"));
        let mut gpt = mbr.clone();
        gpt.resize(1024, 0);
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(signature(&gpt), Some("a GPT partition table"));
        assert_eq!(signature(&[0; 4096]), None);
        assert_eq!(signature(b"hello"), None);
    }

    #[test]
    fn empty_tiny_and_unsigned_images_are_told_apart() {
        let probe = |len, signature| Probe {
            format: Format::Xz,
            len,
            signature,
        };
        assert!(
            probe(0, None)
                .refusal()
                .unwrap()
                .contains("xz image decodes to 0 bytes")
        );
        assert_eq!(probe(0, None).warning(), None);
        assert!(probe(100, None).warning().unwrap().contains("only 100 bytes"));
        assert!(probe(4096, None).warning().unwrap().contains("no partition table"));
        assert_eq!(probe(4096, Some("a GPT partition table")).warning(), None);
        assert_eq!(probe(4096, None).refusal(), None);
    }
}
