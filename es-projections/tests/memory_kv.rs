//! The key-value sink conformance suite on `MemoryKv`.

use es_projections::MemoryKv;

async fn fresh_sink() -> MemoryKv {
    MemoryKv::new()
}

es_core::kv_sink_conformance_tests!(fresh_sink);
