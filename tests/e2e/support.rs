//! Helpers: finding and running the `graver` binary, the loop devices, scratch folders
//! and `Rng` of graver-testkit (re-exported), and one realistic disk image (MBR, ext4 with files, odd tail) built once
//! per test process and compressed with the real tools.

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub use graver_testkit::{LoopDevice as Loop, Rng, assert_zeros, find_tool, invert_byte, is_root, scratch, tool};
use serde_json::Value;

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// Skips the calling test (it passes) when the process is not root.
macro_rules! require_root {
    () => {
        if !$crate::support::is_root() {
            eprintln!("skipped: needs root for loop devices");
            return;
        }
    };
}
pub(crate) use require_root;

/// `<target>/debug/graver`, which `cargo test --workspace` builds before running tests.
pub fn graver_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // <target>/debug/deps/e2e-HASH -> <target>/debug/graver
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <target>/<profile>/deps");
        let bin = profile_dir.join(format!("graver{}", std::env::consts::EXE_SUFFIX));
        // Building from inside a test would wait on cargo's own lock; `cargo test --workspace`
        // builds the binary first because the graver package has integration tests.
        assert!(
            bin.is_file(),
            "graver binary not found at {}; run `cargo test --workspace` or `cargo build --bins` first",
            bin.display()
        );
        bin
    })
}

/// A `Command` for the graver binary; add the arguments, then [`run`] it.
pub fn graver() -> Command {
    Command::new(graver_bin())
}

/// `graver write IMAGE --to TARGET`; add the options, then [`run`] it.
pub fn write_to(image: impl AsRef<std::ffi::OsStr>, target: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = graver();
    command.arg("write").arg(image).arg("--to").arg(target);
    command
}

/// `--sha256` when `graver write` has that switch (the digest is opt-in there), so a
/// write's result line carries the image's SHA-256.
pub fn sha256_switch() -> &'static [&'static str] {
    static SWITCH: OnceLock<bool> = OnceLock::new();
    let has = *SWITCH.get_or_init(|| run(graver().args(["write", "--help"])).stdout.contains("--sha256"));
    if has { &["--sha256"] } else { &[] }
}

/// The per-drive entries of a write's result line (`targets`, formerly `devices`).
#[track_caller]
pub fn result_targets(result: &Value) -> Vec<Value> {
    result
        .get("targets")
        .or_else(|| result.get("devices"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_else(|| panic!("the result line lists no targets: {result}"))
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
    what: String,
}

impl Run {
    fn new(what: String, output: &Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            what,
        }
    }

    /// Asserts the exit code, printing the command and its output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        self
    }

    /// Asserts that stderr holds `needle`.
    #[track_caller]
    pub fn expect_stderr(&self, needle: &str) -> &Self {
        assert!(self.stderr.contains(needle), "stderr lacks {needle:?}\n{self}");
        self
    }

    /// Every stdout line, parsed as JSON.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}\n{self}")))
            .collect()
    }

    /// The `{"type":"result",...}` line, which must be the last one.
    #[track_caller]
    pub fn result(&self) -> Value {
        let lines = self.json_lines();
        let last = lines
            .last()
            .cloned()
            .unwrap_or_else(|| panic!("no JSON on stdout\n{self}"));
        assert_eq!(last["type"], "result", "last JSON line is not the result\n{self}");
        last
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "command: {}\nexit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.code,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// The last few KiB of a long output, so failures stay readable.
fn tail(text: &str) -> &str {
    const KEEP: usize = 4000;
    if text.len() <= KEEP {
        return text;
    }
    let mut start = text.len() - KEEP;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// How long any one command may take before it counts as hung and is killed. This is
/// a guard against hangs, far above any real run time, not a timing assertion.
const HANG_LIMIT: Duration = Duration::from_secs(30);

/// Runs a command with no stdin and returns what it did, whatever its exit code.
pub fn run(command: &mut Command) -> Run {
    run_with(command, None)
}

/// Runs a command with `input` on its stdin.
pub fn run_with_stdin(command: &mut Command, input: &str) -> Run {
    run_with(command, Some(input))
}

fn run_with(command: &mut Command, input: Option<&str>) -> Run {
    let what = describe(command);
    let mut child = command
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        // The program may exit before reading everything; a broken pipe is fine then.
        let _ = stdin.write_all(input.as_bytes());
    }
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let mut hung = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > HANG_LIMIT {
            hung = true;
            let _ = child.kill();
            break child.wait().expect("wait after kill");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    let mut result = Run::new(what, &output);
    if hung {
        result.stderr.push_str(&format!(
            "\n[e2e: HUNG: still running after {} s, killed]",
            HANG_LIMIT.as_secs()
        ));
    }
    result
}

/// Runs a helper tool that must succeed; returns its stdout.
#[track_caller]
pub fn check(command: &mut Command) -> String {
    let result = run(command);
    assert_eq!(result.code, 0, "helper command failed\n{result}");
    result.stdout
}

/// The SHA-256 of a file, as `sha256sum` prints it.
pub fn sha256sum(path: &Path) -> String {
    let out = check(Command::new("sha256sum").arg(path));
    out.split_whitespace().next().expect("sha256sum output").to_string()
}

/// Asserts that the first `len` bytes of `a` and `b` are equal, using `cmp`.
#[track_caller]
pub fn assert_cmp(a: &Path, b: &Path, len: u64) {
    check(Command::new("cmp").arg("-n").arg(len.to_string()).arg(a).arg(b));
}

/// Reads `len` bytes at `offset` of a file or device.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0; len];
    file.read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("read {len} bytes at {offset} of {}: {e}", path.display()));
    buf
}

