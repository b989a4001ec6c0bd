//! The faulty drive the engine's fault tests stand on: each fault shown with the real
//! `dd` on its `/dev/loopN`, with direct I/O as the engine does it, and nothing left
//! behind afterwards (no mount, no loop device, no folder), also when a test panics or
//! the process is killed.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use graver_testkit::{FaultyDrive, Rng, scratch, tool};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn skip() -> bool {
    let supported = FaultyDrive::supported();
    if let Err(why) = &supported {
        eprintln!("skipped: a faulty drive {why}");
    }
    supported.is_err()
}

/// Runs `dd` with `args` (`if=`/`of=` included) and returns its output.
fn dd(args: &[String]) -> Output {
    tool("dd").args(args).arg("status=none").output().expect("start dd")
}

/// Writes `data` to `dev` at `offset` with `O_DIRECT` and, when `fsync`, an fsync
/// (dd's `conv=fsync`).
fn write_at(dev: &Path, offset: u64, data: &[u8], fsync: bool) -> Output {
    let dir = scratch();
    let file = dir.path().join("data");
    std::fs::write(&file, data).unwrap();
    // One transfer for up to 1 MiB, so a write reaching into a failing range fails whole.
    let mut args = vec![
        format!("if={}", file.display()),
        format!("of={}", dev.display()),
        format!("bs={}", data.len().min(MIB as usize)),
        format!("seek={offset}"),
        "oflag=direct,seek_bytes".into(),
        "conv=notrunc".into(),
    ];
    if fsync {
        args.push("conv=fsync".into());
    }
    dd(&args)
}

/// Reads `len` bytes of `dev` at `offset` with `O_DIRECT`.
fn read_at(dev: &Path, offset: u64, len: u64) -> Output {
    dd(&[
        format!("if={}", dev.display()),
        "of=/dev/stdout".into(),
        format!("bs={}", len.min(MIB)),
        format!("skip={offset}"),
        format!("count={len}"),
        "iflag=direct,skip_bytes,count_bytes".into(),
    ])
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: dd failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[track_caller]
fn assert_eio(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("Input/output error"),
        "{what}: dd should fail with EIO, got {} {stderr}",
        out.status
    );
}

/// Whether anything is still mounted on `point`.
fn mounted(point: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let point = point.to_string_lossy();
    info.lines().any(|line| line.split(' ').nth(4) == Some(&*point))
}

/// Whether `dev` is still a loop device backed by a file in `folder`.
fn attached(dev: &Path, folder: &Path) -> bool {
    let name = dev.file_name().unwrap().to_string_lossy();
    std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
        .is_ok_and(|backing| Path::new(backing.trim()).starts_with(folder))
}

#[track_caller]
fn assert_gone(dev: &Path, folder: &Path) {
    assert!(!mounted(folder), "{} is still mounted", folder.display());
    assert!(!attached(dev, folder), "{} is still attached", dev.display());
    assert!(!folder.exists(), "{} is still there", folder.display());
}

/// Waits until `done` holds; panics after `limit`, which only guards against a hang.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` to exit; panics (after killing it) when it has not within `limit`.
fn wait_child(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_drive_without_faults_keeps_what_is_written_and_is_gone_after_drop() {
    if skip() {
        return;
    }
    let dir = scratch();
    let old_image = dir.path().join("old.img");
    std::fs::write(&old_image, b"old contents").unwrap();
    let drive = FaultyDrive::builder(8 * MIB).contents_from(&old_image).build();
    let (dev, folder) = (drive.dev().to_path_buf(), drive.mount_point().to_path_buf());
    assert!(mounted(&folder) && attached(&dev, &folder));
    let out = tool("blockdev").arg("--getsize64").arg(&dev).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), (8 * MIB).to_string());
    let old = read_at(&dev, 0, 4096);
    assert_ok(&old, "read the initial contents");
    assert!(old.stdout.starts_with(b"old contents"));
    let data = Rng::new(1).bytes(MIB as usize);
    assert_ok(&write_at(&dev, MIB, &data, true), "write 1 MiB");
    let back = read_at(&dev, MIB, MIB);
    assert_ok(&back, "read it back");
    assert!(back.stdout == data, "read back what was written");
    assert!(drive.stored(MIB, MIB as usize) == data, "stored what was written");
    assert!(drive.bytes_written() >= MIB && drive.bytes_read() >= MIB);
    drop(drive);
    assert_gone(&dev, &folder);
}

