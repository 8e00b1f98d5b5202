//! [`DeadLetters`] on PostgreSQL: `es_dead_letters`.

use es_core::{BoxFuture, Checkpoint, DeadLetter, DeadLetters, Error, EventId, StreamId};
use sqlx::Row;

use crate::PgStore;
use crate::error::{corrupt, store_error};

const RECORD: &str = include_str!("dead_letters/sql/record.sql");
const LIST: &str = include_str!("dead_letters/sql/list.sql");
const REMOVE: &str = include_str!("dead_letters/sql/remove.sql");

impl DeadLetters for PgStore {
    fn record(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            sqlx::query(RECORD)
                .bind(&letter.projection)
                .bind(letter.event_id.as_uuid())
                .bind(letter.checkpoint.to_string())
                .bind(letter.stream_id.as_str())
                .bind(&letter.event_type)
                .bind(&letter.error)
                .bind(letter.recorded_at)
                .bind(letter.replay)
                .execute(self.pool())
                .await
                .map_err(|e| store_error("recording a dead letter", e))?;
            Ok(())
        })
    }

    fn list<'a>(&'a self, projection: &'a str) -> BoxFuture<'a, Result<Vec<DeadLetter>, Error>> {
        Box::pin(async move {
            let rows = sqlx::query(LIST)
                .bind(projection)
                .fetch_all(self.pool())
                .await
                .map_err(|e| store_error("listing dead letters", e))?;
            rows.iter()
                .map(|row| {
                    let get = |e| store_error("reading a dead letter", e);
                    let checkpoint: String = row.try_get("checkpoint").map_err(get)?;
                    let stream: String = row.try_get("stream_id").map_err(get)?;
                    Ok(DeadLetter {
                        projection: row.try_get("projection").map_err(get)?,
                        checkpoint: checkpoint.parse::<Checkpoint>().map_err(|_| {
                            corrupt("reading a dead letter", "malformed checkpoint")
                        })?,
                        event_id: EventId::from_uuid(row.try_get("event_id").map_err(get)?),
                        stream_id: StreamId::new(stream)?,
                        event_type: row.try_get("event_type").map_err(get)?,
                        error: row.try_get("error").map_err(get)?,
                        recorded_at: row.try_get("recorded_at").map_err(get)?,
                        replay: row.try_get("replay").map_err(get)?,
                    })
                })
                .collect()
        })
    }

    fn remove<'a>(
        &'a self,
        projection: &'a str,
        event_id: EventId,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let done = sqlx::query(REMOVE)
                .bind(projection)
                .bind(event_id.as_uuid())
                .execute(self.pool())
                .await
                .map_err(|e| store_error("removing a dead letter", e))?;
            Ok(done.rows_affected() == 1)
        })
    }
}
