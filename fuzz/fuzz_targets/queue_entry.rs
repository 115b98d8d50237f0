//! Fuzz target: see [`dyndns_fuzz::queue_entry`] for what it feeds and checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dyndns_fuzz::queue_entry::check(data));
