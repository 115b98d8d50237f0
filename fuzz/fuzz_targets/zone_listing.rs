//! Fuzz target: see [`dyndns_fuzz::zone_listing`] for what it feeds and checks.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dyndns_fuzz::zone_listing::check(data));
