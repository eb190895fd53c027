//! `cargo fuzz run process`: see rtctr_fuzz::process.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtctr_fuzz::process(data));
