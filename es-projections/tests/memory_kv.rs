//! The key-value sink conformance suite on `MemoryKv`.

use es_projections::MemoryKv;

async fn fresh_sink() -> MemoryKv {
    MemoryKv::new()
}

es_core::kv_sink_conformance_tests!(fresh_sink);

async fn fresh_dead_letters() -> es_projections::MemoryDeadLetters {
    es_projections::MemoryDeadLetters::new()
}

es_core::dead_letter_conformance_tests!(fresh_dead_letters);
