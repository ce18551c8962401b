//! Fuzz target `web_seed_reply`: feeds libFuzzer's input to [`checks::web_seed_reply`] (see
//! tests/fuzz/checks/ for what it checks beyond "no panic").
#![no_main]

#[path = "../checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::web_seed_reply(data));
