//! `cargo fuzz run seccomp`: see rtctr_fuzz::seccomp.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtctr_fuzz::seccomp(data));
