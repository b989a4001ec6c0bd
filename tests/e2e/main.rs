//! End-to-end tests: the built `graver` binary against real images (made with
//! sfdisk, mkfs.ext4 and the real compressors) and real loop devices.
//!
//! Tests that need loop devices print "skipped: needs root for loop devices" and
//! pass when not run as root. Nothing here measures time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod cancel;
mod cli;
mod drives;
// A stand-in pkexec elevates as the real one would: Linux only.
#[cfg(target_os = "linux")]
mod elevation;
// The faulty drive is a FUSE file under a loop device: Linux only.
#[cfg(target_os = "linux")]
mod faults;
mod hash;
mod privacy;
mod support;
#[cfg(target_os = "linux")]
mod verification;
mod write;
