//! SHA-256 of an image file and of the image inside it, shared by `graver hash` and the window.

use std::io::Read;

use graver_image::Image;
use sha2::{Digest, Sha256};

/// Both digests and the sizes they cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hashes {
    /// SHA-256 of the file as downloaded.
    pub file: [u8; 32],
    /// Its size.
    pub file_len: u64,
    /// SHA-256 of the decompressed image (the file's own for a raw image).
    pub image: [u8; 32],
    /// The image's size.
    pub image_len: u64,
}

fn sha256_of(mut reader: impl Read) -> std::io::Result<([u8; 32], u64)> {
    let mut sha = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok((sha.finalize().into(), total)),
            Ok(n) => {
                sha.update(&buf[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Hashes the file and, on another thread, the decompressed image.
///
/// # Errors
/// The file cannot be read (`Io`), or the image inside is corrupt (`InvalidData`).
pub fn hash_image(image: &Image) -> std::io::Result<Hashes> {
    let path = image.path().to_path_buf();
    let file_thread = std::thread::spawn(move || std::fs::File::open(path).and_then(sha256_of));
    let inner = if image.format() == graver_image::Format::Raw {
        None
    } else {
        Some(
            image
                .reader()
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(sha256_of),
        )
    };
    let (file, file_len) = file_thread
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the hashing thread failed")))?;
    let (image, image_len) = match inner {
        None => (file, file_len),
        Some(result) => result?,
    };
    Ok(Hashes {
        file,
        file_len,
        image,
        image_len,
    })
}
