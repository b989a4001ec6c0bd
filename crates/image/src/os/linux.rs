//! Linux: cgroup v2 limits.

/// What the cgroup v2 limits (`memory.max` less `memory.current`) leave to this process,
/// the tightest of its cgroup and every parent. sysinfo reads only the root's.
pub(crate) fn cgroup_headroom() -> Option<u64> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    crate::budget::cgroup_headroom_from(&membership, |file| std::fs::read_to_string(file).ok())
}
