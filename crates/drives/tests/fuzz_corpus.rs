//! Replays the fuzz corpus and every crash input kept in `fuzz/` for the drive parsers
//! through the same entry points the fuzz targets call, on stable and without libFuzzer,
//! so a parser change that brings back an old crash fails an ordinary `cargo test`.
//! The parsers are pure, so every OS replays every OS's corpus (Linux's needs Linux's module).

use graver_drives::fuzzing;
use graver_testkit::{FuzzTarget, replay_fuzz_corpus};

const TARGETS: &[FuzzTarget] = &[
    ("linux_proc", |data| {
        let _ = fuzzing::linux_proc(data);
    }),
    ("macos_plist", |data| {
        let _ = fuzzing::macos_plist(data);
    }),
    ("windows_buffers", |data| {
        let _ = fuzzing::windows_buffers(data);
    }),
];

#[test]
fn the_fuzz_corpus_and_crash_inputs_of_the_drive_parsers_replay_cleanly() {
    assert!(replay_fuzz_corpus(TARGETS) > 0);
}
