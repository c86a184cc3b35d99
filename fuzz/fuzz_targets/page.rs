#![no_main]
//! `cargo fuzz run page`: see fuzz/bodies.rs and scripts/fuzz.sh.

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::page(data));
