//! es-store-sqlite on real files: the conformance suite (a fresh file per test),
//! the file's settings and maintenance, two processes writing one file, a
//! writer killed mid-batch, the files' permissions, the store against the
//! reference model, and what it keeps beyond the shared contract.

#[path = "sqlite/conformance.rs"]
mod conformance;
#[path = "sqlite/dead_letters.rs"]
mod dead_letters;
#[path = "sqlite/file.rs"]
mod file;
#[path = "sqlite/kv.rs"]
mod kv;
#[path = "sqlite/locks.rs"]
mod locks;
#[path = "sqlite/model.rs"]
mod model;
#[path = "sqlite/permissions.rs"]
mod permissions;
#[path = "sqlite/processes.rs"]
mod processes;
#[path = "sqlite/records.rs"]
mod records;
#[path = "sqlite/support.rs"]
mod support;
