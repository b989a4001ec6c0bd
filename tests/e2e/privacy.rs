//! Graver has no network code: a whole write, traced with strace, opens no socket
//! but Unix ones (as root, where strace and loop devices are available).

use std::process::Command;

use crate::support::{Loop, MIB, find_tool, fixture, graver_bin, require_root, scratch};

#[test]
fn a_whole_write_opens_no_network_socket() {
    require_root!();
    if find_tool("strace").is_none() {
        eprintln!("skipped: strace is not installed");
        return;
    }
    let device = Loop::new(64 * MIB);
    let dir = scratch();
    let trace = dir.path().join("trace");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=network", "-o"])
        .arg(&trace)
        .arg(graver_bin())
        .arg("write")
        .arg(fixture().file("xz"))
        .arg("--to")
        .arg(&device.dev)
        .args(["--yes", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let sockets: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("socket(") || l.contains("connect("))
        .collect();
    let foreign: Vec<&&str> = sockets
        .iter()
        .filter(|l| !l.contains("AF_UNIX") && !l.contains("AF_LOCAL"))
        .collect();
    assert!(foreign.is_empty(), "network sockets during a write:\n{foreign:#?}");
}
