//! [`PgKv`]: the SQL key-value read model on PostgreSQL, writes and checkpoint
//! in one transaction, kept in [`Generations`] for zero-downtime rebuilds.

use std::collections::BTreeMap;

use es_core::{
    Checkpoint, GenerationBinding, Generations, KvBatch, KvOp, KvSink, Sink, SinkError, Switch,
};
use sqlx::{PgConnection, Row};

use crate::PgStore;
use crate::error::store_error;

const CHECKPOINT: &str = include_str!("kv/sql/checkpoint.sql");
const CHECKPOINT_LIVE: &str = include_str!("kv/sql/checkpoint_live.sql");
const CHECKPOINT_INSERT: &str = include_str!("kv/sql/checkpoint_insert.sql");
const CHECKPOINT_UPDATE: &str = include_str!("kv/sql/checkpoint_update.sql");
const SET: &str = include_str!("kv/sql/set.sql");
const DELETE: &str = include_str!("kv/sql/delete.sql");
const INCR_BY: &str = include_str!("kv/sql/incr_by.sql");
const TAG: &str = include_str!("kv/sql/tag.sql");
const PURGE: &str = include_str!("kv/sql/purge.sql");
const GET: &str = include_str!("kv/sql/get.sql");
const GET_LIVE: &str = include_str!("kv/sql/get_live.sql");
const ENTRIES: &str = include_str!("kv/sql/entries.sql");
const ENTRIES_LIVE: &str = include_str!("kv/sql/entries_live.sql");
const SCAN: &str = include_str!("kv/sql/scan.sql");
const SCAN_LIVE: &str = include_str!("kv/sql/scan_live.sql");
const LIVE: &str = include_str!("kv/sql/live.sql");
const LIVE_ENSURE: &str = include_str!("kv/sql/live_ensure.sql");
const LIVE_SHARE: &str = include_str!("kv/sql/live_share.sql");
const LIVE_UPDATE: &str = include_str!("kv/sql/live_update.sql");
const LIVE_SET: &str = include_str!("kv/sql/live_set.sql");
const GENERATIONS: &str = include_str!("kv/sql/generations.sql");
const DROP_VALUES: &str = include_str!("kv/sql/drop_values.sql");
const DROP_TAGS: &str = include_str!("kv/sql/drop_tags.sql");
const DROP_CHECKPOINTS: &str = include_str!("kv/sql/drop_checkpoints.sql");

const READ: &str = "reading a read model";
const READ_CHECKPOINT: &str = "reading a checkpoint";
const READ_LIVE: &str = "reading the live generation";
const SWITCH: &str = "switching generations";
const DROP: &str = "dropping a generation";

/// A key-value read model in PostgreSQL tables, under a namespace.
///
/// Implements [`Sink`]: a batch's writes and the projection's checkpoint commit
/// in one transaction, the checkpoint as a compare-and-set.
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
/// generation.
///
/// A commit reads the live generation first in its transaction, `FOR SHARE`,
/// and is refused with [`SinkError::Superseded`] (writing nothing) when its
/// generation is older; a switch locks the same row `FOR UPDATE`, so commits
/// and switches serialize and a switch never loses a commit to the generation
/// it leaves behind.
///
/// ```no_run
/// use es_core::KvSink;
/// use es_store_postgres::{PgKv, PgStore};
///
/// # async fn run(store: PgStore) -> Result<(), Box<dyn std::error::Error>> {
/// let balances = PgKv::new(store, "balances");
/// let balance = balances.get("account-1:balance").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PgKv {
    store: PgStore,
    namespace: String,
    binding: GenerationBinding,
}

impl PgKv {
    /// The read model `namespace` in `store`'s database: a handle that follows
    /// the live generation.
    pub fn new(store: PgStore, namespace: impl Into<String>) -> Self {
        Self {
            store,
            namespace: namespace.into(),
            binding: GenerationBinding::follow(),
        }
    }

    /// The namespace (the read model's, not a generation's).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The namespace that holds `generation`'s rows.
    fn data_namespace(&self, generation: u64) -> String {
        format!("{}/g{generation}", self.namespace)
    }

    /// Reads the live generation inside a commit's transaction, `FOR SHARE`,
    /// creating its row first if there is none (so that there is a row to
    /// lock).
    async fn live_for_share(&self, conn: &mut PgConnection) -> Result<u64, SinkError> {
        let select = async |conn: &mut PgConnection| {
            sqlx::query_scalar::<_, i64>(LIVE_SHARE)
                .bind(&self.namespace)
                .fetch_optional(conn)
                .await
                .map_err(|e| sink_error(READ_LIVE, e))
        };
        let live = match select(&mut *conn).await? {
            Some(live) => live,
            None => {
                self.ensure_live_row(&mut *conn, READ_LIVE).await?;
                select(&mut *conn)
                    .await?
                    .ok_or_else(|| failed(format!("{READ_LIVE}: the row vanished")))?
            }
        };
        generation_from(live)
    }

