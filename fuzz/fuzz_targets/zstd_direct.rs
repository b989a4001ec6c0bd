#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = graver_image::fuzzing::zstd_direct(data);
});
