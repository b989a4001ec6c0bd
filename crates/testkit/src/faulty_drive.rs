//! A drive that misbehaves on purpose (Linux, as root, with `/dev/fuse`).
//!
//! A USB stick fails in ways a loop device over a file in RAM never does: a write or a
//! read fails half-way, a flash cell returns other bytes than it was given, a sync
//! fails, the stick is pulled out, it crawls or stops answering, or it is a counterfeit
//! that claims more than it keeps. [`FaultyDrive`] is a loop device whose backing file
//! is served by this process over FUSE, so every block the kernel reads or writes
//! passes through [`Faults`], which a test may change while the device is in use.
//!
//! Direct I/O end to end: the FUSE file is opened with `FOPEN_DIRECT_IO` and the loop
//! device attached with `--direct-io=on`, so no page cache below `/dev/loopN` hides a
//! read error, a flipped byte or a wrapped block. The loop device's own page cache is
//! still there for whoever opens `/dev/loopN` without `O_DIRECT`.
//!
//! The mount lives in `/dev/shm/graver-test-<pid>-drive-<n>/`, the file in it is
//! `disk`, and the bytes are kept in this process's memory. Dropping the drive aborts
//! the FUSE connection and unmounts it before detaching the loop device (a detach
//! would otherwise wait for a server that may be stalled or gone), then removes the
//! folder, also when a test panics; [`crate::sweep_stale`] does the same for what a
//! killed run left.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::ops::{Deref, DerefMut, Range};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyWrite, Request, WriteFlags,
};

use crate::loop_device::{LoopDevice, SHM, is_stale, shm_prefix, sweep_stale};

/// The name of the one file in the mount, the loop device's backing file.
const DISK: &str = "disk";

/// The inode of [`DISK`]; the root folder is [`INodeNo::ROOT`].
const DISK_INODE: INodeNo = INodeNo(2);

/// Where the kernel lists FUSE connections, each with an `abort` file.
const CONNECTIONS: &str = "/sys/fs/fuse/connections";

/// How long the kernel may cache the attributes: they never change.
const TTL: Duration = Duration::from_secs(3600);

/// What a [`FaultyDrive`] does wrong. Offsets are the device's, as the host sees them
/// (before a counterfeit drive wraps them). A test may change them at any time through
/// [`FaultyDrive::faults`]; the next request to the drive sees the change.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// A write touching any of these byte ranges fails with EIO; none of it is stored.
    pub eio_on_write: Vec<Range<u64>>,
    /// A read touching any of these byte ranges fails with EIO.
    pub eio_on_read: Vec<Range<u64>>,
    /// Bytes in these ranges read back inverted (a failing flash cell); what is stored
    /// stays as written.
    pub corrupt_reads: Vec<Range<u64>>,
    /// fsync (and the flush on the last close) fails with EIO.
    pub fail_sync: bool,
    /// The drive is pulled out once this many bytes have been written in all: the write
    /// that crosses the mark stores only its part up to it, then the FUSE connection is
    /// aborted and every later request to the device fails.
    pub unplug_after_written: Option<u64>,
    /// Reads and writes together go no faster than this many bytes per second.
    pub bytes_per_second: Option<u64>,
    /// Once this many bytes have been written in all, the drive stops answering for the
    /// duration (it sets [`Faults::stalled_until`]); it fires once.
    pub stall_after_written: Option<(u64, Duration)>,
    /// Until then every request waits; `None` (or a time past) answers again at once.
    pub stalled_until: Option<Instant>,
}

/// Builds a [`FaultyDrive`]: its size, its real capacity, its first contents and its
/// [`Faults`] from the start. Every range method may be called more than once.
#[derive(Debug)]
#[must_use]
pub struct FaultyDriveBuilder {
    size: u64,
    capacity: u64,
    contents: Vec<u8>,
    faults: Faults,
}

impl FaultyDriveBuilder {
    /// Writes touching `range` fail with EIO.
    pub fn eio_on_write(mut self, range: Range<u64>) -> Self {
        self.faults.eio_on_write.push(range);
        self
    }

    /// Reads touching `range` fail with EIO.
    pub fn eio_on_read(mut self, range: Range<u64>) -> Self {
        self.faults.eio_on_read.push(range);
        self
    }

