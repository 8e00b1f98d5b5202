//! Projection throughput: a runner catching up from the start of the log,
//! then a zero-downtime rebuild, over the same events, into Redis, tantivy
//! and the embedded key-value model; each sink in a child process, so that
//! its peak resident set is its own. References: raw pipelined Redis writes
//! of the same keys, raw tantivy indexing of the same documents (one commit
//! per 1,000, and one commit for all). The key-value sinks also run a
//! projection whose every event writes keys of its own (per stream and
//! version), so that no batch compaction helps, against the raw pipeline of
//! those keys.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use es_core::{AppendRequest, Bincode, Checkpoint, EventStore, ExpectedVersion, StreamId};
use es_projections::{
    Change, Generations, KvBatch, KvSink, MemoryDeadLetters, Projection, ProjectionError, RedisKv,
    Runner, RunnerOptions, SearchBatch, SearchIndex, Step,
};
use es_store_postgres::PgStore;
use es_store_sqlite::{SqliteKv, SqliteStore};
use serde::{Deserialize, Serialize};
use tantivy::schema::{STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexWriter, TantivyDocument, Term};

use super::{Plan, progress};
use crate::domain::AccountEvent;
use crate::stats::Samples;

/// Accounts the events are spread over.
const ACCOUNTS: usize = 10_000;
/// Events per runner batch, per Redis pipeline and per tantivy commit.
const BATCH: usize = 1_000;
const NAME: &str = "bench";
/// The sinks, in report order.
pub(crate) const SINKS: [&str; 3] = ["redis", "tantivy", "sqlite"];

/// Figures of one sink.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) sink: &'static str,
    pub(crate) catch_up: Samples,
    pub(crate) rebuild: Samples,
    pub(crate) raw: Samples,
    /// tantivy: the raw writer with one commit for every document.
    pub(crate) raw_one: Samples,
    /// Key-value sinks: catch-up of the projection with a key per event.
    pub(crate) distinct: Samples,
    /// Redis: the raw pipeline of those keys.
    pub(crate) raw_distinct: Samples,
    /// Peak RSS of the child, MB.
    pub(crate) peak_mb: Samples,
}

/// What a child prints (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ChildResult {
    pub(crate) catch_up: f64,
    pub(crate) rebuild: f64,
    pub(crate) raw: Option<f64>,
    #[serde(default)]
    pub(crate) raw_one: Option<f64>,
    #[serde(default)]
    pub(crate) distinct: Option<f64>,
    #[serde(default)]
    pub(crate) raw_distinct: Option<f64>,
    pub(crate) peak_kb: u64,
}

struct Balances<S>(PhantomData<fn() -> S>);

impl<S: KvSink + 'static> Projection for Balances<S> {
    type Event = AccountEvent;
    type Sink = S;

    fn name(&self) -> &str {
        NAME
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        if let Change::Event {
            event: AccountEvent::Deposited { amount },
            meta,
        } = change
        {
            writes
                .incr_by(format!("account:{}:balance", meta.stream_id), *amount)
                .set(
                    format!("account:{}:last", meta.stream_id),
                    amount.to_string(),
                );
        }
        Ok(())
    }
}

/// Keys of its own for every event (`event:<stream>:<version>`), so that
/// nothing in a batch compacts.
struct PerEvent<S>(PhantomData<fn() -> S>);

impl<S: KvSink + 'static> Projection for PerEvent<S> {
    type Event = AccountEvent;
    type Sink = S;

    fn name(&self) -> &str {
        "bench-per-event"
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        if let Change::Event {
            event: AccountEvent::Deposited { amount },
            meta,
        } = change
        {
            let key = format!("event:{}:{}", meta.stream_id, meta.version.get());
            writes
                .incr_by(format!("{key}:balance"), *amount)
                .set(format!("{key}:last"), amount.to_string());
        }
        Ok(())
    }
}

/// One document per account, upserted per deposit.
struct AccountSearch;

impl Projection for AccountSearch {
    type Event = AccountEvent;
    type Sink = SearchIndex;

    fn name(&self) -> &str {
        NAME
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut SearchBatch,
    ) -> Result<(), ProjectionError> {
        if let Change::Event {
            event: AccountEvent::Deposited { amount },
            meta,
        } = change
        {
            let id = meta.stream_id.to_string();
            writes.upsert_untagged(
                id.clone(),
                [("account", id), ("amount", amount.to_string())],
            );
        }
        Ok(())
    }
}

/// Appends `n` deposits over [`ACCOUNTS`] accounts, 100 per append.
pub(crate) async fn fill(store: &PgStore, n: usize) {
    let accounts = ACCOUNTS.min(n.max(1));
    let per_append = 100.min(n / accounts).max(1);
    let mut written = 0;
    let mut round = 0;
    while written < n {
        for a in 0..accounts {
            if written >= n {
                break;
            }
            let k = per_append.min(n - written);
            let stream = StreamId::new(format!("account-{a}")).expect("stream id");
            store
                .append(AppendRequest::new(
                    stream,
                    ExpectedVersion::Any,
                    crate::domain::deposits(k),
                ))
                .await
                .expect("append");
            written += k;
        }
        round += 1;
        if round % 10 == 0 {
            progress(format_args!("projections: {written} events written"));
        }
    }
}

