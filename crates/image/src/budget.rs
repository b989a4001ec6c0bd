//! How much memory and how many threads the decoders may use.
//!
//! The privileged worker decodes files from the internet, so a file must not be able
//! to choose how much memory the process takes: an xz index that promises 256 MiB
//! blocks, an LZMA2 dictionary of 1.5 GiB or a zstd window of 2 GiB would otherwise be
//! obeyed. The budget is what the decoders keep within; an image that cannot be decoded
//! within it at all is refused when it is opened, before anything is written.

use std::fmt;
use std::thread;

const MIB: u64 = 1 << 20;

/// The memory and threads the decoders of one image may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    bytes: u64,
    threads: usize,
}

impl MemoryBudget {
    /// The budget when memory is plentiful: 512 MiB.
    pub const DEFAULT_BYTES: u64 = 512 * MIB;
    /// The most decoding threads, however many cores there are: past this, writing to
    /// a USB stick is never waiting for decoding.
    pub const MAX_THREADS: usize = 8;

    /// A budget of `bytes` (at least 1 MiB) and `threads` (at least 1).
    pub fn new(bytes: u64, threads: usize) -> MemoryBudget {
        MemoryBudget {
            bytes: bytes.max(MIB),
            threads: threads.max(1),
        }
    }

    /// The budget on this machine: [`DEFAULT_BYTES`](Self::DEFAULT_BYTES), but no more than
    /// a quarter of the memory available to this process (the machine's available memory,
    /// and the limit of the cgroup it runs in where one applies), and as many threads as
    /// there are cores, at most [`MAX_THREADS`](Self::MAX_THREADS).
    pub fn of_this_machine() -> MemoryBudget {
        let threads = thread::available_parallelism()
            .map_or(1, usize::from)
            .min(Self::MAX_THREADS);
        let bytes = match available_memory() {
            Some(available) => Self::DEFAULT_BYTES.min(available / 4),
            None => Self::DEFAULT_BYTES,
        };
        MemoryBudget::new(bytes, threads)
    }

    /// The bytes the decoders may use.
    pub fn bytes(self) -> u64 {
        self.bytes
    }

    /// The threads the decoders may use.
    pub fn threads(self) -> usize {
        self.threads
    }
}

impl fmt::Display for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} threads", crate::human::binary(self.bytes), self.threads)
    }
}

/// The memory this process can still take: the machine's available memory, or less
/// where a cgroup limits the process. `None` when neither can be read.
fn available_memory() -> Option<u64> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let machine = Some(system.available_memory()).filter(|&bytes| bytes > 0);
    match (machine, crate::os::cgroup_headroom()) {
        (Some(machine), Some(cgroup)) => Some(machine.min(cgroup)),
        (machine, cgroup) => machine.or(cgroup),
    }
}

/// The tightest headroom along the cgroup v2 path named in `membership` (the text of
/// `/proc/self/cgroup`), reading each cgroup's files through `read`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn cgroup_headroom_from(membership: &str, read: impl Fn(&str) -> Option<String>) -> Option<u64> {
    let path = membership.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mut tightest: Option<u64> = None;
    let mut current = path.trim_end_matches('/');
    loop {
        let dir = format!("/sys/fs/cgroup{current}");
        let limit = read(&format!("{dir}/memory.max")).and_then(|text| text.trim().parse::<u64>().ok());
        if let Some(limit) = limit {
            let used = read(&format!("{dir}/memory.current"))
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let headroom = limit.saturating_sub(used);
            tightest = Some(tightest.map_or(headroom, |bytes| bytes.min(headroom)));
        }
        match current.rfind('/') {
            Some(cut) => current = &current[..cut],
            None => break,
        }
    }
    tightest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_capped_and_has_a_floor() {
        let budget = MemoryBudget::of_this_machine();
        assert!(budget.bytes() <= MemoryBudget::DEFAULT_BYTES);
        assert!(budget.threads() >= 1 && budget.threads() <= MemoryBudget::MAX_THREADS);
        assert_eq!(MemoryBudget::new(0, 0), MemoryBudget::new(MIB, 1));
    }

    #[test]
    fn the_tightest_cgroup_on_the_path_counts() {
        let files = |file: &str| match file {
            "/sys/fs/cgroup/user.slice/memory.max" => Some("1073741824\n".to_owned()),
            "/sys/fs/cgroup/user.slice/memory.current" => Some("268435456\n".to_owned()),
            "/sys/fs/cgroup/user.slice/session/memory.max" => Some("max\n".to_owned()),
            "/sys/fs/cgroup/user.slice/session/memory.current" => Some("1000\n".to_owned()),
            _ => None,
        };
        assert_eq!(cgroup_headroom_from("0::/user.slice/session\n", files), Some(768 << 20));
        assert_eq!(cgroup_headroom_from("0::/\n", files), None);
        assert_eq!(cgroup_headroom_from("1:cpu:/x\n", files), None);
    }
}
