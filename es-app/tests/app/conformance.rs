//! The es-core store conformance suite over [`Store`], once per backend: the
//! enum delegates every method, and this checks that it does.

mod postgres {
    use es_app::Store;

    async fn fresh_store() -> Store {
        Store::Postgres(es_store_postgres::testing::fresh_store().await)
    }

    es_core::store_conformance_tests!(fresh_store);
}

mod sqlite {
    use es_app::Store;

    async fn fresh_store() -> Store {
        Store::Sqlite(es_store_sqlite::testing::fresh_store().await)
    }

    es_core::store_conformance_tests!(fresh_store);
}
