//! [`EventStore`] on SQLite: one `BEGIN IMMEDIATE` transaction per append, so
//! appends are serialized by the database's write lock and the global log is in
//! commit order by construction.

use std::collections::BTreeMap;

use es_core::{
    AppendRequest, AppendResult, Checkpoint, CommitId, Error, EventId, EventStore, ExpectedVersion,
    Idempotency, IdempotencyKey, IdempotentRecord, Metadata, NewEvent, Position, RecordedEvent,
    StreamId, StreamSummary, StreamVersion,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::SqliteStore;
use crate::column::{from_micros, to_i64, to_micros, to_u64};
use crate::error::{corrupt, store_error};

const APPEND_HEAD: &str = include_str!("event_store/sql/append_head.sql");
const APPEND_STREAM: &str = include_str!("event_store/sql/append_stream.sql");
const APPEND_EVENT: &str = include_str!("event_store/sql/append_event.sql");
const APPEND_CLAIM: &str = include_str!("event_store/sql/append_claim.sql");
const EVENT_ID_EXISTS: &str = include_str!("event_store/sql/event_id_exists.sql");
const LAST_EVENT_VERSION: &str = include_str!("event_store/sql/last_event_version.sql");
const IDEMPOTENT_RESULT: &str = include_str!("event_store/sql/idempotent_result.sql");
const PRUNE_IDEMPOTENCY: &str = include_str!("event_store/sql/prune_idempotency.sql");
const READ_ALL: &str = include_str!("event_store/sql/read_all.sql");
const READ_STREAM: &str = include_str!("event_store/sql/read_stream.sql");
const STREAM_VERSION: &str = include_str!("event_store/sql/stream_version.sql");
const LIST_STREAMS: &str = include_str!("event_store/sql/list_streams.sql");

/// One event's column values, encoded before the append takes the write lock.
struct EventRow {
    event_id: EventId,
    event_type: String,
    schema_version: i64,
    payload: Vec<u8>,
    recorded_at: i64,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    idempotency_key: Option<String>,
    headers: String,
}

impl EventRow {
    fn of(event: NewEvent) -> Result<Self, Error> {
        let headers = serde_json::to_string(&event.metadata.headers)
            .map_err(|e| corrupt("encoding event headers", e))?;
        Ok(Self {
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: i64::from(event.schema_version),
            payload: event.payload,
            recorded_at: to_micros(event.metadata.recorded_at),
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            idempotency_key: event
                .metadata
                .idempotency_key
                .map(|key| key.as_str().to_owned()),
            headers,
        })
    }
}

/// What an append transaction found to do.
pub(crate) enum Outcome {
    /// It wrote the events: commit.
    Written(AppendResult),
    /// Its idempotency key was seen before with the same fingerprint: the first
    /// result, nothing written.
    Repeated(AppendResult),
}

fn recorded_event(row: &SqliteRow) -> Result<RecordedEvent, Error> {
    let get = |e| store_error("reading an event", e);
    let position: i64 = row.try_get("position").map_err(get)?;
    let commit: i64 = row.try_get("commit_seq").map_err(get)?;
    let stream_id: String = row.try_get("stream_id").map_err(get)?;
    let version: i64 = row.try_get("version").map_err(get)?;
    let event_id: Uuid = row.try_get("event_id").map_err(get)?;
    let schema_version: i64 = row.try_get("schema_version").map_err(get)?;
    let recorded_at: i64 = row.try_get("recorded_at").map_err(get)?;
    let idempotency_key: Option<String> = row.try_get("idempotency_key").map_err(get)?;
    let headers: String = row.try_get("headers").map_err(get)?;
    let headers: BTreeMap<String, String> =
        serde_json::from_str(&headers).map_err(|e| corrupt("reading event headers", e))?;
    Ok(RecordedEvent {
        stream_id: StreamId::new(stream_id)?,
        version: StreamVersion::new(to_u64(version, "version")?),
        position: Position::new(to_u64(position, "position")?),
        commit: CommitId::new(to_u64(commit, "commit")?),
        event_id: EventId::from_uuid(event_id),
        event_type: row.try_get("event_type").map_err(get)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt("reading an event", "schema version out of range"))?,
        payload: row.try_get("payload").map_err(get)?,
        metadata: Metadata {
            correlation_id: row.try_get("correlation_id").map_err(get)?,
            causation_id: row.try_get("causation_id").map_err(get)?,
            recorded_at: from_micros(recorded_at, "recorded_at")?,
            idempotency_key: idempotency_key.map(IdempotencyKey::new).transpose()?,
            headers,
        },
    })
}

