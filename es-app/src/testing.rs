//! Test support (feature `testing`): configurations on the test services.
//!
//! Tests talk to a real PostgreSQL (`ES_TEST_DATABASE_URL`, see
//! [`es_store_postgres::testing`]) and Redis (`ES_TEST_REDIS_URL`, or
//! `redis://127.0.0.1:6379`); a test that cannot reach them fails saying what
//! to start, it never skips.

use std::path::Path;

use crate::Config;

/// A master key for tests (all zero bytes, id `test`): never use it for data.
pub const TEST_MASTER_KEY: &str = "test:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A configuration on a fresh, empty PostgreSQL database (not migrated), with
/// the test master key and `data_dir` as data directory.
pub async fn postgres_config(data_dir: &Path) -> Config {
    let url = es_store_postgres::testing::fresh_database_url().await;
    Config::embedded(data_dir)
        .with_database_url(url)
        .with_master_key(TEST_MASTER_KEY)
}

/// The Redis the tests use: `ES_TEST_REDIS_URL`, or `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("ES_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}
