//! `Kv::open` picks the key-value read model from the configuration.

use es_app::{Config, Error, Kv, Store};
use es_core::{Checkpoint, KvBatch, KvSink, Sink};

async fn write_and_read(kv: &Kv) {
    let mut batch = KvBatch::default();
    batch
        .set("account-1:owner", "Ada")
        .incr_by("account-1:balance", 250);
    kv.commit("balances", batch, None, Checkpoint::START)
        .await
        .unwrap();
    assert_eq!(
        kv.get("account-1:balance").await.unwrap().as_deref(),
        Some("250")
    );
    assert_eq!(
        kv.checkpoint("balances").await.unwrap(),
        Some(Checkpoint::START)
    );
    assert_eq!(kv.entries().await.unwrap().len(), 2);
}

#[tokio::test]
async fn no_redis_on_sqlite_is_the_sqlite_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path());
    let store = Store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let kv = Kv::open(&config, &store, "balances").await.unwrap();
    assert!(matches!(kv, Kv::Sqlite(_)), "{kv:?}");
    write_and_read(&kv).await;
}

#[tokio::test]
async fn no_redis_on_postgres_is_the_postgres_model() {
    let dir = tempfile::tempdir().unwrap();
    let config = es_app::testing::postgres_config(dir.path()).await;
    let store = Store::connect(&config).await.unwrap();
    store.migrate().await.unwrap();
    let kv = Kv::open(&config, &store, "balances").await.unwrap();
    assert!(matches!(kv, Kv::Postgres(_)), "{kv:?}");
    write_and_read(&kv).await;
}

#[tokio::test]
async fn a_redis_url_is_redis() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::embedded(dir.path()).with_redis_url(es_app::testing::redis_url());
    let store = Store::connect(&config).await.unwrap();
    let name = format!("es-app-test-{}", uuid_suffix());
    let kv = match Kv::open(&config, &store, &name).await {
        Ok(kv) => kv,
        Err(error) => panic!(
            "cannot reach Redis ({error:?}): start one (`bash .ci/services`) or point \
             ES_TEST_REDIS_URL at one"
        ),
    };
    let Kv::Redis(redis) = &kv else {
        panic!("{kv:?}")
    };
    assert_eq!(redis.prefix(), Kv::redis_prefix(&name));
    write_and_read(&kv).await;
    redis.drop_all().await.unwrap();
}

#[tokio::test]
async fn a_bad_redis_url_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&Config::embedded(dir.path())).await.unwrap();
    for (url, unsupported) in [("http://localhost:6379", true), ("localhost", false)] {
        let config = Config::embedded(dir.path()).with_redis_url(url);
        let error = Kv::open(&config, &store, "balances").await.unwrap_err();
        match error {
            Error::UnsupportedScheme { variable, .. } if unsupported => {
                assert!(variable.contains("REDIS_URL"));
            }
            Error::InvalidUrl { variable, .. } if !unsupported => {
                assert!(variable.contains("REDIS_URL"));
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

fn uuid_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The es-core key-value sink suite over [`Kv`], once per model: the enum
/// delegates, and this checks that it does.
mod sqlite_conformance {
    use es_app::{Config, Kv, Store};

    async fn fresh_kv() -> Kv {
        let store = Store::Sqlite(es_store_sqlite::testing::fresh_store().await);
        Kv::open(&Config::default(), &store, "conformance")
            .await
            .expect("the SQLite model")
    }

    es_core::kv_sink_conformance_tests!(fresh_kv);
}

mod postgres_conformance {
    use es_app::{Config, Kv, Store};

    async fn fresh_kv() -> Kv {
        let store = Store::Postgres(es_store_postgres::testing::fresh_store().await);
        Kv::open(&Config::default(), &store, "conformance")
            .await
            .expect("the PostgreSQL model")
    }

    es_core::kv_sink_conformance_tests!(fresh_kv);
}

mod redis_conformance {
    use es_app::{Config, Kv, Store};

    async fn fresh_kv() -> Kv {
        let store = Store::Sqlite(es_store_sqlite::testing::fresh_store().await);
        let config = Config::default().with_redis_url(es_app::testing::redis_url());
        let name = format!("es-app-conformance-{}", super::uuid_suffix());
        match Kv::open(&config, &store, &name).await {
            Ok(kv) => kv,
            Err(error) => panic!(
                "cannot reach Redis ({error:?}): start one (`bash .ci/services`) or point \
                 ES_TEST_REDIS_URL at one"
            ),
        }
    }

    es_core::kv_sink_conformance_tests!(fresh_kv);
}

/// Random batches committed to each backend's model and to the in-memory
/// reference leave the same entries and fail the same way.
mod agreement {
    use es_app::{Config, Kv, Store};
    use es_core::testing::kv_conformance::random_batches_agree;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_agrees_with_the_reference() {
        let store = Store::Sqlite(es_store_sqlite::testing::fresh_store().await);
        let kv = Kv::open(&Config::default(), &store, "agreement")
            .await
            .expect("the SQLite model");
        random_batches_agree(es_projections::MemoryKv::new(), kv, 0x5EED).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_agrees_with_the_reference() {
        let store = Store::Postgres(es_store_postgres::testing::fresh_store().await);
        let kv = Kv::open(&Config::default(), &store, "agreement")
            .await
            .expect("the PostgreSQL model");
        random_batches_agree(es_projections::MemoryKv::new(), kv, 0x5EED).await;
    }
}

/// The es-core dead-letter suite over [`Store::dead_letters`] (a trait
/// object) on both backends.
mod dead_letters {
    use es_app::Store;
    use es_core::testing::kv_conformance::dead_letters_record_list_and_remove;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let store = Store::Sqlite(es_store_sqlite::testing::fresh_store().await);
        dead_letters_record_list_and_remove(&*store.dead_letters()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let store = Store::Postgres(es_store_postgres::testing::fresh_store().await);
        dead_letters_record_list_and_remove(&*store.dead_letters()).await;
    }
}
