//! Fuzz target `torrent_core`: feeds libFuzzer's input to [`checks::torrent_core`] (see
//! tests/fuzz/checks/ for what it checks beyond "no panic").
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::torrent_core(data));
