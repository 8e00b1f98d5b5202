//! A rebuild process killed with SIGKILL at random points, for each sink: the
//! live generation stays intact after every kill, and a rerun resumes,
//! completes, and builds the same model.
//!
//! The event store is an SQLite file that the test and its children share.
//! The children are this test binary itself, started with `ES_KILL_CHILD` set
//! and running only [`rebuild_child`]. Redis is the test Redis
//! (`ES_TEST_REDIS_URL`).
#![cfg(all(feature = "redis", feature = "tantivy"))]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use es_core::{Aggregate, EventStore, Generations, KvBatch, KvSink, Repository, Sink};
use es_projections::{
    Change, MemoryDeadLetters, Projection, ProjectionError, RedisKv, Runner, RunnerOptions,
    SearchBatch, SearchIndex, Step,
};
use es_store_sqlite::SqliteStore;
use rand::Rng;

/// Selects the child's role; unset in a normal run.
const CHILD_ENV: &str = "ES_KILL_CHILD";
/// The data directory of the shared store (and the index).
const DIR_ENV: &str = "ES_KILL_DIR";
/// The Redis prefix.
const PREFIX_ENV: &str = "ES_KILL_PREFIX";
/// Lines a child reports progress on.
const PROGRESS: &str = "rebuild-progress";

const ACCOUNTS: u32 = 60;
const DEPOSITS: u32 = 12;

#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum Ledger {
    Deposited { amount: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "account")]
struct Account;

impl Aggregate for Account {
    type Command = i64;
    type Event = Ledger;
    type Error = Never;

    fn handle(&self, amount: i64) -> Result<Vec<Ledger>, Never> {
        Ok(vec![Ledger::Deposited { amount }])
    }

    fn apply(&mut self, _: &Ledger) {}
}

/// Balances by account, with `IncrBy`: an event applied twice shows.
struct Balances<S>(std::marker::PhantomData<fn() -> S>);

impl<S: Sink<Batch = KvBatch> + 'static> Projection for Balances<S> {
    type Event = Ledger;
    type Sink = S;

    fn name(&self) -> &str {
        "balances"
    }

    fn apply(
        &self,
        change: Change<'_, Ledger>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        if let Change::Event {
            event: Ledger::Deposited { amount },
            meta,
        } = change
        {
            writes.incr_by(format!("{}:balance", meta.stream_id), *amount);
        }
        Ok(())
    }
}

/// One document per deposit, searchable by its account.
struct Deposits;

impl Projection for Deposits {
    type Event = Ledger;
    type Sink = SearchIndex;

    fn name(&self) -> &str {
        "deposits"
    }