    /// Bytes in `range` read back inverted.
    pub fn corrupt_reads(mut self, range: Range<u64>) -> Self {
        self.faults.corrupt_reads.push(range);
        self
    }

    /// fsync fails with EIO.
    pub fn fail_sync(mut self) -> Self {
        self.faults.fail_sync = true;
        self
    }

    /// The drive is pulled out once `bytes` have been written.
    pub fn unplug_after_written(mut self, bytes: u64) -> Self {
        self.faults.unplug_after_written = Some(bytes);
        self
    }

    /// Reads and writes together go no faster than `bytes_per_second`.
    pub fn speed_limit(mut self, bytes_per_second: u64) -> Self {
        self.faults.bytes_per_second = Some(bytes_per_second);
        self
    }

    /// The drive stops answering for `duration` once `bytes` have been written.
    pub fn stall_after_written(mut self, bytes: u64, duration: Duration) -> Self {
        self.faults.stall_after_written = Some((bytes, duration));
        self
    }

    /// A counterfeit: the drive still claims its size but keeps only `bytes`, and the
    /// byte at offset `o` is stored at `o % bytes`, as fake sticks wrap their address
    /// space onto the flash they have.
    pub fn real_capacity(mut self, bytes: u64) -> Self {
        self.capacity = bytes;
        self
    }

    /// The drive holds `bytes` from offset 0 on (the rest is zeros).
    pub fn contents(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.contents = bytes.into();
        self
    }

    /// The drive holds the file at `path` from offset 0 on. Panics when it cannot be read.
    pub fn contents_from(self, path: &Path) -> Self {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        self.contents(bytes)
    }

    /// Mounts the drive's file and attaches a loop device to it. Panics when that fails
    /// (see [`FaultyDrive::supported`] to skip where it cannot work).
    pub fn build(self) -> FaultyDrive {
        FaultyDrive::start(self)
    }
}

/// A loop device over a file served by this process over FUSE, which misbehaves as its
/// [`Faults`] say. Made with [`FaultyDrive::builder`]; gone when dropped.
#[derive(Debug)]
pub struct FaultyDrive {
    /// Detached after the mount is aborted (in `drop`) and before it is joined.
    device: LoopDevice,
    mount: Mount,
}

impl FaultyDrive {
    /// A builder for a drive that claims `size` bytes (a multiple of 512) and, until
    /// told otherwise, behaves.
    pub fn builder(size: u64) -> FaultyDriveBuilder {
        FaultyDriveBuilder {
            size,
            capacity: size,
            contents: Vec::new(),
            faults: Faults::default(),
        }
    }

    /// `Ok` when a faulty drive can be made here, else what is missing (root,
    /// `/dev/fuse`), for a test to say why it skips.
    pub fn supported() -> Result<(), String> {
        if !crate::is_root() {
            Err("needs root for FUSE and loop devices".into())
        } else if !Path::new("/dev/fuse").exists() {
            Err("needs /dev/fuse".into())
        } else {
            Ok(())
        }
    }

