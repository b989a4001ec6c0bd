//! The window driven through its real UI with egui_kittest: found by label, clicked, checked.
//!
//! The file dialog is replaced by a function and the drive list is fed directly
//! (except in the root tests, which list the machine's real drives and write a
//! real loop device through a real in-process worker).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use graver_client::Launch;
use graver_drives::{Bus, Drive, Identity, Partition};
use graver_image::ImageSize;
use graver_writer::protocol::{Eject, JobResult, Outcome, Refusal, TargetResult};
use graver_writer::{DeviceProgress, ErrorKind, Phase, Progress};

use super::app::{GraverApp, Screen, Services};
#[cfg(target_os = "linux")]
use graver_testkit::{LoopDevice, is_root};

const SIZE: [f32; 2] = [860.0, 640.0];

fn services(image: Option<PathBuf>, launch: Launch) -> Services {
    Services {
        picker: Box::new(move || image.clone()),
        launch,
        settings_path: None,
        watch_drives: false,
    }
}

fn harness(app: GraverApp) -> Harness<'static, GraverApp> {
    Harness::builder()
        .with_size(SIZE)
        .build_ui_state(|ui, app: &mut GraverApp| app.ui(ui), app)
}

fn snapshot_harness(app: GraverApp) -> Harness<'static, GraverApp> {
    Harness::builder()
        .with_size(SIZE)
        .with_render_cursor(false)
        .wgpu()
        .build_ui_state(|ui, app: &mut GraverApp| app.ui(ui), app)
}

