//! The CLI run by an ordinary user, its worker started through a stand-in `pkexec`
//! first on PATH that "prompts" until the test answers, then runs the worker as root
//! with `PKEXEC_UID` set, as pkexec does (through a setuid-root copy of `setpriv`).

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Loop, MIB, Rng, find_tool, graver_bin, require_root, scratch};

/// The ordinary user the CLI runs as.
const NOBODY: &str = "65534";
/// The longest any wait may take before the test calls it a hang.
const HANG_GUARD: Duration = Duration::from_secs(30);
/// Where the packages install the worker; the polkit policy names it.
const INSTALLED_WORKER: &str = "/usr/libexec/graver/graver-writer";
/// What the drive holds before the test; anything written over it shows, zeros included.
const OLD: u8 = 0x5a;

struct StandIn {
    /// Put first on the CLI's PATH.
    bin: PathBuf,
    /// Where the stand-in leaves its marks (`argv`, `prompting`), writable by the user.
    marks: PathBuf,
    /// A FIFO: the stand-in's "prompt" stays open until something is written to it.
    answer: PathBuf,
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A stand-in pkexec in `dir` that records its arguments, then waits for its answer.
fn stand_in(dir: &Path) -> StandIn {
    chmod(dir, 0o755);
    let bin = dir.join("bin");
    let marks = dir.join("marks");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&marks).unwrap();
    chmod(&marks, 0o777);
    let answer = marks.join("answer");
    let made = Command::new("mkfifo")
        .arg("-m")
        .arg("0666")
        .arg(&answer)
        .status()
        .unwrap();
    assert!(made.success());
    // The stand-in's way to root: setpriv, setuid root, only the user's to run.
    let setpriv = bin.join("setpriv-root");
    std::fs::copy(setpriv_path(), &setpriv).unwrap();
    chmod(&setpriv, 0o4755);
    let script = format!(
        "#!/bin/sh\n\
         printf '%s\\n' \"$@\" > {marks}/argv\n\
         : > {marks}/prompting\n\
         read reply < {answer}\n\
         PKEXEC_UID=$(id -u) exec {setpriv} --reuid=0 --regid=0 --clear-groups \"$@\"\n",
        marks = marks.display(),
        answer = answer.display(),
        setpriv = setpriv.display(),
    );
    let pkexec = bin.join("pkexec");
    std::fs::write(&pkexec, script).unwrap();
    chmod(&pkexec, 0o755);
    StandIn { bin, marks, answer }
}

fn setpriv_path() -> PathBuf {
    find_tool("setpriv").expect("setpriv (util-linux) is needed to run as another user")
}

