//! The dyndns2 update endpoint (with the status page and the ACME challenge
//! endpoints) as a wasi:http component for Spin (or any wasi:http host such
//! as `wasmtime serve`).
//!
//! [`endpoint`] holds the conversation and [`storage`] the file access; both
//! are plain Rust and are also built natively for unit tests and lints. The
//! runtime glue in `component` only exists in the `wasm32` build.

#![warn(missing_docs)]

pub mod challenges;
pub mod endpoint;
pub mod logging;
pub mod status_page;
pub mod storage;

#[cfg(target_arch = "wasm32")]
mod component;

/// Longest path plus query string we accept.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest request body we read.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
