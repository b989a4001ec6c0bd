//! Published SHA-256 checksums found next to an image.

use std::path::{Path, PathBuf};

/// Extensions a distribution adds when it compresses an image; a checksum file may name
/// the image with or without them.
const COMPRESSION_EXTENSIONS: [&str; 7] = ["xz", "gz", "bz2", "zst", "zstd", "zip", "gzip"];
/// Shared checksum files a directory may hold, in the order they are tried.
const SHARED_FILES: [&str; 3] = ["SHA256SUMS", "SHA256SUMS.txt", "sha256sum.txt"];
/// Checksum files larger than this are not checksum files.
const MAX_CHECKSUM_FILE: u64 = 4 << 20;

/// A SHA-256 digest published next to an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishedChecksum {
    /// The checksum file the digest was read from.
    pub source: PathBuf,
    /// The file name the checksum line names, if the file names one.
    pub name: Option<String>,
    /// The digest; serialized as lowercase hex.
    #[serde(serialize_with = "serialize_hex")]
    pub sha256: [u8; 32],
}

/// What a published checksum says about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumVerdict {
    /// The digest is that of the file as downloaded (the compressed file, if compressed).
    MatchesFile,
    /// The digest is that of the decompressed image.
    MatchesImage,
    /// The digest matches neither: the download is damaged or the checksum is for another file.
    Mismatch,
}

impl PublishedChecksum {
    /// Compares the published digest with what is known of the image: the digest of
    /// the file on disk and the digest of the decompressed image, either of which may be
    /// unknown (for a raw image they are the same). A known file digest settles it; with
    /// only the image's digest a difference proves nothing (the sum may be the
    /// compressed file's), so the verdict is `None` then.
    pub fn verdict(&self, file_sha256: Option<&[u8; 32]>, image_sha256: Option<&[u8; 32]>) -> Option<ChecksumVerdict> {
        if file_sha256 == Some(&self.sha256) {
            Some(ChecksumVerdict::MatchesFile)
        } else if image_sha256 == Some(&self.sha256) {
            Some(ChecksumVerdict::MatchesImage)
        } else {
            file_sha256.map(|_| ChecksumVerdict::Mismatch)
        }
    }

    /// The digest as lowercase hex.
    pub fn hex(&self) -> String {
        sha256_hex(&self.sha256)
    }
}

/// A SHA-256 digest as 64 lowercase hex digits.
pub fn sha256_hex(digest: &[u8; 32]) -> String {
    hex::encode(digest)
}

/// A SHA-256 digest a person pasted or a program printed: 64 hex digits, either case,
/// spaces around ignored; `None` for anything else.
pub fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut digest).ok()?;
    Some(digest)
}

fn serialize_hex<S: serde::Serializer>(digest: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&sha256_hex(digest))
}

/// Looks in the image's directory for a published SHA-256 digest of the image.
///
/// Tries `<file>.sha256` and `<file>.sha256sum` (a bare digest, or checksum lines),
/// the same for the name without its compression extension, then `SHA256SUMS`,
/// `SHA256SUMS.txt` and `sha256sum.txt`. Lines may be GNU (`digest  name`,
/// `digest *name`) or BSD (`SHA256 (name) = digest`); lines of other algorithms are
/// ignored. A line counts when it names the image's file name or that name without
/// its compression extension (`foo.img` for `foo.img.xz`), since distributions publish
/// either. A per-file checksum file holding exactly one SHA-256 line counts whatever
/// name it gives, since its own name already says which file it is for.
///
/// Returns `None` when nothing relevant is found or the files cannot be read.
pub fn find_checksum(image_path: &Path) -> Option<PublishedChecksum> {
    let file_name = image_path.file_name()?.to_str()?;
    let directory = match image_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let stripped = strip_compression_extension(file_name);
    let names: Vec<&str> = std::iter::once(file_name).chain(stripped).collect();

    for name in &names {
        for suffix in [".sha256", ".sha256sum"] {
            let source = directory.join(format!("{name}{suffix}"));
            if let Some(found) = per_file_checksum(&source, &names) {
                return Some(found);
            }
        }
    }
    SHARED_FILES.iter().find_map(|shared| {
        let source = directory.join(shared);
        let text = read_small(&source)?;
        let lines: Vec<(Option<String>, [u8; 32])> = text.lines().filter_map(parse_line).collect();
        pick(&lines, &names).map(|(name, sha256)| PublishedChecksum { source, name, sha256 })
    })
}

