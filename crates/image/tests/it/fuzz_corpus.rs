//! Replays the fuzz corpus and every crash input kept in `fuzz/` through the same
//! entry points the fuzz targets call, on stable and without libFuzzer, so a parser
//! change that brings back an old crash fails an ordinary `cargo test`.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use graver_image::fuzzing;

/// A target's name (its folder under `fuzz/corpus` and `fuzz/artifacts`) and what it runs.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 7] = [
    ("sniff", |data| {
        let _ = fuzzing::sniff(data);
    }),
    ("xz_layout", |data| {
        let _ = fuzzing::xz_layout(data);
    }),
    ("xz_block_header", |data| {
        let _ = fuzzing::xz_block_header(data);
    }),
    ("zstd_walk", |data| {
        let _ = fuzzing::zstd_walk(data);
    }),
    ("zip_directory", |data| {
        let _ = fuzzing::zip_directory(data);
    }),
    ("size_estimates", |data| {
        let _ = fuzzing::size_estimates(data);
    }),
    ("checksum_file", |data| {
        let _ = fuzzing::checksum_file(data);
    }),
];

fn inputs(folder: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn the_fuzz_corpus_and_crash_inputs_replay_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for (target, run) in TARGETS {
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
            replayed += 1;
        }
    }
    assert!(replayed > 0);
}
