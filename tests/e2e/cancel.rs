//! Ctrl-C in the middle of a write: exit 7 and a drive that will not boot half an image.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Loop, MIB, Rng, assert_zeros, check, read_at, require_root, scratch, write_to};

#[test]
fn sigint_cancels_and_leaves_the_first_mib_blank() {
    require_root!();
    let dir = scratch();
    // 400 MiB: random at both ends, a hole in between (written as zeros).
    let image = dir.path().join("big.img");
    let len = 400 * MIB;
    let mut rng = Rng::new(7);
    let mut file = File::create(&image).expect("create big.img");
    file.write_all(&rng.bytes(16 * MIB as usize)).expect("write head");
    file.set_len(len - 16 * MIB).expect("extend");
    file.seek(SeekFrom::End(0)).expect("seek");
    file.write_all(&rng.bytes(16 * MIB as usize)).expect("write tail");
    drop(file);
    let device = Loop::new(512 * MIB);

    let mut child = write_to(&image, &device.dev)
        .args(["--yes", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start graver");
    let pid = child.id();

    // A hang must not hang the test run: kill the writer after a generous minute.
    let finished = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let finished = Arc::clone(&finished);
        std::thread::spawn(move || {
            for _ in 0..600 {
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

    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut lines = Vec::new();
    let mut interrupted_at = None;
    for line in stdout.lines() {
        let line = line.expect("read stdout");
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let bytes = value["bytes"].as_u64().unwrap_or(0);
        // The first progress line comes as the job starts; a 400 MiB write to a RAM-backed
        // loop device can be over within one progress interval, so waiting for a later
        // line would race the write. Interrupting here always lands mid-job.
        if interrupted_at.is_none() && value["type"] == "progress" {
            check(Command::new("kill").args(["-INT", &pid.to_string()]));
            interrupted_at = Some(bytes);
        }
        lines.push(line);
    }
    let status = child.wait().expect("wait for graver");
    finished.store(true, Ordering::Relaxed);
    let killed = watchdog.join().expect("watchdog");
    let stderr = stderr_reader.join().expect("stderr reader");
    let transcript = format!(
        "exit: {status}\n--- stdout ---\n{}\n--- stderr ---\n{stderr}",
        lines.join("\n")
    );
    assert!(
        !killed,
        "graver did not finish within a minute and was killed\n{transcript}"
    );
    let seen = interrupted_at.unwrap_or_else(|| panic!("no progress line before the write ended\n{transcript}"));
    assert_eq!(status.code(), Some(7), "a cancelled write exits 7\n{transcript}");
    let result: Value = serde_json::from_str(lines.last().expect("a result line")).expect("JSON");
    assert_eq!(result["type"], "result", "{transcript}");
    assert_eq!(result["ok"], false, "{transcript}");
    assert_eq!(result["exit_code"], 7, "{transcript}");
    assert!(result.to_string().contains("cancelled"), "{transcript}");

    assert_zeros(&device.dev, 0, MIB, "a cancelled write must leave the first MiB blank");
    // What was reported as written by then is on the device (the random head past the first MiB).
    let upto = seen.clamp(MIB, 16 * MIB);
    let len = (upto - MIB) as usize;
    let written = read_at(&device.dev, MIB, len);
    assert!(
        written == read_at(&image, MIB, len),
        "the device does not hold the image's bytes from 1 MiB to {upto} although progress reported {seen}\n{transcript}"
    );
}
