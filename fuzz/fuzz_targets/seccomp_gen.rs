//! `cargo fuzz run seccomp_gen`: see rtctr_fuzz::seccomp_gen.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtctr_fuzz::seccomp_gen(data));
