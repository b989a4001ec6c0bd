//! Integration tests of the worker, `graver-writer`, started as a subprocess
//! through [`graver_client::Client`]: what it writes (or refuses to write) to
//! real loop devices, and what the client reports when it is killed.
//!
//! The worker binary is the one built beside these tests (`cargo build
//! --workspace --bins`, as CI does before testing). The loop-device tests need
//! root; without it they print a note and pass.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use graver_client::{Client, Command, Event, Launch, LaunchError, WorkerExit, WorkerLost};
use graver_drives::{Drive, Hazard, Resolved, Severity};
use graver_testkit::{LoopDevice as Loop, image_file, is_root, scratch, sweep_stale};
use graver_writer::Phase;
use graver_writer::protocol::{JobTarget, Outcome, Refusal, VerifyJob, WriteJob};
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
/// Not a multiple of any block size on purpose.
const IMAGE_LEN: u64 = 9 * MIB + 123;
/// The longest any single wait may take before the test calls it a hang.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// The worker built beside this test (`target/<profile>/graver-writer`).
fn worker() -> PathBuf {
    graver_client::worker_beside_current_exe()
        .expect("graver-writer is not built beside the tests; run `cargo build -p graver-writer` first")
}

// ---------------------------------------------------------------------------
// Helpers: root-only tests, images (loop devices and scratch: graver-testkit)
// ---------------------------------------------------------------------------

/// Root tests attach and detach loop devices and look at the drive list; they run
/// one at a time so a detached device number is not re-used by a neighbour mid-test.
fn root_only() -> Option<MutexGuard<'static, ()>> {
    static ROOT: Mutex<()> = Mutex::new(());
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return None;
    }
    sweep_stale();
    Some(ROOT.lock().unwrap_or_else(PoisonError::into_inner))
}

fn sha256_of(path: &Path) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let mut file = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finalize().into()
}

fn read_prefix(path: &Path, len: u64) -> Vec<u8> {
    let mut out = Vec::new();
    File::open(path).unwrap().take(len).read_to_end(&mut out).unwrap();
    out
}

fn is_all_zeros(path: &Path) -> bool {
    let mut file = File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return true;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return false;
        }
    }
}

#[track_caller]
fn check(command: &mut Process) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Single-quotes `path` for /bin/sh.
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// An executable shell script `name` in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

// ---------------------------------------------------------------------------
// Helpers: driving the worker
// ---------------------------------------------------------------------------

/// The warnings the policy asks to be confirmed for `drive`: what `--yes` confirms.
fn warnings(drive: &Drive) -> Vec<Hazard> {
    graver_drives::classify(drive, None)
        .iter()
        .filter(|f| f.hazard.severity() == Severity::Confirm)
        .map(|f| f.hazard)
        .collect()
}

/// `path` as the CLI sends it with `--yes`: a listed drive by its identity, with each
/// of its warnings confirmed (loop devices are not removable, so the worker asks for
/// that one); anything else by its path alone.
fn job_target(path: &Path) -> JobTarget {
    let drives = graver_drives::list().unwrap();
    match graver_drives::resolve(&drives, path) {
        Resolved::Drive(drive) => JobTarget {
            path: path.to_path_buf(),
            ..JobTarget::drive(drive, warnings(drive))
        },
        _ => JobTarget::file(path),
    }
}

/// A job for `targets` with `--yes`: every warning confirmed, no name typed.
fn write_job(image: &Path, targets: &[&Path]) -> WriteJob {
    WriteJob {
        image: image.to_path_buf(),
        targets: targets.iter().map(|t| job_target(t)).collect(),
        verify: true,
        eject: false,
        overwrite: false,
        sha256: true,
    }
}

fn is_terminal(event: &Event) -> bool {
    matches!(
        event,
        Event::Finished(_) | Event::JobFailed { .. } | Event::LaunchFailed { .. } | Event::WorkerLost { .. }
    )
}

/// Runs one job on a fresh client and returns every event, the terminal one last.
fn run_job(launch: Launch, job: WriteJob) -> Vec<Event> {
    run_command(launch, Command::Write(job))
}

