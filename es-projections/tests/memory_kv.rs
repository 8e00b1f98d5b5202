//! The key-value sink and generations conformance suites on `MemoryKv`.

use es_projections::MemoryKv;

async fn fresh_sink() -> MemoryKv {
    MemoryKv::new()
}

es_core::kv_sink_conformance_tests!(fresh_sink);

mod generations {
    use super::fresh_sink;

    es_core::generations_conformance_tests!(fresh_sink);
}

async fn fresh_dead_letters() -> es_projections::MemoryDeadLetters {
    es_projections::MemoryDeadLetters::new()
}

es_core::dead_letter_conformance_tests!(fresh_dead_letters);
