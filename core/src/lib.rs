//! Shared logic of the dyndns handler and applier. Nothing here does I/O:
//! callers read files and requests and hand the bytes in, so all of it is
//! tested with plain unit tests and compiles for `wasm32-wasip2` as well as
//! for the native applier.

#![warn(missing_docs)]

pub mod address;
pub mod answer;
pub mod authorization;
pub mod basic_auth;
pub mod challenge;
pub mod client_address;
pub mod config;
pub mod credential;
pub mod failed;
pub mod hostname;
pub mod queue;
pub mod record_type;
pub mod request;
pub mod state;
pub mod status;
pub mod untrusted_text;
pub mod update;
pub mod view;
pub mod zone_listing;
pub mod zone_plan;

pub use hostname::Hostname;
pub use record_type::RecordType;