/// The record of an idempotency key, read on `conn` (the pool, or an append's
/// own transaction).
async fn idempotent_record(
    conn: &mut SqliteConnection,
    stream: &StreamId,
    key: &IdempotencyKey,
) -> Result<Option<IdempotentRecord>, Error> {
    let row = sqlx::query(IDEMPOTENT_RESULT)
        .bind(stream.as_str())
        .bind(key.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("reading an idempotency record", e))?;
    let Some(row) = row else { return Ok(None) };
    let get = |e| store_error("reading an idempotency record", e);
    let fingerprint: Vec<u8> = row.try_get("fingerprint").map_err(get)?;
    let fingerprint: [u8; 32] = fingerprint.try_into().map_err(|_| {
        corrupt(
            "reading an idempotency record",
            "fingerprint is not 32 bytes",
        )
    })?;
    let last_version: i64 = row.try_get("last_version").map_err(get)?;
    let positions: String = row.try_get("positions").map_err(get)?;
    let positions: Vec<u64> = serde_json::from_str(&positions)
        .map_err(|e| corrupt("reading an idempotency record's positions", e))?;
    let positions: Vec<Position> = positions.into_iter().map(Position::new).collect();
    let commit: i64 = row.try_get("commit_seq").map_err(get)?;
    let last = positions.iter().max().copied().unwrap_or(Position::START);
    Ok(Some(IdempotentRecord {
        fingerprint,
        result: AppendResult {
            version: StreamVersion::new(to_u64(last_version, "version")?),
            positions,
            checkpoint: Checkpoint::new(CommitId::new(to_u64(commit, "commit")?), last),
            deduplicated: true,
        },
    }))
}

/// The outcome for a key already recorded on the stream: the first result when
/// the fingerprints match, [`Error::IdempotencyKeyReused`] when they differ.
fn repeat(
    record: IdempotentRecord,
    stream: &StreamId,
    idempotency: &Idempotency,
) -> Result<Outcome, Error> {
    if record.fingerprint == idempotency.fingerprint {
        Ok(Outcome::Repeated(record.result))
    } else {
        Err(Error::IdempotencyKeyReused {
            stream: stream.clone(),
            key: idempotency.key.clone(),
        })
    }
}

/// The error for an event row the unique constraints refused: its event id is
/// already stored, or (the backstop) its version is taken.
async fn refused_event(
    conn: &mut SqliteConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    event_id: EventId,
) -> Error {
    let exists = sqlx::query_scalar::<_, bool>(EVENT_ID_EXISTS)
        .bind(event_id.as_uuid())
        .fetch_one(&mut *conn)
        .await;
    match exists {
        Ok(true) => Error::Backend {
            message: "appending events: an event with the same event id is already stored"
                .to_owned(),
            source: None,
        },
        Ok(false) => {
            let actual = sqlx::query_scalar::<_, i64>(LAST_EVENT_VERSION)
                .bind(stream.as_str())
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| store_error("reading a stream version", e))
                .and_then(|v| to_u64(v, "version"));
            match actual {
                Ok(actual) => Error::Conflict {
                    stream: stream.clone(),
                    expected,
                    actual: StreamVersion::new(actual),
                },
                Err(error) => error,
            }
        }
        Err(error) => store_error("looking up an event id", error),
    }
}

/// An append request checked and encoded, ready to run in a write transaction.
pub(crate) struct PreparedAppend {
    stream: StreamId,
    expected: ExpectedVersion,
    rows: Vec<EventRow>,
    idempotency: Option<Idempotency>,
}

