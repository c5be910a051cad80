//! (c) The readers of the data folder's text files on arbitrary text:
//! `parse_audit_line`, `chain::split`, `chain::verify` and
//! `parse_escalations` never panic, and agree with the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/fuzz_support/mod.rs"]
mod fuzz_support;

fuzz_target!(|data: &[u8]| fuzz_support::check_text(data));
