//! The store conformance suite, run against `MemoryStore`.

use es_core::MemoryStore;

async fn fresh_store() -> MemoryStore {
    MemoryStore::new()
}

es_core::store_conformance_tests!(fresh_store);
