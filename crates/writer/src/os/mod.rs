//! What the worker needs from the OS beyond graver-drives, one file per OS:
//!
//! - `kernel_knows(real)`: whether a device node still has a device with a medium
//!   behind it (a `/dev` node may outlive its device);
//! - `as_invoking_user(f)`: runs `f` with file access checked as the user who asked
//!   for elevation, where the OS can do that per thread;
//! - on Windows, the worker's end of the named pipe it connects back to ([`pipe`]).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{as_invoking_user, kernel_knows};

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub(crate) use other::{as_invoking_user, kernel_knows};

#[cfg(windows)]
pub mod pipe;
