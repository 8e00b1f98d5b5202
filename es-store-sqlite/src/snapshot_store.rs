//! [`SnapshotStore`] on SQLite: one row per stream.

use es_core::{Error, Snapshot, SnapshotStore, StreamId, StreamVersion};
use sqlx::Row;

use crate::SqliteStore;
use crate::column::{from_micros, to_i64, to_micros, to_u64};
use crate::error::store_error;

const SAVE: &str = include_str!("snapshot_store/sql/save.sql");
const LOAD: &str = include_str!("snapshot_store/sql/load.sql");
const PRUNE: &str = include_str!("snapshot_store/sql/prune.sql");

impl SnapshotStore for SqliteStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        let version = to_i64(snapshot.version.get(), "snapshot version")?;
        // A writer, like an append: queue behind this process's other writers.
        let _writer = self.writer.lock().await;
        sqlx::query(SAVE)
            .bind(snapshot.stream_id.as_str())
            .bind(version)
            .bind(i64::from(snapshot.schema_version))
            .bind(snapshot.payload)
            .bind(to_micros(snapshot.taken_at))
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("saving a snapshot", e))?;
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        schema_version: u32,
    ) -> Result<Option<Snapshot>, Error> {
        let row = sqlx::query(LOAD)
            .bind(stream.as_str())
            .bind(i64::from(schema_version))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("loading a snapshot", e))?;
        let Some(row) = row else { return Ok(None) };
        let get = |e| store_error("reading a snapshot", e);
        let version: i64 = row.try_get("version").map_err(get)?;
        let taken_at: i64 = row.try_get("taken_at").map_err(get)?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            version: StreamVersion::new(to_u64(version, "snapshot version")?),
            schema_version,
            payload: row.try_get("payload").map_err(get)?,
            taken_at: from_micros(taken_at, "snapshot taken_at")?,
        }))
    }

    async fn prune_snapshots(&self, stream_prefix: &str, keep: Option<u32>) -> Result<u64, Error> {
        let keep = keep.map(i64::from);
        // A writer, like an append: queue behind this process's other writers.
        let _writer = self.writer.lock().await;
        let done = sqlx::query(PRUNE)
            .bind(stream_prefix)
            .bind(keep)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("pruning snapshots", e))?;
        Ok(done.rows_affected())
    }
}