/// Runs one command on a fresh client and returns every event, the terminal one last.
fn run_command(launch: Launch, command: Command) -> Vec<Event> {
    let client = Client::spawn(launch);
    client.commands.send(command).unwrap();
    let mut events = Vec::new();
    loop {
        let event = client
            .events
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|e| panic!("no event for {HANG_GUARD:?} ({e}); so far: {events:#?}"));
        let done = is_terminal(&event);
        events.push(event);
        if done {
            return events;
        }
    }
}

fn subprocess() -> Launch {
    Launch::Subprocess { worker: worker() }
}

/// The outcome of each target, in the job's order; panics unless the job finished.
fn outcomes(events: &[Event]) -> Vec<(PathBuf, Outcome)> {
    match events.last() {
        Some(Event::Finished(result)) => result
            .targets
            .iter()
            .map(|t| (t.target.clone(), t.outcome.clone()))
            .collect(),
        other => panic!("the job did not finish: {other:#?}"),
    }
}

/// Asserts `target` was refused, for a reason `expected` accepts (the app's tests check
/// how each refusal is worded).
#[track_caller]
fn assert_refused(outcome: &Outcome, target: &Path, expected: impl Fn(&Refusal) -> bool) {
    match outcome {
        Outcome::Refused { refusal } => {
            eprintln!("{} refused: {refusal:?}", target.display());
            assert!(expected(refusal), "{}: refused, but for {refusal:?}", target.display());
        }
        other => panic!("{}: expected a refusal, got {other:?}", target.display()),
    }
}

/// Asserts a job with only refused targets wrote nothing: it finished with every
/// target refused for a reason `expected` accepts.
#[track_caller]
fn assert_job_refused(events: &[Event], expected: impl Fn(&Refusal) -> bool) {
    match events.last() {
        Some(Event::Finished(result)) => {
            assert!(!result.targets.is_empty());
            for t in &result.targets {
                assert_refused(&t.outcome, &t.target, &expected);
            }
        }
        other => panic!("expected a refusal, got {other:#?}"),
    }
    assert!(
        !events.iter().any(|e| matches!(e, Event::Progress(_))),
        "a refused job reported progress: {events:#?}"
    );
}

/// Whether the policy forbids the drive for `hazard`.
fn forbidden(hazard: Hazard) -> impl Fn(&Refusal) -> bool {
    move |refusal| matches!(refusal, Refusal::Forbidden { findings } if findings.iter().any(|f| f.hazard == hazard))
}

/// A path that is no whole drive: a file, a partition, a device Graver does not write.
fn not_whole_drive(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::FileTarget | Refusal::NotWholeDrive { .. })
}

fn system_drive(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::SystemDrive { finding } if finding.hazard == Hazard::System)
}

/// The job lacked the confirmation of the drive's not being removable.
fn unconfirmed_non_removable(refusal: &Refusal) -> bool {
    matches!(refusal, Refusal::Unconfirmed { findings } if findings.iter().any(|f| f.hazard == Hazard::NonRemovable))
}

/// Asserts the target was written and verified and now holds exactly the image.
#[track_caller]
fn assert_holds_image(outcome: &Outcome, lo: &Loop, image: &Path) {
    assert_eq!(outcome, &Outcome::Verified, "{}", lo.dev.display());
    let want = std::fs::read(image).unwrap();
    let got = read_prefix(&lo.backing, want.len() as u64);
    assert!(got == want, "{} does not hold the image's bytes", lo.dev.display());
}

// ---------------------------------------------------------------------------
// 2–3. Writing real loop devices
// ---------------------------------------------------------------------------

#[test]
fn worker_subprocess_writes_and_verifies_a_loop_device() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 2, IMAGE_LEN, IMAGE_LEN);
    let lo = Loop::new(16 * MIB);

    let events = run_job(subprocess(), write_job(&image, &[&lo.dev]));

    assert!(
        matches!(events.first(), Some(Event::Started { how }) if how == "subprocess"),
        "{:#?}",
        events.first()
    );
    assert!(events.iter().any(|e| matches!(e, Event::Progress(_))), "no progress");
    let Some(Event::Finished(result)) = events.last() else {
        panic!("the job did not finish: {:#?}", events.last());
    };
    assert_eq!(result.targets.len(), 1);
    assert_eq!(result.targets[0].target, lo.dev);
    assert_eq!(result.image_len, IMAGE_LEN);
    assert_eq!(result.sha256, Some(sha256_of(&image)));
    assert_holds_image(&result.targets[0].outcome, &lo, &image);
}