fn options() -> RunnerOptions {
    RunnerOptions {
        batch_size: BATCH,
        ..RunnerOptions::default()
    }
}

/// Runs `projection` from the start to the head; events read and seconds.
async fn catch_up<P: Projection>(projection: P, sink: P::Sink, store: &PgStore) -> (u64, f64) {
    let mut runner = Runner::new(
        projection,
        sink,
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_options(options());
    let started = Instant::now();
    let mut read = 0;
    while let Step::Committed { read: n, .. } = runner.step().await.expect("step") {
        read += n as u64;
    }
    (read, started.elapsed().as_secs_f64())
}

/// A zero-downtime rebuild of `projection` beside its live generation.
async fn rebuild<P>(projection: P, sink: P::Sink, store: &PgStore) -> (u64, f64)
where
    P: Projection,
    P::Sink: Generations,
{
    let runner = Runner::new(
        projection,
        sink,
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_options(options());
    let started = Instant::now();
    let report = runner.rebuild().run().await.expect("rebuild");
    (report.read, started.elapsed().as_secs_f64())
}

/// The deposits as (stream, version, amount), read from the store outside
/// any timing.
async fn deposits(store: &PgStore) -> Vec<(String, u64, i64)> {
    let mut out = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let records = store.read_all(after, 10_000).await.expect("read");
        let Some(last) = records.last() else { break };
        after = last.checkpoint();
        for record in &records {
            let AccountEvent::Deposited { amount } = record.decode(&Bincode).expect("decode");
            out.push((record.stream_id.to_string(), record.version.get(), amount));
        }
    }
    out
}

/// The raw pipeline: per event, the `SET` and `INCRBY` of the account's keys
/// (`distinct`: of the event's own keys, as [`PerEvent`] writes).
async fn raw_redis(
    deposits: &[(String, u64, i64)],
    url: &str,
    prefix: &str,
    distinct: bool,
) -> f64 {
    let client = redis::Client::open(url).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to redis");
    let started = Instant::now();
    for chunk in deposits.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for (stream, version, amount) in chunk {
            let key = if distinct {
                format!("{prefix}event:{stream}:{version}")
            } else {
                format!("{prefix}account:{stream}")
            };
            pipe.set(format!("{key}:last"), amount.to_string())
                .ignore()
                .incr(format!("{key}:balance"), *amount)
                .ignore();
        }
        let () = pipe
            .query_async(&mut connection)
            .await
            .expect("raw pipeline");
    }
    deposits.len() as f64 / started.elapsed().as_secs_f64()
}

/// The raw writer over the same documents, committing every `every`.
fn raw_tantivy(deposits: &[(String, u64, i64)], every: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let _subject = builder.add_text_field("subject", STRING);
    let account = builder.add_text_field("account", TEXT | STORED);
    let amount = builder.add_text_field("amount", TEXT | STORED);
    let index = Index::create_in_dir(dir.path(), builder.build()).expect("create the index");
    let mut writer: IndexWriter = index
        .writer_with_num_threads(1, 50_000_000)
        .expect("writer");
    let started = Instant::now();
    for chunk in deposits.chunks(every) {
        for (stream, _, value) in chunk {
            writer.delete_term(Term::from_field_text(id, stream));
            let mut doc = TantivyDocument::default();
            doc.add_text(id, stream);
            doc.add_text(account, stream);
            doc.add_text(amount, value.to_string());
            writer.add_document(doc).expect("add a document");
        }
        writer.commit().expect("commit");
    }
    writer.wait_merging_threads().expect("merges");
    deposits.len() as f64 / started.elapsed().as_secs_f64()
}

