//! Replays the fuzz corpus and every crash input kept in `fuzz/` for the drive parsers
//! through the same entry points the fuzz targets call, on stable and without libFuzzer,
//! so a parser change that brings back an old crash fails an ordinary `cargo test`.
//! The parsers are pure, so every OS replays every OS's corpus (Linux's needs Linux's module).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use graver_drives::fuzzing;

/// A target's name (its folder under `fuzz/corpus` and `fuzz/artifacts`) and what it runs.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
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

fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn the_fuzz_corpus_and_crash_inputs_of_the_drive_parsers_replay_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for &(target, run) in TARGETS {
        let corpus = inputs(&fuzz.join("corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
        for input in corpus.iter().chain(&inputs(&fuzz.join("artifacts").join(target))) {
            let data = std::fs::read(input).unwrap();
            // A hang is a finding too: each input gets a generous deadline.
            let (done, finished) = mpsc::channel();
            let worker = std::thread::spawn(move || {
                run(&data);
                let _ = done.send(());
            });
            match finished.recv_timeout(Duration::from_secs(20)) {
                Ok(()) => worker.join().unwrap(),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = worker.join();
                    panic!("{target}: {} panicked", input.display());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{target}: {} did not finish within 20 s", input.display())
                }
            }
        }
    }
}
