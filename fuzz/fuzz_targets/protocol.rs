//! (b) The control-protocol decoder: `protocol::decode_request` never panics;
//! a decoded request re-encodes (`encode_line`) as one line that decodes to
//! the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

fuzz_target!(|data: &[u8]| fuzz_support::check_protocol(data));