/// Steps the UI until `done` holds, as the real event loop would when woken; panics after 60 s.
fn step_until(harness: &mut Harness<'_, GraverApp>, what: &str, done: impl Fn(&Harness<'_, GraverApp>) -> bool) {
    for _ in 0..3000 {
        harness.step();
        if done(harness) {
            harness.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("gave up waiting for {what}");
}

/// Clicks the control labelled `label`; the UI then settles for a few frames, as it would on screen.
fn click(harness: &mut Harness<'_, GraverApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.run_steps(3);
}

fn click_contains(harness: &mut Harness<'_, GraverApp>, label: &str) {
    harness.get_by_label_contains(label).click();
    harness.run_steps(3);
}

fn has_label(harness: &Harness<'_, GraverApp>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}

fn is_enabled(harness: &Harness<'_, GraverApp>, label: &str) -> bool {
    !harness.get_by_label(label).accesskit_node().is_disabled()
}

/// A stable little image: same bytes, same name, same SHA-256 on every run.
fn image_file(name: &str, len: usize) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/gui-test-images");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stick(name: &str, size: u64) -> Drive {
    Drive {
        partitions: vec![Partition {
            path: PathBuf::from(format!("/dev/{name}1")),
            size: size - (1 << 20),
            mount_points: vec![PathBuf::from("/media/user/STICK")],
            swap: false,
        }],
        ..Drive::usb_stick(format!("/dev/{name}"), name, size)
    }
}

fn system_disk() -> Drive {
    Drive {
        path: PathBuf::from("/dev/nvme0n1"),
        name: "nvme0n1".into(),
        id: "nvme-Samsung_990".into(),
        size: 1_000_204_886_016,
        vendor: None,
        model: Some("Samsung SSD 990 PRO 1TB".into()),
        bus: Bus::Nvme,
        removable: false,
        read_only: false,
        logical_block_size: 512,
        physical_block_size: 512,
        partitions: Vec::new(),
        system: Some("/ is mounted from nvme0n1p2".into()),
        unknown: None,
        identity: Identity {
            sequence: Some(1),
            media: None,
            serial: Some("S6B0NL0W".into()),
            size: 1_000_204_886_016,
        },
    }
}

fn app_with(image: Option<PathBuf>, launch: Launch, drives: Vec<Drive>) -> GraverApp {
    let mut app = GraverApp::new(&egui::Context::default(), services(image, launch));
    app.set_drives(drives);
    app
}

fn choose_image(harness: &mut Harness<'_, GraverApp>) {
    harness.get_by_label("Choose image…").click();
    step_until(harness, "the image's SHA-256", |h| {
        has_label(h, "SHA-256") && has_label(h, "Copy")
    });
}

#[test]
fn write_is_disabled_until_an_image_and_a_drive_are_chosen() {
    let image = image_file("disabled-until.img", 3 << 20);
    let mut harness = harness(app_with(
        Some(image),
        Launch::InProcess,
        vec![stick("sdx", 16_000_000_000)],
    ));
    harness.step();
    assert!(!is_enabled(&harness, "Write"));
    assert!(has_label(&harness, "Choose an image first."));
    choose_image(&mut harness);
    assert!(has_label(&harness, "disabled-until.img"));
    assert!(!is_enabled(&harness, "Write"), "no drive chosen yet");
    click_contains(&mut harness, "Cruzer Blade");
    assert!(is_enabled(&harness, "Write"));
    click(&mut harness, "Write");
    assert!(has_label(&harness, "Erase and write?"));
    assert!(has_label(&harness, "Everything on this drive will be erased."));
    click(&mut harness, "Cancel");
    assert!(harness.query_by_label("Erase and write?").is_none());
    assert!(
        is_enabled(&harness, "Write"),
        "cancelling the confirmation keeps the choice"
    );
}

#[test]
fn a_too_small_drive_is_disabled_with_its_reason() {
    let image = image_file("too-big.img", 3 << 20);
    let mut harness = harness(app_with(Some(image), Launch::InProcess, vec![stick("sdy", 2_000_000)]));
    choose_image(&mut harness);
    let checkbox = harness.get_by_label_contains("Cruzer Blade");
    assert!(checkbox.accesskit_node().is_disabled());
    assert!(has_label(
        &harness,
        "sdy is too small: it holds 2.0 MB but the image needs 3.1 MB."
    ));
    assert!(!is_enabled(&harness, "Write"));
}

#[test]
fn system_drives_are_hidden_until_show_all_and_need_unsafe_mode_and_the_typed_name() {
    let image = image_file("system.img", 1 << 20);
    let mut harness = harness(app_with(Some(image), Launch::InProcess, vec![system_disk()]));
    choose_image(&mut harness);
    assert!(
        !has_label(&harness, "Samsung SSD 990"),
        "system drives are hidden by default"
    );
    click(&mut harness, "Show all drives");
    assert!(
        harness
            .get_by_label_contains("Samsung SSD 990")
            .accesskit_node()
            .is_disabled()
    );
    assert!(has_label(&harness, "turn on unsafe mode"));

    click(&mut harness, "Settings");
    click(&mut harness, "Unsafe mode: allow system drives");
    click_contains(&mut harness, "Samsung SSD 990");
    click(&mut harness, "Write");
    assert!(!is_enabled(&harness, "Erase and write"), "the name is not typed yet");
    // The modal's field is the last text input; the published-checksum field is the first.
    let field = harness
        .get_all_by_role(egui::accesskit::Role::TextInput)
        .last()
        .expect("a name field");
    field.focus();
    field.type_text("nvme0n1");
    harness.step();
    harness.step();
    assert!(is_enabled(&harness, "Erase and write"));
}

/// Chooses the image, ticks the one stick, confirms the write and waits for the error screen.
fn write_the_stick_until_it_fails(harness: &mut Harness<'_, GraverApp>) {
    choose_image(harness);
    click_contains(harness, "Cruzer Blade");
    click(harness, "Write");
    harness.get_by_label("Erase and write").click();
    step_until(harness, "the error screen", |h| has_label(h, "Writing failed"));
}

#[test]
fn a_worker_that_cannot_start_shows_the_error_and_the_app_can_start_again() {
    let image = image_file("no-worker.img", 1 << 20);
    let launch = Launch::Subprocess {
        worker: PathBuf::from("/nonexistent/graver-writer"),
    };
    let mut harness = harness(app_with(Some(image), launch, vec![stick("sdw", 16_000_000_000)]));
    write_the_stick_until_it_fails(&mut harness);
    assert!(has_label(&harness, "cannot start"));
    assert!(has_label(&harness, "needs administrator rights"));
    click(&mut harness, "Back");
    assert!(has_label(&harness, "no-worker.img"), "the image is kept");
    click_contains(&mut harness, "Cruzer Blade");
    assert!(is_enabled(&harness, "Write"), "ready for the next job");
}

#[test]
fn a_worker_that_dies_mid_job_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in worker that reads a little of the request, then exits with code 3.
    #[cfg(unix)]
    let (name, body) = ("dying-writer", "#!/bin/sh\nhead -c 16 >/dev/null\nexit 3\n");
    #[cfg(windows)]
    let (name, body) = ("dying-writer.cmd", "@exit /b 3\r\n");
    let script = dir.path().join(name);
    std::fs::write(&script, body).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let image = image_file("dying.img", 1 << 20);
    let launch = Launch::Subprocess { worker: script };
    let mut harness = harness(app_with(Some(image), launch, vec![stick("sdv", 16_000_000_000)]));
    write_the_stick_until_it_fails(&mut harness);
    assert!(
        has_label(&harness, "exit code 3"),
        "the message says how the writer ended"
    );
}

#[cfg(target_os = "linux")]
fn pick_loop_device(harness: &mut Harness<'_, GraverApp>, device: &Path) {
    harness.state_mut().set_drives(graver_drives::list().unwrap());
    harness.step();
    click(harness, "Show all drives");
    click_contains(harness, &device.display().to_string());
}

#[test]
#[cfg(target_os = "linux")]
fn the_whole_flow_writes_and_verifies_a_loop_device() {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let image = image_file("whole-flow.img", (5 << 20) + 4321);
    let expected = std::fs::read(&image).unwrap();
    let target = LoopDevice::new(16 << 20);
    let mut harness = harness(app_with(Some(image), Launch::InProcess, Vec::new()));
    harness.state_mut().settings.eject = false;
    choose_image(&mut harness);
    pick_loop_device(&mut harness, &target.dev);
    assert!(has_label(&harness, "not removable"), "a loop device carries its badge");
    click(&mut harness, "Write");
    assert!(
        has_label(&harness, "is not a removable drive"),
        "the warning is named in the confirmation"
    );
    harness.get_by_label("Erase and write").click();
    step_until(&mut harness, "the result", |h| has_label(h, "Done:"));
    assert!(has_label(&harness, "Done: written and verified"));
    assert!(has_label(&harness, &format!("{}: verified", target.dev.display())));
    assert!(
        target.read(expected.len()) == expected,
        "the loop device holds the image"
    );
    click(&mut harness, "Flash another drive");
    assert!(has_label(&harness, "whole-flow.img") && !is_enabled(&harness, "Write"));
}

#[test]
#[cfg(target_os = "linux")]
fn cancelling_mid_write_asks_once_and_leaves_the_first_mib_unwritten() {
    if !is_root() {
        eprintln!("skipped: needs root for loop devices");
        return;
    }
    let image = image_file("cancel-me.img", 768 << 20);
    let target = LoopDevice::new(800 << 20);
    let mut harness = harness(app_with(Some(image), Launch::InProcess, Vec::new()));
    harness.state_mut().settings.eject = false;
    choose_image(&mut harness);
    pick_loop_device(&mut harness, &target.dev);
    click(&mut harness, "Write");
    harness.get_by_label("Erase and write").click();
    // Any progress will do: on a RAM-backed loop device the write itself may be over
    // within one progress interval, and the first MiB is held back until verification ends.
    step_until(&mut harness, "progress", |h| {
        ["preparing ·", "writing ·", "verifying ·"]
            .iter()
            .any(|p| has_label(h, p))
    });
    click(&mut harness, "Cancel writing");
    assert!(has_label(&harness, "Stop now?"));
    harness.get_by_label("Yes, stop").click();
    step_until(&mut harness, "the cancelled result", |h| has_label(h, "Writing failed"));
    assert!(has_label(&harness, "cancelled"));
    assert!(has_label(&harness, "Writing was stopped"));
    assert!(
        target.read(1 << 20).iter().all(|&b| b == 0),
        "the first MiB must stay unwritten"
    );
}

#[test]
#[cfg(target_os = "linux")]
fn a_drive_whose_read_back_differs_shows_the_byte_and_what_to_do_and_the_window_goes_on() {
    use graver_testkit::FaultyDrive;
    if !is_root() {
        eprintln!("skipped: needs root for loop devices and FUSE");
        return;
    }
    if let Err(why) = FaultyDrive::supported() {
        eprintln!("skipped: a faulty drive {why}");
        return;
    }
    // 24 MiB of image: the read-back still has chunks to come when it meets the
    // inverted bytes at 6 MiB + 5, the case that used to hang the write for ever.
    let image = image_file("bad-cell.img", 24 << 20);
    let bad = (6 << 20) + 5;
    let target = FaultyDrive::builder(32 << 20).corrupt_reads(bad..bad + 64).build();
    let mut harness = harness(app_with(Some(image), Launch::InProcess, Vec::new()));
    harness.state_mut().settings.eject = false;
    choose_image(&mut harness);
    pick_loop_device(&mut harness, target.dev());
    click(&mut harness, "Write");
    harness.get_by_label("Erase and write").click();
    step_until(&mut harness, "the result", |h| {
        has_label(h, "Not every drive was written")
    });
    assert!(
        has_label(
            &harness,
            &format!("verification failed: the drive differs from the image at byte {bad}")
        ),
        "the failure names the byte"
    );
    assert!(
        has_label(&harness, "may be failing, or fake"),
        "the window says what to do next"
    );
    assert!(
        !target.stored(0, 1 << 20).iter().any(|&b| b != 0),
        "a drive that failed verification must not get the image's first MiB"
    );
    // Still responsive: back to the choice, with the image kept, ready for another drive.
    click(&mut harness, "Flash another drive");
    assert!(has_label(&harness, "bad-cell.img"));
    assert!(!has_label(&harness, "Not every drive was written"));
}

/// A verified drive that was ejected for real is "safe to remove"; one that could
/// not be powered off (Linux without udisks) or whose eject failed is not, and the
/// window says what to do instead.
#[test]
fn only_a_drive_really_ejected_is_called_safe_to_remove() {
    let mut harness = harness(app_with(None, Launch::InProcess, Vec::new()));
    let finished = |target: &str, ejected| {
        Screen::Finished(JobResult {
            image_len: 3 << 20,
            sha256: None,
            elapsed_secs: 12.0,
            targets: vec![TargetResult {
                target: target.into(),
                outcome: Outcome::Verified,
                ejected,
                warning: None,
            }],
        })
    };
    let not_supported = Eject::NotSupported {
        reason: "sdc cannot be powered off here (udisks is not available); its partition table was re-read".into(),
    };
    harness.state_mut().screen = finished("/dev/sdc", Some(not_supported));
    harness.run_steps(2);
    assert!(has_label(&harness, "/dev/sdc: verified"));
    assert!(
        !has_label(&harness, "safe to remove"),
        "a drive still powered on was called safe to remove"
    );
    assert!(has_label(&harness, "udisks is not available"));
    assert!(has_label(
        &harness,
        "Wait until its light stops blinking, then unplug it."
    ));

    let failed = Eject::Failed {
        message: "/dev/sdd: the device is busy".into(),
    };
    harness.state_mut().screen = finished("/dev/sdd", Some(failed));
    harness.run_steps(2);
    assert!(
        !has_label(&harness, "safe to remove"),
        "a drive whose eject failed was called safe to remove"
    );
    assert!(has_label(
        &harness,
        "Eject it from your file manager before unplugging it."
    ));

    harness.state_mut().screen = finished("/dev/sde", None);
    harness.run_steps(2);
    assert!(has_label(&harness, "/dev/sde: verified"));
    assert!(
        !has_label(&harness, "safe to remove"),
        "a drive never ejected was called safe to remove"
    );

    harness.state_mut().screen = finished("/dev/sdb", Some(Eject::Ejected));
    harness.run_steps(2);
    assert!(has_label(&harness, "/dev/sdb: verified — safe to remove"));
    assert!(has_label(&harness, "sdb was ejected: safe to remove"));
}

/// A target the writer refused is named with the refusal in words, and nothing is called written.
#[test]
fn a_refused_drive_is_shown_with_its_reason_in_words() {
    let mut harness = harness(app_with(None, Launch::InProcess, Vec::new()));
    let refused = |target: &str, refusal| TargetResult {
        target: target.into(),
        outcome: Outcome::Refused { refusal },
        ejected: None,
        warning: None,
    };
    harness.state_mut().screen = Screen::Finished(JobResult {
        image_len: 0,
        sha256: None,
        elapsed_secs: 0.5,
        targets: vec![
            refused("/dev/sdc", Refusal::DriveChanged),
            refused(
                "/dev/sdd1",
                Refusal::NotWholeDrive {
                    partition_of: Some("/dev/sdd".into()),
                },
            ),
        ],
    });
    harness.run_steps(2);
    assert!(has_label(&harness, "Not every drive was written"));
    assert!(has_label(
        &harness,
        "/dev/sdc: the drive changed since you chose it (unplugged, swapped or re-attached); nothing was written, choose it again"
    ));
    assert!(has_label(
        &harness,
        "/dev/sdd1: not a whole drive but a partition of /dev/sdd"
    ));
    assert!(!has_label(&harness, "verified"));
}

fn snapshot_options() -> SnapshotOptions {
    SnapshotOptions::default().output_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"))
}

/// Screens for the README, rendered by wgpu (Mesa's software Vulkan in CI).
#[test]
fn snapshots_of_each_step() {
    let image = image_file("debian-13-arm64.img", 3 << 20);
    let drives = vec![stick("sdb", 16_008_609_792), stick("sdc", 2_000_000), system_disk()];
    let mut harness = snapshot_harness(app_with(Some(image), Launch::InProcess, drives));
    harness.step();
    harness.snapshot_options("1-start", &snapshot_options());

    choose_image(&mut harness);
    click_contains(&mut harness, "sdb");
    harness.snapshot_options("2-chosen", &snapshot_options());

    click(&mut harness, "Write");
    harness.snapshot_options("3-confirm", &snapshot_options());

    let total = 3 << 20;
    harness.state_mut().screen = Screen::Writing {
        progress: Some(Progress {
            phase: Phase::Writing,
            bytes: total / 3,
            total: ImageSize::Exact(total),
            fraction: 1.0 / 3.0,
            rate: 31.5e6,
            eta_secs: Some(84.0),
            devices: vec![DeviceProgress {
                name: "/dev/sdb".into(),
                phase: Phase::Writing,
                bytes: total / 3,
            }],
        }),
        asking_cancel: false,
        cancel_sent: false,
        started: true,
    };
    harness.run_steps(2);
    harness.snapshot_options("4-writing", &snapshot_options());

    harness.state_mut().screen = Screen::Finished(JobResult {
        image_len: total,
        sha256: None,
        elapsed_secs: 128.0,
        targets: vec![TargetResult {
            target: "/dev/sdb".into(),
            outcome: Outcome::Verified,
            ejected: Some(Eject::Ejected),
            warning: None,
        }],
    });
    harness.run_steps(2);
    harness.snapshot_options("5-done", &snapshot_options());

    harness.state_mut().screen = Screen::Failed {
        message: "/dev/sdb: writing failed at byte 1048576: No such device".into(),
        hint: super::texts::hint(Some(ErrorKind::Io)),
    };
    harness.run_steps(2);
    harness.snapshot_options("6-failed", &snapshot_options());
}

/// The window keeps its choice by identity: a drive that left is dropped for good, and
/// another drive under the same name (a stick swapped, a loop device re-attached) is
/// never chosen in its place, nor is any drive that arrives.
#[test]
fn the_choice_follows_the_drive_not_its_name() {
    let mut app = app_with(None, Launch::InProcess, vec![stick("sdb", 16_000_000_000)]);
    let first = app.drives[0].clone();
    app.selected.push(first.identity.clone());
    assert_eq!(app.chosen_drives(), [&first]);

    let mut swapped = stick("sdb", 16_000_000_000);
    swapped.identity.sequence = first.identity.sequence.map(|s| s + 1);
    app.set_drives(vec![swapped, stick("sdc", 8_000_000_000)]);
    assert!(app.chosen_drives().is_empty(), "another drive named sdb was chosen");

    app.set_drives(vec![first.clone()]);
    assert!(app.chosen_drives().is_empty(), "a drive that left came back chosen");

    app.selected.push(first.identity.clone());
    app.set_drives(vec![first.clone(), stick("sdd", 8_000_000_000)]);
    assert_eq!(app.chosen_drives(), [&first], "a new drive changed the choice");
}