#[test]
fn several_drives_at_once_one_bad() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 3, IMAGE_LEN, IMAGE_LEN);

    type Case = (&'static str, fn() -> Loop, Hazard);
    let cases: [Case; 2] = [
        ("read-only", || Loop::read_only(16 * MIB), Hazard::ReadOnly),
        ("too small", || Loop::new(4 * MIB), Hazard::TooSmall),
    ];
    for (case, bad, hazard) in cases {
        let good = [Loop::new(16 * MIB), Loop::new(16 * MIB)];
        let bad = bad();
        // The bad one in the middle, so results must not be shifted by it.
        let targets = [good[0].dev.as_path(), bad.dev.as_path(), good[1].dev.as_path()];
        let events = run_job(subprocess(), write_job(&image, &targets));
        let outcomes = outcomes(&events);
        let paths: Vec<&Path> = outcomes.iter().map(|(p, _)| p.as_path()).collect();
        assert_eq!(paths, targets, "{case}: results not in the job's order");
        assert_holds_image(&outcomes[0].1, &good[0], &image);
        assert_refused(&outcomes[1].1, &bad.dev, forbidden(hazard));
        assert_holds_image(&outcomes[2].1, &good[1], &image);
        assert!(is_all_zeros(&bad.backing), "{case}: the refused drive was written");
    }
}