    /// Reads the live generation inside a switch's or a drop's transaction,
    /// locked `FOR UPDATE` until the transaction ends.
    async fn live_for_update(
        &self,
        conn: &mut PgConnection,
        context: &'static str,
    ) -> Result<u64, SinkError> {
        self.ensure_live_row(&mut *conn, context).await?;
        let live: Option<i64> = sqlx::query_scalar(LIVE_UPDATE)
            .bind(&self.namespace)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| sink_error(context, e))?;
        generation_from(live.ok_or_else(|| failed(format!("{context}: no live generation row")))?)
    }

    /// Inserts the live-generation row (generation 1) unless there is one.
    async fn ensure_live_row(
        &self,
        conn: &mut PgConnection,
        context: &'static str,
    ) -> Result<(), SinkError> {
        sqlx::query(LIVE_ENSURE)
            .bind(&self.namespace)
            .execute(conn)
            .await
            .map(drop)
            .map_err(|e| sink_error(context, e))
    }

    /// `projection`'s checkpoint in `generation`.
    async fn checkpoint_in(
        &self,
        conn: &mut PgConnection,
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
}

fn sink_error(context: &'static str, error: sqlx::Error) -> SinkError {
    let error = store_error(context, error);
    if error.is_unavailable() {
        SinkError::unavailable(context, error)
    } else {
        SinkError::failed(context, error)
    }
}

fn fenced(projection: &str) -> SinkError {
    SinkError::Fenced {
        projection: projection.to_owned(),
    }
}

/// A failure without a source.
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

impl Sink for PgKv {
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
    /// older than the live one (checked in the commit's transaction).
    async fn commit(
        &self,
        projection: &str,
        batch: KvBatch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| sink_error("beginning a read-model commit", e))?;
        let live = self.live_for_share(&mut tx).await?;
        let generation = self.binding.write().unwrap_or(live);
        if generation < live {
            return Err(SinkError::Superseded {
                projection: projection.to_owned(),
                generation,
                live,
            });
        }
        let ns = self.data_namespace(generation);
        let ns = ns.as_str();
        let moved = match expected {
            None => {
                sqlx::query(CHECKPOINT_INSERT)
                    .bind(ns)
                    .bind(projection)
                    .bind(next.to_string())
                    .execute(&mut *tx)
                    .await
            }
            Some(expected) => {
                sqlx::query(CHECKPOINT_UPDATE)
                    .bind(ns)
                    .bind(projection)
                    .bind(expected.to_string())
                    .bind(next.to_string())
                    .execute(&mut *tx)
                    .await
            }
        }
        .map_err(|e| sink_error("moving a checkpoint", e))?;
        if moved.rows_affected() != 1 {
            return Err(fenced(projection));
        }
        for op in batch.compacted().into_ops() {
            let query = match &op {
                KvOp::Set { key, value } => sqlx::query(SET).bind(ns).bind(key).bind(value),
                KvOp::Delete { key } => sqlx::query(DELETE).bind(ns).bind(key),
                KvOp::IncrBy { key, delta } => sqlx::query(INCR_BY)
                    .bind(ns)
                    .bind(key)
                    .bind(delta.to_string()),
                KvOp::Tag { subject, key } => sqlx::query(TAG).bind(ns).bind(subject).bind(key),
                KvOp::Purge { subject } => sqlx::query(PURGE).bind(ns).bind(subject),
            };
            query
                .execute(&mut *tx)
                .await
                .map_err(|e| sink_error("writing a read model", e))?;
        }
        tx.commit()
            .await
            .map_err(|e| sink_error("committing a read model", e))
    }
}

impl Generations for PgKv {
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

    /// One transaction: locks the live-generation row `FOR UPDATE` (commits
    /// wait for it, and it for them), compares both checkpoints and moves the
    /// pointer.
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
            .pool()
            .begin()
            .await
            .map_err(|e| sink_error(SWITCH, e))?;
        let live_generation = self.live_for_update(&mut tx, SWITCH).await?;
        if live_generation != from || to <= from {
            return Err(fenced(projection));
        }
        let live = self
            .checkpoint_in(&mut tx, from, projection, SWITCH)
            .await?;
        let next = self.checkpoint_in(&mut tx, to, projection, SWITCH).await?;
        if next < live {
            tx.rollback().await.map_err(|e| sink_error(SWITCH, e))?;
            return Ok(Switch::Behind { live, next });
        }
        sqlx::query(LIVE_SET)
            .bind(&self.namespace)
            .bind(stored_to)
            .execute(&mut *tx)
            .await
            .map_err(|e| sink_error(SWITCH, e))?;
        tx.commit().await.map_err(|e| sink_error(SWITCH, e))?;
        Ok(Switch::Done)
    }

    /// One transaction, with the live-generation row locked `FOR UPDATE` so
    /// that no switch makes the generation live meanwhile.
    async fn drop_generation(&self, generation: u64) -> Result<(), SinkError> {
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| sink_error(DROP, e))?;
        if generation == self.live_for_update(&mut tx, DROP).await? {
            return Err(failed(format!(
                "generation {generation} is live and cannot be dropped"
            )));
        }
        let ns = self.data_namespace(generation);
        for statement in [DROP_VALUES, DROP_TAGS, DROP_CHECKPOINTS] {
            sqlx::query(statement)
                .bind(&ns)
                .execute(&mut *tx)
                .await
                .map_err(|e| sink_error(DROP, e))?;
        }
        tx.commit().await.map_err(|e| sink_error(DROP, e))
    }
}

impl KvSink for PgKv {
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
fn key_value(row: &sqlx::postgres::PgRow) -> Result<(String, String), SinkError> {
    Ok((
        row.try_get("key").map_err(|e| sink_error(READ, e))?,
        row.try_get("value").map_err(|e| sink_error(READ, e))?,
    ))
}
