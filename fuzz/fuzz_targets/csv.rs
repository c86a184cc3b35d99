#![no_main]
//! `cargo fuzz run csv`: see fuzz/bodies.rs and scripts/fuzz.sh.

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::csv(data));