    fn start(builder: FaultyDriveBuilder) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let FaultyDriveBuilder {
            size,
            capacity,
            contents,
            faults,
        } = builder;
        assert!(
            size > 0 && size % 512 == 0,
            "a drive's size is a multiple of 512, not {size}"
        );
        assert!(
            capacity > 0 && capacity <= size,
            "the real capacity {capacity} is between 1 and the size {size}"
        );
        assert!(
            contents.len() as u64 <= size,
            "{} bytes of contents do not fit {size}",
            contents.len()
        );
        sweep_stale();
        ensure_fusectl();
        let mut storage = vec![0u8; usize::try_from(capacity).unwrap_or(usize::MAX)];
        store(&mut storage, 0, &contents);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                faults,
                storage,
                size,
                written: 0,
                read: 0,
                next_free: Instant::now(),
                ending: false,
                abort: None,
                unplugged: false,
            }),
            changed: Condvar::new(),
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mount = Mount::new(
            PathBuf::from(SHM).join(format!("{}drive-{n}", shm_prefix())),
            Arc::clone(&shared),
        );
        let backing = mount.folder.join(DISK);
        let device = LoopDevice::over(&backing, size, &["--direct-io=on"]).unwrap_or_else(|e| panic!("{e}"));
        // Without direct I/O the loop device reads the FUSE file through the page cache,
        // which would serve a corrupted or wrapped block from memory instead of asking.
        let dio = std::fs::read_to_string(format!("/sys/block/{}/loop/dio", device.name())).unwrap_or_default();
        assert_eq!(
            dio.trim(),
            "1",
            "{} did not take --direct-io=on over {}",
            device.dev.display(),
            backing.display()
        );
        Self { device, mount }
    }

    /// `/dev/loopN`, the device to write to.
    pub fn dev(&self) -> &Path {
        &self.device.dev
    }

    /// `loopN`, the drive's name.
    pub fn name(&self) -> String {
        self.device.name()
    }

    /// Where its FUSE file system is mounted; the loop device's backing file is `disk` in it.
    pub fn mount_point(&self) -> &Path {
        &self.mount.folder
    }

    /// The size the drive claims, in bytes.
    pub fn size(&self) -> u64 {
        self.device.size
    }

    /// The bytes the drive really keeps (its size unless built with
    /// [`FaultyDriveBuilder::real_capacity`]).
    pub fn real_capacity(&self) -> u64 {
        self.mount.state().storage.len() as u64
    }

    /// The faults, to read or change while the device is in use; requests wait while
    /// the guard is held, and a stalled one looks again when it is dropped.
    pub fn faults(&self) -> FaultsGuard<'_> {
        FaultsGuard {
            state: self.mount.state(),
            changed: &self.mount.shared.changed,
        }
    }

    /// Pulls the drive out now: aborts the FUSE connection, so the request in flight and
    /// every later one fails (a second call does nothing). `/dev/loopN` stays (as the node of a pulled stick does
    /// while it is still open) until drop.
    pub fn unplug(&self) {
        let abort = {
            let mut state = self.mount.state();
            let abort = state.abort.clone().filter(|_| !state.unplugged);
            state.unplugged = true;
            abort
        };
        if let Some(abort) = abort {
            std::fs::write(&abort, "1").unwrap_or_else(|e| panic!("write {}: {e}", abort.display()));
        }
        self.mount.shared.changed.notify_all();
    }

    /// Whether the drive was pulled out, by [`FaultyDrive::unplug`] or by
    /// [`Faults::unplug_after_written`].
    pub fn is_unplugged(&self) -> bool {
        self.mount.state().unplugged
    }

    /// Stops answering for `duration` from now.
    pub fn stall(&self, duration: Duration) {
        self.faults().stalled_until = Some(Instant::now() + duration);
    }

    /// Answers again at once, ending a stall.
    pub fn resume(&self) {
        self.faults().stalled_until = None;
    }

    /// The bytes stored by writes so far (a write that failed stores nothing).
    pub fn bytes_written(&self) -> u64 {
        self.mount.state().written
    }

    /// The bytes returned by reads so far.
    pub fn bytes_read(&self) -> u64 {
        self.mount.state().read
    }

    /// `len` bytes from `offset` as stored, wrapped like the device wraps them but
    /// without any fault: what the flash holds, even after the drive was pulled out.
    pub fn stored(&self, offset: u64, len: usize) -> Vec<u8> {
        let state = self.mount.state();
        let mut out = vec![0u8; len];
        load(&state.storage, offset, &mut out);
        out
    }
}

impl Drop for FaultyDrive {
    fn drop(&mut self) {
        // Before the loop device is detached (a field, dropped next): a detach waits for
        // the FUSE server, which may be stalled.
        self.mount.abort_and_unmount();
    }
}

/// Access to a [`FaultyDrive`]'s [`Faults`]; wakes a stalled request when dropped.
#[derive(Debug)]
pub struct FaultsGuard<'a> {
    state: MutexGuard<'a, State>,
    changed: &'a Condvar,
}

impl Deref for FaultsGuard<'_> {
    type Target = Faults;
    fn deref(&self) -> &Faults {
        &self.state.faults
    }
}

impl DerefMut for FaultsGuard<'_> {
    fn deref_mut(&mut self) -> &mut Faults {
        &mut self.state.faults
    }
}

impl Drop for FaultsGuard<'_> {
    fn drop(&mut self) {
        self.changed.notify_all();
    }
}

