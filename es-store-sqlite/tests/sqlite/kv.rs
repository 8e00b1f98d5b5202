//! The key-value sink suite from es-core on `SqliteKv`, a fresh file per test.

use es_store_sqlite::SqliteKv;
use es_store_sqlite::testing::fresh_store;

async fn fresh_kv() -> SqliteKv {
    SqliteKv::new(fresh_store().await, "conformance")
}

es_core::kv_sink_conformance_tests!(fresh_kv);
