//! What graver-image asks the OS, one file per OS: how much memory the process's
//! control group still allows (`cgroup_headroom`), which the machine-wide figure from
//! sysinfo does not see.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::cgroup_headroom;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub(crate) use other::cgroup_headroom;
