//! [`DeadLetters`] on SQLite: `es_dead_letters`. Each write is one
//! `BEGIN IMMEDIATE` transaction behind the store's writer queue.

use es_core::{BoxFuture, Checkpoint, DeadLetter, DeadLetters, Error, EventId, StreamId};
use sqlx::Row;
use uuid::Uuid;

use crate::SqliteStore;
use crate::column::{from_micros, to_micros};
use crate::error::{corrupt, store_error};

const RECORD: &str = include_str!("dead_letters/sql/record.sql");
const LIST: &str = include_str!("dead_letters/sql/list.sql");
const REMOVE: &str = include_str!("dead_letters/sql/remove.sql");

impl DeadLetters for SqliteStore {
    fn record(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            const CONTEXT: &str = "recording a dead letter";
            let mut tx = self.begin_write(CONTEXT).await?;
            let done = sqlx::query(RECORD)
                .bind(&letter.projection)
                .bind(letter.event_id.as_uuid())
                .bind(letter.checkpoint.to_string())
                .bind(letter.stream_id.as_str())
                .bind(&letter.event_type)
                .bind(&letter.error)
                .bind(to_micros(letter.recorded_at))
                .bind(letter.replay)
                .execute(&mut *tx.tx)
                .await;
            match done {
                Ok(_) => tx.commit(CONTEXT).await,
                Err(e) => {
                    tx.abandon().await;
                    Err(store_error(CONTEXT, e))
                }
            }
        })
    }

    fn list<'a>(&'a self, projection: &'a str) -> BoxFuture<'a, Result<Vec<DeadLetter>, Error>> {
        Box::pin(async move {
            const CONTEXT: &str = "reading a dead letter";
            let rows = sqlx::query(LIST)
                .bind(projection)
                .fetch_all(self.pool())
                .await
                .map_err(|e| store_error("listing dead letters", e))?;
            rows.iter()
                .map(|row| {
                    let get = |e| store_error(CONTEXT, e);
                    let checkpoint: String = row.try_get("checkpoint").map_err(get)?;
                    let stream: String = row.try_get("stream_id").map_err(get)?;
                    let event_id: Uuid = row.try_get("event_id").map_err(get)?;
                    let recorded_at: i64 = row.try_get("recorded_at").map_err(get)?;
                    Ok(DeadLetter {
                        projection: row.try_get("projection").map_err(get)?,
                        checkpoint: checkpoint
                            .parse::<Checkpoint>()
                            .map_err(|_| corrupt(CONTEXT, "malformed checkpoint"))?,
                        event_id: EventId::from_uuid(event_id),
                        stream_id: StreamId::new(stream)?,
                        event_type: row.try_get("event_type").map_err(get)?,
                        error: row.try_get("error").map_err(get)?,
                        recorded_at: from_micros(recorded_at, CONTEXT)?,
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
            const CONTEXT: &str = "removing a dead letter";
            let mut tx = self.begin_write(CONTEXT).await?;
            let done = sqlx::query(REMOVE)
                .bind(projection)
                .bind(event_id.as_uuid())
                .execute(&mut *tx.tx)
                .await;
            match done {
                Ok(done) => {
                    tx.commit(CONTEXT).await?;
                    Ok(done.rows_affected() == 1)
                }
                Err(e) => {
                    tx.abandon().await;
                    Err(store_error(CONTEXT, e))
                }
            }
        })
    }
}