    fn apply(
        &self,
        change: Change<'_, Ledger>,
        writes: &mut SearchBatch,
    ) -> Result<(), ProjectionError> {
        if let Change::Event {
            event: Ledger::Deposited { amount },
            meta,
        } = change
        {
            writes.upsert(
                meta.event_id.to_string(),
                Vec::<String>::new(),
                [
                    ("account", meta.stream_id.to_string()),
                    ("amount", amount.to_string()),
                ],
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Redis,
    Tantivy,
}

impl Kind {
    fn parse(text: &str) -> Self {
        match text {
            "sqlite" => Self::Sqlite,
            "redis" => Self::Redis,
            "tantivy" => Self::Tantivy,
            other => panic!("unknown sink {other}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Redis => "redis",
            Self::Tantivy => "tantivy",
        }
    }
}

/// Batches of 13 however far behind (no catch-up growth): the kills land
/// between many commits.
fn options() -> RunnerOptions {
    RunnerOptions {
        batch_size: 13,
        catch_up_batch_size: 13,
        ..RunnerOptions::default()
    }
}

fn redis_url() -> String {
    std::env::var("ES_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

async fn open_store(dir: &Path) -> SqliteStore {
    let store = SqliteStore::open_in(dir).await.expect("open the store");
    store.migrate().await.expect("migrate");
    store
}

async fn redis(prefix: &str) -> RedisKv {
    RedisKv::connect(&redis_url(), prefix)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach Redis at {}: start one (`redis-server`, or `bash .ci/services`) or \
             point ES_TEST_REDIS_URL at one: {e}",
                redis_url()
            )
        })
}

/// What a sink's model holds, comparable across generations: key-value
/// entries, or each account's deposits found by search.
async fn model(
    kind: Kind,
    store: &SqliteStore,
    dir: &Path,
    prefix: &str,
) -> BTreeMap<String, String> {
    match kind {
        Kind::Sqlite => es_store_sqlite::SqliteKv::new(store.clone(), "balances")
            .entries()
            .await
            .unwrap(),
        Kind::Redis => redis(prefix).await.entries().await.unwrap(),
        Kind::Tantivy => {
            let index = SearchIndex::open(dir.join("index"), &["account", "amount"])
                .await
                .unwrap();
            let mut found = BTreeMap::new();
            let events = store
                .read_all(es_core::Checkpoint::START, 100_000)
                .await
                .unwrap();
            for event in events {
                let id = event.event_id.to_string();
                let fields = index.get(&id).await.unwrap().unwrap_or_default();
                found.insert(id, format!("{fields:?}"));
            }
            found
        }
    }
}

async fn live_generation(kind: Kind, store: &SqliteStore, dir: &Path, prefix: &str) -> u64 {
    match kind {
        Kind::Sqlite => es_store_sqlite::SqliteKv::new(store.clone(), "balances")
            .live_generation()
            .await
            .unwrap(),
        Kind::Redis => redis(prefix).await.live_generation().await.unwrap(),
        Kind::Tantivy => SearchIndex::open(dir.join("index"), &["account", "amount"])
            .await
            .unwrap()
            .live_generation()
            .await
            .unwrap(),
    }
}

/// Builds the live generation (`rebuild: false`) or rebuilds, printing a
/// progress line after every batch.
async fn build(kind: Kind, store: &SqliteStore, dir: &Path, prefix: &str, rebuild: bool) -> bool {
    let letters = Arc::new(MemoryDeadLetters::new());
    let report = |read: u64| {
        println!("{PROGRESS} {read}");
    };
    macro_rules! go {
        ($projection:expr, $sink:expr) => {{
            let runner =
                Runner::new($projection, $sink, store.clone(), letters).with_options(options());
            if rebuild {
                runner
                    .rebuild()
                    .on_progress(move |p| report(p.read))
                    .run()
                    .await
                    .expect("rebuild")
                    .resumed
            } else {
                let mut runner = runner;
                while runner.step().await.expect("step") != Step::Idle {}
                false
            }
        }};
    }
    match kind {
        Kind::Sqlite => go!(
            Balances(std::marker::PhantomData),
            es_store_sqlite::SqliteKv::new(store.clone(), "balances")
        ),
        Kind::Redis => go!(Balances(std::marker::PhantomData), redis(prefix).await),
        Kind::Tantivy => go!(
            Deposits,
            SearchIndex::open(dir.join("index"), &["account", "amount"])
                .await
                .unwrap()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the entry point of the rebuild child processes that the other tests in this file \
            spawn and kill; run by them with --ignored"]
async fn rebuild_child() {
    let Ok(kind) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_ENV).expect("dir"));
    let prefix = std::env::var(PREFIX_ENV).expect("prefix");
    let store = open_store(&dir).await;
    build(Kind::parse(&kind), &store, &dir, &prefix, true).await;
}

async fn killed_rebuilds_leave_the_live_generation_and_resume(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("es-test:kill:{:016x}:", rand::rng().random::<u64>());
    let store = open_store(dir.path()).await;
    let repo: Repository<Account, SqliteStore> = Repository::new(store.clone());
    for d in 1..=DEPOSITS {
        for a in 0..ACCOUNTS {
            repo.execute(&a.to_string(), i64::from(a * 100 + d))
                .await
                .unwrap();
        }
    }
    build(kind, &store, dir.path(), &prefix, false).await;
    let live = model(kind, &store, dir.path(), &prefix).await;
    let expected = if kind == Kind::Tantivy {
        ACCOUNTS * DEPOSITS
    } else {
        ACCOUNTS
    };
    assert_eq!(live.len(), expected as usize);
    assert!(
        live.values().all(|v| v != "[]"),
        "{kind:?}: every document is indexed"
    );

    let batches = (ACCOUNTS * DEPOSITS).div_ceil(13);
    let mut kills = 0;
    for _ in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["rebuild_child", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_ENV, kind.name())
            .env(DIR_ENV, dir.path())
            .env(PREFIX_ENV, &prefix)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let kill_after = rand::rng().random_range(1..batches / 3);
        let mut seen = 0;
        for line in stdout.lines() {
            if line.unwrap().starts_with(PROGRESS) {
                seen += 1;
                if seen == kill_after {
                    child.kill().unwrap();
                    kills += 1;
                    break;
                }
            }
        }
        child.wait().unwrap();
        assert_eq!(
            live_generation(kind, &store, dir.path(), &prefix).await,
            1,
            "{kind:?}: a killed rebuild switched"
        );
        assert_eq!(
            model(kind, &store, dir.path(), &prefix).await,
            live,
            "{kind:?}: the live generation changed under a killed rebuild"
        );
    }
    assert!(kills > 0, "{kind:?}: no child was killed mid-rebuild");

    let resumed = build(kind, &store, dir.path(), &prefix, true).await;
    assert!(resumed, "{kind:?}: the rerun resumed the killed rebuild");
    assert_eq!(live_generation(kind, &store, dir.path(), &prefix).await, 2);
    assert_eq!(
        model(kind, &store, dir.path(), &prefix).await,
        live,
        "{kind:?}"
    );
    if kind == Kind::Redis {
        redis(&prefix).await.drop_all().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_rebuilds_of_the_embedded_key_value_model() {
    killed_rebuilds_leave_the_live_generation_and_resume(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_rebuilds_of_a_redis_model() {
    killed_rebuilds_leave_the_live_generation_and_resume(Kind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_rebuilds_of_a_search_index() {
    killed_rebuilds_leave_the_live_generation_and_resume(Kind::Tantivy).await;
}
