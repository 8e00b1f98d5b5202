//! Rebuild throughput: events per second a `Rebuild` reads into a new
//! generation of each sink, from an empty sink, with the peak memory of the
//! process that did it.
//!
//! `cargo bench -p es-projections --bench rebuild --features redis,tantivy`
//! (needs Redis: `ES_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//! `ES_BENCH_EVENTS` sets the number of events (default 1 000 000),
//! `ES_BENCH_REPS` the repetitions (default 3) and `ES_BENCH_BUDGET_SECS` the
//! time budget (default 360 s): every sink runs once, then a sink runs again
//! only while its last run still fits in the budget, so slow sinks may have
//! fewer runs (the table says how many).
//!
//! Each measurement runs in a child process (this executable again, with
//! `ES_BENCH_REBUILD_SINK` naming the sink), so that its peak resident set
//! (`VmHWM`) is that sink's alone. The child appends the deposits to its own
//! `MemoryStore` (not measured), runs `Rebuild::run` of a balance projection
//! into the sink, and prints one `rebuild-result` line; the parent runs the
//! sinks in turn, repetition after repetition, and prints a Markdown table of
//! the median with min and max.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, Bincode, Event, EventId, EventStore, ExpectedVersion, MemoryStore, Metadata,
    NewEvent, StreamId,
};
use es_projections::{
    Change, Generations, KvBatch, KvSink, MemoryDeadLetters, MemoryKv, Projection, ProjectionError,
    RedisKv, Runner, RunnerOptions, SearchBatch, SearchIndex,
};
use es_store_sqlite::{SqliteKv, SqliteStore};

/// The environment variable that makes this executable a child measuring one
/// sink.
const CHILD: &str = "ES_BENCH_REBUILD_SINK";
/// The sinks, in the order they run and are reported.
const SINKS: [&str; 4] = ["redis", "tantivy", "sqlite", "memory"];
/// Account streams the deposits are spread over.
const ACCOUNTS: usize = 10_000;
/// Events per append when filling the store.
const PER_APPEND: usize = 10;
/// Events per runner batch (one sink commit each).
const BATCH: usize = 1_000;
/// The projection's name.
const NAME: &str = "bench-rebuild";

#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum AccountEvent {
    Deposited { amount: i64 },
}

/// Per deposit: the account's balance (`incr_by`) and its last deposit
/// (`set`), on any key-value sink.
struct Balances<S>(PhantomData<fn() -> S>);

impl<S> Balances<S> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

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

