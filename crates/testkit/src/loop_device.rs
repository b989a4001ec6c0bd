//! Loop devices and /dev/shm scratch space (Linux; builds everywhere).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where scratch files and loop-device backing files live: RAM, so tests are fast.
pub const SHM: &str = "/dev/shm";

/// What every name this crate puts in [`SHM`] starts with, before the owner's pid.
const TAG: &str = "graver-test";

/// One mebibyte.
const MIB: u64 = 1 << 20;

/// The prefix of everything this process puts in [`SHM`]: `graver-test-<pid>-`.
pub fn shm_prefix() -> String {
    format!("{TAG}-{}-", std::process::id())
}

/// Removes what earlier, killed test runs left in [`SHM`] and detaches their loop
/// devices, once per process (the first loop device or scratch folder calls it).
pub fn sweep_stale() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(sweep_stale_now);
}

/// [`sweep_stale`], every time it is called. Only entries named `graver-test-<pid>-…`
/// whose owner process is gone are touched.
pub fn sweep_stale_now() {
    // A dead run's faulty drive is a FUSE mount in a folder here: it must be aborted
    // and unmounted, its loop device detached, before the folder can go.
    #[cfg(target_os = "linux")]
    if crate::is_root() {
        crate::faulty_drive::sweep_stale_mounts();
    }
    let Ok(entries) = std::fs::read_dir(SHM) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_stale(&name) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        if crate::is_root() {
            detach_all_for(&path);
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// Whether `name` is one of ours (`graver-test-<pid>-…`) whose owner process is gone.
pub(crate) fn is_stale(name: &str) -> bool {
    let Some(owner) = name
        .strip_prefix(&format!("{TAG}-"))
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return false;
    };
    owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists()
}

/// Detaches every loop device backed by `file`.
fn detach_all_for(file: &Path) {
    let Ok(out) = tool("losetup").arg("-j").arg(file).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(dev) = line.split(':').next() {
            let _ = tool("losetup").arg("-d").arg(dev).output();
        }
    }
}

/// A scratch folder in [`SHM`] (else the system's temporary folder), removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    sweep_stale();
    tempfile::Builder::new()
        .prefix(&shm_prefix())
        .tempdir_in(SHM)
        .or_else(|_| tempfile::Builder::new().prefix(&shm_prefix()).tempdir())
        .unwrap_or_else(|e| panic!("create a scratch folder: {e}"))
}

/// `tool` on PATH or in the sbin folders, which non-login PATHs may lack.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// A `Command` for `tool`, by full path when found, so sbin tools work with a short PATH.
pub fn tool(tool: &str) -> Command {
    Command::new(find_tool(tool).unwrap_or_else(|| PathBuf::from(tool)))
}

