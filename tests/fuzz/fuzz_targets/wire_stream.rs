//! Fuzz target `wire_stream`: feeds libFuzzer's input to [`checks::wire_stream`] (see
//! tests/fuzz/checks/ for what it checks beyond "no panic").
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::wire_stream(data));