#[test]
fn a_drive_whose_read_back_differs_fails_with_its_offset_while_the_others_verify() {
    use graver_testkit::FaultyDrive;
    use graver_writer::ErrorKind;
    let Some(_root) = root_only() else { return };
    if let Err(why) = FaultyDrive::supported() {
        eprintln!("skipped: a faulty drive {why}");
        return;
    }
    let dir = scratch();
    // Long enough that the read-back is still under way when the difference shows.
    let len = 40 * MIB + 77;
    let image = image_file(dir.path(), "image.img", 5, len, len);
    for bad_at in [MIB + 1, 17 * MIB + 4096, len - 1] {
        let bad = FaultyDrive::builder(48 * MIB).corrupt_reads(bad_at..bad_at + 1).build();
        let good = Loop::new(48 * MIB);
        let targets = [bad.dev(), good.dev.as_path()];
        let events = run_job(subprocess(), write_job(&image, &targets));
        let outcomes = outcomes(&events);
        match &outcomes[0].1 {
            Outcome::Failed { kind, message } => {
                assert_eq!(*kind, ErrorKind::Mismatch, "{message}");
                assert!(
                    message.contains(&format!("differs from the image at byte {bad_at}")),
                    "{message}"
                );
            }
            other => panic!("expected a verification failure at {bad_at}, got {other:?}"),
        }
        assert_holds_image(&outcomes[1].1, &good, &image);
        assert!(
            bad.stored(0, 1 << 20) != read_prefix(&image, MIB),
            "the drive that failed verification got the image's first MiB"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. Refusals
// ---------------------------------------------------------------------------

#[test]
fn the_privileged_worker_refuses_files_partitions_and_unplugged_drives() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 4, IMAGE_LEN, IMAGE_LEN);
    let passwd = Path::new("/etc/passwd");
    let before = std::fs::read(passwd).unwrap();

    // A regular file, directly and through a symlink.
    let events = run_job(subprocess(), write_job(&image, &[passwd]));
    assert_job_refused(&events, not_whole_drive);
    let link = dir.path().join("stick");
    std::os::unix::fs::symlink(passwd, &link).unwrap();
    let events = run_job(subprocess(), write_job(&image, &[&link]));
    assert_job_refused(&events, not_whole_drive);
    // A file that does not exist yet must not be created either.
    let new_file = dir.path().join("new.img");
    let events = run_job(subprocess(), write_job(&image, &[&new_file]));
    assert_job_refused(&events, not_whole_drive);
    assert!(!new_file.exists());
    assert!(std::fs::read(passwd).unwrap() == before, "/etc/passwd changed");

    // A partition instead of the whole drive.
    let lo = Loop::partitioned(16 * MIB);
    let disk_before = std::fs::read(&lo.backing).unwrap();
    let events = run_job(subprocess(), write_job(&image, &[&lo.partition()]));
    assert_job_refused(&events, not_whole_drive);
    assert!(
        std::fs::read(&lo.backing).unwrap() == disk_before,
        "the partition's drive changed"
    );

    // A drive unplugged between listing and writing: its node may stay behind
    // (loop device nodes do), but it is no longer in the list of drives.
    let mut gone = Loop::new(16 * MIB);
    let old = gone.dev.clone();
    gone.detach();
    let events = run_job(subprocess(), write_job(&image, &[&old]));
    assert_job_refused(&events, |r| *r == Refusal::Unplugged);
    assert!(is_all_zeros(&gone.backing), "the unplugged drive's file was written");
    // A device path that does not exist at all.
    let events = run_job(subprocess(), write_job(&image, &[Path::new("/dev/sdzz")]));
    assert_job_refused(&events, |r| *r == Refusal::Unplugged);
    assert!(!Path::new("/dev/sdzz").exists(), "a device name became a file");
}

#[test]
fn a_drive_that_looks_like_the_system_drive_needs_unsafe_mode() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 5, IMAGE_LEN, IMAGE_LEN);
    // Never the machine's own disk: a loop device whose partition the worker,
    // in its own mount namespace, sees mounted at /boot.
    let lo = Loop::partitioned(16 * MIB);
    let wrapper = script(
        dir.path(),
        "in-namespace.sh",
        &format!(
            "exec unshare -m --propagation private sh -c 'mount \"$1\" /boot && shift && exec \"$@\"' sh {} {} \"$@\"",
            sh_quote(&lo.partition()),
            sh_quote(&worker()),
        ),
    );
    let launch = || Launch::Subprocess {
        worker: wrapper.clone(),
    };
    // Mounting the file system changes its superblock: compare what lies outside the partition.
    let outside = |lo: &Loop| {
        let mut bytes = std::fs::read(&lo.backing).unwrap();
        bytes.drain(usize::try_from(MIB).unwrap()..usize::try_from(5 * MIB).unwrap());
        bytes
    };
    let disk_before = outside(&lo);

    let events = run_job(launch(), write_job(&image, &[&lo.dev]));
    assert_job_refused(&events, system_drive);
    let link = dir.path().join("usb-stick");
    std::os::unix::fs::symlink(&lo.dev, &link).unwrap();
    let events = run_job(launch(), write_job(&image, &[&link]));
    assert_job_refused(&events, system_drive);
    // Another drive's name typed to confirm does not unlock this one (and asks for unsafe mode).
    for typed in ["sda".to_owned(), format!("{}p1", lo.name())] {
        let mut job = write_job(&image, &[&lo.dev]);
        job.targets[0].typed_name = Some(typed);
        assert_job_refused(&run_job(launch(), job), |r| matches!(r, Refusal::NameMismatch { .. }));
    }
    assert!(outside(&lo) == disk_before, "a refused system drive was written");
    let mounts = Process::new("findmnt").arg("-rn").arg(lo.partition()).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&mounts.stdout).contains("/boot"),
        "the namespace's mount leaked into the host"
    );

    // A client that sends the drive's own name but starts the worker in its normal mode
    // (`--serve`, the polkit action whose password is kept) does not get it written or read.
    let normal_mode = script(
        dir.path(),
        "normal-mode.sh",
        &format!("shift; exec {} --serve \"$@\"", sh_quote(&wrapper)),
    );
    let forged = || Launch::Subprocess {
        worker: normal_mode.clone(),
    };
    let mut job = write_job(&image, &[&lo.dev]);
    job.targets[0].typed_name = Some(lo.name());
    assert_job_refused(&run_job(forged(), job), system_drive);
    let mut verify = VerifyJob {
        image: image.clone(),
        target: job_target(&lo.dev),
    };
    verify.target.typed_name = Some(lo.name());
    assert_job_refused(&run_command(forged(), Command::Verify(verify.clone())), system_drive);
    // Nor does a Verify without the name, in either mode.
    verify.target.typed_name = None;
    assert_job_refused(&run_command(forged(), Command::Verify(verify.clone())), system_drive);
    assert!(outside(&lo) == disk_before, "a refused system drive was written");

    // In unsafe mode with its exact name, it is unmounted (in that namespace only) and written.
    let mut job = write_job(&image, &[&lo.dev]);
    job.targets[0].typed_name = Some(lo.name());
    let events = run_job(launch(), job);
    let outcomes = outcomes(&events);
    assert_holds_image(&outcomes[0].1, &lo, &image);
}