/// The test image and its compressed copies, made once per test process.
pub struct Fixture {
    /// The raw image: MBR, an ext4 partition at 1 MiB, and a 1234-byte tail.
    pub raw: PathBuf,
    /// Its length in bytes (48 MiB + 1234).
    pub len: u64,
    /// Its SHA-256 as `sha256sum` prints it.
    pub sha256: String,
}

/// The compressed formats, by file extension.
pub const COMPRESSED: [&str; 5] = ["xz", "zst", "gz", "bz2", "zip"];

/// The image length: not a multiple of 4096 on purpose.
pub const IMAGE_LEN: u64 = 48 * MIB + 1234;

impl Fixture {
    /// The image compressed as `ext` (`image.img.xz` and so on); "img" is the raw image.
    pub fn file(&self, ext: &str) -> PathBuf {
        if ext == "img" || ext == "raw" {
            return self.raw.clone();
        }
        let mut name = self.raw.as_os_str().to_os_string();
        name.push(".");
        name.push(ext);
        PathBuf::from(name)
    }
}

/// The shared fixture's folder in /dev/shm, for [`remove_fixture_dir`].
static FIXTURE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Removes the shared fixture at exit (the test harness ends with `exit`, which runs
/// `atexit` handlers); a killed run's folder is swept by the next run instead.
extern "C" fn remove_fixture_dir() {
    if let Some(dir) = FIXTURE_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The shared fixture, built by the first test that asks for it.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

fn build_fixture() -> Fixture {
    let dir = scratch();
    let root = dir.path();

    // Files for the filesystem: random, text, a subfolder, an empty file.
    let content = root.join("content");
    std::fs::create_dir_all(content.join("docs")).expect("mkdir");
    let mut rng = Rng::new(42);
    std::fs::write(content.join("random.bin"), rng.bytes(6 * MIB as usize)).expect("write");
    let mut text = String::new();
    let mut line = 0u64;
    while text.len() < 2 * MIB as usize {
        line += 1;
        text.push_str(&format!(
            "{line:08}: The quick brown fox jumps over the lazy dog; graver writes images verbatim.\n"
        ));
    }
    std::fs::write(content.join("docs/text.txt"), &text).expect("write");
    std::fs::write(content.join("README"), "Made by graver's end-to-end tests.\n").expect("write");
    std::fs::write(content.join("empty"), "").expect("write");

    // An ext4 filesystem holding them.
    let fs = root.join("fs.img");
    check(
        tool("mkfs.ext4")
            .args(["-q", "-F", "-d"])
            .arg(&content)
            .arg(&fs)
            .arg("40M"),
    );

    // The disk: an MBR with one Linux partition from 1 MiB to the end, the filesystem in it.
    let raw = root.join("image.img");
    File::create(&raw)
        .and_then(|f| f.set_len(48 * MIB))
        .expect("create image");
    partition(&raw);
    check(
        Command::new("dd")
            .arg(format!("if={}", fs.display()))
            .arg(format!("of={}", raw.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]),
    );
    std::fs::remove_file(&fs).expect("remove fs.img");
    std::fs::remove_dir_all(&content).expect("remove content");
    // A tail that is not a whole number of sectors, let alone of 4 KiB pages.
    let mut file = OpenOptions::new().append(true).open(&raw).expect("open image");
    file.write_all(&rng.bytes(1234)).expect("append tail");
    drop(file);
    assert_eq!(std::fs::metadata(&raw).expect("stat").len(), IMAGE_LEN);

    // The compressed copies, made side by side by the real tools.
    let name = "image.img";
    let jobs: Vec<(&str, Command)> = vec![
        ("xz", {
            let mut c = Command::new("xz");
            c.args(["-T0", "--block-size=4MiB", "-k", name]);
            c
        }),
        ("zstd", {
            let mut c = Command::new("zstd");
            c.args(["-q", "-k", name]);
            c
        }),
        ("gzip", {
            let mut c = Command::new("gzip");
            c.args(["-k", name]);
            c
        }),
        ("bzip2", {
            let mut c = Command::new("bzip2");
            c.args(["-k", name]);
            c
        }),
        ("zip", {
            let mut c = Command::new("zip");
            c.args(["-q", "-j", "image.img.zip", name]);
            c
        }),
    ];
    let children: Vec<_> = jobs
        .into_iter()
        .map(|(label, mut command)| {
            let what = describe(&command);
            let child = command
                .current_dir(root)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {label} ({what}): {e}"));
            (what, child)
        })
        .collect();
    for (what, child) in children {
        let output = child.wait_with_output().expect("wait for compressor");
        let result = Run::new(what, &output);
        assert_eq!(result.code, 0, "compressing the fixture failed\n{result}");
    }

    let sha256 = sha256sum(&raw);
    // A static is never dropped, so the folder is removed when the test process exits.
    if FIXTURE_DIR.set(dir.keep()).is_ok() {
        // SAFETY: registers a plain function with no arguments; it only removes files.
        unsafe { libc::atexit(remove_fixture_dir) };
    }
    let fixture = Fixture {
        raw,
        len: IMAGE_LEN,
        sha256,
    };
    for ext in COMPRESSED {
        assert!(fixture.file(ext).is_file(), "{} missing", fixture.file(ext).display());
    }
    fixture
}

/// Writes a DOS partition table with one type-83 partition from 1 MiB to the end:
/// with `sfdisk` when it is installed, else the same 512 bytes by hand.
fn partition(raw: &Path) {
    if find_tool("sfdisk").is_some() {
        let mut command = tool("sfdisk");
        command.arg("--quiet").arg(raw);
        let result = run_with_stdin(&mut command, "label: dos\nlabel-id: 0x6772766e\nstart=2048, type=83\n");
        assert_eq!(result.code, 0, "sfdisk failed\n{result}");
        return;
    }
    let sectors = std::fs::metadata(raw).expect("stat").len() / 512;
    let mut mbr = [0u8; 512];
    mbr[440..444].copy_from_slice(&0x6772_766e_u32.to_le_bytes());
    let entry = &mut mbr[446..462];
    entry[1..4].copy_from_slice(&[0x20, 0x21, 0x00]); // CHS of LBA 2048
    entry[4] = 0x83;
    entry[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    entry[8..12].copy_from_slice(&2048u32.to_le_bytes());
    entry[12..16].copy_from_slice(&((sectors - 2048) as u32).to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    let mut file = OpenOptions::new().write(true).open(raw).expect("open image");
    file.write_all(&mbr).expect("write MBR");
}

/// A copy of `src` with its length cut to `len`.
pub fn truncated_copy(src: &Path, dst: &Path, len: u64) {
    std::fs::copy(src, dst).expect("copy");
    OpenOptions::new()
        .write(true)
        .open(dst)
        .and_then(|f| f.set_len(len))
        .expect("truncate");
}

/// A copy of `src` with the byte at `offset` inverted.
pub fn flipped_copy(src: &Path, dst: &Path, offset: u64) {
    std::fs::copy(src, dst).expect("copy");
    invert_byte(dst, offset);
}

/// Links (or copies) `src` into `dir` under `name`.
pub fn link_into(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    if std::fs::hard_link(src, &dst).is_err() {
        std::fs::copy(src, &dst).expect("copy");
    }
    dst
}

/// What one `graver write --json` run did.
pub struct Ran {
    pub status: ExitStatus,
    pub lines: Vec<Value>,
    pub transcript: String,
    /// From the action taken on a progress line (a fault, a signal) to the end.
    pub after_action: Option<Duration>,
}

impl Ran {
    /// The final `result` line.
    pub fn result(&self) -> &Value {
        self.lines
            .iter()
            .rev()
            .find(|l| l["type"] == "result")
            .unwrap_or_else(|| panic!("no result line\n{}", self.transcript))
    }

    /// Asserts the exit code and that the output contains `needle`.
    pub fn expect(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.status.code(), Some(code), "{}", self.transcript);
        assert!(
            self.transcript.contains(needle),
            "expected {needle:?} in the output\n{}",
            self.transcript
        );
        self
    }
}

/// Runs `command` (a `graver write … --json`), calling `on_progress` with each progress
/// line and the child's pid; `on_progress` returns true once it has acted. A run that
/// has not ended after two minutes is killed and fails the test: a hang is a failure.
pub fn run_watched(command: &mut Command, mut on_progress: impl FnMut(&Value, u32) -> bool) -> Ran {
    let mut child: Child = command
        .args(["--yes", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start graver");
    let pid = child.id();
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            for _ in 0..1200 {
                if finished.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            true
        })
    };
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut lines = Vec::new();
    let mut acted: Option<Instant> = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let Ok(line) = line else { break };
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if acted.is_none() && value["type"] == "progress" && on_progress(&value, pid) {
            acted = Some(Instant::now());
        }
        lines.push(value);
    }
    let status = child.wait().expect("wait for graver");
    let after_action = acted.map(|t| t.elapsed());
    finished.store(true, Ordering::Relaxed);
    let killed = watchdog.join().expect("watchdog");
    let stderr = stderr_reader.join().expect("stderr reader");
    let transcript = format!(
        "exit: {status}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
        lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
    );
    assert!(!killed, "graver hung and was killed\n{transcript}");
    eprintln!("ended {after_action:?} after the action");
    Ran {
        status,
        lines,
        transcript,
        after_action,
    }
}
