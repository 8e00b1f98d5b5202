//! [`EventStore`] on PostgreSQL: one statement per append, a global read that
//! never skips, idempotency in the same statement.

use std::collections::BTreeMap;

use es_core::{
    AppendRequest, AppendResult, Checkpoint, CommitId, Error, EventId, EventStore, ExpectedVersion,
    IdempotencyKey, IdempotentRecord, Metadata, Position, RecordedEvent, StreamId, StreamSummary,
    StreamVersion,
};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::PgStore;
use crate::appender::{MARK_NAMESPACE, MARK_OBJECT};
use crate::error::{corrupt, store_error};
use crate::group::{Member, Outcome};

/// A statement that reads below the read horizon: a comment naming it (what
/// `pg_stat_activity` shows first), the horizon's CTEs (`read_horizon.sql`,
/// whose `$1` and `$2` are the appender mark's keys), then the statement.
macro_rules! below_horizon {
    ($name:literal) => {
        concat!(
            "-- es-store-postgres: ",
            $name,
            "\n",
            include_str!("event_store/sql/read_horizon.sql"),
            include_str!(concat!("event_store/sql/", $name, ".sql")),
        )
    };
}

const READ_STREAM: &str = include_str!("event_store/sql/read_stream.sql");
const READ_ALL: &str = below_horizon!("read_all");
const COUNT_AFTER: &str = below_horizon!("count_after");
/// What holds the read horizon back (see [`PgStore::horizon`]).
pub(crate) const HORIZON: &str = below_horizon!("horizon");
const STREAM_VERSION: &str = include_str!("event_store/sql/stream_version.sql");
const LIST_STREAMS: &str = include_str!("event_store/sql/list_streams.sql");
const IDEMPOTENT_RESULT: &str = include_str!("event_store/sql/idempotent_result.sql");
const PRUNE_IDEMPOTENCY: &str = include_str!("event_store/sql/prune_idempotency.sql");
const CLUSTER_CHECK: &str = include_str!("event_store/sql/cluster_check.sql");

/// The primary key of the idempotency table: a unique violation on it means a
/// concurrent first use of the same key.
const IDEMPOTENCY_PKEY: &str = "es_idempotency_pkey";

pub(crate) fn to_i64(value: u64, what: &'static str) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| corrupt(what, "does not fit a bigint"))
}

pub(crate) fn to_u64(value: i64, what: &'static str) -> Result<u64, Error> {
    u64::try_from(value).map_err(|_| corrupt(what, "is negative"))
}

fn parse_xid(text: &str) -> Result<u64, Error> {
    text.parse::<u64>()
        .map_err(|_| corrupt("reading a transaction id", "not a number"))
}

/// Decodes a row of `read_stream.sql` or `read_all.sql`, by column index
/// (their shared column list; a lookup by name costs a hash per column per
/// row) and without the driver's type check per value (the statements fix
/// every column's type; a value that does not decode is still an error). A stream read passes its stream: its rows name it, and need not be
/// parsed and checked again.
fn recorded_event(row: &PgRow, stream: Option<&StreamId>) -> Result<RecordedEvent, Error> {
    let get = |e| store_error("reading an event", e);
    let position: i64 = row.try_get_unchecked(0).map_err(get)?;
    let xid: &str = row.try_get_unchecked(1).map_err(get)?;
    let stream_id = match stream {
        Some(stream) => stream.clone(),
        None => StreamId::new(row.try_get_unchecked::<&str, _>(2).map_err(get)?)?,
    };
    let version: i64 = row.try_get_unchecked(3).map_err(get)?;
    let event_id: Uuid = row.try_get_unchecked(4).map_err(get)?;
    let schema_version: i32 = row.try_get_unchecked(6).map_err(get)?;
    let idempotency_key: Option<&str> = row.try_get_unchecked(11).map_err(get)?;
    // NULL for the empty map, the usual case (see the statements).
    let headers: Option<&str> = row.try_get_unchecked(12).map_err(get)?;
    let headers: BTreeMap<String, String> = match headers {
        Some(json) => {
            serde_json::from_str(json).map_err(|e| corrupt("reading event headers", e))?
        }
        None => BTreeMap::new(),
    };
    Ok(RecordedEvent {
        stream_id,
        version: StreamVersion::new(to_u64(version, "version")?),
        position: Position::new(to_u64(position, "position")?),
        commit: CommitId::new(parse_xid(xid)?),
        event_id: EventId::from_uuid(event_id),
        event_type: row.try_get_unchecked(5).map_err(get)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt("reading an event", "negative schema version"))?,
        payload: row.try_get_unchecked(7).map_err(get)?,
        metadata: Metadata {
            correlation_id: row.try_get_unchecked(9).map_err(get)?,
            causation_id: row.try_get_unchecked(10).map_err(get)?,
            recorded_at: row.try_get_unchecked(8).map_err(get)?,
            idempotency_key: idempotency_key
                .map(|k| IdempotencyKey::new(k.to_owned()))
                .transpose()?,
            headers,
        },
    })
}

