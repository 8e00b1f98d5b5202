//! The embedded store beside PostgreSQL, measured in one run: append
//! throughput (one writer, batches of 1, 10 and 100 events), commands per
//! second through `Repository::execute` (load, decide, append; one client,
//! deposits), and aggregate load latency (p50, p99) for streams of 10, 1 000
//! and 10 000 events without snapshots.
//!
//! `cargo bench -p es-tests --bench embedded` (needs PostgreSQL: see
//! `ES_TEST_DATABASE_URL`). SQLite runs twice, with the default
//! `Synchronous::Full` and with `Synchronous::Normal`, each on a fresh file in
//! the temporary directory; PostgreSQL on a fresh database of the test server.
//! Each figure is the median of five repetitions, interleaved across the
//! three stores so that drift hits all alike, with min and max. Prints a
//! Markdown table with the ratios SQLite / PostgreSQL.

use std::future::Future;
use std::time::{Duration, Instant};

use es_core::{
    Aggregate, AppendRequest, Bincode, Event, EventId, EventStore, ExpectedVersion, KeyStore,
    Metadata, NewEvent, Repository, SnapshotStore, StreamVersion, encode_events,
};
use es_store_sqlite::{SqliteStoreOptions, Synchronous};

const REPETITIONS: usize = 5;
/// Append batch sizes, and the events written per measurement of each: fewer
/// for single-event batches, which pay a commit (and, at `Full`, a sync) each.
const APPENDS: [(usize, usize); 3] = [(1, 600), (10, 3_000), (100, 10_000)];
/// Commands per measurement, round the accounts.
const COMMANDS: usize = 400;
/// Accounts the commands go to: each gets `COMMANDS / ACCOUNTS` deposits per
/// repetition, on streams of its own.
const ACCOUNTS: usize = 40;
/// Stream lengths loaded, and the loads timed per repetition for each.
const LOADS: [(usize, usize); 3] = [(10, 300), (1_000, 60), (10_000, 15)];