/// `GRAVER write IMAGE --to DRIVE --yes` as the ordinary user, with the stand-in first on PATH.
fn write_as_user(graver: &Path, stand_in: &StandIn, image: &Path, drive: &Path) -> Command {
    let mut command = Command::new(setpriv_path());
    let path = format!(
        "{}:{}",
        stand_in.bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    command
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .arg(graver)
        .arg("write")
        .arg(image)
        .arg("--to")
        .arg(drive)
        .arg("--yes")
        .env("PATH", path)
        .env_remove("GRAVER_DEV_WORKER")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the stand-in still waits at its prompt: a FIFO opened without blocking
/// for writing fails with ENXIO once nobody reads it.
fn still_prompting(answer: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(answer)
        .is_ok()
}

/// A loop device full of [`OLD`], and a readable image for it.
fn drive_and_image(dir: &Path) -> (Loop, PathBuf) {
    let device = Loop::new(16 * MIB);
    std::fs::write(&device.dev, vec![OLD; 16 * MIB as usize]).unwrap();
    let image = dir.join("image.img");
    std::fs::write(&image, Rng::new(12).bytes(3 * MIB as usize)).unwrap();
    chmod(&image, 0o644);
    (device, image)
}

fn untouched(device: &Loop) -> bool {
    std::fs::read(&device.dev).unwrap().iter().all(|&b| b == OLD)
}

#[test]
fn sigint_while_the_administrator_prompt_is_open_cancels_and_nothing_is_written() {
    require_root!();
    let dir = scratch();
    let stand_in = stand_in(dir.path());
    let (device, image) = drive_and_image(dir.path());
    let worker = graver_bin().with_file_name("graver-writer");
    // A development build elevates the worker the switch names (release builds ignore it).
    let mut cli = write_as_user(graver_bin(), &stand_in, &image, &device.dev)
        .env("GRAVER_DEV_WORKER", &worker)
        .spawn()
        .unwrap();
    wait_for("the stand-in's prompt", || stand_in.marks.join("prompting").exists());
    let argv = std::fs::read_to_string(stand_in.marks.join("argv")).unwrap();
    assert_eq!(argv.lines().next(), Some(worker.to_str().unwrap()), "{argv}");

    let interrupted = Command::new("kill")
        .args(["-INT", &cli.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    wait_for("the CLI's exit", || cli.try_wait().unwrap().is_some());
    let output = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    // The launch was abandoned: the prompt is gone, so no worker can start after it.
    wait_for("the stand-in's end", || !still_prompting(&stand_in.answer));
    assert!(untouched(&device), "a write cancelled at the prompt reached the drive");
}

#[test]
fn the_worker_beside_a_copy_of_graver_is_never_elevated() {
    require_root!();
    let dir = scratch();
    let stand_in = stand_in(dir.path());
    let (device, image) = drive_and_image(dir.path());
    // Copies of both programs in a folder the user could own, as in a download folder.
    let copies = dir.path().join("copies");
    std::fs::create_dir_all(&copies).unwrap();
    chmod(&copies, 0o755);
    let graver = copies.join("graver");
    std::fs::copy(graver_bin(), &graver).unwrap();
    std::fs::copy(
        graver_bin().with_file_name("graver-writer"),
        copies.join("graver-writer"),
    )
    .unwrap();
    let mut child = write_as_user(&graver, &stand_in, &image, &device.dev).spawn().unwrap();
    // The stand-in prompts only when the installed worker exists (on a packaged system).
    let installed = Path::new(INSTALLED_WORKER);
    if installed.exists() {
        wait_for("the stand-in's prompt", || stand_in.marks.join("prompting").exists());
        let argv = std::fs::read_to_string(stand_in.marks.join("argv")).unwrap();
        assert_eq!(argv.lines().next(), installed.to_str(), "{argv}");
        // Dismiss the prompt without rights: the test only wanted to see what was asked for.
        let _ = child.kill();
    }
    wait_for("the CLI's exit", || child.try_wait().unwrap().is_some());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !installed.exists() {
        assert!(
            !stand_in.marks.join("argv").exists(),
            "something was elevated: {stderr}"
        );
        assert!(stderr.contains(INSTALLED_WORKER), "{stderr}");
        assert_ne!(output.status.code(), Some(0), "{stderr}");
    }
    if let Ok(argv) = std::fs::read_to_string(stand_in.marks.join("argv")) {
        assert!(
            !argv.contains(copies.to_str().unwrap()),
            "the copy was elevated: {argv}"
        );
    }
    // Let a waiting stand-in go, then check the drive.
    if still_prompting(&stand_in.answer)
        && let Ok(mut fifo) = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&stand_in.answer)
    {
        let _ = fifo.write_all(b"no\n");
    }
    assert!(untouched(&device), "the drive was written");
}

#[test]
fn an_answered_prompt_runs_the_worker_as_root_and_writes() {
    // The other tests' untouched drive means something only if the stand-in, once
    // answered, does start a worker that can write.
    require_root!();
    let dir = scratch();
    let stand_in = stand_in(dir.path());
    let (device, image) = drive_and_image(dir.path());
    write_answered(&stand_in, &image, &device);
}

/// Writes `image` to `device` as the user through the stand-in pkexec and the worker
/// built beside the tests, answers the prompt with yes once it is open, and checks the
/// write succeeded and the drive starts with the 3 MiB image. Returns the CLI's stderr.
fn write_answered(stand_in: &StandIn, image: &Path, device: &Loop) -> String {
    let worker = graver_bin().with_file_name("graver-writer");
    let cli = write_as_user(graver_bin(), stand_in, image, &device.dev)
        .env("GRAVER_DEV_WORKER", &worker)
        .spawn()
        .unwrap();
    wait_for("the stand-in's prompt", || still_prompting(&stand_in.answer));
    let mut fifo = OpenOptions::new().write(true).open(&stand_in.answer).unwrap();
    fifo.write_all(b"yes\n").unwrap();
    drop(fifo);
    let output = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let written = std::fs::read(&device.dev).unwrap();
    assert!(
        written[..3 * MIB as usize] == std::fs::read(image).unwrap()[..],
        "{stderr}"
    );
    stderr
}

/// A fresh folder `name` in `dir`, for one stand-in.
fn subdir(dir: &Path, name: &str) -> PathBuf {
    let sub = dir.join(format!("{name}.d"));
    std::fs::create_dir_all(&sub).unwrap();
    sub
}

/// An image in `dir` owned by `uid:gid` with `mode`.
fn image_owned_by(dir: &Path, name: &str, uid: u32, gid: u32, mode: u32) -> PathBuf {
    let image = dir.join(name);
    std::fs::write(&image, Rng::new(13).bytes(3 * MIB as usize)).unwrap();
    std::os::unix::fs::chown(&image, Some(uid), Some(gid)).unwrap();
    chmod(&image, mode);
    image
}

/// The worker runs as root, but the image is opened by the front end, as the user:
/// a file the user may not read is refused before any prompt, whatever root could read,
/// and the worker never opens the path itself.
#[test]
fn an_ordinary_user_writes_only_images_they_may_read() {
    require_root!();
    let dir = scratch();
    let nobody: u32 = NOBODY.parse().unwrap();
    let worker = graver_bin().with_file_name("graver-writer");
    for (name, uid, gid, mode) in [
        // Root's, readable by its group only: the old setfsuid worker kept group 0 and read it.
        ("root-0640.img", 0, 0, 0o640),
        // Another user's private file.
        ("other-0600.img", 4242, 4242, 0o600),
    ] {
        let stand_in = stand_in(&subdir(dir.path(), name));
        let (device, _) = drive_and_image(dir.path());
        let image = image_owned_by(dir.path(), name, uid, gid, mode);
        let output = write_as_user(graver_bin(), &stand_in, &image, &device.dev)
            .env("GRAVER_DEV_WORKER", &worker)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot read {}: permission denied", image.display())),
            "{name}: {stderr}"
        );
        assert!(
            !stand_in.marks.join("argv").exists(),
            "{name}: a prompt was shown for an image the user cannot read"
        );
        assert!(untouched(&device), "{name}: the drive was written");
    }

    // The user's own private file: written and verified by the root worker.
    let stand_in = stand_in(&subdir(dir.path(), "own"));
    let (device, _) = drive_and_image(dir.path());
    let image = image_owned_by(dir.path(), "own-0600.img", nobody, nobody, 0o600);
    let stderr = write_answered(&stand_in, &image, &device);
    assert!(stderr.contains("wrote and verified"), "{stderr}");
}