/// How often an append is re-run after losing the transaction-id order race on
/// its stream (a window of microseconds; one retry virtually always suffices).
const ORDER_RACE_RETRIES: u32 = 8;

/// The result an append left in a row's `last_version`, `positions` and `xid`
/// columns (an append's answer, or an idempotency record).
pub(crate) fn stored_result(
    row: &PgRow,
    context: &'static str,
    deduplicated: bool,
) -> Result<AppendResult, Error> {
    let get = |e| store_error(context, e);
    let last_version: i64 = row.try_get("last_version").map_err(get)?;
    let positions: Vec<i64> = row.try_get("positions").map_err(get)?;
    let xid: &str = row.try_get("xid").map_err(get)?;
    let positions = positions
        .into_iter()
        .map(|p| to_u64(p, "position").map(Position::new))
        .collect::<Result<Vec<_>, _>>()?;
    let last = positions.iter().max().copied().unwrap_or(Position::START);
    Ok(AppendResult {
        version: StreamVersion::new(to_u64(last_version, "version")?),
        positions,
        checkpoint: Checkpoint::new(CommitId::new(parse_xid(xid)?), last),
        deduplicated,
    })
}

/// What an append's outcome leaves to do.
pub(crate) enum Settled {
    /// Its answer.
    Done(AppendResult),
    /// The order race on its stream was lost (`es_streams.last_xid`): a new
    /// statement, with a new transaction id, succeeds. The stream's version.
    Race(StreamVersion),
}

impl PgStore {
    /// Turns the outcome of `request`'s append into its answer.
    pub(crate) async fn settle(
        &self,
        request: &AppendRequest,
        outcome: Outcome,
    ) -> Result<Settled, Error> {
        match outcome {
            Outcome::Appended(result) => {
                self.appended_events();
                Ok(Settled::Done(result))
            }
            Outcome::Deduplicated {
                result,
                fingerprint,
            } => {
                let Some(idem) = &request.idempotency else {
                    return Err(corrupt("appending", "deduplicated without a key"));
                };
                if fingerprint.as_deref() != Some(&idem.fingerprint[..]) {
                    return Err(Error::IdempotencyKeyReused {
                        stream: request.stream.clone(),
                        key: idem.key.clone(),
                    });
                }
                Ok(Settled::Done(result))
            }
            Outcome::Refused => {
                // Either the expectation failed, or this transaction drew its id
                // before the stream's last writer did.
                let actual = self.actual_version(&request.stream).await?;
                let order_race = match request.expected {
                    ExpectedVersion::Any => true,
                    ExpectedVersion::NoStream => false,
                    ExpectedVersion::Exact(v) => v != StreamVersion::INITIAL && actual == v,
                    ExpectedVersion::StreamExists => actual > StreamVersion::INITIAL,
                };
                if order_race {
                    Ok(Settled::Race(actual))
                } else {
                    Err(Error::Conflict {
                        stream: request.stream.clone(),
                        expected: request.expected,
                        actual,
                    })
                }
            }
            Outcome::Taken(constraint) if constraint == IDEMPOTENCY_PKEY => {
                self.resolve_key(request).await.map(Settled::Done)
            }
            // The (stream_id, version) backstop: the relative version bump
            // makes this unreachable unless rows were written around the store.
            Outcome::Taken(_) => Err(self.conflict(request).await),
        }
    }

    /// The stream's version, read in a fresh statement (so it sees the latest
    /// commit, unlike the append statement's snapshot).
    async fn actual_version(&self, stream: &StreamId) -> Result<StreamVersion, Error> {
        EventStore::stream_version(self, stream).await
    }

    /// The conflict error for a failed expectation, with the actual version.
    async fn conflict(&self, request: &AppendRequest) -> Error {
        match self.actual_version(&request.stream).await {
            Ok(actual) => Error::Conflict {
                stream: request.stream.clone(),
                expected: request.expected,
                actual,
            },
            Err(error) => error,
        }
    }

