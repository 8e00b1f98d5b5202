//! Append throughput: `PgStore::append` against a raw multi-row `INSERT` of the
//! same rows into an identical table, measured side by side in one run.
//!
//! `cargo bench -p es-store-postgres --bench append` (needs PostgreSQL: see
//! `ES_TEST_DATABASE_URL`). Prints a Markdown table; each figure is the median
//! of three repetitions, with min and max.

use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, EventId, EventStore, ExpectedVersion, Metadata, NewEvent, StreamId,
    StreamVersion,
};
use es_store_postgres::PgStore;
use es_store_postgres::testing::fresh_store;
use sqlx::{Executor, Postgres, QueryBuilder};

const REPETITIONS: usize = 3;
/// Events written per measurement, whatever the batch size.
const EVENTS: usize = 6_000;

fn batch(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent {
            event_id: EventId::new(),
            event_type: "Deposited".into(),
            schema_version: 1,
            payload: vec![u8::try_from(i % 251).unwrap_or(0); 64],
            metadata: Metadata::now(),
        })
        .collect()
}

async fn framework(store: &PgStore, run: usize, size: usize) -> Duration {
    let stream = StreamId::new(format!("fw-{run}-{size}")).expect("stream id");
    let mut version = StreamVersion::INITIAL;
    let batches: Vec<_> = (0..EVENTS / size).map(|_| batch(size)).collect();
    let started = Instant::now();
    for events in batches {
        let done = store
            .append(AppendRequest::new(
                stream.clone(),
                ExpectedVersion::Exact(version),
                events,
            ))
            .await
            .expect("append");
        version = done.version;
    }
    started.elapsed()
}

async fn raw(store: &PgStore, run: usize, size: usize) -> Duration {
    let stream = format!("raw-{run}-{size}");
    let batches: Vec<_> = (0..EVENTS / size).map(|_| batch(size)).collect();
    let mut version: i64 = 0;
    let started = Instant::now();
    for events in batches {
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO raw_events (stream_id, version, event_id, event_type, schema_version, \
             payload, recorded_at, correlation_id, causation_id, idempotency_key, headers) ",
        );
        insert.push_values(events, |mut row, e| {
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
        insert
            .build()
            .execute(store.pool())
            .await
            .expect("raw insert");
    }
    started.elapsed()
}

fn stats(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

#[tokio::main]
async fn main() {
    let store = fresh_store().await;
    store
        .pool()
        .execute("CREATE TABLE raw_events (LIKE es_events INCLUDING ALL)")
        .await
        .expect("raw table");
    println!("| batch | es append (events/s) | raw INSERT (events/s) | ratio |");
    println!("| ---: | ---: | ---: | ---: |");
    for size in [1usize, 10, 100] {
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        // Warm up both paths (connections, plans).
        framework(&store, 99, size).await;
        raw(&store, 99, size).await;
        for run in 0..REPETITIONS {
            // Interleave so that drift hits both sides alike.
            let t = framework(&store, run, size).await;
            ours.push(EVENTS as f64 / t.as_secs_f64());
            let t = raw(&store, run, size).await;
            theirs.push(EVENTS as f64 / t.as_secs_f64());
        }
        let (o, omin, omax) = stats(ours);
        let (r, rmin, rmax) = stats(theirs);
        println!(
            "| {size} | {o:.0} ({omin:.0}–{omax:.0}) | {r:.0} ({rmin:.0}–{rmax:.0}) | {:.2} |",
            o / r
        );
    }
}
