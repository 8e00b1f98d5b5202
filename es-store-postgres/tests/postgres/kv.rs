//! The key-value sink conformance suite on `PgKv`, a fresh database per test.

use es_store_postgres::PgKv;
use es_store_postgres::testing::fresh_store;

async fn fresh_sink() -> PgKv {
    PgKv::new(fresh_store().await, "conformance")
}

es_core::kv_sink_conformance_tests!(fresh_sink);

es_core::dead_letter_conformance_tests!(fresh_store);