    /// The outcome of an append whose key was first used by someone else.
    async fn resolve_key(&self, request: &AppendRequest) -> Result<AppendResult, Error> {
        let Some(idem) = &request.idempotency else {
            return Err(self.conflict(request).await);
        };
        match self.idempotent_result(&request.stream, &idem.key).await? {
            Some(record) if record.fingerprint == idem.fingerprint => Ok(record.result),
            Some(_) => Err(Error::IdempotencyKeyReused {
                stream: request.stream.clone(),
                key: idem.key.clone(),
            }),
            None => Err(self.conflict(request).await),
        }
    }

    /// Deletes idempotency records older than `retention`; returns how many.
    ///
    /// A retry arriving after its key was pruned is executed again, so keep the
    /// retention well above the longest a client may retry (the default advice is
    /// seven days).
    pub async fn prune_idempotency(&self, retention: std::time::Duration) -> Result<u64, Error> {
        let done = sqlx::query(PRUNE_IDEMPOTENCY)
            .bind(retention.as_secs_f64())
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("pruning idempotency records", e))?;
        Ok(done.rows_affected())
    }
}

impl EventStore for PgStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        if request.events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let mut member = Member::of(request)?;
        let mut attempt = 0;
        loop {
            let (back, outcome) = self.groups.append(&self.pool, member).await?;
            member = back;
            match self.settle(&member.request, outcome?).await? {
                Settled::Done(result) => return Ok(result),
                Settled::Race(_) if attempt < ORDER_RACE_RETRIES => attempt += 1,
                Settled::Race(actual) => {
                    return Err(Error::Conflict {
                        stream: member.request.stream.clone(),
                        expected: member.request.expected,
                        actual,
                    });
                }
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
        rows.iter()
            .map(|row| recorded_event(row, Some(stream)))
            .collect()
    }

    async fn read_all(&self, after: Checkpoint, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let rows = sqlx::query(READ_ALL)
            .bind(MARK_NAMESPACE)
            .bind(MARK_OBJECT)
            .bind(after.commit.get().to_string())
            .bind(to_i64(after.position.get(), "position")?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("reading the global log", e))?;
        rows.iter().map(|row| recorded_event(row, None)).collect()
    }

    async fn count_after(&self, after: Checkpoint) -> Result<u64, Error> {
        let count: i64 = sqlx::query_scalar(COUNT_AFTER)
            .bind(MARK_NAMESPACE)
            .bind(MARK_OBJECT)
            .bind(after.commit.get().to_string())
            .bind(to_i64(after.position.get(), "position")?)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error("counting the global log", e))?;
        to_u64(count, "count")
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
                Ok(StreamSummary {
                    stream_id: StreamId::new(id)
                        .map_err(|_| corrupt("listing streams", "invalid stream id"))?,
                    version: StreamVersion::new(to_u64(version, "version")?),
                    last_recorded_at: row.try_get("recorded_at").map_err(get)?,
                })
            })
            .collect()
    }

    async fn idempotent_result(
        &self,
        stream: &StreamId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotentRecord>, Error> {
        let row = sqlx::query(IDEMPOTENT_RESULT)
            .bind(stream.as_str())
            .bind(key.as_str())
            .fetch_optional(&self.pool)
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
        Ok(Some(IdempotentRecord {
            fingerprint,
            result: stored_result(&row, "reading an idempotency record", true)?,
        }))
    }
}

pub(crate) async fn check_cluster(pool: &PgPool) -> Result<(), crate::Error> {
    let row = sqlx::query(CLUSTER_CHECK)
        .fetch_one(pool)
        .await
        .map_err(crate::Error::database("checking the cluster"))?;
    let max_stored: Option<String> = row
        .try_get("max_stored")
        .map_err(crate::Error::database("checking the cluster"))?;
    let next_xid: String = row
        .try_get("next_xid")
        .map_err(crate::Error::database("checking the cluster"))?;
    let Some(max_stored) = max_stored else {
        return Ok(());
    };
    let max_stored = parse_xid(&max_stored)?;
    let next_xid = parse_xid(&next_xid)?;
    if max_stored >= next_xid {
        return Err(crate::Error::YoungerCluster {
            max_stored,
            next_xid,
        });
    }
    Ok(())
}
