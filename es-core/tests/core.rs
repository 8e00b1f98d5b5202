//! es-core's integration tests: the conformance suite on `MemoryStore`, the
//! repository, and the properties, in one test binary.

#[path = "core/crypto.rs"]
mod crypto;
#[path = "core/domain.rs"]
mod domain;
#[path = "core/fuzz.rs"]
mod fuzz;
#[path = "core/memory_store.rs"]
mod memory_store;
#[path = "core/properties.rs"]
mod properties;
#[path = "core/repository.rs"]
mod repository;
