//! [`SqliteKv`]: the SQL key-value read model on SQLite, writes and checkpoint
//! in one write transaction, kept in [`Generations`] for zero-downtime
//! rebuilds.

use std::collections::BTreeMap;

use chrono::Utc;
use es_core::{
    Checkpoint, GenerationBinding, Generations, KvBatch, KvOp, KvSink, Sink, SinkError, Switch,
};
use sqlx::{Row, SqliteConnection};

use crate::SqliteStore;
use crate::column::to_micros;
use crate::error::store_error;

const CHECKPOINT: &str = include_str!("kv/sql/checkpoint.sql");
const CHECKPOINT_LIVE: &str = include_str!("kv/sql/checkpoint_live.sql");
const CHECKPOINT_INSERT: &str = include_str!("kv/sql/checkpoint_insert.sql");
const CHECKPOINT_UPDATE: &str = include_str!("kv/sql/checkpoint_update.sql");
const SET: &str = include_str!("kv/sql/set.sql");
const DELETE: &str = include_str!("kv/sql/delete.sql");
const TAG: &str = include_str!("kv/sql/tag.sql");
const PURGE_VALUES: &str = include_str!("kv/sql/purge_values.sql");
const PURGE_TAGS: &str = include_str!("kv/sql/purge_tags.sql");
const GET: &str = include_str!("kv/sql/get.sql");
const GET_LIVE: &str = include_str!("kv/sql/get_live.sql");
const ENTRIES: &str = include_str!("kv/sql/entries.sql");
const ENTRIES_LIVE: &str = include_str!("kv/sql/entries_live.sql");
const SCAN: &str = include_str!("kv/sql/scan.sql");
const SCAN_LIVE: &str = include_str!("kv/sql/scan_live.sql");
const LIVE: &str = include_str!("kv/sql/live.sql");
const LIVE_SET: &str = include_str!("kv/sql/live_set.sql");
const GENERATIONS: &str = include_str!("kv/sql/generations.sql");
const DROP_VALUES: &str = include_str!("kv/sql/drop_values.sql");
const DROP_TAGS: &str = include_str!("kv/sql/drop_tags.sql");
const DROP_CHECKPOINTS: &str = include_str!("kv/sql/drop_checkpoints.sql");

const COMMIT: &str = "committing a read model";
const WRITE: &str = "writing a read model";
const READ: &str = "reading a read model";
const READ_CHECKPOINT: &str = "reading a checkpoint";
const READ_LIVE: &str = "reading the live generation";
const SWITCH: &str = "switching generations";
const DROP: &str = "dropping a generation";

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
/// the maintenance step after a purge, as after forgetting a key. Dropping a
/// generation ([`Generations::drop_generation`]) deletes its rows the same way.
///
/// # Generations
///
/// The model is kept in numbered [`Generations`], so that a rebuild can write a
/// new one beside the live one and switch to it in one step. Generation `g`
/// keeps its rows in the same tables under the namespace `{namespace}/g{g}`;
/// the table `es_kv_generations` holds the live generation per namespace (no
/// row: generation 1). The handle [`new`](Self::new) returns follows the live
/// generation: [`get`](KvSink::get) and [`entries`](KvSink::entries) resolve
/// it and read it in one statement, [`Sink::checkpoint`] binds the handle to
/// it, and commits go to the bound generation.
/// [`at_generation`](Generations::at_generation) pins a clone to one
/// generation. Commits and switches are write transactions, one at a time: a
/// commit reads the live generation first and is refused with
/// [`SinkError::Superseded`] (writing nothing) when its generation is older.
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
    binding: GenerationBinding,
}

