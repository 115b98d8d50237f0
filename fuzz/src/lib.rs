//! What each fuzz target does with its input: feed the bytes to the real
//! parsing entry points of `dyndns-core` the way the handler or applier
//! would, and check invariants that must hold for any input. A panic here is
//! a finding.
//!
//! The targets under `fuzz_targets/` only call these functions, and the
//! main test suite (`tests/tests/fuzz.rs`) replays the kept inputs through
//! the same functions, so a regression input fails there exactly as it
//! failed under the fuzzer.
//!
//! Inputs with several parts (a query and a body, a file name and its
//! content) separate them with a NUL byte, which none of the real sources
//! can contain where it matters (file names, header values) and which keeps
//! the seed files readable.

#![warn(missing_docs)]

pub mod address;
pub mod basic_auth;
pub mod config;
pub mod hostname;
pub mod queue_entry;
pub mod request;
pub mod zone_listing;

/// What a target does with one input; panics on a finding.
pub type Check = fn(&[u8]);

/// Every target by name (the name of its `fuzz_targets/` file and of its
/// directories under `seeds/` and `regressions/`), with its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("request", request::check),
    ("basic_auth", basic_auth::check),
    ("hostname", hostname::check),
    ("address", address::check),
    ("zone_listing", zone_listing::check),
    ("config", config::check),
    ("queue_entry", queue_entry::check),
];

/// Splits `data` at NUL bytes into at most `n` parts (the last part keeps
/// any further NULs).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == 0).collect()
}

/// Part `i` as text, if present and UTF-8.
fn text<'a>(parts: &[&'a [u8]], i: usize) -> Option<&'a str> {
    parts.get(i).and_then(|p| std::str::from_utf8(p).ok())
}
