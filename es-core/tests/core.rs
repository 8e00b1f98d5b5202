//! es-core's integration tests: the conformance suite on `MemoryStore`, the
//! repository, and the properties, in one test binary.

mod domain;
mod memory_store;
mod properties;
mod repository;