/// What the FUSE server and the test share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when the faults change or the drive is going away.
    changed: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the guard leaves the state as it was.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits out a stall, then the speed limit for `len` bytes.
    fn wait_turn(&self, len: u64) {
        let mut state = self.state();
        loop {
            let now = Instant::now();
            match state.faults.stalled_until {
                Some(until) if until > now && !state.ending => {
                    state = self
                        .changed
                        .wait_timeout(state, until - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                _ => break,
            }
        }
        let Some(rate) = state.faults.bytes_per_second.filter(|&r| r > 0 && len > 0) else {
            return;
        };
        let start = state.next_free.max(Instant::now());
        let until = start + Duration::from_secs_f64(len as f64 / rate as f64);
        state.next_free = until;
        loop {
            let now = Instant::now();
            if until <= now || state.ending {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The drive's bytes, faults and counters.
#[derive(Debug)]
struct State {
    faults: Faults,
    /// The real capacity; offset `o` is kept at `o % storage.len()`.
    storage: Vec<u8>,
    /// The claimed size.
    size: u64,
    written: u64,
    read: u64,
    /// When the speed limit lets the next transfer end at the earliest.
    next_free: Instant,
    /// Set when the drive is dropped: nothing waits any more.
    ending: bool,
    /// The connection's `abort` file, known once mounted.
    abort: Option<PathBuf>,
    unplugged: bool,
}

/// Copies `data` into `storage` at `offset`, wrapping at its end.
fn store(storage: &mut [u8], offset: u64, data: &[u8]) {
    let cap = storage.len() as u64;
    let mut done = 0;
    while done < data.len() {
        let at = ((offset + done as u64) % cap) as usize;
        let n = (data.len() - done).min(storage.len() - at);
        storage[at..at + n].copy_from_slice(&data[done..done + n]);
        done += n;
    }
}

/// Fills `out` from `storage` at `offset`, wrapping at its end.
fn load(storage: &[u8], offset: u64, out: &mut [u8]) {
    let cap = storage.len() as u64;
    let mut done = 0;
    while done < out.len() {
        let at = ((offset + done as u64) % cap) as usize;
        let n = (out.len() - done).min(storage.len() - at);
        out[done..done + n].copy_from_slice(&storage[at..at + n]);
        done += n;
    }
}

/// Whether `offset..end` touches any of `ranges`.
fn touches(ranges: &[Range<u64>], offset: u64, end: u64) -> bool {
    ranges.iter().any(|r| r.start < end && offset < r.end)
}

/// The FUSE file system: one folder holding [`DISK`].
struct DriveFs {
    shared: Arc<Shared>,
}

impl DriveFs {
    fn attr(&self, ino: INodeNo) -> Option<FileAttr> {
        let (kind, perm, size) = match ino {
            INodeNo::ROOT => (FileType::Directory, 0o755, 0),
            DISK_INODE => (FileType::RegularFile, 0o600, self.shared.state().size),
            _ => return None,
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: SystemTime::UNIX_EPOCH,
            mtime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            crtime: SystemTime::UNIX_EPOCH,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Aborts the connection from the server's side: the drive was pulled out.
    fn pull_out(state: &mut State) {
        state.unplugged = true;
        if let Some(abort) = &state.abort {
            // The abort fails this very request too, so the error has nowhere to go.
            let _ = std::fs::write(abort, "1");
        }
    }
}

impl Filesystem for DriveFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.attr(DISK_INODE) {
            Some(attr) if parent == INodeNo::ROOT && name == DISK => reply.entry(&TTL, &attr, Generation(0)),
            _ => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino == DISK_INODE {
            reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.shared.wait_turn(u64::from(size));
        let mut state = self.shared.state();
        let end = (offset + u64::from(size)).min(state.size).max(offset);
        if touches(&state.faults.eio_on_read, offset, end) {
            return reply.error(Errno::EIO);
        }
        let mut data = vec![0u8; (end - offset) as usize];
        load(&state.storage, offset, &mut data);
        for range in &state.faults.corrupt_reads {
            let (from, to) = (range.start.max(offset), range.end.min(end));
            if from < to {
                data[(from - offset) as usize..(to - offset) as usize]
                    .iter_mut()
                    .for_each(|b| *b = !*b);
            }
        }
        state.read += data.len() as u64;
        drop(state);
        reply.data(&data);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.shared.wait_turn(data.len() as u64);
        let mut state = self.shared.state();
        let end = offset + data.len() as u64;
        if end > state.size {
            return reply.error(Errno::ENOSPC);
        }
        if touches(&state.faults.eio_on_write, offset, end) {
            return reply.error(Errno::EIO);
        }
        if let Some(limit) = state.faults.unplug_after_written
            && state.written + data.len() as u64 > limit
        {
            let part = limit.saturating_sub(state.written) as usize;
            store(&mut state.storage, offset, &data[..part]);
            state.written += part as u64;
            Self::pull_out(&mut state);
            return reply.error(Errno::EIO);
        }
        store(&mut state.storage, offset, data);
        state.written += data.len() as u64;
        if let Some((mark, duration)) = state.faults.stall_after_written
            && state.written >= mark
        {
            state.faults.stall_after_written = None;
            state.faults.stalled_until = Some(Instant::now() + duration);
        }
        drop(state);
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _lock_owner: LockOwner, reply: ReplyEmpty) {
        self.sync(reply);
    }

    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        self.sync(reply);
    }
}

impl DriveFs {
    /// Answers fsync and flush. Both must be answered (not left to the default ENOSYS),
    /// or the kernel stops asking for the rest of the mount.
    fn sync(&self, reply: ReplyEmpty) {
        self.shared.wait_turn(0);
        if self.shared.state().faults.fail_sync {
            reply.error(Errno::EIO);
        } else {
            reply.ok();
        }
    }
}

/// The FUSE mount and the thread serving it.
#[derive(Debug)]
struct Mount {
    /// `/dev/shm/graver-test-<pid>-drive-<n>`, the mount point.
    folder: PathBuf,
    shared: Arc<Shared>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    /// Whether [`Mount::abort_and_unmount`] has run.
    ended: bool,
}

impl Mount {
    /// Mounts a [`DriveFs`] on a new `folder` and serves it on a thread.
    fn new(folder: PathBuf, shared: Arc<Shared>) -> Self {
        std::fs::create_dir(&folder).unwrap_or_else(|e| panic!("create {}: {e}", folder.display()));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName(format!("{}drive", shm_prefix())),
            MountOption::Subtype("graver-faulty-drive".into()),
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::NoExec,
        ];
        let fs = DriveFs {
            shared: Arc::clone(&shared),
        };
        let session = match fuser::Session::new(fs, &folder, &config) {
            Ok(session) => session,
            Err(e) => {
                let _ = std::fs::remove_dir(&folder);
                panic!("mount FUSE on {}: {e}", folder.display());
            }
        };
        let mut this = Self {
            folder,
            shared,
            server: None,
            ended: false,
        };
        let name = this
            .folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let server = std::thread::Builder::new().name(name).spawn(move || session.run());
        this.server = Some(server.unwrap_or_else(|e| panic!("start the FUSE server: {e}")));
        // The connection's number is the mount's device number; mountinfo gives it
        // without asking the file system (a stat would).
        let abort = mounts()
            .into_iter()
            .find(|m| m.point == this.folder)
            .map(|m| m.abort_file())
            .unwrap_or_else(|| panic!("{} is not in /proc/self/mountinfo", this.folder.display()));
        assert!(
            abort.exists(),
            "{} is missing: is fusectl mounted on {CONNECTIONS}?",
            abort.display()
        );
        this.state().abort = Some(abort);
        this
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state()
    }

    /// Wakes whatever waits, aborts the connection and unmounts (lazily: the loop device
    /// may still hold the file). Runs once.
    fn abort_and_unmount(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let abort = {
            let mut state = self.state();
            state.ending = true;
            state.abort.clone()
        };
        self.shared.changed.notify_all();
        if let Some(abort) = abort {
            // Fails when the drive was already pulled out; that is the same end.
            let _ = std::fs::write(abort, "1");
        }
        unmount(&self.folder);
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.abort_and_unmount();
        if let Some(server) = self.server.take() {
            // An aborted connection ends the server's loop; its result says nothing new.
            let _ = server.join();
        }
        if let Err(e) = std::fs::remove_dir(&self.folder) {
            eprintln!("warning: could not remove {}: {e}", self.folder.display());
        }
    }
}

/// Unmounts `point` lazily; a folder that is no mount point is left as it is.
fn unmount(point: &Path) {
    let Ok(path) = CString::new(point.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `path` is a valid NUL-terminated string that lives across the call.
    unsafe {
        libc::umount2(path.as_ptr(), libc::MNT_DETACH);
    }
}

/// Mounts the FUSE control file system on [`CONNECTIONS`] when nothing has (systemd does
/// on most systems; a container may not), as the `abort` files live there.
fn ensure_fusectl() {
    static MOUNTED: Once = Once::new();
    MOUNTED.call_once(|| {
        if mounts().iter().any(|m| m.fstype == "fusectl") {
            return;
        }
        let Ok(point) = CString::new(CONNECTIONS) else {
            return;
        };
        let kind = c"fusectl";
        // SAFETY: every pointer is a valid NUL-terminated string that lives across the
        // call; fusectl takes no data.
        let done = unsafe { libc::mount(kind.as_ptr(), point.as_ptr(), kind.as_ptr(), 0, std::ptr::null()) };
        assert_eq!(
            done,
            0,
            "mount fusectl on {CONNECTIONS}: {}",
            std::io::Error::last_os_error()
        );
    });
}

/// One line of `/proc/self/mountinfo`.
struct MountInfo {
    /// `major:minor` of the mount's device.
    device: (u64, u64),
    point: PathBuf,
    fstype: String,
}

impl MountInfo {
    /// The `abort` file of the FUSE connection behind this mount: the connection is
    /// named after the kernel's device number, `major << 20 | minor`.
    fn abort_file(&self) -> PathBuf {
        let (major, minor) = self.device;
        PathBuf::from(CONNECTIONS)
            .join(((major << 20) | minor).to_string())
            .join("abort")
    }
}

/// Every mount this process sees.
fn mounts() -> Vec<MountInfo> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let (major, minor) = fields.get(2)?.split_once(':')?;
            let dash = fields.iter().position(|&f| f == "-")?;
            Some(MountInfo {
                device: (major.parse().ok()?, minor.parse().ok()?),
                point: PathBuf::from(unescape(fields.get(4)?)),
                fstype: (*fields.get(dash + 1)?).to_string(),
            })
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match code {
            Some(byte) if bytes[i] == b'\\' => {
                out.push(byte);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Aborts and unmounts the faulty drives a killed run left in [`SHM`], and detaches
/// their loop devices, so their folders can be removed.
pub(crate) fn sweep_stale_mounts() {
    for mount in mounts() {
        let stale = mount.fstype.starts_with("fuse")
            && mount.point.parent() == Some(Path::new(SHM))
            && mount.point.file_name().is_some_and(|n| is_stale(&n.to_string_lossy()));
        if !stale {
            continue;
        }
        let _ = std::fs::write(mount.abort_file(), "1");
        let loops = loops_over(&mount.point);
        unmount(&mount.point);
        for dev in loops {
            let _ = crate::tool("losetup").arg("-d").arg(dev).output();
        }
    }
}

/// The loop devices whose backing file is in `folder`.
fn loops_over(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("loop/backing_file"))
                .is_ok_and(|backing| Path::new(backing.trim()).starts_with(folder))
        })
        .map(|entry| Path::new("/dev").join(entry.file_name()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counterfeit_wraps_onto_what_it_keeps() {
        let mut storage = vec![0u8; 8];
        store(&mut storage, 6, b"abcd");
        assert_eq!(&storage, b"cd\0\0\0\0ab");
        let mut out = [0u8; 4];
        load(&storage, 14, &mut out);
        assert_eq!(&out, b"abcd");
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/dev/shm/a\040b"), "/dev/shm/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
    }

    #[test]
    fn ranges_touch_when_they_overlap() {
        let ranges = [10..20, 40..50];
        assert!(touches(&ranges, 15, 16));
        assert!(touches(&ranges, 0, 11));
        assert!(touches(&ranges, 30, 41));
        assert!(!touches(&ranges, 20, 40));
        assert!(!touches(&ranges, 0, 10));
        assert!(!touches(&ranges, 50, 60));
    }
}
