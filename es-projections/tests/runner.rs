//! The runner against the in-memory store and key-value sink: projection,
//! exactly-once under injected failures, dead letters, forgetting, fencing and
//! read-your-writes.

#[path = "common/accounts.rs"]
mod accounts;
#[path = "runner/domain.rs"]
mod domain;
#[path = "runner/runner.rs"]
mod runner_tests;
