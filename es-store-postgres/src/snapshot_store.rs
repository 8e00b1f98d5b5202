//! [`SnapshotStore`] on PostgreSQL: one row per stream.

use es_core::{Error, Snapshot, SnapshotStore, StreamId, StreamVersion};
use sqlx::Row;

use crate::PgStore;
use crate::error::{corrupt, store_error};

const SAVE: &str = include_str!("snapshot_store/sql/save.sql");
const LOAD: &str = include_str!("snapshot_store/sql/load.sql");
const PRUNE: &str = include_str!("snapshot_store/sql/prune.sql");

impl SnapshotStore for PgStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        let version = i64::try_from(snapshot.version.get())
            .map_err(|_| corrupt("saving a snapshot", "version does not fit a bigint"))?;
        let schema = i32::try_from(snapshot.schema_version)
            .map_err(|_| corrupt("saving a snapshot", "schema version too large"))?;
        sqlx::query(SAVE)
            .bind(snapshot.stream_id.as_str())
            .bind(version)
            .bind(schema)
            .bind(snapshot.payload)
            .bind(snapshot.taken_at)
            .execute(self.pool())
            .await
            .map_err(|e| store_error("saving a snapshot", e))?;
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        schema_version: u32,
    ) -> Result<Option<Snapshot>, Error> {
        let schema = i32::try_from(schema_version)
            .map_err(|_| corrupt("loading a snapshot", "schema version too large"))?;
        let row = sqlx::query(LOAD)
            .bind(stream.as_str())
            .bind(schema)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| store_error("loading a snapshot", e))?;
        let Some(row) = row else { return Ok(None) };
        let get = |e| store_error("reading a snapshot", e);
        let version: i64 = row.try_get("version").map_err(get)?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            version: StreamVersion::new(
                u64::try_from(version)
                    .map_err(|_| corrupt("reading a snapshot", "negative version"))?,
            ),
            schema_version,
            payload: row.try_get("payload").map_err(get)?,
            taken_at: row.try_get("taken_at").map_err(get)?,
        }))
    }

    async fn prune_snapshots(&self, stream_prefix: &str, keep: Option<u32>) -> Result<u64, Error> {
        let keep = keep
            .map(i32::try_from)
            .transpose()
            .map_err(|_| corrupt("pruning snapshots", "schema version too large"))?;
        let done = sqlx::query(PRUNE)
            .bind(stream_prefix)
            .bind(keep)
            .execute(self.pool())
            .await
            .map_err(|e| store_error("pruning snapshots", e))?;
        Ok(done.rows_affected())
    }
}
