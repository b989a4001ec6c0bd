//! Test support shared by the workspace's tests (a dev-dependency only, never shipped).
//!
//! Real loop devices stand in for USB sticks (DESIGN.md §5). Every test that needs one
//! used to carry its own copy of the same `losetup` dance; this crate holds the one
//! copy: [`LoopDevice`] (plain, read-only, or with an ext4 partition) is detached and
//! its backing file removed when dropped, also when the test panics, and
//! [`sweep_stale`] clears what a killed run left behind. Everything lives in
//! `/dev/shm` (RAM) under one name scheme, `graver-test-<pid>-…`, so CI can check that
//! no run leaves anything there. [`Rng`] makes the same pseudo-random content for the
//! worker's and the end-to-end tests. [`replay_fuzz_corpus`] runs what `fuzz/` keeps
//! as an ordinary test.
//!
//! A stick that fails is a `FaultyDrive` (Linux only): a loop device over a file this
//! process serves over FUSE, which fails writes, reads or syncs in chosen places,
//! returns other bytes than it was given, is pulled out mid-write, crawls, stalls, or
//! claims more than it keeps, as the test says, and changes while in use.
//!
//! It builds for every target, so the tests that use it still type-check for Windows
//! and macOS, but loop devices, `losetup` and `/sys/block` exist on Linux only: the
//! tests that attach devices are `#[cfg(target_os = "linux")]` and skip without root.

#[cfg(target_os = "linux")]
mod faulty_drive;
mod fuzz_corpus;
mod loop_device;

#[cfg(target_os = "linux")]
pub use faulty_drive::*;
pub use fuzz_corpus::{FuzzTarget, replay as replay_fuzz_corpus};
pub use loop_device::*;

/// Whether this process runs as root (loop devices need it). Always false off Unix.
pub fn is_root() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// A deterministic xorshift generator: "random" content without a dependency.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Writes an image file `dir/name`: `random` pseudo-random bytes from `seed`, then
/// zeros up to `len` (a sparse tail, like the unused end of a disk image).
///
/// # Panics
/// When the file cannot be written: a test's own scratch folder has gone wrong.
#[allow(clippy::unwrap_used)]
pub fn image_file(dir: &std::path::Path, name: &str, seed: u64, random: u64, len: u64) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&Rng::new(seed).bytes(usize::try_from(random).unwrap()))
        .unwrap();
    file.set_len(len).unwrap();
    path
}
