#![no_main]

use graver_writer::protocol::{Request, Response, read_frame, write_frame};

// The same body as `protocol_frames` in crates/writer/tests/fuzz_corpus.rs, which replays
// this target's corpus: the input as a stream of frames, read as the worker reads requests
// and as the front end reads responses; a request that parses must survive a round trip.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(Some(request)) = read_frame::<Request>(&mut input) {
        let mut frame = Vec::new();
        write_frame(&mut frame, &request).expect("a request that parsed encodes");
        assert_eq!(read_frame::<Request>(&mut frame.as_slice()).ok().flatten(), Some(request));
    }
    let mut input = data;
    while let Ok(Some(_)) = read_frame::<Response>(&mut input) {}
});