/// Detaches a loop device this test attached by hand, also when the test fails.
struct Attached(PathBuf);

impl Drop for Attached {
    fn drop(&mut self) {
        let _ = Process::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn a_loop_device_re_attached_to_another_file_after_listing_is_refused() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 8, IMAGE_LEN, IMAGE_LEN);
    // The same size (only the disk sequence number tells them apart), and larger, as in the report.
    for other_len in [16 * MIB, 64 * MIB] {
        let mut chosen = Loop::new(16 * MIB);
        // What the front end sends: the drive as the user chose it, warnings confirmed.
        let job = write_job(&image, &[&chosen.dev]);
        let node = chosen.dev.clone();
        chosen.detach();
        let other = dir.path().join(format!("other-{other_len}.img"));
        File::create(&other).unwrap().set_len(other_len).unwrap();
        check(Process::new("losetup").arg(&node).arg(&other));
        let _attached = Attached(node.clone());

        let events = run_job(subprocess(), job);
        assert_job_refused(&events, |r| *r == Refusal::DriveChanged);
        assert!(
            is_all_zeros(&other),
            "{other_len}: the drive now at {} was written",
            node.display()
        );
        assert!(
            is_all_zeros(&chosen.backing),
            "{other_len}: the chosen drive's file was written"
        );
    }
}

#[test]
fn a_non_removable_drive_is_written_only_with_its_warning_confirmed() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 9, IMAGE_LEN, IMAGE_LEN);
    let lo = Loop::new(16 * MIB);
    // Loop devices are not removable: the policy's confirmation tier.
    let mut job = write_job(&image, &[&lo.dev]);
    assert_eq!(job.targets[0].confirmed, [Hazard::NonRemovable]);
    job.targets[0].confirmed.clear();
    assert_job_refused(&run_job(subprocess(), job.clone()), unconfirmed_non_removable);
    // A confirmation of another warning is not this one's.
    job.targets[0].confirmed = vec![Hazard::Large];
    assert_job_refused(&run_job(subprocess(), job.clone()), unconfirmed_non_removable);
    // Nor is a Verify read without it.
    let mut verify = VerifyJob {
        image: image.clone(),
        target: job_target(&lo.dev),
    };
    verify.target.confirmed.clear();
    assert_job_refused(
        &run_command(subprocess(), Command::Verify(verify)),
        unconfirmed_non_removable,
    );
    assert!(is_all_zeros(&lo.backing), "an unconfirmed drive was written");
    // With it, the same job writes.
    job.targets[0].confirmed = vec![Hazard::NonRemovable];
    let events = run_job(subprocess(), job);
    assert_holds_image(&outcomes(&events)[0].1, &lo, &image);
}

// ---------------------------------------------------------------------------
// 4b. Cancel right after Write
// ---------------------------------------------------------------------------

#[test]
fn cancel_right_after_write_never_writes_a_byte() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    let image = image_file(dir.path(), "image.img", 21, IMAGE_LEN, IMAGE_LEN);
    let lo = Loop::new(16 * MIB);
    // Not zeros: a wipe of old signatures writes zeros, and must show too.
    let old = vec![0x5au8; usize::try_from(16 * MIB).unwrap()];
    std::fs::write(&lo.dev, &old).unwrap();
    let mut before_ready = 0;
    for run in 0..200 {
        let client = Client::spawn(Launch::Subprocess { worker: worker() });
        client
            .commands
            .send(Command::Write(write_job(&image, &[&lo.dev])))
            .unwrap();
        client.commands.send(Command::Cancel).unwrap();
        let mut started = false;
        let last = loop {
            let event = client.events.recv_timeout(HANG_GUARD).expect("an event");
            started |= matches!(event, Event::Started { .. });
            if is_terminal(&event) {
                break event;
            }
        };
        assert!(
            matches!(
                last,
                Event::JobFailed {
                    kind: graver_writer::ErrorKind::Cancelled,
                    ..
                }
            ),
            "run {run}: {last:#?}"
        );
        before_ready += usize::from(!started);
        drop(client);
        assert!(
            std::fs::read(&lo.dev).unwrap() == old,
            "run {run}: a cancelled job wrote to the drive"
        );
    }
    eprintln!("{before_ready} of 200 cancels came before the worker was ready");
}