impl PreparedAppend {
    /// Refuses an empty batch and encodes the rows (before any lock is taken).
    pub(crate) fn new(request: AppendRequest) -> Result<Self, Error> {
        if request.events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        Ok(Self {
            rows: request
                .events
                .into_iter()
                .map(EventRow::of)
                .collect::<Result<Vec<_>, _>>()?,
            stream: request.stream,
            expected: request.expected,
            idempotency: request.idempotency,
        })
    }

    /// Runs the append inside a write transaction on `conn`. Nothing it writes
    /// survives unless the caller commits after `Written`.
    pub(crate) async fn run(self, conn: &mut SqliteConnection) -> Result<Outcome, Error> {
        append_in(
            conn,
            &self.stream,
            self.expected,
            self.rows,
            self.idempotency.as_ref(),
        )
        .await
    }
}

async fn append_in(
    conn: &mut SqliteConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    rows: Vec<EventRow>,
    idempotency: Option<&Idempotency>,
) -> Result<Outcome, Error> {
    // A repeat returns the first result whatever its expected version.
    if let Some(idem) = idempotency
        && let Some(record) = idempotent_record(conn, stream, &idem.key).await?
    {
        return repeat(record, stream, idem);
    }

    let head = sqlx::query(APPEND_HEAD)
        .bind(stream.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| store_error("reading a stream version", e))?;
    let get = |e| store_error("reading a stream version", e);
    let actual: Option<i64> = head.try_get("version").map_err(get)?;
    let actual = StreamVersion::new(to_u64(actual.unwrap_or(0), "version")?);
    let commit: i64 = head.try_get("next_commit").map_err(get)?;
    if !expected.accepts(actual) {
        return Err(Error::Conflict {
            stream: stream.clone(),
            expected,
            actual,
        });
    }

    let count = u64::try_from(rows.len()).map_err(|_| corrupt("appending", "batch too large"))?;
    let last_version = actual
        .get()
        .checked_add(count)
        .ok_or_else(|| corrupt("appending", "stream version overflows"))?;
    let bumped = sqlx::query(APPEND_STREAM)
        .bind(stream.as_str())
        .bind(to_i64(last_version, "version")?)
        .bind(to_i64(actual.get(), "version")?)
        .execute(&mut *conn)
        .await
        .map_err(|e| store_error("updating a stream version", e))?;
    if bumped.rows_affected() != 1 {
        // The version was read under the write lock a statement ago.
        return Err(corrupt(
            "appending",
            "the stream's version changed under the write lock",
        ));
    }

    let mut positions = Vec::with_capacity(rows.len());
    let mut version = actual;
    for row in rows {
        version = version.next();
        let inserted = sqlx::query(APPEND_EVENT)
            .bind(commit)
            .bind(stream.as_str())
            .bind(to_i64(version.get(), "version")?)
            .bind(*row.event_id.as_uuid())
            .bind(row.event_type)
            .bind(row.schema_version)
            .bind(row.payload)
            .bind(row.recorded_at)
            .bind(row.correlation_id)
            .bind(row.causation_id)
            .bind(row.idempotency_key)
            .bind(row.headers)
            .fetch_one(&mut *conn)
            .await;
        let position: i64 = match inserted {
            Ok(inserted) => inserted
                .try_get("position")
                .map_err(|e| store_error("reading an event position", e))?,
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(refused_event(conn, stream, expected, row.event_id).await);
            }
            Err(error) => return Err(store_error("appending events", error)),
        };
        positions.push(Position::new(to_u64(position, "position")?));
    }

    let last = positions.last().copied().unwrap_or(Position::START);
    let result = AppendResult {
        version,
        positions,
        checkpoint: Checkpoint::new(CommitId::new(to_u64(commit, "commit")?), last),
        deduplicated: false,
    };

    if let Some(idem) = idempotency {
        let positions: Vec<u64> = result.positions.iter().map(|p| p.get()).collect();
        let positions = serde_json::to_string(&positions)
            .map_err(|e| corrupt("encoding an idempotency record", e))?;
        let claimed = sqlx::query(APPEND_CLAIM)
            .bind(stream.as_str())
            .bind(idem.key.as_str())
            .bind(&idem.fingerprint[..])
            .bind(to_i64(version.get(), "version")?)
            .bind(positions)
            .bind(commit)
            .bind(to_micros(chrono::Utc::now()))
            .execute(&mut *conn)
            .await;
        match claimed {
            Ok(_) => {}
            // The key was looked up under the write lock, so no one can have
            // claimed it since; should it happen anyway, this append is a repeat.
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return match idempotent_record(conn, stream, &idem.key).await? {
                    Some(record) => repeat(record, stream, idem),
                    None => Err(corrupt(
                        "recording an idempotency key",
                        "refused as a duplicate, but not found",
                    )),
                };
            }
            Err(error) => return Err(store_error("recording an idempotency key", error)),
        }
    }
    Ok(Outcome::Written(result))
}

