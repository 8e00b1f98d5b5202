//! What the runner needs around it, per backend: an event store (with keys
//! and snapshots, for the repository), key-value read models and dead letters.

use std::future::Future;
use std::sync::Arc;

use es_core::{DeadLetters, KvSink, MemoryStore, Storage};
use es_projections::{MemoryDeadLetters, MemoryKv};
use es_store_postgres::{PgKv, PgStore};
use es_store_sqlite::{SqliteKv, SqliteStore};

/// A fresh backend per test.
pub(crate) trait Backend: Sized {
    /// The event store the repository writes and the runner reads.
    type Store: Storage;
    /// The key-value read model.
    type Kv: KvSink + Clone + 'static;

    /// An empty backend.
    fn fresh() -> impl Future<Output = Self>;
    /// The event store.
    fn store(&self) -> &Self::Store;
    /// The read model `namespace`; two calls with one namespace share it.
    fn kv(&self, namespace: &str) -> Self::Kv;
    /// The dead letters (shared by every call).
    fn dead_letters(&self) -> Arc<dyn DeadLetters>;
}

/// The embedded default: one SQLite file holds the log, the read models and
/// the dead letters.
pub(crate) struct Sqlite(SqliteStore);

impl Backend for Sqlite {
    type Store = SqliteStore;
    type Kv = SqliteKv;

    async fn fresh() -> Self {
        Self(es_store_sqlite::testing::fresh_store().await)
    }

    fn store(&self) -> &SqliteStore {
        &self.0
    }

    fn kv(&self, namespace: &str) -> SqliteKv {
        SqliteKv::new(self.0.clone(), namespace)
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        Arc::new(self.0.clone())
    }
}

/// PostgreSQL: log, read models and dead letters in one database.
pub(crate) struct Postgres(PgStore);

impl Backend for Postgres {
    type Store = PgStore;
    type Kv = PgKv;

    async fn fresh() -> Self {
        Self(es_store_postgres::testing::fresh_store().await)
    }

    fn store(&self) -> &PgStore {
        &self.0
    }

    fn kv(&self, namespace: &str) -> PgKv {
        PgKv::new(self.0.clone(), namespace)
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        Arc::new(self.0.clone())
    }
}

/// The in-memory reference implementations. A `MemoryKv` has no namespaces:
/// each namespace is a sink of its own, kept here so that asking twice gives
/// the same one.
pub(crate) struct Memory {
    store: MemoryStore,
    kvs: std::sync::Mutex<std::collections::BTreeMap<String, MemoryKv>>,
    letters: MemoryDeadLetters,
}

impl Backend for Memory {
    type Store = MemoryStore;
    type Kv = MemoryKv;

    async fn fresh() -> Self {
        Self {
            store: MemoryStore::new(),
            kvs: std::sync::Mutex::default(),
            letters: MemoryDeadLetters::new(),
        }
    }

    fn store(&self) -> &MemoryStore {
        &self.store
    }

    fn kv(&self, namespace: &str) -> MemoryKv {
        self.kvs
            .lock()
            .expect("not poisoned")
            .entry(namespace.to_owned())
            .or_default()
            .clone()
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        Arc::new(self.letters.clone())
    }
}