// ---------------------------------------------------------------------------
// 5. A worker killed mid-write
// ---------------------------------------------------------------------------

#[test]
fn killed_worker_is_reported_and_the_drive_does_not_look_bootable() {
    let Some(_root) = root_only() else { return };
    let dir = scratch();
    // Big enough that writing and verifying outlast a few progress intervals even on a
    // RAM-backed loop device that takes several GB/s.
    let image = image_file(dir.path(), "big.img", 6, 2 * MIB, 1024 * MIB);
    let lo = Loop::new(1100 * MIB);
    let pidfile = dir.path().join("worker.pid");
    let wrapper = script(
        dir.path(),
        "record-pid.sh",
        &format!("echo $$ > {}\nexec {} \"$@\"", sh_quote(&pidfile), sh_quote(&worker())),
    );

    let client = Client::spawn(Launch::Subprocess { worker: wrapper });
    client
        .commands
        .send(Command::Write(write_job(&image, &[&lo.dev])))
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let event = client.events.recv_timeout(HANG_GUARD).expect("an event");
        assert!(
            !is_terminal(&event),
            "the job ended before it could be killed: {event:#?}"
        );
        // Mid-job: writing, or already reading back; either way the first MiB is still held back.
        if let Event::Progress(p) = &event
            && matches!(p.phase, Phase::Writing | Phase::Verifying)
            && p.bytes > 2 * MIB
        {
            break;
        }
        seen.push(event);
    }
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
    let killed = Instant::now();
    check(Process::new("kill").args(["-9", &pid]));
    let terminal = loop {
        let event = client
            .events
            .recv_timeout(Duration::from_secs(10))
            .expect("no event within 10 s of killing the worker");
        if is_terminal(&event) {
            break event;
        }
    };
    eprintln!("the kill was reported after {:?}", killed.elapsed());
    let Event::WorkerLost(WorkerLost::Ended(how)) = &terminal else {
        panic!("expected WorkerLost, got {terminal:#?}");
    };
    assert!(
        matches!(**how, LaunchError::Ended(WorkerExit::Killed { .. })),
        "{how:?}"
    );
    assert!(how.to_string().contains("killed"), "{how}");
    drop(client);

    let first_mib = read_prefix(&lo.backing, MIB);
    assert!(
        first_mib != read_prefix(&image, MIB),
        "the killed write left the image's first MiB"
    );
    assert!(first_mib.iter().all(|&b| b == 0), "the first MiB is not all zeros");
    // The write was under way: the second MiB, written early, holds the image's.
    let second = |path: &Path| read_prefix(path, 2 * MIB).split_off(usize::try_from(MIB).unwrap());
    assert!(second(&lo.backing) == second(&image), "the write never started");
}

/// The front end opens the image itself, with its own rights, before any worker is
/// started: an image it cannot open never reaches a prompt.
#[test]
fn an_image_the_front_end_cannot_open_fails_before_any_worker_starts() {
    let dir = scratch();
    let missing = dir.path().join("missing.img");
    let target = dir.path().join("target.img");
    // A worker that cannot start: reaching it would end in LaunchFailed, not JobFailed.
    let launch = Launch::Subprocess {
        worker: dir.path().join("no-such-worker"),
    };
    let events = run_job(launch, write_job(&missing, &[&target]));
    match events.as_slice() {
        [Event::JobFailed { kind, message }] => {
            assert_eq!(*kind, graver_writer::ErrorKind::BadInput);
            assert_eq!(message, &format!("cannot read {}: no such file", missing.display()));
        }
        other => panic!("{other:#?}"),
    }
    assert!(!target.exists());
}
