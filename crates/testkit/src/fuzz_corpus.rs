//! Replays what `fuzz/` keeps — each target's corpus and every crash input — through
//! the same entry points the cargo-fuzz targets call, on stable and without libFuzzer,
//! so a parser change that brings back an old crash fails an ordinary `cargo test`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A fuzz target: its name (its folder under `fuzz/corpus` and `fuzz/artifacts`) and
/// what it runs on one input.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// How long one input may take before it counts as a hang (a finding, like a panic).
const DEADLINE: Duration = Duration::from_secs(20);

/// Runs every input of every target in `targets` from the workspace's `fuzz/` folder;
/// panics naming the target and the input that panicked or hung, or when a target has
/// no corpus. Returns how many inputs ran.
pub fn replay(targets: &[FuzzTarget]) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for &(target, run) in targets {
        let corpus = inputs(&fuzz.join("corpus").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
        for input in corpus.iter().chain(&inputs(&fuzz.join("artifacts").join(target))) {
            let data = std::fs::read(input).unwrap_or_else(|e| panic!("read {}: {e}", input.display()));
            let (done, finished) = mpsc::channel();
            let worker = std::thread::spawn(move || {
                run(&data);
                let _ = done.send(());
            });
            match finished.recv_timeout(DEADLINE) {
                Ok(()) => {
                    let _ = worker.join();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = worker.join();
                    panic!("{target}: {} panicked", input.display());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{target}: {} did not finish within {DEADLINE:?}", input.display())
                }
            }
            replayed += 1;
        }
    }
    replayed
}

/// The files in `folder`, sorted; none when it does not exist (a target with no crash yet).
fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
    files.sort();
    files
}
