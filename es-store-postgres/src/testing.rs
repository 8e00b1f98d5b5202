//! Test support (feature `testing`): a fresh, migrated database per test.
//!
//! Tests talk to a real PostgreSQL: `ES_TEST_DATABASE_URL`, or
//! `postgres://postgres:postgres@127.0.0.1:5432/postgres` when unset. A test that
//! cannot reach it fails with a message that says what to start; it never skips.

use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::PgStore;

/// The server URL the tests use.
pub fn test_database_url() -> String {
    std::env::var("ES_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Prefix of the databases the tests create.
const PREFIX: &str = "es_test_";

/// Test databases older than this are dropped by the next test run.
const STALE_AFTER_SECS: u64 = 2 * 60 * 60;

/// Connects to the server's maintenance database, or panics saying what to
/// start.
pub async fn admin_connection() -> PgConnection {
    let url = test_database_url();
    match PgConnection::connect(&url).await {
        Ok(conn) => conn,
        Err(error) => panic!(
            "PostgreSQL is not reachable at {url}: {error}.\n\
             Start it (`bash .ci/services` finds, starts or installs it) or point \
             ES_TEST_DATABASE_URL at a server."
        ),
    }
}

/// Creates an empty database and returns a URL to it.
pub async fn fresh_database_url() -> String {
    let mut admin = admin_connection().await;
    drop_stale_databases(&mut admin).await;
    let name = format!("{PREFIX}{}", Uuid::now_v7().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let options = PgConnectOptions::from_str(&test_database_url())
        .expect("test database URL")
        .database(&name);
    options.to_url_lossy().to_string()
}

/// A fresh, migrated database with a store on it.
pub async fn fresh_store() -> PgStore {
    let url = fresh_database_url().await;
    let store = PgStore::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the fresh test database: {e}"));
    store.migrate().await.expect("migrations apply");
    store
}

/// Drops test databases left by runs more than two hours ago (once per process).
async fn drop_stale_databases(admin: &mut PgConnection) {
    static DONE: OnceLock<()> = OnceLock::new();
    if DONE.set(()).is_err() {
        return;
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'es\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    for name in names {
        let Some(created_ms) = name
            .strip_prefix(PREFIX)
            .and_then(|hex| Uuid::parse_str(hex).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| {
                let (secs, nanos) = ts.to_unix();
                u128::from(secs) * 1000 + u128::from(nanos / 1_000_000)
            })
        else {
            continue;
        };
        if now_ms.saturating_sub(created_ms) > u128::from(STALE_AFTER_SECS) * 1000 {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// Terminates a backend (`pg_terminate_backend`), as a crashed process or a
/// killed connection would end; returns whether it existed.
pub async fn terminate_backend(store: &PgStore, pid: i32) -> bool {
    sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(store.pool())
        .await
        .unwrap_or(false)
}
