//! Ctrl-C in the middle of a write: exit 7 and a drive that will not boot half an image.

use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::process::Command;

use crate::support::{Loop, MIB, Rng, assert_zeros, check, read_at, require_root, run_watched, scratch, write_to};

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

    let mut interrupted_at = None;
    let ran = run_watched(&mut write_to(&image, &device.dev), |value, pid| {
        // The first progress line comes as the job starts; a 400 MiB write to a RAM-backed
        // loop device can be over within one progress interval, so waiting for a later
        // line would race the write. Interrupting here always lands mid-job.
        check(Command::new("kill").args(["-INT", &pid.to_string()]));
        interrupted_at = Some(value["bytes"].as_u64().unwrap_or(0));
        true
    });
    let transcript = &ran.transcript;
    let seen = interrupted_at.unwrap_or_else(|| panic!("no progress line before the write ended\n{transcript}"));
    assert_eq!(ran.status.code(), Some(7), "a cancelled write exits 7\n{transcript}");
    let result = ran.result();
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
