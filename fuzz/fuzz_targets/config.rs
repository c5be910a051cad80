//! (a) The config parser and validator: arbitrary bytes written as
//! `config/autonomy.json` next to a fixed whitelist and loaded with
//! `Config::load`. Never a panic; every error starts with the file's path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

static BENCH: OnceLock<fuzz_support::ConfigBench> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    BENCH
        .get_or_init(fuzz_support::ConfigBench::new)
        .check(data);
});