/// The process's peak resident set (`VmHWM`) in kB.
pub(crate) fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The child: catch-up, rebuild and (with `raw`) the reference into `sink`;
/// prints one JSON line.
pub(crate) async fn child(sink: &str, database_url: &str, redis_url: &str, raw: bool) {
    let store = PgStore::connect(database_url).await.expect("connect");
    let n = store.count_after(Checkpoint::START).await.expect("count");
    let run = format!("{}-{}", std::process::id(), es_core::EventId::new());
    let dir = tempfile::tempdir().expect("temp dir");
    let rate = |(read, seconds): (u64, f64)| {
        assert_eq!(read, n, "{sink}: events read");
        read as f64 / seconds
    };
    let (catch_up_rate, rebuild_rate, distinct) = match sink {
        "redis" => {
            let kv = RedisKv::connect(redis_url, format!("es-bench:{run}:"))
                .await
                .expect("connect to redis");
            let c = rate(catch_up(Balances(PhantomData), kv.clone(), &store).await);
            let r = rate(rebuild(Balances(PhantomData), kv.clone(), &store).await);
            kv.drop_all().await.expect("drop the keys");
            let kv = RedisKv::connect(redis_url, format!("es-bench:{run}:e:"))
                .await
                .expect("connect to redis");
            let d = rate(catch_up(PerEvent(PhantomData), kv.clone(), &store).await);
            kv.drop_all().await.expect("drop the keys");
            (c, r, Some(d))
        }
        "tantivy" => {
            let index = SearchIndex::open(dir.path().join("index"), &["account", "amount"])
                .await
                .expect("open the index");
            let c = rate(catch_up(AccountSearch, index.clone(), &store).await);
            let r = rate(rebuild(AccountSearch, index.clone(), &store).await);
            (c, r, None)
        }
        "sqlite" => {
            let sqlite = SqliteStore::open(dir.path().join(es_store_sqlite::DATABASE_FILE))
                .await
                .expect("open the SQLite file");
            sqlite.migrate().await.expect("migrate");
            let kv = SqliteKv::new(sqlite.clone(), NAME);
            let c = rate(catch_up(Balances(PhantomData), kv.clone(), &store).await);
            let r = rate(rebuild(Balances(PhantomData), kv.clone(), &store).await);
            let kv = SqliteKv::new(sqlite, "bench-per-event");
            let d = rate(catch_up(PerEvent(PhantomData), kv, &store).await);
            (c, r, Some(d))
        }
        other => panic!("unknown sink `{other}`"),
    };
    let peak_kb = peak_rss_kb();
    let (mut raw_rate, mut raw_one, mut raw_distinct) = (None, None, None);
    if raw {
        let all = deposits(&store).await;
        match sink {
            "redis" => {
                for distinct in [false, true] {
                    let prefix = format!("es-bench:raw:{run}:{distinct}:");
                    let measured = raw_redis(&all, redis_url, &prefix, distinct).await;
                    RedisKv::connect(redis_url, prefix)
                        .await
                        .expect("connect")
                        .drop_all()
                        .await
                        .expect("drop");
                    if distinct {
                        raw_distinct = Some(measured);
                    } else {
                        raw_rate = Some(measured);
                    }
                }
            }
            "tantivy" => {
                raw_rate = Some(raw_tantivy(&all, BATCH));
                raw_one = Some(raw_tantivy(&all, all.len().max(1)));
            }
            _ => {}
        }
    }
    let result = ChildResult {
        catch_up: catch_up_rate,
        rebuild: rebuild_rate,
        raw: raw_rate,
        raw_one,
        distinct,
        raw_distinct,
        peak_kb,
    };
    println!("{}", serde_json::to_string(&result).expect("json"));
}

/// Fills a store and runs every sink's child, interleaved.
pub(crate) async fn run(database_url: &str, redis_url: &str, plan: &Plan) -> (usize, Vec<Row>) {
    let store = PgStore::connect(database_url).await.expect("connect");
    progress(format_args!(
        "projections: writing {} events",
        plan.projection_events
    ));
    fill(&store, plan.projection_events).await;
    let mut rows: Vec<Row> = SINKS
        .iter()
        .map(|&sink| Row {
            sink,
            ..Row::default()
        })
        .collect();
    for repetition in 0..plan.repetitions {
        for row in &mut rows {
            progress(format_args!(
                "projections: {} (repetition {})",
                row.sink,
                repetition + 1
            ));
            let started = Instant::now();
            let output = tokio::process::Command::new(std::env::current_exe().expect("exe"))
                .args(["child-projection", row.sink, database_url, redis_url, "raw"])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .await
                .expect("run the child");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{}: {}\n{stdout}",
                row.sink,
                output.status
            );
            let result: ChildResult = stdout
                .lines()
                .find_map(|l| serde_json::from_str(l).ok())
                .unwrap_or_else(|| panic!("{}: no result in {stdout}", row.sink));
            row.catch_up.push(result.catch_up);
            row.rebuild.push(result.rebuild);
            for (samples, value) in [
                (&mut row.raw, result.raw),
                (&mut row.raw_one, result.raw_one),
                (&mut row.distinct, result.distinct),
                (&mut row.raw_distinct, result.raw_distinct),
            ] {
                if let Some(value) = value {
                    samples.push(value);
                }
            }
            row.peak_mb.push(result.peak_kb as f64 / 1024.0);
            progress(format_args!(
                "  {}: catch-up {:.0}/s, rebuild {:.0}/s, raw {:?}, peak {} MB, {:.0} s",
                row.sink,
                result.catch_up,
                result.rebuild,
                result.raw.map(|r| r.round()),
                result.peak_kb / 1024,
                started.elapsed().as_secs_f64()
            ));
        }
    }
    (plan.projection_events, rows)
}
