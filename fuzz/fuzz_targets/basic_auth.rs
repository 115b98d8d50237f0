//! Fuzz target: see [`dyndns_fuzz::basic_auth`] for what it feeds and checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dyndns_fuzz::basic_auth::check(data));
