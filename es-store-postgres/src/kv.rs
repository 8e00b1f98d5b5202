//! [`PgKv`]: the SQL key-value read model on PostgreSQL, writes and checkpoint
//! in one transaction.

use std::collections::BTreeMap;

use es_core::{Checkpoint, KvBatch, KvOp, KvSink, Sink, SinkError};
use sqlx::Row;

use crate::PgStore;
use crate::error::store_error;

const CHECKPOINT: &str = include_str!("kv/sql/checkpoint.sql");
const CHECKPOINT_INSERT: &str = include_str!("kv/sql/checkpoint_insert.sql");
const CHECKPOINT_UPDATE: &str = include_str!("kv/sql/checkpoint_update.sql");
const SET: &str = include_str!("kv/sql/set.sql");
const DELETE: &str = include_str!("kv/sql/delete.sql");
const INCR_BY: &str = include_str!("kv/sql/incr_by.sql");
const TAG: &str = include_str!("kv/sql/tag.sql");
const PURGE: &str = include_str!("kv/sql/purge.sql");
const GET: &str = include_str!("kv/sql/get.sql");
const ENTRIES: &str = include_str!("kv/sql/entries.sql");

/// A key-value read model in PostgreSQL tables, under a namespace.
///
/// Implements [`Sink`]: a batch's writes and the projection's checkpoint commit
/// in one transaction, the checkpoint as a compare-and-set.
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
}

impl PgKv {
    /// The read model `namespace` in `store`'s database.
    pub fn new(store: PgStore, namespace: impl Into<String>) -> Self {
        Self {
            store,
            namespace: namespace.into(),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
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

impl Sink for PgKv {
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
        let ns = self.namespace.as_str();
        let mut tx = self
            .store
            .pool()
            .begin()
            .await
            .map_err(|e| sink_error("beginning a read-model commit", e))?;
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
        for op in batch.into_ops() {
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

impl KvSink for PgKv {
    async fn get(&self, key: &str) -> Result<Option<String>, SinkError> {
        sqlx::query_scalar(GET)
            .bind(&self.namespace)
            .bind(key)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| sink_error("reading a read model", e))
    }

    async fn entries(&self) -> Result<BTreeMap<String, String>, SinkError> {
        let rows = sqlx::query(ENTRIES)
            .bind(&self.namespace)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| sink_error("reading a read model", e))?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get("key")
                        .map_err(|e| sink_error("reading a read model", e))?,
                    row.try_get("value")
                        .map_err(|e| sink_error("reading a read model", e))?,
                ))
            })
            .collect()
    }
}
