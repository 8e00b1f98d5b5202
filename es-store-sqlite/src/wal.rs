//! The write-ahead log: truncating it, the last step of scrubbing deleted data
//! from the files.

use es_core::Error;
use sqlx::Row;

use crate::SqliteStore;
use crate::error::store_error;

const TRUNCATE: &str = include_str!("wal/sql/truncate.sql");

impl SqliteStore {
    /// Copies every committed page from the write-ahead log into the database
    /// file and truncates the log (`-wal` file) to zero bytes. Returns `false`
    /// when another connection's read or write kept it from completing; call it
    /// again later.
    ///
    /// With `secure_delete` on (every connection of the store sets it), deleted
    /// rows are overwritten with zeros in their pages; but until a checkpoint,
    /// the log still holds earlier images of those pages, and the database file
    /// the old page itself. After a completed truncation, neither file holds the
    /// deleted bytes. This is the maintenance step after forgetting a subject's
    /// key (filesystem blocks freed by the truncation are the storage's
    /// business: use an encrypted disk).
    ///
    /// ```no_run
    /// # async fn run(store: es_store_sqlite::SqliteStore) -> Result<(), es_core::Error> {
    /// while !store.truncate_wal().await? {
    ///     tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn truncate_wal(&self) -> Result<bool, Error> {
        let _writer = self.writer.lock().await;
        let row = sqlx::query(TRUNCATE)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error("truncating the write-ahead log", e))?;
        let busy: i64 = row
            .try_get(0)
            .map_err(|e| store_error("truncating the write-ahead log", e))?;
        Ok(busy == 0)
    }
}
