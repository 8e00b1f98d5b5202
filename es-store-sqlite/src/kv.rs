//! [`SqliteKv`]: the SQL key-value read model on SQLite, writes and checkpoint
//! in one write transaction.

use std::collections::BTreeMap;

use chrono::Utc;
use es_core::{Checkpoint, KvBatch, KvOp, KvSink, Sink, SinkError};
use sqlx::{Row, SqliteConnection};

use crate::SqliteStore;
use crate::column::to_micros;
use crate::error::store_error;

const CHECKPOINT: &str = include_str!("kv/sql/checkpoint.sql");
const CHECKPOINT_INSERT: &str = include_str!("kv/sql/checkpoint_insert.sql");
const CHECKPOINT_UPDATE: &str = include_str!("kv/sql/checkpoint_update.sql");
const SET: &str = include_str!("kv/sql/set.sql");
const DELETE: &str = include_str!("kv/sql/delete.sql");
const TAG: &str = include_str!("kv/sql/tag.sql");
const PURGE_VALUES: &str = include_str!("kv/sql/purge_values.sql");
const PURGE_TAGS: &str = include_str!("kv/sql/purge_tags.sql");
const GET: &str = include_str!("kv/sql/get.sql");
const ENTRIES: &str = include_str!("kv/sql/entries.sql");

const COMMIT: &str = "committing a read model";
const WRITE: &str = "writing a read model";
const READ: &str = "reading a read model";

/// A key-value read model in the store's SQLite file, under a namespace.
///
/// Implements [`Sink`]: a batch's writes and the projection's checkpoint commit
/// in one `BEGIN IMMEDIATE` transaction (queued behind the store's other
/// writers), the checkpoint as a compare-and-set; a checkpoint that moved is
/// [`SinkError::Fenced`]. An increment of a stored value that is not a 64-bit
/// integer, or one that overflows, fails the whole batch. A busy database or an
/// IO failure is [`SinkError::Unavailable`], anything else
/// [`SinkError::Failed`].
///
/// # Forgotten subjects
///
/// A read model is where a forgotten owner's personal data would linger: its
/// values are clear text, not sealed. Tag every key that holds personal data
/// with its subject ([`KvBatch::tag`]), and purge the subject
/// ([`KvBatch::purge`]) when the projection sees it forgotten. The purge
/// deletes the rows under `secure_delete` (on for every connection of the
/// store, see [`SqliteStore`]), so their bytes are zeroed in the database's
/// pages; the write-ahead log still holds earlier images of those pages until
/// [`SqliteStore::truncate_wal`] completes. Truncating the log is therefore
/// the maintenance step after a purge, as after forgetting a key.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use es_core::{Checkpoint, CommitId, KvBatch, KvSink, Position, Sink};
/// use es_store_sqlite::SqliteKv;
///
/// let store = es_store_sqlite::testing::fresh_store().await;
/// let balances = SqliteKv::new(store, "balances");
///
/// let mut batch = KvBatch::default();
/// batch.incr_by("account-1:balance", 250);
/// let next = Checkpoint::new(CommitId::new(1), Position::new(1));
/// balances.commit("balances", batch, None, next).await?;
///
/// assert_eq!(balances.get("account-1:balance").await?.as_deref(), Some("250"));
/// assert_eq!(balances.checkpoint("balances").await?, Some(next));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteKv {
    store: SqliteStore,
    namespace: String,
}

impl SqliteKv {
    /// The read model `namespace` in `store`'s file.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let kv = es_store_sqlite::SqliteKv::new(store, "balances");
    /// assert_eq!(kv.namespace(), "balances");
    /// # }
    /// ```
    pub fn new(store: SqliteStore, namespace: impl Into<String>) -> Self {
        Self {
            store,
            namespace: namespace.into(),
        }
    }

