//! Projection throughput: events per second projected by a `Runner` into
//! `RedisKv` and `SearchIndex`, against the raw client (a `redis::pipe()`,
//! a tantivy `IndexWriter`) doing the same writes, measured side by side in one
//! run.
//!
//! `cargo bench -p es-projections --bench projections --features redis,tantivy`
//! (needs Redis: `ES_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//! `ES_BENCH_EVENTS` sets the number of events (default 100 000). The events
//! are appended to a `MemoryStore` up front, so the event store is not what is
//! measured. The raw side writes from the events already in memory (no read,
//! no decode). Prints a Markdown table; each figure is the median of three
//! interleaved repetitions, with min and max.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, Bincode, Event, EventId, EventStore, ExpectedVersion, MemoryStore, Metadata,
    NewEvent, StreamId,
};
use es_projections::{
    Change, KvBatch, MemoryDeadLetters, MemoryKv, Projection, ProjectionError, RedisKv, Runner,
    RunnerOptions, SearchBatch, SearchIndex, Step,
};
use tantivy::schema::{STORED, STRING, Schema, TEXT};
use tantivy::{Index, IndexWriter, TantivyDocument, Term};

const REPETITIONS: usize = 3;
/// Account streams the deposits are spread over.
const ACCOUNTS: usize = 1_000;
/// Events per runner batch, per Redis pipeline and per tantivy commit.
const BATCH: usize = 1_000;
/// The tantivy writer's indexing memory, as `SearchIndex` uses.
const WRITER_MEMORY: usize = 50_000_000;

#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum AccountEvent {
    Deposited { amount: i64 },
}

/// One deposit as the raw side sees it: already in memory.
struct Deposit {
    stream: String,
    amount: i64,
}

/// The last deposit and the balance of each account, on a key-value sink.
struct Balances<S>(PhantomData<fn() -> S>);

impl<S> Balances<S> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

fn balance_writes(change: &Change<'_, AccountEvent>, writes: &mut KvBatch) {
    if let Change::Event {
        event: AccountEvent::Deposited { amount },
        meta,
    } = change
    {
        writes
            .set(
                format!("account:{}:last", meta.stream_id),
                amount.to_string(),
            )
            .incr_by(format!("account:{}:balance", meta.stream_id), *amount);
    }
}

impl Projection for Balances<RedisKv> {
    type Event = AccountEvent;
    type Sink = RedisKv;

    fn name(&self) -> &str {
        "bench-balances"
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        balance_writes(&change, writes);
        Ok(())
    }
}

impl Projection for Balances<MemoryKv> {
    type Event = AccountEvent;
    type Sink = MemoryKv;

    fn name(&self) -> &str {
        "bench-balances"
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        balance_writes(&change, writes);
        Ok(())
    }
}

/// One document per account: its stream and last deposit.
struct AccountSearch;

impl Projection for AccountSearch {
    type Event = AccountEvent;
    type Sink = SearchIndex;

    fn name(&self) -> &str {
        "bench-search"
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
            writes.upsert(
                id.clone(),
                std::iter::empty::<String>(),
                [("account", id), ("amount", amount.to_string())],
            );
        }
        Ok(())
    }
}