#[test]
fn writes_in_a_range_fail_with_eio() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(4 * MIB).eio_on_write(MIB..MIB + 4096).build();
    let block = [0xa5u8; 4096];
    assert_eio(&write_at(drive.dev(), MIB, &block, true), "a write in the range");
    assert_eio(
        &write_at(drive.dev(), MIB - 4096, &[0xa5; 8192], true),
        "a write reaching into it",
    );
    assert!(
        drive.stored(MIB - 4096, 8192).iter().all(|&b| b == 0),
        "nothing of them was stored"
    );
    assert_ok(&write_at(drive.dev(), 2 * MIB, &block, true), "a write elsewhere");
    assert_eq!(drive.stored(2 * MIB, 4096), block);
    drive.faults().eio_on_write.clear();
    assert_ok(&write_at(drive.dev(), MIB, &block, true), "the range once healed");
}

#[test]
fn reads_in_a_range_fail_with_eio() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(4 * MIB).eio_on_read(3 * MIB..3 * MIB + 1).build();
    assert_eio(&read_at(drive.dev(), 3 * MIB, 4096), "a read in the range");
    assert_ok(&read_at(drive.dev(), 0, MIB), "a read elsewhere");
    assert_ok(
        &write_at(drive.dev(), 3 * MIB, &[7; 4096], true),
        "writes still work there",
    );
    assert_eio(&read_at(drive.dev(), 2 * MIB, 2 * MIB), "a long read through the range");
}

#[test]
fn a_failing_cell_returns_other_bytes_than_were_written() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(4 * MIB)
        .corrupt_reads(4096 + 10..4096 + 14)
        .build();
    let data = Rng::new(2).bytes(64 * KIB as usize);
    assert_ok(&write_at(drive.dev(), 0, &data, true), "write");
    let back = read_at(drive.dev(), 0, 64 * KIB);
    assert_ok(&back, "read back");
    for (i, (&got, &want)) in back.stdout.iter().zip(&data).enumerate() {
        if (4106..4110).contains(&i) {
            assert_eq!(got, !want, "byte {i} reads inverted");
        } else {
            assert_eq!(got, want, "byte {i} reads as written");
        }
    }
    assert!(drive.stored(0, data.len()) == data, "what is stored stays right");
    // Changed while in use: between a write and its read-back.
    let mut faults = drive.faults();
    faults.corrupt_reads.clear();
    faults.corrupt_reads.push(60_000..60_001);
    drop(faults);
    let back = read_at(drive.dev(), 0, 64 * KIB);
    assert_ok(&back, "read back again");
    let wrong: Vec<usize> = (0..data.len()).filter(|&i| back.stdout[i] != data[i]).collect();
    assert_eq!(wrong, [60_000], "only the newly failing byte differs");
}

#[test]
fn a_failing_sync_fails_fsync() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(4 * MIB).fail_sync().build();
    assert_ok(
        &write_at(drive.dev(), 0, &[1; 4096], false),
        "a direct write without fsync",
    );
    assert_eio(&write_at(drive.dev(), 0, &[2; 4096], true), "the same with fsync");
    drive.faults().fail_sync = false;
    assert_ok(&write_at(drive.dev(), 0, &[3; 4096], true), "fsync once healed");
}

#[test]
fn a_drive_pulled_out_mid_write_fails_it_at_once() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(16 * MIB).unplug_after_written(MIB).build();
    let data = Rng::new(3).bytes(8 * MIB as usize);
    let started = Instant::now();
    let out = write_at(drive.dev(), 0, &data, true);
    assert!(!out.status.success(), "the write failed");
    assert!(started.elapsed() < Duration::from_secs(30), "and did not hang");
    assert!(drive.is_unplugged());
    drive.unplug(); // already pulled out: nothing more happens
    assert_eq!(drive.bytes_written(), MIB, "exactly the first MiB reached the drive");
    assert!(drive.stored(0, MIB as usize) == data[..MIB as usize]);
    assert!(drive.stored(MIB, MIB as usize).iter().all(|&b| b == 0));
    assert!(
        !read_at(drive.dev(), 0, 4096).status.success(),
        "a pulled drive reads nothing"
    );
}

#[test]
fn a_drive_pulled_out_on_demand_fails_the_write_in_flight() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(32 * MIB).speed_limit(4 * MIB).build();
    let mut dd = tool("dd")
        .args(["if=/dev/zero", "bs=64K", "count=512", "oflag=direct", "status=none"])
        .arg(format!("of={}", drive.dev().display()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the write under way", || {
        drive.bytes_written() >= MIB
    });
    drive.unplug();
    let status = wait_child(&mut dd, Duration::from_secs(30), "dd on a pulled drive");
    assert!(!status.success(), "dd failed");
    assert!(drive.bytes_written() < 32 * MIB);
}

#[test]
fn a_speed_limit_slows_transfers_down() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(8 * MIB).speed_limit(1_000_000).build();
    let started = Instant::now();
    assert_ok(
        &write_at(drive.dev(), 0, &[9; 2 * MIB as usize], true),
        "2 MiB at 1 MB/s",
    );
    let took = started.elapsed();
    // 2 MiB take 2.1 s at 1 MB/s; only a lower bound, as a busy machine is slower.
    assert!(took >= Duration::from_millis(1500), "2 MiB took only {took:?}");
}