#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum AccountEvent {
    Deposited { amount: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// An account with a balance, no snapshots: a load replays every event.
#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "account")]
struct Account {
    balance: i64,
}

impl Aggregate for Account {
    type Command = i64;
    type Event = AccountEvent;
    type Error = Never;

    fn handle(&self, amount: i64) -> Result<Vec<AccountEvent>, Never> {
        Ok(vec![AccountEvent::Deposited { amount }])
    }

    fn apply(&mut self, event: &AccountEvent) {
        let AccountEvent::Deposited { amount } = event;
        self.balance += amount;
    }
}

/// A store under measurement.
trait Store: EventStore + SnapshotStore + KeyStore + Clone + Send + Sync + 'static {}
impl<S: EventStore + SnapshotStore + KeyStore + Clone + Send + Sync + 'static> Store for S {}

/// One store's samples: per figure, one value per repetition.
#[derive(Default)]
struct Samples {
    /// Events/s per append batch size.
    append: [Vec<f64>; 3],
    /// Commands/s.
    commands: Vec<f64>,
    /// Load latency in ms, per stream length.
    load_p50: [Vec<f64>; 3],
    load_p99: [Vec<f64>; 3],
}

/// `count` deposits, encoded as the repository would.
async fn deposits<S: Store>(store: &S, count: usize) -> Vec<NewEvent> {
    let events: Vec<AccountEvent> = (0..count)
        .map(|i| AccountEvent::Deposited {
            amount: i64::try_from(i % 1_000).unwrap_or(0) + 1,
        })
        .collect();
    let ids: Vec<(EventId, &AccountEvent)> = events.iter().map(|e| (EventId::new(), e)).collect();
    let payloads = encode_events(None, store, &Bincode, &ids)
        .await
        .expect("encode");
    ids.iter()
        .zip(payloads)
        .map(|((event_id, event), payload)| NewEvent {
            event_id: *event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload,
            metadata: Metadata::now(),
        })
        .collect()
}

/// Appends `events` to the account `id` in batches of `size`, each at the
/// exact expected version; the time taken.
async fn append<S: Store>(store: &S, id: &str, events: Vec<NewEvent>, size: usize) -> Duration {
    let stream = Repository::<Account, S>::stream_id(id).expect("stream id");
    let mut version = StreamVersion::INITIAL;
    let mut batches = Vec::new();
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        batches.push(events.by_ref().take(size).collect::<Vec<_>>());
    }
    let started = Instant::now();
    for batch in batches {
        let done = store
            .append(AppendRequest::new(
                stream.clone(),
                ExpectedVersion::Exact(version),
                batch,
            ))
            .await
            .expect("append");
        version = done.version;
    }
    started.elapsed()
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

/// Fills the streams that the load measurements read.
async fn prepare_loads<S: Store>(store: &S) {
    for (length, _) in LOADS {
        let events = deposits(store, length).await;
        append(store, &format!("load-{length}"), events, 1_000).await;
    }
}

/// The `p`th percentile (nearest rank) of sorted samples, in milliseconds.
fn percentile(sorted: &[Duration], p: usize) -> f64 {
    let rank = (p * sorted.len()).div_ceil(100);
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1_000.0
}

/// One repetition of every figure on `store`.
async fn measure<S: Store>(store: &S, run: usize, samples: &mut Samples) {
    for (i, (size, count)) in APPENDS.into_iter().enumerate() {
        let events = deposits(store, count).await;
        let took = append(store, &format!("append-{run}-{size}"), events, size).await;
        samples.append[i].push(rate(count, took));
    }

    let repo = Repository::<Account, S>::new(store.clone());
    let started = Instant::now();
    for c in 0..COMMANDS {
        let amount = i64::try_from(c).unwrap_or(0) + 1;
        repo.execute(&format!("cmd-{run}-{}", c % ACCOUNTS), amount)
            .await
            .expect("execute");
    }
    samples.commands.push(rate(COMMANDS, started.elapsed()));

    for (i, (length, loads)) in LOADS.into_iter().enumerate() {
        let id = format!("load-{length}");
        let mut took = Vec::with_capacity(loads);
        for _ in 0..loads {
            let started = Instant::now();
            let loaded = repo.load(&id).await.expect("load");
            took.push(started.elapsed());
            assert_eq!(
                loaded.version,
                StreamVersion::new(u64::try_from(length).unwrap_or(0))
            );
        }
        took.sort();
        samples.load_p50[i].push(percentile(&took, 50));
        samples.load_p99[i].push(percentile(&took, 99));
    }
}

/// Median, min and max.
fn stats(samples: &[f64]) -> (f64, f64, f64) {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}

fn cell(samples: &[f64], decimals: usize) -> String {
    let (median, min, max) = stats(samples);
    format!("{median:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

fn ratio(sqlite: &[f64], postgres: &[f64]) -> String {
    format!("{:.2}", stats(sqlite).0 / stats(postgres).0)
}

/// Prints one row: the figure, the three stores, and the ratios of the two
/// SQLite settings to PostgreSQL.
fn row(figure: &str, decimals: usize, [full, normal, pg]: [&[f64]; 3]) {
    println!(
        "| {figure} | {} | {} | {} | {} | {} |",
        cell(full, decimals),
        cell(normal, decimals),
        cell(pg, decimals),
        ratio(full, pg),
        ratio(normal, pg),
    );
}

async fn timed<T>(what: &str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = work.await;
    eprintln!("{what}: {:.1} s", started.elapsed().as_secs_f64());
    out
}

#[tokio::main]
async fn main() {
    let full = es_store_sqlite::testing::fresh_store().await;
    let normal = es_store_sqlite::testing::fresh_store_with(&SqliteStoreOptions {
        synchronous: Synchronous::Normal,
        ..SqliteStoreOptions::default()
    })
    .await;
    let pg = es_store_postgres::testing::fresh_store().await;

    timed("prepare", async {
        prepare_loads(&full).await;
        prepare_loads(&normal).await;
        prepare_loads(&pg).await;
    })
    .await;
    // Warm up every path (connections, statement caches, page cache); the
    // samples are dropped.
    timed("warm-up", async {
        let mut warm = Samples::default();
        measure(&full, 99, &mut warm).await;
        measure(&normal, 99, &mut warm).await;
        measure(&pg, 99, &mut warm).await;
    })
    .await;
    let (mut f, mut n, mut p) = (Samples::default(), Samples::default(), Samples::default());
    for run in 0..REPETITIONS {
        timed(&format!("repetition {run}"), async {
            measure(&full, run, &mut f).await;
            measure(&normal, run, &mut n).await;
            measure(&pg, run, &mut p).await;
        })
        .await;
    }

    println!(
        "| figure | SQLite `Full` | SQLite `Normal` | PostgreSQL | `Full` / PG | `Normal` / PG |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (i, (size, _)) in APPENDS.into_iter().enumerate() {
        row(
            &format!("append, batches of {size} (events/s)"),
            0,
            [&f.append[i], &n.append[i], &p.append[i]],
        );
    }
    row(
        "`Repository::execute`, deposits (commands/s)",
        0,
        [&f.commands, &n.commands, &p.commands],
    );
    for (i, (length, _)) in LOADS.into_iter().enumerate() {
        row(
            &format!("load, {length} events, p50 (ms)"),
            2,
            [&f.load_p50[i], &n.load_p50[i], &p.load_p50[i]],
        );
        row(
            &format!("load, {length} events, p99 (ms)"),
            2,
            [&f.load_p99[i], &n.load_p99[i], &p.load_p99[i]],
        );
    }
    println!();
    println!(
        "Throughput ratios above 1 favour SQLite; latency ratios below 1 do. One writer, one \
         client; {REPETITIONS} interleaved repetitions, median (min–max); {} cores.",
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
}