impl SqliteStore {
    /// Deletes idempotency records older than `retention`; returns how many.
    ///
    /// A retry arriving after its key was pruned is executed again, so keep the
    /// retention well above the longest a client may retry (seven days is a
    /// sound default).
    ///
    /// ```no_run
    /// # async fn run(store: es_store_sqlite::SqliteStore) -> Result<(), es_core::Error> {
    /// use std::time::Duration;
    ///
    /// let pruned = store.prune_idempotency(Duration::from_secs(7 * 24 * 3600)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn prune_idempotency(&self, retention: std::time::Duration) -> Result<u64, Error> {
        let cutoff = chrono::Duration::from_std(retention)
            .ok()
            .and_then(|retention| chrono::Utc::now().checked_sub_signed(retention))
            .map_or(i64::MIN, to_micros);
        let _writer = self.writer.lock().await;
        let done = sqlx::query(PRUNE_IDEMPOTENCY)
            .bind(cutoff)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("pruning idempotency records", e))?;
        Ok(done.rows_affected())
    }
}

impl EventStore for SqliteStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        let append = PreparedAppend::new(request)?;
        let mut write = self.begin_write("starting an append").await?;
        match append.run(&mut write.tx).await {
            Ok(Outcome::Written(result)) => {
                write.commit("committing an append").await?;
                Ok(result)
            }
            Ok(Outcome::Repeated(result)) => {
                write.rollback("ending a repeated append").await?;
                Ok(result)
            }
            Err(error) => {
                write.abandon().await;
                Err(error)
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let rows = sqlx::query(READ_STREAM)
            .bind(stream.as_str())
            .bind(to_i64(after.get(), "version")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("reading a stream", e))?;
        rows.iter().map(recorded_event).collect()
    }

    async fn read_all(&self, after: Checkpoint, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        // No commit id exceeds what an integer column holds, so a checkpoint at
        // a larger one is past every event; a position beyond it compares like
        // the largest one.
        let Ok(commit) = i64::try_from(after.commit.get()) else {
            return Ok(Vec::new());
        };
        let position = i64::try_from(after.position.get()).unwrap_or(i64::MAX);
        let rows = sqlx::query(READ_ALL)
            .bind(commit)
            .bind(position)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("reading the global log", e))?;
        rows.iter().map(recorded_event).collect()
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, Error> {
        let version: Option<i64> = sqlx::query_scalar(STREAM_VERSION)
            .bind(stream.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("reading a stream version", e))?;
        Ok(StreamVersion::new(to_u64(version.unwrap_or(0), "version")?))
    }

    async fn list_streams(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, Error> {
        let rows = sqlx::query(LIST_STREAMS)
            .bind(after.map(StreamId::as_str))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("listing streams", e))?;
        rows.iter()
            .map(|row| {
                let get = |e| store_error("reading a stream", e);
                let id: String = row.try_get("stream_id").map_err(get)?;
                let version: i64 = row.try_get("version").map_err(get)?;
                let recorded_at: i64 = row.try_get("recorded_at").map_err(get)?;
                Ok(StreamSummary {
                    stream_id: StreamId::new(id)
                        .map_err(|_| corrupt("listing streams", "invalid stream id"))?,
                    version: StreamVersion::new(to_u64(version, "version")?),
                    last_recorded_at: from_micros(recorded_at, "recorded_at")?,
                })
            })
            .collect()
    }

    async fn idempotent_result(
        &self,
        stream: &StreamId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotentRecord>, Error> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| store_error("reading an idempotency record", e))?;
        idempotent_record(&mut conn, stream, key).await
    }
}