impl SqliteKv {
    /// The read model `namespace` in `store`'s file: a handle that follows the
    /// live generation.
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
            binding: GenerationBinding::follow(),
        }
    }

    /// The namespace (the read model's, not a generation's).
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

    /// The namespace that holds `generation`'s rows.
    fn data_namespace(&self, generation: u64) -> String {
        format!("{}/g{generation}", self.namespace)
    }

    /// The live generation, read on `conn` (in a write transaction: stable
    /// until it ends).
    async fn live_on(
        &self,
        conn: &mut SqliteConnection,
        context: &'static str,
    ) -> Result<u64, SinkError> {
        let live: i64 = sqlx::query_scalar(LIVE)
            .bind(&self.namespace)
            .fetch_one(conn)
            .await
            .map_err(|e| sink_error(context, e))?;
        generation_from(live)
    }

    /// `projection`'s checkpoint in `generation`, read on `conn`.
    async fn checkpoint_in(
        &self,
        conn: &mut SqliteConnection,
        generation: u64,
        projection: &str,
        context: &'static str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        let text: Option<String> = sqlx::query_scalar(CHECKPOINT)
            .bind(self.data_namespace(generation))
            .bind(projection)
            .fetch_optional(conn)
            .await
            .map_err(|e| sink_error(context, e))?;
        parse_checkpoint(text, context)
    }

    /// Applies one write to the data namespace `ns` inside the commit's
    /// transaction.
    async fn apply(conn: &mut SqliteConnection, ns: &str, op: &KvOp) -> Result<(), SinkError> {
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
        conn: &mut SqliteConnection,
        ns: &str,
        projection: &str,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<bool, SinkError> {
        let now = to_micros(Utc::now());
        let moved = match expected {
            None => {
                sqlx::query(CHECKPOINT_INSERT)
                    .bind(ns)
                    .bind(projection)
                    .bind(next.to_string())
                    .bind(now)
                    .execute(&mut *conn)
                    .await
            }
            Some(expected) => {
                sqlx::query(CHECKPOINT_UPDATE)
                    .bind(ns)
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

/// A stored generation number as a generation.
fn generation_from(stored: i64) -> Result<u64, SinkError> {
    u64::try_from(stored)
        .ok()
        .filter(|g| *g >= 1)
        .ok_or_else(|| failed(format!("{READ_LIVE}: corrupt generation {stored}")))
}

/// A stored checkpoint in its text form, parsed.
fn parse_checkpoint(
    text: Option<String>,
    context: &'static str,
) -> Result<Option<Checkpoint>, SinkError> {
    text.map(|t| {
        t.parse::<Checkpoint>()
            .map_err(|e| SinkError::failed(context, e))
    })
    .transpose()
}

impl Sink for SqliteKv {
    type Batch = KvBatch;

    /// On a following handle, binds it to the live generation and reads the
    /// checkpoint there (one statement); on a pinned one, reads the pinned
    /// generation's.
    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        let text: Option<String> = match self.binding.pinned_generation() {
            Some(generation) => sqlx::query_scalar(CHECKPOINT)
                .bind(self.data_namespace(generation))
                .bind(projection)
                .fetch_optional(self.store.pool())
                .await
                .map_err(|e| sink_error(READ_CHECKPOINT, e))?,
            None => {
                let row = sqlx::query(CHECKPOINT_LIVE)
                    .bind(&self.namespace)
                    .bind(projection)
                    .fetch_one(self.store.pool())
                    .await
                    .map_err(|e| sink_error(READ_CHECKPOINT, e))?;
                let live: i64 = row
                    .try_get("live")
                    .map_err(|e| sink_error(READ_CHECKPOINT, e))?;
                self.binding.bind(generation_from(live)?);
                row.try_get("checkpoint")
                    .map_err(|e| sink_error(READ_CHECKPOINT, e))?
            }
        };
        parse_checkpoint(text, READ_CHECKPOINT)
    }

    /// Refused with [`SinkError::Superseded`] when the handle's generation is
    /// older than the live one (read first in the write transaction).
    async fn commit(
        &self,
        projection: &str,
        batch: KvBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let purges = batch
            .ops()
            .iter()
            .any(|op| matches!(op, KvOp::Purge { .. }));
        let mut tx = self
            .store
            .begin_write(COMMIT)
            .await
            .map_err(|e| from_store(COMMIT, e))?;
        let applied = async {
            let live = self.live_on(&mut tx.tx, COMMIT).await?;
            let generation = self.binding.write().unwrap_or(live);
            if generation < live {
                return Err(SinkError::Superseded {
                    projection: projection.to_owned(),
                    generation,
                    live,
                });
            }
            let ns = self.data_namespace(generation);
            if !Self::move_checkpoint(&mut tx.tx, &ns, projection, expected, next).await? {
                return Err(SinkError::Fenced {
                    projection: projection.to_owned(),
                });
            }
            for op in batch.compacted().ops() {
                Self::apply(&mut tx.tx, &ns, op).await?;
            }
            Ok(())
        }
        .await;
        match applied {
            Ok(()) => {
                tx.commit(COMMIT).await.map_err(|e| from_store(COMMIT, e))?;
                if purges {
                    // The purged values' old page images leave the
                    // write-ahead log too.
                    self.store.scrub().await;
                }
                Ok(())
            }
            Err(error) => {
                tx.abandon().await;
                Err(error)
            }
        }
    }
}

impl Generations for SqliteKv {
    async fn live_generation(&self) -> Result<u64, SinkError> {
        let live: i64 = sqlx::query_scalar(LIVE)
            .bind(&self.namespace)
            .fetch_one(self.store.pool())
            .await
            .map_err(|e| sink_error(READ_LIVE, e))?;
        generation_from(live)
    }

    async fn generations(&self) -> Result<Vec<u64>, SinkError> {
        let rests: Vec<String> = sqlx::query_scalar(GENERATIONS)
            .bind(format!("{}/g", self.namespace))
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| sink_error("listing generations", e))?;
        let mut generations: Vec<u64> = rests
            .iter()
            .filter_map(|rest| {
                // Only what `data_namespace` writes: digits without a sign or
                // leading zeros.
                let generation: u64 = rest.parse().ok()?;
                (generation.to_string() == *rest).then_some(generation)
            })
            .collect();
        generations.sort_unstable();
        generations.dedup();
        Ok(generations)
    }

    fn at_generation(&self, generation: u64) -> Self {
        Self {
            store: self.store.clone(),
            namespace: self.namespace.clone(),
            binding: GenerationBinding::pinned(generation),
        }
    }

    /// One write transaction: reads the live generation and both checkpoints,
    /// compares them and moves the pointer.
    async fn switch_generation(
        &self,
        projection: &str,
        from: u64,
        to: u64,
    ) -> Result<Switch, SinkError> {
        let stored_to = i64::try_from(to)
            .map_err(|_| failed(format!("{SWITCH}: generation {to} is out of range")))?;
        let mut tx = self
            .store
            .begin_write(SWITCH)
            .await
            .map_err(|e| from_store(SWITCH, e))?;
        let switched = async {
            let live_generation = self.live_on(&mut tx.tx, SWITCH).await?;
            if live_generation != from || to <= from {
                return Err(SinkError::Fenced {
                    projection: projection.to_owned(),
                });
            }
            let live = self
                .checkpoint_in(&mut tx.tx, from, projection, SWITCH)
                .await?;
            let next = self
                .checkpoint_in(&mut tx.tx, to, projection, SWITCH)
                .await?;
            if next < live {
                return Ok(Switch::Behind { live, next });
            }
            sqlx::query(LIVE_SET)
                .bind(&self.namespace)
                .bind(stored_to)
                .execute(&mut *tx.tx)
                .await
                .map_err(|e| sink_error(SWITCH, e))?;
            Ok(Switch::Done)
        }
        .await;
        match switched {
            Ok(Switch::Done) => {
                tx.commit(SWITCH).await.map_err(|e| from_store(SWITCH, e))?;
                Ok(Switch::Done)
            }
            other => {
                tx.abandon().await;
                other
            }
        }
    }

    /// One write transaction; the rows are deleted under `secure_delete`, as a
    /// purge's.
    async fn drop_generation(&self, generation: u64) -> Result<(), SinkError> {
        let mut tx = self
            .store
            .begin_write(DROP)
            .await
            .map_err(|e| from_store(DROP, e))?;
        let dropped = async {
            if generation == self.live_on(&mut tx.tx, DROP).await? {
                return Err(failed(format!(
                    "generation {generation} is live and cannot be dropped"
                )));
            }
            let ns = self.data_namespace(generation);
            for statement in [DROP_VALUES, DROP_TAGS, DROP_CHECKPOINTS] {
                sqlx::query(statement)
                    .bind(&ns)
                    .execute(&mut *tx.tx)
                    .await
                    .map_err(|e| sink_error(DROP, e))?;
            }
            Ok(())
        }
        .await;
        match dropped {
            Ok(()) => tx.commit(DROP).await.map_err(|e| from_store(DROP, e)),
            Err(error) => {
                tx.abandon().await;
                Err(error)
            }
        }
    }
}

impl KvSink for SqliteKv {
    /// The value at `key` in the live generation (resolved in the same
    /// statement) or the pinned one.
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        let query = match self.binding.pinned_generation() {
            Some(generation) => sqlx::query_scalar(GET).bind(self.data_namespace(generation)),
            None => sqlx::query_scalar(GET_LIVE).bind(self.namespace.clone()),
        };
        query
            .bind(key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| sink_error(READ, e))
    }

    /// Every value in the live generation (resolved in the same statement) or
    /// the pinned one.
    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        let query = match self.binding.pinned_generation() {
            Some(generation) => sqlx::query(ENTRIES).bind(self.data_namespace(generation)),
            None => sqlx::query(ENTRIES_LIVE).bind(self.namespace.clone()),
        };
        let rows = query
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| sink_error(READ, e))?;
        rows.iter().map(key_value).collect()
    }

    /// A page of the live generation (resolved in the same statement) or the
    /// pinned one, read from the key index.
    async fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, SinkError> {
        let query = match self.binding.pinned_generation() {
            Some(generation) => sqlx::query(SCAN).bind(self.data_namespace(generation)),
            None => sqlx::query(SCAN_LIVE).bind(self.namespace.clone()),
        };
        let rows = query
            .bind(prefix)
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| sink_error(READ, e))?;
        rows.iter().map(key_value).collect()
    }
}

/// A `(key, value)` row of a read of values.
fn key_value(row: &sqlx::sqlite::SqliteRow) -> Result<(String, String), SinkError> {
    Ok((
        row.try_get("key").map_err(|e| sink_error(READ, e))?,
        row.try_get("value").map_err(|e| sink_error(READ, e))?,
    ))
}
