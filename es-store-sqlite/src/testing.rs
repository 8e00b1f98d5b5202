//! Test support (feature `testing`): a fresh, migrated store per test, in a
//! temporary directory that is deleted with the store's last clone.

use std::sync::Arc;

use crate::{SqliteStore, SqliteStoreOptions};

/// A fresh, migrated store with [`SqliteStoreOptions::default`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use es_core::{EventStore, StreamId, StreamVersion};
///
/// let store = es_store_sqlite::testing::fresh_store().await;
/// let stream = StreamId::new("account-1").unwrap();
/// assert_eq!(store.stream_version(&stream).await.unwrap(), StreamVersion::INITIAL);
/// # }
/// ```
pub async fn fresh_store() -> SqliteStore {
    fresh_store_with(&SqliteStoreOptions::default()).await
}

/// A fresh, migrated store with the given options.
pub async fn fresh_store_with(options: &SqliteStoreOptions) -> SqliteStore {
    let dir = tempfile::Builder::new()
        .prefix("es-store-sqlite-")
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let mut store = SqliteStore::open_with(dir.path().join(crate::DATABASE_FILE), options)
        .await
        .unwrap_or_else(|e| panic!("cannot open a fresh SQLite store: {e}"));
    store.migrate().await.expect("migrations apply");
    store.temp_dir = Some(Arc::new(dir));
    store
}
