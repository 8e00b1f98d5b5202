//! The test kit (feature `testing`): given/when/then for aggregates, and the
//! store conformance suite that every backend runs.

pub mod conformance;
mod given;
pub mod kv_conformance;

pub use given::{Given, When, given};
