//! Append throughput: `EventStore::append` against a raw multi-row `INSERT`
//! of identical rows into an identical table through sqlx.

use std::time::Instant;

use es_core::{AppendRequest, ExpectedVersion, NewEvent, Storage, StreamId, StreamVersion};
use es_store_postgres::PgStore;
use sqlx::{Executor, Postgres, QueryBuilder};

use super::{Plan, progress};
use crate::domain::deposits;
use crate::stats::{Samples, rate};

/// One row of the table: a batch size and a number of writers.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) batch: usize,
    pub(crate) writers: usize,
    pub(crate) es: Samples,
    pub(crate) raw: Samples,
}

/// For each writer, `per_writer` deposits cut into batches of `size`.
fn batches(writers: usize, per_writer: usize, size: usize) -> Vec<Vec<Vec<NewEvent>>> {
    (0..writers)
        .map(|_| {
            let mut events = deposits(per_writer).into_iter().peekable();
            let mut batches = Vec::new();
            while events.peek().is_some() {
                batches.push(events.by_ref().take(size).collect());
            }
            batches
        })
        .collect()
}

/// Appends `count` events in batches of `size` from `writers` concurrent
/// writers, each on a stream of its own; events/s.
pub(crate) async fn framework<S: Storage>(
    store: &S,
    tag: &str,
    size: usize,
    count: usize,
    writers: usize,
) -> f64 {
    let per_writer = count / writers;
    let work = batches(writers, per_writer, size);
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .enumerate()
        .map(|(w, batches)| {
            let store = store.clone();
            let stream = StreamId::new(format!("append-{tag}-{w}")).expect("stream id");
            tokio::spawn(async move {
                let mut version = StreamVersion::INITIAL;
                for batch in batches {
                    version = store
                        .append(AppendRequest::new(
                            stream.clone(),
                            ExpectedVersion::Exact(version),
                            batch,
                        ))
                        .await
                        .expect("append")
                        .version;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    rate(per_writer * writers, started.elapsed())
}

/// The same rows by a multi-row `INSERT` into `raw_events`, a copy of
/// `es_events` (`LIKE … INCLUDING ALL`); events/s.
async fn raw(store: &PgStore, tag: &str, size: usize, count: usize, writers: usize) -> f64 {
    let per_writer = count / writers;
    let work = batches(writers, per_writer, size);
    let started = Instant::now();
    let tasks: Vec<_> = work
        .into_iter()
        .enumerate()
        .map(|(w, batches)| {
            let pool = store.pool().clone();
            let stream = format!("raw-{tag}-{w}");
            tokio::spawn(async move {
                let mut version: i64 = 0;
                for batch in batches {
                    let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
                        "INSERT INTO raw_events (stream_id, version, event_id, event_type, \
                         schema_version, payload, recorded_at, correlation_id, causation_id, \
                         idempotency_key, headers) ",
                    );
                    insert.push_values(batch, |mut row, e| {
                        version += 1;
                        row.push_bind(stream.clone())
                            .push_bind(version)
                            .push_bind(*e.event_id.as_uuid())
                            .push_bind(e.event_type)
                            .push_bind(1i32)
                            .push_bind(e.payload)
                            .push_bind(e.metadata.recorded_at)
                            .push_bind(e.metadata.correlation_id)
                            .push_bind(e.metadata.causation_id)
                            .push_bind(None::<String>)
                            .push_bind("{}")
                            .push_unseparated("::jsonb");
                    });
                    insert.build().execute(&pool).await.expect("raw insert");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    rate(per_writer * writers, started.elapsed())
}

/// Creates the reference's table beside the store's.
pub(crate) async fn prepare(store: &PgStore) {
    store
        .pool()
        .execute("CREATE TABLE IF NOT EXISTS raw_events (LIKE es_events INCLUDING ALL)")
        .await
        .expect("raw table");
}

/// Every batch size and writer count, interleaved with the reference.
pub(crate) async fn run(store: &PgStore, plan: &Plan) -> Vec<Row> {
    prepare(store).await;
    let mut rows = Vec::new();
    for &writers in &plan.writers {
        for &(batch, count) in &plan.appends {
            progress(format_args!("append: batch {batch}, {writers} writer(s)"));
            let mut row = Row {
                batch,
                writers,
                es: Samples::default(),
                raw: Samples::default(),
            };
            // Warm-up (connections, plans), not counted.
            framework(
                store,
                &format!("w{batch}-{writers}"),
                batch,
                count / 10,
                writers,
            )
            .await;
            raw(
                store,
                &format!("w{batch}-{writers}"),
                batch,
                count / 10,
                writers,
            )
            .await;
            for run in 0..plan.repetitions {
                let tag = format!("{run}-{batch}-{writers}");
                row.es
                    .push(framework(store, &tag, batch, count, writers).await);
                row.raw.push(raw(store, &tag, batch, count, writers).await);
            }
            rows.push(row);
        }
    }
    rows
}
