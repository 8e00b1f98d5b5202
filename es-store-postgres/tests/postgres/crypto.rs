//! Crypto-shredding on PostgreSQL: the canary scan. The key store's own
//! behaviours run in the conformance suite.

use std::sync::Arc;

use es_core::{
    Aggregate, CommandOptions, Crypto, IdempotencyKey, MasterKey, MasterKeyring, Personal,
    Repository, SubjectId,
};
use es_store_postgres::PgStore;
use es_store_postgres::testing::fresh_store;
use serde::{Deserialize, Serialize};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, es_core::Event)]
enum ProfileEvent {
    Registered {
        #[event(subject)]
        user: SubjectId,
        #[event(personal)]
        name: Personal<String>,
    },
}

#[derive(Debug, Clone, Serialize)]
struct Register {
    user: SubjectId,
    name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "profile", snapshot_every = 1)]
struct Profile {
    name: Option<Personal<String>>,
}

impl Aggregate for Profile {
    type Command = Register;
    type Event = ProfileEvent;
    type Error = Never;

    fn handle(&self, command: Register) -> Result<Vec<ProfileEvent>, Never> {
        Ok(vec![ProfileEvent::Registered {
            name: Personal::new(command.user.clone(), command.name),
            user: command.user,
        }])
    }

    fn apply(&mut self, event: &ProfileEvent) {
        let ProfileEvent::Registered { name, .. } = event;
        self.name = Some(name.clone());
    }
}

/// Every row of every table in the database that contains `needle` in a text,
/// JSON or bytea column, as "table.column".
async fn rows_containing(store: &PgStore, needle: &str) -> Vec<String> {
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text
         FROM information_schema.columns
         WHERE table_schema = 'public'
           AND data_type IN ('text', 'character varying', 'bytea', 'jsonb', 'json', 'ARRAY')",
    )
    .fetch_all(store.pool())
    .await
    .expect("columns");
    assert!(columns.len() >= 10, "the scan must see the store's tables");
    let mut found = Vec::new();
    for column in columns {
        let (table, name, kind): (String, String, String) =
            (column.get(0), column.get(1), column.get(2));
        let as_bytes = match kind.as_str() {
            "bytea" => format!("\"{name}\""),
            _ => format!("convert_to(\"{name}\"::text, 'UTF8')"),
        };
        let sql = format!(
            "SELECT count(*) FROM \"{table}\" WHERE position(convert_to($1, 'UTF8') in {as_bytes}) > 0"
        );
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(needle)
            .fetch_one(store.pool())
            .await
            .expect("scan");
        if count > 0 {
            found.push(format!("{table}.{name}"));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_canary_is_nowhere_in_the_database() {
    let store = fresh_store().await;
    let crypto = Arc::new(Crypto::new(MasterKeyring::new(
        MasterKey::generate("canary").unwrap(),
    )));
    let repo = Repository::<Profile, PgStore>::new(store.clone()).with_crypto(Arc::clone(&crypto));
    let canary = format!("Canary-{}", uuid::Uuid::now_v7().simple());
    let user = SubjectId::new("user-42").unwrap();
    let register = Register {
        user: user.clone(),
        name: canary.clone(),
    };
    repo.execute_with(
        "p1",
        register.clone(),
        CommandOptions::idempotent(IdempotencyKey::new("register-1").unwrap()),
    )
    .await
    .unwrap();
    // A snapshot was taken (snapshot_every = 1) and the name round-trips.
    let loaded = repo.load("p1").await.unwrap();
    assert_eq!(loaded.state.name.as_ref().unwrap().value(), Some(&canary));
    // The scan works: a plain marker written in clear is found.
    sqlx::query(
        "INSERT INTO es_snapshots VALUES ('scan-check', 1, 1, convert_to($1, 'UTF8'), now())",
    )
    .bind(format!("marker {canary}"))
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(
        rows_containing(&store, &canary).await,
        vec!["es_snapshots.payload"]
    );
    sqlx::query("DELETE FROM es_snapshots WHERE stream_id = 'scan-check'")
        .execute(store.pool())
        .await
        .unwrap();

    // Never in clear, not even before the forget.
    assert!(rows_containing(&store, &canary).await.is_empty());

    crypto.forget(&store, &user).await.unwrap();
    store.purge_forgotten_keys().await.unwrap();
    assert!(rows_containing(&store, &canary).await.is_empty());
    let wrapped: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped_key FROM es_subject_keys WHERE subject_id = 'user-42'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(wrapped.is_none(), "the data key is destroyed");
    let loaded = repo.load("p1").await.unwrap();
    assert!(loaded.state.name.unwrap().is_shredded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forget_in_one_process_evicts_the_key_cached_in_another() {
    let store = fresh_store().await;
    let master = MasterKey::generate("shared").unwrap();
    // Two "processes": separate Crypto instances with caches that would keep a
    // key for an hour.
    let here = Arc::new(
        Crypto::new(MasterKeyring::new(master.clone()))
            .with_cache_ttl(std::time::Duration::from_secs(3600)),
    );
    let there = Arc::new(
        Crypto::new(MasterKeyring::new(master))
            .with_cache_ttl(std::time::Duration::from_secs(3600)),
    );
    let watcher = store.watch_forgotten(Arc::clone(&here));
    let user = SubjectId::new("cached-user").unwrap();
    let value = Personal::new(user.clone(), "secret".to_owned());
    let sealed = here.seal_value(&store, b"r", &value).await.unwrap();
    let opened: Personal<String> = here.open_value(&store, b"r", &sealed).await.unwrap();
    assert!(opened.value().is_some(), "cached here now");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await; // the watcher listens

    there.forget(&store, &user).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let opened: Personal<String> = here.open_value(&store, b"r", &sealed).await.unwrap();
        if opened.is_shredded() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the other process's cache still opens the forgotten subject's data"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    watcher.abort();
}
