//! `RedisKv` against a real Redis (`ES_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): the es-core key-value sink conformance suite
//! (also run on `MemoryKv`, SQLite and PostgreSQL), random batches against
//! the in-memory reference, the Redis layout, the runner end to end, zero-downtime rebuilds, and a Redis killed and
//! restarted under a running runner. Without a reachable Redis these tests
//! fail and say how to start one.
#![cfg(feature = "redis")]

#[path = "common/accounts.rs"]
mod accounts;
#[path = "redis/domain.rs"]
mod domain;
#[path = "redis/layout.rs"]
mod layout;
#[path = "redis/rebuild.rs"]
mod rebuild;
#[path = "redis/restart.rs"]
mod restart;
#[path = "redis/runner.rs"]
mod runner_tests;
#[path = "redis/support.rs"]
mod support;

/// The es-core key-value sink conformance suite on Redis.
mod conformance {
    es_core::kv_sink_conformance_tests!(crate::support::fresh_kv);

    mod generations {
        es_core::generations_conformance_tests!(crate::support::fresh_kv);
    }

    /// The same contract from a model that keeps no key index (`scan`
    /// reads the whole generation).
    mod without_key_index {
        async fn fresh() -> es_projections::RedisKv {
            crate::support::fresh_kv().await.without_key_index()
        }

        es_core::kv_sink_conformance_tests!(fresh);

        mod generations {
            es_core::generations_conformance_tests!(super::fresh);
        }
    }
}

/// Random batches, committed to both sinks, leave the same model and fail the
/// same way.
#[tokio::test]
async fn random_batches_agree_between_memory_and_redis() {
    let redis = support::fresh_kv().await;
    es_core::testing::kv_conformance::random_batches_agree(
        es_projections::MemoryKv::new(),
        redis.clone(),
        0x5EED,
    )
    .await;
    redis.drop_all().await.unwrap();
}
