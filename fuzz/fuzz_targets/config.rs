//! `cargo fuzz run config`: see rtctr_fuzz::config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtctr_fuzz::config(data));
