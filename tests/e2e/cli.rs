//! The command line itself; these run without root.

use crate::support::{graver, run, scratch, write_to};

#[test]
fn help_lists_exit_codes() {
    let out = run(graver().arg("--help"));
    out.expect_code(0);
    assert!(out.stdout.contains("Exit codes"), "--help lacks the exit codes\n{out}");
    for line in [
        "3  bad input",
        "4  target refused",
        "6  verification failed",
        "7  cancelled",
    ] {
        assert!(out.stdout.contains(line), "--help lacks {line:?}\n{out}");
    }
}

#[test]
fn write_help_states_the_existing_file_rule() {
    let out = run(graver().args(["write", "--help"]));
    out.expect_code(0);
    // clap may wrap the text, so compare with whitespace collapsed.
    let text = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("never truncated"),
        "write --help lacks the existing-file rule\n{out}"
    );
    assert!(text.contains("--overwrite"), "write --help lacks --overwrite\n{out}");
}

/// Without arguments graver opens its window; with no display to open it on (the
/// display variables are removed here, so no window can appear) it must say so, show
/// the usage and end rather than hang.
#[test]
fn no_arguments_prints_usage() {
    let out = run(graver()
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET"));
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("Usage"), "no usage shown\n{out}");
    for sub in ["write", "hash", "verify"] {
        assert!(all.contains(sub), "usage lacks {sub}\n{out}");
    }
    match out.code {
        0 => {}
        1 => assert!(
            out.stderr.contains("cannot open the window"),
            "exit 1 without a reason\n{out}"
        ),
        _ => panic!("unexpected exit code\n{out}"),
    }
}

#[test]
fn wrong_usage_exits_2() {
    run(graver().args(["write", "image.img"])).expect_code(2);
    run(graver().arg("frobnicate")).expect_code(2);
}

#[test]
fn missing_image_exits_3() {
    let dir = scratch();
    let image = dir.path().join("no-such-image.img.xz");
    let target = dir.path().join("out.img");
    let out = run(write_to(&image, &target).arg("--yes"));
    out.expect_code(3).expect_stderr("no such file");
    assert!(out.stderr.starts_with("graver: "), "error not prefixed\n{out}");
    assert!(!target.exists(), "a target was created for a missing image");

    let out = run(write_to(&image, &target).arg("--json"));
    out.expect_code(3);
    let result = out.result();
    assert_eq!(result["ok"], false, "{out}");
    assert_eq!(result["exit_code"], 3, "{out}");
    assert!(
        result["error"].as_str().unwrap_or_default().contains("no such file"),
        "{out}"
    );

    run(graver().arg("hash").arg(&image))
        .expect_code(3)
        .expect_stderr("no such file");
}