fn per_file_checksum(source: &Path, names: &[&str]) -> Option<PublishedChecksum> {
    let text = read_small(source)?;
    let (name, sha256) = parse_per_file(&text, names)?;
    Some(PublishedChecksum {
        source: source.to_path_buf(),
        name,
        sha256,
    })
}

/// The digest a `foo.img.sha256` file gives: a bare digest, its only line, or the line
/// naming one of `names`.
pub(crate) fn parse_per_file(text: &str, names: &[&str]) -> Option<(Option<String>, [u8; 32])> {
    if let Some(sha256) = parse_digest(text.trim()) {
        return Some((None, sha256));
    }
    let lines: Vec<(Option<String>, [u8; 32])> = text.lines().filter_map(parse_line).collect();
    match lines.as_slice() {
        [only] => Some(only.clone()),
        _ => pick(&lines, names),
    }
}

/// The first line naming the first name that any line names (the exact file name wins).
fn pick(lines: &[(Option<String>, [u8; 32])], names: &[&str]) -> Option<(Option<String>, [u8; 32])> {
    names.iter().find_map(|wanted| {
        lines
            .iter()
            .find(|(name, _)| name.as_deref().map(base_name) == Some(*wanted))
            .cloned()
    })
}

fn read_small(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_file() || metadata.len() > MAX_CHECKSUM_FILE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Parses one GNU or BSD checksum line, if it is a SHA-256 line.
fn parse_line(line: &str) -> Option<(Option<String>, [u8; 32])> {
    let line = line.trim_end_matches(['\r', '\n']);
    if let Some(rest) = line.strip_prefix("SHA256 (") {
        let (name, digest) = rest.rsplit_once(") = ")?;
        return Some((Some(name.to_owned()), parse_digest(digest.trim())?));
    }
    // GNU escapes names holding a backslash or newline and marks the line with a leading backslash.
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let digest = parse_digest(line.get(..64)?)?;
    let rest = line.get(64..)?;
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))
        .or_else(|| rest.strip_prefix(' '))?;
    if name.is_empty() {
        return None;
    }
    let name = if escaped {
        name.replace("\\n", "\n").replace("\\\\", "\\")
    } else {
        name.to_owned()
    };
    Some((Some(name), digest))
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(text, &mut digest).ok()?;
    Some(digest)
}

/// The last component of a name as a checksum line gives it (`./foo.img`, `images/foo.img`).
fn base_name(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or(name)
}

fn strip_compression_extension(file_name: &str) -> Option<&str> {
    let (stem, extension) = file_name.rsplit_once('.')?;
    let known = COMPRESSION_EXTENSIONS
        .iter()
        .any(|known| extension.eq_ignore_ascii_case(known));
    (known && !stem.is_empty()).then_some(stem)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parses_gnu_and_bsd_lines_and_ignores_other_algorithms() {
        let gnu = parse_line(&format!("{DIGEST}  foo.img")).unwrap();
        assert_eq!(gnu.0.as_deref(), Some("foo.img"));
        assert_eq!(hex::encode(gnu.1), DIGEST);
        let binary = parse_line(&format!("{DIGEST} *dir/foo.img\r")).unwrap();
        assert_eq!(binary.0.as_deref(), Some("dir/foo.img"));
        let bsd = parse_line(&format!("SHA256 (foo (1).img) = {DIGEST}")).unwrap();
        assert_eq!(bsd.0.as_deref(), Some("foo (1).img"));
        assert!(parse_line(&format!("SHA512 (foo.img) = {DIGEST}{DIGEST}")).is_none());
        assert!(parse_line(&format!("{DIGEST}{DIGEST}  foo.img")).is_none());
        assert!(parse_line("d41d8cd98f00b204e9800998ecf8427e  foo.img").is_none());
    }

    #[test]
    fn strips_only_compression_extensions() {
        assert_eq!(strip_compression_extension("foo.img.xz"), Some("foo.img"));
        assert_eq!(strip_compression_extension("foo.iso.ZST"), Some("foo.iso"));
        assert_eq!(strip_compression_extension("foo.img"), None);
        assert_eq!(strip_compression_extension(".xz"), None);
    }

    #[test]
    fn hex_gives_the_digest_back() {
        let mut sha256 = [0u8; 32];
        hex::decode_to_slice(DIGEST, &mut sha256).unwrap();
        let checksum = PublishedChecksum {
            source: PathBuf::from("SHA256SUMS"),
            name: None,
            sha256,
        };
        assert_eq!(checksum.hex(), DIGEST);
    }
}
