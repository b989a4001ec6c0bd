//! Replays the fuzz corpus and every crash input kept in `fuzz/` for the protocol's frame
//! reader (target `protocol_frames`), on stable and without libFuzzer, so a change that
//! brings back an old crash fails an ordinary `cargo test`. The body is the fuzz target's.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use graver_writer::protocol::{Request, Response, read_frame, write_frame};

/// What `fuzz/fuzz_targets/protocol_frames.rs` runs: the input as a stream of frames, read
/// as the worker reads requests and as the front end reads responses; every request that
/// parses must encode back to a frame that reads as the same request.
fn protocol_frames(data: &[u8]) {
    let mut input = data;
    while let Ok(Some(request)) = read_frame::<Request>(&mut input) {
        let mut frame = Vec::new();
        write_frame(&mut frame, &request).unwrap();
        assert_eq!(read_frame::<Request>(&mut frame.as_slice()).unwrap(), Some(request));
    }
    let mut input = data;
    while let Ok(Some(_)) = read_frame::<Response>(&mut input) {}
}

fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|entry| entry.unwrap().path()).collect();
    files.sort();
    files
}

#[test]
fn the_fuzz_corpus_and_crash_inputs_of_the_frame_reader_replay_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = inputs(&fuzz.join("corpus/protocol_frames"));
    assert!(!corpus.is_empty(), "fuzz/corpus/protocol_frames is empty");
    for input in corpus.iter().chain(&inputs(&fuzz.join("artifacts/protocol_frames"))) {
        let data = std::fs::read(input).unwrap();
        // A hang is a finding too: each input gets a generous deadline.
        let (done, finished) = mpsc::channel();
        let worker = std::thread::spawn(move || {
            protocol_frames(&data);
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(20)) {
            Ok(()) => worker.join().unwrap(),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = worker.join();
                panic!("{} panicked", input.display());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{} did not finish within 20 s", input.display()),
        }
    }
}