/// One document per account, upserted per deposit: its stream and last
/// deposit.
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
            writes.upsert(
                id.clone(),
                std::iter::empty::<String>(),
                [("account", id), ("amount", amount.to_string())],
            );
        }
        Ok(())
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn redis_url() -> String {
    std::env::var("ES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// The `n`-th deposit of `account`.
fn amount(account: usize, n: usize) -> i64 {
    i64::try_from((account * 31 + n) % 997).expect("small") + 1
}

/// Appends `n` deposits spread evenly over the accounts, `PER_APPEND` per
/// append, the accounts taking turns; returns the first account's balance.
async fn fill(store: &MemoryStore, n: usize) -> i64 {
    let accounts = ACCOUNTS.min(n);
    let count = |account: usize| n / accounts + usize::from(account < n % accounts);
    let streams: Vec<StreamId> = (0..accounts)
        .map(|a| StreamId::new(format!("account-{a}")).expect("stream id"))
        .collect();
    let mut balance = 0;
    for round in 0..count(0).div_ceil(PER_APPEND) {
        for (account, stream) in streams.iter().enumerate() {
            let first = round * PER_APPEND;
            let last = count(account).min(first + PER_APPEND);
            if first >= last {
                continue;
            }
            let events = (first..last)
                .map(|i| {
                    let event = AccountEvent::Deposited {
                        amount: amount(account, i),
                    };
                    if account == 0 {
                        balance += amount(account, i);
                    }
                    NewEvent {
                        event_id: EventId::new(),
                        event_type: event.event_type().into(),
                        schema_version: event.schema_version(),
                        payload: event.encode(&Bincode).expect("encode"),
                        metadata: Metadata::now(),
                    }
                })
                .collect();
            store
                .append(AppendRequest::new(
                    stream.clone(),
                    ExpectedVersion::Any,
                    events,
                ))
                .await
                .expect("append");
        }
    }
    balance
}

/// The process's peak resident set (`VmHWM`) in kB.
fn peak_rss_kb() -> u64 {
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

/// Rebuilds `projection` into a new generation of `sink` (from an empty
/// sink); returns the events read and the time `Rebuild::run` took.
async fn rebuild<P>(projection: P, sink: P::Sink, store: MemoryStore) -> (u64, Duration)
where
    P: Projection,
    P::Sink: Generations,
{
    let live = sink.live_generation().await.expect("live generation");
    let runner = Runner::new(
        projection,
        sink.clone(),
        store,
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_options(options());
    let started = Instant::now();
    let report = runner.rebuild().run().await.expect("rebuild");
    let elapsed = started.elapsed();
    assert!(report.to > live && !report.resumed, "{report:?}");
    assert_eq!(
        sink.live_generation().await.expect("live generation"),
        report.to
    );
    (report.read, elapsed)
}

fn options() -> RunnerOptions {
    RunnerOptions {
        batch_size: BATCH,
        ..RunnerOptions::default()
    }
}

/// Checks the first account's balance in a key-value sink after the rebuild.
async fn check_balance(kv: &impl KvSink, expected: i64) {
    let stored = kv.get("account:account-0:balance").await.expect("get");
    assert_eq!(stored, Some(expected.to_string()));
}

/// The child: fills its store, rebuilds into `sink`, prints one result line.
fn child(sink: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let n = env_number("ES_BENCH_EVENTS", 1_000_000);
        let store = MemoryStore::new();
        let balance = fill(&store, n).await;
        let filled_kb = peak_rss_kb();
        let (read, elapsed) = match sink {
            "memory" => {
                let kv = MemoryKv::new();
                let measured = rebuild(Balances::new(), kv.clone(), store).await;
                check_balance(&kv, balance).await;
                measured
            }
            "redis" => {
                let prefix = format!(
                    "es-bench:rebuild:{}:{}:",
                    std::process::id(),
                    EventId::new()
                );
                let kv = RedisKv::connect(&redis_url(), prefix)
                    .await
                    .expect("connect to redis");
                let measured = rebuild(Balances::new(), kv.clone(), store).await;
                check_balance(&kv, balance).await;
                kv.drop_all().await.expect("drop the keys");
                measured
            }
            "sqlite" => {
                let dir = tempfile::tempdir().expect("temp dir");
                let sqlite = SqliteStore::open(dir.path().join(es_store_sqlite::DATABASE_FILE))
                    .await
                    .expect("open the SQLite store");
                sqlite.migrate().await.expect("migrate");
                let kv = SqliteKv::new(sqlite, NAME);
                let measured = rebuild(Balances::new(), kv.clone(), store).await;
                check_balance(&kv, balance).await;
                measured
            }
            "tantivy" => {
                let dir = tempfile::tempdir().expect("temp dir");
                let index = SearchIndex::open(dir.path(), &["account", "amount"])
                    .await
                    .expect("open the index");
                let measured = rebuild(AccountSearch, index.clone(), store).await;
                assert!(index.get("account-0").await.expect("get").is_some());
                measured
            }
            other => panic!("unknown sink `{other}` (one of {SINKS:?})"),
        };
        println!(
            "rebuild-result sink={sink} events={n} read={read} seconds={:.6} filled_kb={filled_kb} peak_kb={}",
            elapsed.as_secs_f64(),
            peak_rss_kb()
        );
    });
}

/// One child's result.
#[derive(Debug)]
struct Measure {
    read: u64,
    seconds: f64,
    filled_kb: u64,
    peak_kb: u64,
}

impl Measure {
    fn parse(line: &str) -> Option<Self> {
        let fields: BTreeMap<&str, &str> = line
            .strip_prefix("rebuild-result ")?
            .split_whitespace()
            .filter_map(|f| f.split_once('='))
            .collect();
        Some(Self {
            read: fields.get("read")?.parse().ok()?,
            seconds: fields.get("seconds")?.parse().ok()?,
            filled_kb: fields.get("filled_kb")?.parse().ok()?,
            peak_kb: fields.get("peak_kb")?.parse().ok()?,
        })
    }

    fn rate(&self) -> f64 {
        self.read as f64 / self.seconds
    }
}

/// Runs this executable as a child measuring `sink`.
fn measure(sink: &str) -> Measure {
    let output = Command::new(std::env::current_exe().expect("current exe"))
        .env(CHILD, sink)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{sink}: {}\n{stdout}",
        output.status
    );
    stdout
        .lines()
        .find_map(Measure::parse)
        .unwrap_or_else(|| panic!("{sink}: no result line in\n{stdout}"))
}

/// Median, min and max.
fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    let median = if values.len().is_multiple_of(2) {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    };
    (median, values[0], values[values.len() - 1])
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn label(sink: &str) -> &'static str {
    match sink {
        "redis" => "Redis (`RedisKv`)",
        "tantivy" => "tantivy (`SearchIndex`)",
        "sqlite" => "SQLite key-value (`SqliteKv`)",
        _ => "in memory (`MemoryKv`)",
    }
}

