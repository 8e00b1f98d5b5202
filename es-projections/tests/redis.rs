//! `RedisKv` against a real Redis (`ES_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`): the es-core key-value sink conformance suite,
//! the finer key-value contract on both `MemoryKv` and `RedisKv`, the Redis
//! layout, the runner end to end, zero-downtime rebuilds, and a Redis killed and
//! restarted under a running runner. Without a reachable Redis these tests
//! fail and say how to start one.
#![cfg(feature = "redis")]

#[path = "common/accounts.rs"]
mod accounts;
#[path = "redis/domain.rs"]
mod domain;
#[path = "redis/kv_contract.rs"]
mod kv_contract;
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
}

/// The contract on the reference implementation.
mod memory {
    async fn fresh() -> es_projections::MemoryKv {
        es_projections::MemoryKv::new()
    }
    crate::kv_contract_tests!(fresh);
}

/// The contract on Redis, each test under a prefix of its own.
mod redis {
    crate::kv_contract_tests!(crate::support::fresh_kv);
}

/// Random batches, committed to both sinks, leave the same model and fail the
/// same way.
#[tokio::test]
async fn random_batches_agree_between_memory_and_redis() {
    let redis = support::fresh_kv().await;
    kv_contract::random_batches_agree(es_projections::MemoryKv::new(), redis.clone(), 0x5EED).await;
    redis.drop_all().await.unwrap();
}
