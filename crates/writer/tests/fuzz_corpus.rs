//! Replays the fuzz corpus and every crash input kept in `fuzz/` for the protocol's frame
//! reader (target `protocol_frames`), on stable and without libFuzzer, so a change that
//! brings back an old crash fails an ordinary `cargo test`. The body is the fuzz target's.

#![allow(clippy::unwrap_used)]

use graver_testkit::replay_fuzz_corpus;
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

#[test]
fn the_fuzz_corpus_and_crash_inputs_of_the_frame_reader_replay_cleanly() {
    assert!(replay_fuzz_corpus(&[("protocol_frames", protocol_frames)]) > 0);
}
