//! The key-value sink suite from es-core on `SqliteKv`, a fresh file per test,
//! and its generations suite.

use es_store_sqlite::SqliteKv;
use es_store_sqlite::testing::fresh_store;

async fn fresh_kv() -> SqliteKv {
    SqliteKv::new(fresh_store().await, "conformance")
}

es_core::kv_sink_conformance_tests!(fresh_kv);

mod generations {
    use es_core::{Checkpoint, CommitId, KvBatch, Position, Sink};
    use es_store_sqlite::SqliteKv;
    use es_store_sqlite::testing::fresh_store;

    /// A namespace with LIKE's wildcards, beside namespaces that a LIKE
    /// pattern (which also ignores ASCII case) or a loose parse would take for
    /// its generations.
    async fn fresh_kv() -> SqliteKv {
        let store = fresh_store().await;
        let at = Checkpoint::new(CommitId::new(1), Position::new(1));
        for neighbour in ["confZZx", "CONF%_X", "conf%_x/g", "conf%_x/g+"] {
            SqliteKv::new(store.clone(), neighbour)
                .commit("p", KvBatch::default(), None, at)
                .await
                .expect("a neighbour's commit");
        }
        SqliteKv::new(store, "conf%_x")
    }

    es_core::generations_conformance_tests!(fresh_kv);
}
