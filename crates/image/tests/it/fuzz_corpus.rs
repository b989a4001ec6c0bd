//! Replays the fuzz corpus and every crash input kept in `fuzz/` through the same
//! entry points the fuzz targets call, on stable and without libFuzzer, so a parser
//! change that brings back an old crash fails an ordinary `cargo test`.

use graver_image::fuzzing;
use graver_testkit::{FuzzTarget, replay_fuzz_corpus};

#[cfg(feature = "native-codecs")]
const NATIVE_TARGETS: [FuzzTarget; 1] = [("zstd_direct", |data| {
    let _ = fuzzing::zstd_direct(data);
})];
#[cfg(not(feature = "native-codecs"))]
const NATIVE_TARGETS: [FuzzTarget; 0] = [];

const TARGETS: [FuzzTarget; 7] = [
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

#[test]
fn the_fuzz_corpus_and_crash_inputs_replay_cleanly() {
    assert!(replay_fuzz_corpus(&TARGETS) > 0);
    assert!(NATIVE_TARGETS.is_empty() || replay_fuzz_corpus(&NATIVE_TARGETS) > 0);
}