#[test]
fn a_counterfeit_drive_wraps_onto_what_it_keeps() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(64 * MIB).real_capacity(8 * MIB).build();
    assert_eq!(drive.size(), 64 * MIB);
    assert_eq!(drive.real_capacity(), 8 * MIB);
    let out = tool("blockdev").arg("--getsize64").arg(drive.dev()).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        (64 * MIB).to_string(),
        "it claims 64 MiB"
    );
    let mut stamp = format!("stamp at {}", 40 * MIB + 4096).into_bytes();
    stamp.resize(4096, b' ');
    assert_ok(
        &write_at(drive.dev(), 40 * MIB + 4096, &stamp, true),
        "write the stamp far out",
    );
    let at = read_at(drive.dev(), 4096, 4096);
    assert_ok(&at, "read where it wraps to");
    assert!(at.stdout == stamp, "the stamp written at 40 MiB + 4 KiB reads at 4 KiB");
    assert_ok(
        &write_at(drive.dev(), 4096, &[0; 4096], true),
        "overwrite the low block",
    );
    let far = read_at(drive.dev(), 40 * MIB + 4096, 4096);
    assert!(far.stdout.iter().all(|&b| b == 0), "and the stamp far out is gone too");
}

#[test]
fn a_stalled_drive_answers_nothing_until_it_resumes() {
    if skip() {
        return;
    }
    let drive = FaultyDrive::builder(8 * MIB)
        .stall_after_written(MIB, Duration::from_secs(600))
        .build();
    let mut dd = tool("dd")
        .args(["if=/dev/zero", "bs=64K", "count=64", "oflag=direct", "status=none"])
        .arg(format!("of={}", drive.dev().display()))
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the first MiB written", || {
        drive.bytes_written() >= MIB
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(dd.try_wait().unwrap().is_none(), "dd waits on the stalled drive");
    assert!(
        drive.bytes_written() < 4 * MIB,
        "nothing more was written while stalled"
    );
    drive.resume();
    let status = wait_child(&mut dd, Duration::from_secs(30), "dd after resume");
    assert!(status.success(), "dd ends once the drive answers again");
    assert_eq!(drive.bytes_written(), 4 * MIB);
    // A stall set while in use, and a drive dropped while stalled: the drop must not
    // wait out the stall.
    drive.stall(Duration::from_secs(600));
    let mut reader = tool("dd")
        .args(["bs=4096", "count=1", "iflag=direct", "status=none", "of=/dev/null"])
        .arg(format!("if={}", drive.dev().display()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        reader.try_wait().unwrap().is_none(),
        "a read waits on the stalled drive"
    );
    let (dev, folder) = (drive.dev().to_path_buf(), drive.mount_point().to_path_buf());
    let started = Instant::now();
    drop(drive);
    wait_child(&mut reader, Duration::from_secs(30), "a read on a dropped drive");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_gone(&dev, &folder);
}

#[test]
fn a_panicking_test_still_releases_its_drive() {
    if skip() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let drive = FaultyDrive::builder(MIB).build();
        tx.send((drive.dev().to_path_buf(), drive.mount_point().to_path_buf()))
            .unwrap();
        panic!("a failing test");
    })
    .join();
    assert!(result.is_err());
    let (dev, folder) = rx.recv().unwrap();
    assert_gone(&dev, &folder);
}

/// Set in the child that [`what_a_killed_run_left_is_swept_by_the_next`] starts.
const CHILD: &str = "GRAVER_TESTKIT_KILLED_CHILD";

/// Not a test of its own: the process that gets killed with a drive in use.
#[test]
#[ignore = "run by what_a_killed_run_left_is_swept_by_the_next"]
fn killed_with_a_drive_in_use() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let drive = FaultyDrive::builder(MIB).build();
    let mut stdout = std::io::stdout();
    // On a line of its own: the test harness has begun one of its own.
    writeln!(
        stdout,
        "\ndrive {} {}",
        drive.dev().display(),
        drive.mount_point().display()
    )
    .unwrap();
    stdout.flush().unwrap();
    // No destructor runs, as when the test run is killed.
    std::process::abort();
}

#[test]
fn what_a_killed_run_left_is_swept_by_the_next() {
    if skip() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_with_a_drive_in_use",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child was killed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("drive "))
        .unwrap_or_else(|| panic!("the child made no drive: {stdout}"));
    let (dev, folder) = line.split_once(' ').unwrap();
    let (dev, folder) = (PathBuf::from(dev), PathBuf::from(folder));
    assert!(mounted(&folder), "the killed run left its mount");
    assert!(attached(&dev, &folder), "and its loop device");
    graver_testkit::sweep_stale_now();
    assert_gone(&dev, &folder);
}
