//! The write-ahead log: truncating it, the last step of scrubbing deleted data
//! from the files.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use es_core::Error;
use sqlx::Row;

use crate::SqliteStore;
use crate::error::store_error;

const TRUNCATE: &str = include_str!("wal/sql/truncate.sql");
/// How long the background scrub keeps trying.
const SCRUB_FOR: Duration = Duration::from_secs(60);
/// Between its tries.
const SCRUB_EVERY: Duration = Duration::from_millis(50);

/// The state of the scrub after a deletion of personal data.
#[derive(Debug, Default)]
pub(crate) struct Scrub {
    /// Personal data was deleted since the last truncation began.
    dirty: AtomicBool,
    /// A background task is trying.
    running: AtomicBool,
}

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
        self.scrub.dirty.store(false, Ordering::SeqCst);
        let done = self.truncate_once().await;
        if !matches!(done, Ok(true)) {
            self.scrub.dirty.store(true, Ordering::SeqCst);
        }
        done
    }

    /// Whether every deletion of personal data so far is gone from the
    /// write-ahead log too: `false` while a truncation is still to come (a
    /// reader was in the way; the store is trying again). What a test or an
    /// operator waits for before copying the files.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_store_sqlite::SqliteStore::open_in(dir.path()).await.unwrap();
    /// assert!(store.wal_scrubbed());
    /// # });
    /// ```
    pub fn wal_scrubbed(&self) -> bool {
        !self.scrub.dirty.load(Ordering::SeqCst)
    }

    /// After a commit that deleted personal data: truncates the write-ahead
    /// log now, or, when a reader is in the way, from a task that tries again
    /// every 50 ms for up to a minute (one task per store, however many
    /// deletions; a deletion during a try makes it try again).
    pub(crate) async fn scrub(&self) {
        self.scrub.dirty.store(true, Ordering::SeqCst);
        if self.scrub.running.load(Ordering::SeqCst) {
            return;
        }
        if matches!(self.truncate_wal().await, Ok(true)) && self.wal_scrubbed() {
            return;
        }
        if self.scrub.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + SCRUB_FOR;
            loop {
                tokio::time::sleep(SCRUB_EVERY).await;
                let done = matches!(store.truncate_wal().await, Ok(true));
                if done && store.wal_scrubbed() {
                    store.scrub.running.store(false, Ordering::SeqCst);
                    // A deletion that came after the last try and saw the
                    // task running left the log to it.
                    if store.wal_scrubbed() || store.scrub.running.swap(true, Ordering::SeqCst) {
                        return;
                    }
                    continue;
                }
                if Instant::now() > deadline {
                    store.scrub.running.store(false, Ordering::SeqCst);
                    tracing::warn!(
                        "the write-ahead log could not be truncated after personal data was \
                         deleted (a reader kept it busy for a minute); call truncate_wal"
                    );
                    return;
                }
            }
        });
    }

    async fn truncate_once(&self) -> Result<bool, Error> {
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
