//! The `pollen` command line.
fn main() {}
