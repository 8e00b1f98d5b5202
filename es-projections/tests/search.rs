//! The tantivy sink: round trips, search, the checkpoint compare-and-set, crash
//! and resume, the forget canary on disk, and a runner end to end.

#![cfg(feature = "tantivy")]

#[path = "search/disk.rs"]
mod disk;
#[path = "search/domain.rs"]
mod domain;
#[path = "search/forget.rs"]
mod forget;
#[path = "search/runner.rs"]
mod runner_tests;
#[path = "search/sink.rs"]
mod sink;