    /// The namespace.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let store = es_store_sqlite::testing::fresh_store().await;
    /// let kv = es_store_sqlite::SqliteKv::new(store, "balances-v2");
    /// assert_eq!(kv.namespace(), "balances-v2");
    /// # }
    /// ```
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Applies one write inside the commit's transaction.
    async fn apply(&self, conn: &mut SqliteConnection, op: &KvOp) -> Result<(), SinkError> {
        let ns = self.namespace.as_str();
        let done = match op {
            KvOp::Set { key, value } => {
                sqlx::query(SET)
                    .bind(ns)
                    .bind(key)
                    .bind(value)
                    .execute(&mut *conn)
                    .await
            }
            KvOp::Delete { key } => {
                sqlx::query(DELETE)
                    .bind(ns)
                    .bind(key)
                    .execute(&mut *conn)
                    .await
            }
            KvOp::IncrBy { key, delta } => {
                // SQLite's CAST reads any text as a number ('abc' is 0) and its
                // arithmetic turns an overflow into a float: check here, under
                // the write lock, before writing.
                let stored: Option<String> = sqlx::query_scalar(GET)
                    .bind(ns)
                    .bind(key)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| sink_error(WRITE, e))?;
                let current = match stored {
                    None => 0,
                    Some(text) => text.parse::<i64>().map_err(|_| {
                        failed(format!(
                            "{WRITE}: cannot increment a value that is not a 64-bit integer"
                        ))
                    })?,
                };
                let value = current
                    .checked_add(*delta)
                    .ok_or_else(|| failed(format!("{WRITE}: the increment overflows")))?;
                sqlx::query(SET)
                    .bind(ns)
                    .bind(key)
                    .bind(value.to_string())
                    .execute(&mut *conn)
                    .await
            }
            KvOp::Tag { subject, key } => {
                sqlx::query(TAG)
                    .bind(ns)
                    .bind(subject)
                    .bind(key)
                    .execute(&mut *conn)
                    .await
            }
            KvOp::Purge { subject } => {
                sqlx::query(PURGE_VALUES)
                    .bind(ns)
                    .bind(subject)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| sink_error(WRITE, e))?;
                sqlx::query(PURGE_TAGS)
                    .bind(ns)
                    .bind(subject)
                    .execute(&mut *conn)
                    .await
            }
        };
        done.map(drop).map_err(|e| sink_error(WRITE, e))
    }

    /// Moves the checkpoint from `expected` to `next`; `false` when the stored
    /// one is not `expected`.
    async fn move_checkpoint(
        &self,
        conn: &mut SqliteConnection,
        projection: &str,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<bool, SinkError> {
        let now = to_micros(Utc::now());
        let moved = match expected {
            None => {
                sqlx::query(CHECKPOINT_INSERT)
                    .bind(&self.namespace)
                    .bind(projection)
                    .bind(next.to_string())
                    .bind(now)
                    .execute(&mut *conn)
                    .await
            }
            Some(expected) => {
                sqlx::query(CHECKPOINT_UPDATE)
                    .bind(&self.namespace)
                    .bind(projection)
                    .bind(expected.to_string())
                    .bind(next.to_string())
                    .bind(now)
                    .execute(&mut *conn)
                    .await
            }
        }
        .map_err(|e| sink_error("moving a checkpoint", e))?;
        Ok(moved.rows_affected() == 1)
    }
}

/// A driver error as a sink error: busy, locked or IO is unavailable.
fn sink_error(context: &'static str, error: sqlx::Error) -> SinkError {
    from_store(context, store_error(context, error))
}

/// A store error as a sink error, keeping whether it is worth retrying.
fn from_store(context: &'static str, error: es_core::Error) -> SinkError {
    if error.is_unavailable() {
        SinkError::unavailable(context, error)
    } else {
        SinkError::failed(context, error)
    }
}

/// A rejected write, without the stored value in the message.
fn failed(message: String) -> SinkError {
    SinkError::Failed {
        message,
        source: None,
    }
}

impl Sink for SqliteKv {
    type Batch = KvBatch;

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let text: Option<String> = sqlx::query_scalar(CHECKPOINT)
            .bind(&self.namespace)
            .bind(projection)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| sink_error("reading a checkpoint", e))?;
        text.map(|t| {
            t.parse::<Checkpoint>()
                .map_err(|e| SinkError::failed("reading a checkpoint", e))
        })
        .transpose()
    }

    async fn commit(
        &self,
        projection: &str,
        batch: KvBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let mut tx = self
            .store
            .begin_write(COMMIT)
            .await
            .map_err(|e| from_store(COMMIT, e))?;
        let applied = async {
            if !self
                .move_checkpoint(&mut tx.tx, projection, expected, next)
                .await?
            {
                return Err(SinkError::Fenced {
                    projection: projection.to_owned(),
                });
            }
            for op in batch.ops() {
                self.apply(&mut tx.tx, op).await?;
            }
            Ok(())
        }
        .await;
        match applied {
            Ok(()) => tx.commit(COMMIT).await.map_err(|e| from_store(COMMIT, e)),
            Err(error) => {
                tx.abandon().await;
                Err(error)
            }
        }
    }
}

impl KvSink for SqliteKv {
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        sqlx::query_scalar(GET)
            .bind(&self.namespace)
            .bind(key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| sink_error(READ, e))
    }

    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        let rows = sqlx::query(ENTRIES)
            .bind(&self.namespace)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| sink_error(READ, e))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("key").map_err(|e| sink_error(READ, e))?,
                    row.try_get("value").map_err(|e| sink_error(READ, e))?,
                ))
            })
            .collect()
    }
}
