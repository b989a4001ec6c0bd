//! SHA-256 of an image file and of the image inside it, for `graver hash` and the window.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::{Format, Image, read_up_to};

/// Both digests and the sizes they cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageDigests {
    /// SHA-256 of the file as downloaded.
    pub file: [u8; 32],
    /// Its size.
    pub file_len: u64,
    /// SHA-256 of the decompressed image (the file's own for a raw image).
    pub image: [u8; 32],
    /// The image's size.
    pub image_len: u64,
}

fn sha256_of(mut reader: impl Read) -> io::Result<([u8; 32], u64)> {
    let mut sha = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = read_up_to(&mut reader, &mut buf)?;
        if n == 0 {
            return Ok((sha.finalize().into(), total));
        }
        sha.update(&buf[..n]);
        total += n as u64;
    }
}

/// Hashes the file and, on another thread, the decompressed image.
///
/// # Errors
/// The file cannot be read (`Io`), or the image inside is corrupt (`InvalidData`).
pub fn hash_image(image: &Image) -> io::Result<ImageDigests> {
    let path = image.path().to_path_buf();
    let file_thread = std::thread::spawn(move || std::fs::File::open(path).and_then(sha256_of));
    let inner = if image.format() == Format::Raw {
        None
    } else {
        Some(
            image
                .reader()
                .map_err(|e| io::Error::other(e.to_string()))
                .and_then(sha256_of),
        )
    };
    let (file, file_len) = file_thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the hashing thread failed")))?;
    let (image, image_len) = match inner {
        None => (file, file_len),
        Some(result) => result?,
    };
    Ok(ImageDigests {
        file,
        file_len,
        image,
        image_len,
    })
}