fn events() -> usize {
    std::env::var("ES_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000)
}

fn redis_url() -> String {
    std::env::var("ES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// Appends `n` deposits round-robin over the accounts; returns them as the raw
/// side sees them.
async fn fill(store: &MemoryStore, n: usize) -> Vec<Deposit> {
    let mut deposits = Vec::with_capacity(n);
    for i in 0..n {
        let stream = format!("account-{}", i % ACCOUNTS);
        let amount = i64::try_from(i % 997).expect("small") + 1;
        let event = AccountEvent::Deposited { amount };
        store
            .append(AppendRequest::new(
                StreamId::new(stream.clone()).expect("stream id"),
                ExpectedVersion::Any,
                vec![NewEvent {
                    event_id: EventId::new(),
                    event_type: event.event_type().into(),
                    schema_version: event.schema_version(),
                    payload: event.encode(&Bincode).expect("encode"),
                    metadata: Metadata::now(),
                }],
            ))
            .await
            .expect("append");
        deposits.push(Deposit { stream, amount });
    }
    deposits
}

fn options() -> RunnerOptions {
    RunnerOptions {
        batch_size: BATCH,
        ..RunnerOptions::default()
    }
}

/// Steps `runner` until the log is exhausted; returns the time and the events
/// applied.
async fn drain<P: Projection>(runner: &mut Runner<P, MemoryStore>) -> (Duration, usize) {
    let started = Instant::now();
    let mut applied = 0;
    loop {
        match runner.step().await.expect("step") {
            Step::Idle => return (started.elapsed(), applied),
            Step::Committed { applied: a, .. } => applied += a,
        }
    }
}

async fn runner_redis(store: &MemoryStore, url: &str, run: &str, n: usize) -> Duration {
    let kv = RedisKv::connect(
        url,
        format!("es-bench:{}:runner:{run}:", std::process::id()),
    )
    .await
    .expect("connect to redis");
    let mut runner = Runner::new(
        Balances::<RedisKv>::new(),
        kv.clone(),
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_options(options());
    let (elapsed, applied) = drain(&mut runner).await;
    assert_eq!(applied, n);
    kv.drop_all().await.expect("drop the runner's keys");
    elapsed
}

async fn raw_redis(deposits: &[Deposit], url: &str, run: &str) -> Duration {
    let prefix = format!("es-bench:{}:raw:{run}:", std::process::id());
    let client = redis::Client::open(url).expect("redis url");
    let mut connection = redis::aio::ConnectionManager::new(client)
        .await
        .expect("connect to redis");
    let started = Instant::now();
    for chunk in deposits.chunks(BATCH) {
        let mut pipe = redis::pipe();
        for d in chunk {
            pipe.set(
                format!("{prefix}account:{}:last", d.stream),
                d.amount.to_string(),
            )
            .ignore()
            .incr(format!("{prefix}account:{}:balance", d.stream), d.amount)
            .ignore();
        }
        let () = pipe
            .query_async(&mut connection)
            .await
            .expect("raw pipeline");
    }
    let elapsed = started.elapsed();
    // The same cleanup as the runner's side, outside the timing.
    RedisKv::connect(url, prefix)
        .await
        .expect("connect to redis")
        .drop_all()
        .await
        .expect("drop the raw keys");
    elapsed
}

async fn runner_search(store: &MemoryStore, n: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let index = SearchIndex::open(dir.path(), &["account", "amount"])
        .await
        .expect("open the index");
    let mut runner = Runner::new(
        AccountSearch,
        index,
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_options(options());
    let (elapsed, applied) = drain(&mut runner).await;
    assert_eq!(applied, n);
    elapsed
}

fn raw_search(deposits: &[Deposit]) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut builder = Schema::builder();
    let id = builder.add_text_field("id", STRING | STORED);
    let _subject = builder.add_text_field("subject", STRING);
    let account = builder.add_text_field("account", TEXT | STORED);
    let amount = builder.add_text_field("amount", TEXT | STORED);
    let index = Index::create_in_dir(dir.path(), builder.build()).expect("create the index");
    let mut writer: IndexWriter = index
        .writer_with_num_threads(1, WRITER_MEMORY)
        .expect("index writer");
    let started = Instant::now();
    for chunk in deposits.chunks(BATCH) {
        for d in chunk {
            writer.delete_term(Term::from_field_text(id, &d.stream));
            let mut doc = TantivyDocument::default();
            doc.add_text(id, &d.stream);
            doc.add_text(account, &d.stream);
            doc.add_text(amount, d.amount.to_string());
            writer.add_document(doc).expect("add a document");
        }
        writer.commit().expect("commit");
    }
    // Background merges are part of the work (the sink merges inside commit).
    writer.wait_merging_threads().expect("merges");
    started.elapsed()
}

fn stats(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn row(sink: &str, ours: Vec<f64>, theirs: Vec<f64>) {
    let (o, omin, omax) = stats(ours);
    let (r, rmin, rmax) = stats(theirs);
    println!(
        "| {sink} | {o:.0} ({omin:.0}–{omax:.0}) | {r:.0} ({rmin:.0}–{rmax:.0}) | {:.2} |",
        o / r
    );
}

/// The process's peak resident set (`VmHWM`), as /proc gives it.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::main]
async fn main() {
    let n = events();
    let url = redis_url();
    let store = MemoryStore::new();
    let deposits = fill(&store, n).await;
    eprintln!(
        "{n} events over {ACCOUNTS} accounts appended; peak RSS {}",
        peak_rss()
    );

    println!("| sink | runner (events/s) | raw (events/s) | ratio |");
    println!("| --- | ---: | ---: | ---: |");

    // Warm up both paths (connections, script load, page cache).
    runner_redis(&store, &url, "warm", n).await;
    raw_redis(&deposits, &url, "warm").await;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..REPETITIONS {
        // Interleave so that drift hits both sides alike.
        let t = runner_redis(&store, &url, &run.to_string(), n).await;
        ours.push(rate(n, t));
        let t = raw_redis(&deposits, &url, &run.to_string()).await;
        theirs.push(rate(n, t));
    }
    row("Redis (`RedisKv`)", ours, theirs);

    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..REPETITIONS {
        let t = runner_search(&store, n).await;
        ours.push(rate(n, t));
        let t = raw_search(&deposits);
        theirs.push(rate(n, t));
    }
    row("tantivy (`SearchIndex`)", ours, theirs);

    // Where the runner's time goes: the same projection into `MemoryKv` is
    // read + decode + apply + batching, with no IO.
    let mut memory = Vec::new();
    for _ in 0..REPETITIONS {
        let mut runner = Runner::new(
            Balances::<MemoryKv>::new(),
            MemoryKv::new(),
            store.clone(),
            Arc::new(MemoryDeadLetters::new()),
        )
        .with_options(options());
        let (t, applied) = drain(&mut runner).await;
        assert_eq!(applied, n);
        memory.push(rate(n, t));
    }
    let (m, mmin, mmax) = stats(memory);
    println!();
    println!(
        "Runner into `MemoryKv` (read, decode, apply, no IO): {m:.0} ({mmin:.0}–{mmax:.0}) events/s."
    );
    println!(
        "{n} events over {ACCOUNTS} accounts; peak RSS (VmHWM): {}.",
        peak_rss()
    );
}
