//! The tantivy sink: round trips, search, the checkpoint compare-and-set, crash
//! and resume, the forget canary on disk, private files, a runner end to end,
//! zero-downtime rebuilds, and what a search reads in its input.

#![cfg(feature = "tantivy")]

#[path = "search/disk.rs"]
mod disk;
#[path = "search/domain.rs"]
mod domain;
#[path = "search/files.rs"]
mod files;
#[path = "search/forget.rs"]
mod forget;
#[path = "search/rebuild.rs"]
mod rebuild;
#[path = "search/runner.rs"]
mod runner_tests;
#[path = "search/sink.rs"]
mod sink;
#[path = "search/words.rs"]
mod words;
