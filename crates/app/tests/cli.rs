//! The built `graver` binary's own promises, checked from outside. (This file also
//! makes `cargo test` build the binary that the end-to-end tests in `tests/e2e` drive.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn graver(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_graver"))
        .args(args)
        .output()
        .expect("run graver")
}

#[test]
fn version_names_the_release_and_the_commit() {
    let out = graver(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("graver {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.trim_end().ends_with(')'), "{text}");
}

#[test]
fn list_json_is_one_object_with_drives_and_their_flags() {
    let out = graver(&["list", "--all", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let drives = value["drives"].as_array().expect("a drives array");
    for drive in drives {
        assert!(drive["path"].as_str().is_some_and(|p| !p.is_empty()), "{drive}");
        assert!(drive["size"].as_u64().is_some_and(|s| s > 0), "{drive}");
        assert!(drive["flags"].is_array(), "{drive}");
        let system = !drive["system"].is_null();
        let flagged_system = drive["flags"].as_array().unwrap().iter().any(|f| f["flag"] == "system");
        assert_eq!(
            system, flagged_system,
            "a system drive carries the system flag: {drive}"
        );
    }
}
