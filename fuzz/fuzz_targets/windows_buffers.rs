#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = graver_drives::fuzzing::windows_buffers(data);
});