/// Runs `command`; `Err` carries the command and its stderr when it fails.
fn attempt(command: &mut Command) -> Result<Output, String> {
    let what = format!("{command:?}");
    let output = command.output().map_err(|e| format!("cannot start {what}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Runs `command` up to `tries` times, backing off between tries (udev and the kernel
/// may still hold a device number that was used a moment ago).
fn retried(tries: u32, mut command: impl FnMut() -> Command) -> Result<Output, String> {
    let mut last = String::new();
    for n in 0..tries {
        match attempt(&mut command()) {
            Ok(output) => return Ok(output),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(50 * u64::from(n + 1)));
    }
    Err(format!("{tries} tries: {last}"))
}

/// A loop device backed by a zero-filled file in [`SHM`], standing in for a USB stick.
/// Detached (partitions first) and its file removed when dropped, also when a test panics.
#[derive(Debug)]
pub struct LoopDevice {
    /// `/dev/loopN`; empty after [`LoopDevice::detach`].
    pub dev: PathBuf,
    /// The file behind it.
    pub backing: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    partitioned: bool,
    /// Whether drop deletes `backing`: this crate made it for the device.
    owns_backing: bool,
}

impl LoopDevice {
    /// A writable loop device of `size` bytes.
    pub fn new(size: u64) -> Self {
        Self::attach(size, false, false)
    }

    /// A read-only loop device (`losetup -r`) of `size` bytes.
    pub fn read_only(size: u64) -> Self {
        Self::attach(size, true, false)
    }

    /// A loop device with an MBR and one 4 MiB partition at 1 MiB holding an empty ext4
    /// file system, its `/dev/loopNp1` node present on return.
    pub fn partitioned(size: u64) -> Self {
        let this = Self::attach(size, false, true);
        let part = this.partition();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !part.exists() {
            assert!(Instant::now() < deadline, "{} did not appear", part.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = attempt(tool("mkfs.ext4").args(["-q", "-F"]).arg(&part)) {
            panic!("{e}");
        }
        this
    }

    fn attach(size: u64, read_only: bool, partitioned: bool) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        sweep_stale();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let backing = PathBuf::from(SHM).join(format!("{}loop-{n}.img", shm_prefix()));
        File::create(&backing)
            .and_then(|f| f.set_len(size))
            .unwrap_or_else(|e| panic!("create {}: {e}", backing.display()));
        if partitioned && let Err(e) = write_partition_table(&backing) {
            let _ = std::fs::remove_file(&backing);
            panic!("{e}");
        }
        let extra: &[&str] = if read_only { &["-r"] } else { &[] };
        let dev = match losetup_find(&backing, extra) {
            Ok(dev) => dev,
            Err(e) => {
                let _ = std::fs::remove_file(&backing);
                panic!("{e}");
            }
        };
        let this = Self {
            dev,
            backing,
            size,
            partitioned,
            owns_backing: true,
        };
        if partitioned {
            // The partition of a device that had this number a moment ago may still be
            // going away; drop whatever is left, then add ours.
            let added = retried(20, || {
                let _ = tool("partx").arg("-d").arg(&this.dev).output();
                let mut partx = tool("partx");
                partx.arg("-a").arg(&this.dev);
                partx
            });
            if let Err(e) = added {
                panic!("{e}");
            }
        }
        this
    }

    /// A loop device over `backing`, a file someone else made and removes, with the
    /// extra `losetup` arguments `extra` (e.g. `--direct-io=on`).
    #[cfg(target_os = "linux")]
    pub(crate) fn over(backing: &Path, size: u64, extra: &[&str]) -> Result<Self, String> {
        sweep_stale();
        Ok(Self {
            dev: losetup_find(backing, extra)?,
            backing: backing.to_path_buf(),
            size,
            partitioned: false,
            owns_backing: false,
        })
    }

    /// `loopN`, the drive's name.
    pub fn name(&self) -> String {
        self.dev
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `/dev/loopNp1`, the first partition's node.
    pub fn partition(&self) -> PathBuf {
        PathBuf::from(format!("{}p1", self.dev.display()))
    }

    /// Detaches the device now, as if the stick were pulled out; the backing file stays
    /// until drop. Panics when `losetup -d` fails.
    pub fn detach(&mut self) {
        if let Err(e) = self.release() {
            panic!("{e}");
        }
    }

    /// The first `len` bytes of the backing file.
    pub fn read(&self, len: usize) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        File::open(&self.backing)
            .and_then(|f| f.take(len as u64).read_to_end(&mut data))
            .unwrap_or_else(|e| panic!("read {}: {e}", self.backing.display()));
        data
    }

    /// Asserts the whole device reads as zeros.
    #[track_caller]
    pub fn assert_all_zeros(&self, why: &str) {
        assert_zeros(&self.dev, 0, self.size, why);
    }

    /// Asserts the first MiB reads as zeros, so nothing on it looks bootable.
    #[track_caller]
    pub fn assert_first_mib_zeros(&self, why: &str) {
        assert_zeros(&self.dev, 0, MIB, why);
    }

    /// Changes one byte on the device (bitwise NOT) and flushes it to the backing file.
    pub fn flip_byte(&self, offset: u64) {
        let file = invert_byte(&self.dev, offset);
        file.sync_all()
            .unwrap_or_else(|e| panic!("fsync {}: {e}", self.dev.display()));
        drop(file);
        if let Err(e) = attempt(&mut Command::new("sync")) {
            panic!("{e}");
        }
    }

    /// Removes the partitions and detaches the device; the device path is empty after.
    fn release(&mut self) -> Result<(), String> {
        if self.dev.as_os_str().is_empty() {
            return Ok(());
        }
        if self.partitioned {
            // Partitions added with partx are not dropped when the loop device is detached.
            retried(20, || {
                let mut partx = tool("partx");
                partx.arg("-d").arg(&self.dev);
                partx
            })?;
        }
        retried(10, || {
            let mut losetup = tool("losetup");
            losetup.arg("-d").arg(&self.dev);
            losetup
        })?;
        // While something still holds the device open (udev probing it, a reader that
        // has not closed yet), the kernel only marks it for detaching and `losetup -d`
        // returns at once. Wait until it is really free, so the next test that gets
        // this number gets a fresh device. The limit only guards against a hang.
        let bound = PathBuf::from(format!("/sys/block/{}/loop/backing_file", self.name()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while bound.exists() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} is still attached 10 s after losetup -d",
                    self.dev.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.dev = PathBuf::new();
        Ok(())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            eprintln!("warning: could not release {}: {e}", self.dev.display());
        }
        if self.owns_backing {
            let _ = std::fs::remove_file(&self.backing);
        }
    }
}

/// Attaches `backing` to the first free loop device with `losetup` and the extra
/// arguments `extra`; returns `/dev/loopN`.
fn losetup_find(backing: &Path, extra: &[&str]) -> Result<PathBuf, String> {
    let output = retried(5, || {
        let mut losetup = tool("losetup");
        losetup.args(["--find", "--show"]).args(extra).arg(backing);
        losetup
    })?;
    Ok(PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()))
}

/// Writes an MBR with one 4 MiB Linux partition at 1 MiB, with `sfdisk`.
fn write_partition_table(backing: &Path) -> Result<(), String> {
    let mut sfdisk = tool("sfdisk")
        .arg("-q")
        .arg(backing)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start sfdisk: {e}"))?;
    if let Some(mut stdin) = sfdisk.stdin.take() {
        stdin
            .write_all(b"label: dos\n,4M,83\n")
            .map_err(|e| format!("feed sfdisk: {e}"))?;
    }
    let status = sfdisk.wait().map_err(|e| format!("wait for sfdisk: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("sfdisk failed on {}: {status}", backing.display()))
    }
}

/// Asserts that `len` bytes of `path` from `offset` on are all zero; names the first
/// byte that is not.
#[track_caller]
pub fn assert_zeros(path: &Path, offset: u64, len: u64, why: &str) {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.seek(SeekFrom::Start(offset))
        .unwrap_or_else(|e| panic!("seek {}: {e}", path.display()));
    let mut left = len;
    let mut pos = offset;
    let mut buf = vec![0u8; MIB as usize];
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        file.read_exact(&mut buf[..n])
            .unwrap_or_else(|e| panic!("read {} at {pos}: {e}", path.display()));
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            panic!(
                "{}: byte {} is {:#04x}, not zero: {why}",
                path.display(),
                pos + i as u64,
                buf[i]
            );
        }
        left -= n as u64;
        pos += n as u64;
    }
}

/// Inverts the byte at `offset` of `path` in place; returns the open file so the caller
/// can sync it.
pub fn invert_byte(path: &Path, offset: u64) -> File {
    fn invert(file: &mut File, offset: u64) -> std::io::Result<()> {
        let mut byte = [0u8; 1];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut byte)?;
        byte[0] = !byte[0];
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(&byte)
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    invert(&mut file, offset).unwrap_or_else(|e| panic!("invert {} at {offset}: {e}", path.display()));
    file
}
