//! The test kit (feature `testing`): given/when/then for aggregates, and the
//! store conformance suite that every backend runs.

pub mod conformance;
pub mod kv_conformance;
mod given;

pub use given::{Given, When, given};
