//! Fuzz target: see [`dyndns_fuzz::hostname`] for what it feeds and checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dyndns_fuzz::hostname::check(data));