fn main() {
    if let Ok(sink) = std::env::var(CHILD) {
        child(&sink);
        return;
    }
    let n = env_number("ES_BENCH_EVENTS", 1_000_000);
    let repetitions = env_number("ES_BENCH_REPS", 3);
    let budget = Duration::from_secs(env_number("ES_BENCH_BUDGET_SECS", 360) as u64);
    let started = Instant::now();
    let mut results: BTreeMap<&str, Vec<Measure>> = BTreeMap::new();
    let mut last_run: BTreeMap<&str, Duration> = BTreeMap::new();
    for repetition in 1..=repetitions {
        for sink in SINKS {
            // After the first round, a sink runs again only if its last run
            // (setup included) still fits in the budget.
            if repetition > 1 && started.elapsed() + last_run[sink] > budget {
                eprintln!("repetition {repetition}/{repetitions}: {sink}: skipped (time budget)");
                continue;
            }
            let run = Instant::now();
            let m = measure(sink);
            last_run.insert(sink, run.elapsed());
            assert_eq!(m.read, n as u64, "{sink}: events read");
            eprintln!(
                "repetition {repetition}/{repetitions}: {sink}: {:.0} events/s ({:.1} s), peak RSS {:.0} MB (after filling the store {:.0} MB); child ran {:.1} s",
                m.rate(),
                m.seconds,
                mb(m.peak_kb),
                mb(m.filled_kb),
                last_run[sink].as_secs_f64()
            );
            results.entry(sink).or_default().push(m);
        }
    }
    println!();
    println!(
        "| sink | events | runs | events/s median [min–max] | peak RSS MB median [min–max] | RSS after filling the store MB |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for sink in SINKS {
        let measures = &results[sink];
        let (rate, rate_min, rate_max) = stats(measures.iter().map(Measure::rate).collect());
        let (peak, peak_min, peak_max) = stats(measures.iter().map(|m| mb(m.peak_kb)).collect());
        let (filled, _, _) = stats(measures.iter().map(|m| mb(m.filled_kb)).collect());
        println!(
            "| {} | {n} | {} | {rate:.0} [{rate_min:.0}–{rate_max:.0}] | {peak:.0} [{peak_min:.0}–{peak_max:.0}] | {filled:.0} |",
            label(sink),
            measures.len()
        );
    }
    println!();
    println!(
        "Up to {repetitions} repetitions within a {} s budget, {ACCOUNTS} accounts, batch size {BATCH}; whole run {:.0} s.",
        budget.as_secs(),
        started.elapsed().as_secs_f64()
    );
}
