//! The headline workload, the peers' usual one: a pool of 10 connections,
//! 1,000 accounts opened, then (a) one task sending 20,000 deposits
//! round-robin over them, (b) 8 tasks, task t on the accounts with
//! `a % 8 == t`, 2,500 deposits each, (c) 8 tasks × 250 deposits to one
//! account, (d) one stream of 10,000 events (a 9,999-event command after the
//! open), then 100 commands on it, without and with snapshots every 100.
//!
//! Every run is a child process (this binary's `child-headline`, or the
//! cqrs-es reference's `headline`) on fresh accounts, so that its peak
//! resident set is its own; the framework, the framework without its state
//! cache and cqrs-es take turns, phase by phase. The raw reference is
//! pgbench (`-M prepared`) of a one-row INSERT per transaction into a copy of
//! `es_events`, 1 and 8 clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use es_core::{Aggregate, AggregateType, CommandError, Repository};
use es_store_postgres::{GroupCommit, PgStore, PgStoreOptions};
use serde::{Deserialize, Serialize};

use super::{Plan, progress};
use crate::cqrs::Cqrs;
use crate::domain::{Balance, Ledger, LedgerCommand, LedgerError, SnapLedger};
use crate::stats::Samples;

/// Accounts opened before (a) and (b).
pub(crate) const ACCOUNTS: usize = 1_000;
/// Deposits in (a), and in (b) over all its tasks.
pub(crate) const DEPOSITS: usize = 20_000;
/// Tasks in (b) and (c).
pub(crate) const TASKS: usize = 8;
/// Deposits per task in (c).
pub(crate) const HOT_EACH: usize = 250;
/// Events of the long stream in (d).
pub(crate) const LONG: usize = 10_000;
/// Commands timed on it.
pub(crate) const ON_LONG: usize = 100;
/// The pool of every run (postgres-es's default).
pub(crate) const POOL: u32 = 10;
/// How long each pgbench run lasts, seconds.
const PGBENCH_SECONDS: u32 = 5;

/// The phases a child runs: (a) and (b) on the same accounts, then (c), (d)
/// and (d) with snapshots.
pub(crate) const PHASES: [&str; 4] = ["ab", "c", "d", "d-snap"];

/// What a child prints (one JSON line): commands/s per figure of its phase
/// ((a) and (b) for "ab"), errors surfaced, conflicts retried, peak RSS.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct ChildRun {
    pub(crate) per_second: Vec<f64>,
    pub(crate) errors: u64,
    #[serde(default)]
    pub(crate) retries: u64,
    pub(crate) peak_kb: u64,
    pub(crate) verified: bool,
}

/// One figure, every system.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figure {
    pub(crate) label: &'static str,
    /// The framework as a user gets it: state cache and group commit on.
    pub(crate) es: Samples,
    pub(crate) es_uncached: Samples,
    /// The framework with group commit off (measured for (b) only).
    pub(crate) es_ungrouped: Samples,
    pub(crate) cqrs: Samples,
    pub(crate) es_errors: u64,
    pub(crate) es_retries: u64,
    pub(crate) es_uncached_errors: u64,
    pub(crate) cqrs_errors: u64,
    pub(crate) es_peak_mb: Samples,
    pub(crate) es_uncached_peak_mb: Samples,
    pub(crate) cqrs_peak_mb: Samples,
}

/// The headline results.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    /// (a), (b), (c), (d), (d) with snapshots.
    pub(crate) figures: Vec<Figure>,
    /// pgbench, 1 and 8 clients, transactions/s.
    pub(crate) raw_1: Samples,
    pub(crate) raw_8: Samples,
    /// Why pgbench did not run, if it did not.
    pub(crate) raw_missing: Option<String>,
}

pub(crate) const LABELS: [&str; 5] = [
    "(a) 1 client, 20,000 deposits round-robin over 1,000 accounts",
    "(b) 8 clients, each on its own 125 accounts, 2,500 deposits each",
    "(c) 8 clients on one account, 250 deposits each",
    "(d) 100 commands on a 10,000-event stream, no snapshots",
    "(d) the same with a snapshot every 100 events",
];

fn account(prefix: &str, a: usize) -> String {
    format!("{prefix}acct-{a:06}")
}

/// The process's peak resident set in kB.
fn peak_kb() -> u64 {
    super::projections::peak_rss_kb()
}

/// Counts of one timed phase.
#[derive(Default)]
struct Count {
    ok: AtomicU64,
    errors: AtomicU64,
    retries: AtomicU64,
}

impl Count {
    fn record<Ev, E: std::fmt::Debug>(
        &self,
        outcome: Result<es_core::Executed<Ev>, CommandError<E>>,
    ) {
        match outcome {
            Ok(done) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                self.retries
                    .fetch_add(u64::from(done.retries), Ordering::Relaxed);
            }
            Err(error) => {
                if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("first error: {error:?}");
                }
            }
        }
    }
}

type Repo<A> = Arc<Repository<A, PgStore>>;

fn repository<A>(store: &PgStore, cached: bool) -> Repo<A>
where
    A: Aggregate<Command = LedgerCommand, Error = LedgerError> + AggregateType,
{
    let repo = Repository::<A, PgStore>::new(store.clone());
    Arc::new(if cached {
        repo.with_cache(10_000)
    } else {
        repo.without_cache()
    })
}

/// `tasks` tasks, task t sending `per_task` commands to `target(t, i)`.
async fn drive<A>(
    repo: &Repo<A>,
    tasks: usize,
    per_task: usize,
    target: impl Fn(usize, usize) -> String + Send + Sync + 'static,
    count: &Arc<Count>,
) -> f64
where
    A: Aggregate<Command = LedgerCommand, Error = LedgerError>
        + AggregateType
        + Send
        + Sync
        + 'static,
{
    let target = Arc::new(target);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (repo, count, target) = (Arc::clone(repo), Arc::clone(count), Arc::clone(&target));
            tokio::spawn(async move {
                for i in 0..per_task {
                    let id = target(t, i);
                    count.record(repo.execute(&id, LedgerCommand::Deposit(1)).await);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    (tasks * per_task) as f64 / started.elapsed().as_secs_f64()
}

/// Opens the 1,000 accounts, 8 at a time (not timed).
async fn open_accounts<A>(repo: &Repo<A>, prefix: &str)
where
    A: Aggregate<Command = LedgerCommand, Error = LedgerError>
        + AggregateType
        + Send
        + Sync
        + 'static,
{
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let repo = Arc::clone(repo);
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                for a in (t..ACCOUNTS).step_by(TASKS) {
                    repo.execute(&account(&prefix, a), LedgerCommand::Open)
                        .await
                        .expect("open");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
}

async fn balance<A>(repo: &Repo<A>, id: &str) -> i64
where
    A: Aggregate<Command = LedgerCommand, Error = LedgerError> + AggregateType + Balance,
{
    repo.load(id).await.expect("load").state.balance()
}

/// (d): the long stream, then [`ON_LONG`] commands on it, one at a time.
async fn long<A>(repo: &Repo<A>, prefix: &str, count: &Arc<Count>) -> (f64, bool)
where
    A: Aggregate<Command = LedgerCommand, Error = LedgerError>
        + AggregateType
        + Balance
        + Send
        + Sync
        + 'static,
{
    let id = format!("{prefix}long");
    repo.execute(&id, LedgerCommand::Open).await.expect("open");
    repo.execute(&id, LedgerCommand::DepositMany(LONG - 1))
        .await
        .expect("the long command");
    let rate = drive(repo, 1, ON_LONG, move |_, _| id.clone(), count).await;
    let id = format!("{prefix}long");
    let want = i64::try_from(LONG - 1 + ON_LONG).unwrap_or(0);
    (rate, balance(repo, &id).await == want)
}

/// `es-bench child-headline URL PHASE VARIANT PREFIX`: one phase of the
/// framework, as one JSON line on stdout.
pub(crate) async fn child(database_url: &str, phase: &str, variant: &str, prefix: &str) {
    let options = PgStoreOptions {
        max_connections: POOL,
        group_commit: match variant.strip_prefix("in").and_then(|n| n.parse().ok()) {
            _ if variant == "ungrouped" => GroupCommit::off(),
            // `inN`: N groups in flight (for tuning by hand).
            Some(in_flight) => GroupCommit {
                in_flight,
                ..GroupCommit::default()
            },
            None => GroupCommit::default(),
        },
        ..PgStoreOptions::default()
    };
    let store = PgStore::connect_with(database_url, &options)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let cached = variant != "uncached";
    let count = Arc::new(Count::default());
    let (per_second, verified) = match phase {
        "ab" => {
            let repo = repository::<Ledger>(&store, cached);
            open_accounts(&repo, prefix).await;
            let p = prefix.to_owned();
            let a = drive(
                &repo,
                1,
                DEPOSITS,
                move |_, i| account(&p, i % ACCOUNTS),
                &count,
            )
            .await;
            let p = prefix.to_owned();
            let b = drive(
                &repo,
                TASKS,
                DEPOSITS / TASKS,
                move |t, i| account(&p, t + TASKS * (i % (ACCOUNTS / TASKS))),
                &count,
            )
            .await;
            let mut verified = true;
            let want = i64::try_from(2 * DEPOSITS / ACCOUNTS).unwrap_or(0);
            for a in 0..ACCOUNTS {
                verified &= balance(&repo, &account(prefix, a)).await == want;
            }
            (vec![a, b], verified)
        }
        "c" => {
            let repo = repository::<Ledger>(&store, cached);
            let id = format!("{prefix}hot");
            repo.execute(&id, LedgerCommand::Open).await.expect("open");
            let hot = id.clone();
            let rate = drive(&repo, TASKS, HOT_EACH, move |_, _| hot.clone(), &count).await;
            // Successes only: errors are counted beside.
            let ok = count.ok.load(Ordering::Relaxed);
            let rate = rate * ok as f64 / (TASKS * HOT_EACH) as f64;
            let verified = u64::try_from(balance(&repo, &id).await).ok() == Some(ok);
            (vec![rate], verified)
        }
        "d" => {
            let (rate, verified) =
                long(&repository::<Ledger>(&store, cached), prefix, &count).await;
            (vec![rate], verified)
        }
        "d-snap" => {
            let (rate, verified) =
                long(&repository::<SnapLedger>(&store, cached), prefix, &count).await;
            (vec![rate], verified)
        }
        other => panic!("unknown phase {other}"),
    };
    let run = ChildRun {
        per_second,
        errors: count.errors.load(Ordering::Relaxed),
        retries: count.retries.load(Ordering::Relaxed),
        peak_kb: peak_kb(),
        verified,
    };
    println!("{}", serde_json::to_string(&run).expect("json"));
}

async fn es_child(database_url: &str, phase: &str, variant: &str, prefix: &str) -> ChildRun {
    let output = tokio::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["child-headline", database_url, phase, variant, prefix])
        .output()
        .await
        .expect("spawn the child");
    assert!(
        output.status.success(),
        "child-headline {phase} {variant} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run: ChildRun = serde_json::from_slice(&output.stdout).expect("the child's JSON");
    assert!(
        run.verified,
        "es lost or doubled a deposit ({phase} {variant})"
    );
    run
}

/// pgbench of a one-row INSERT per transaction into a copy of `es_events`;
/// transactions/s, or why it could not run.
async fn pgbench(store: &PgStore, database_url: &str, clients: usize) -> Result<f64, String> {
    sqlx::query("CREATE TABLE IF NOT EXISTS raw_pgbench (LIKE es_events INCLUDING ALL)")
        .execute(store.pool())
        .await
        .map_err(|e| e.to_string())?;
    let script = std::env::temp_dir().join("es-bench-pgbench.sql");
    std::fs::write(
        &script,
        "\\set v random(1, 9000000000000000000)\n\
         INSERT INTO raw_pgbench (stream_id, version, event_id, event_type, schema_version, \
         payload, recorded_at) VALUES ('raw-' || :client_id, :v, gen_random_uuid(), 'Credited', \
         1, '\\x0002'::bytea, now());\n",
    )
    .map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c"])
        .arg(clients.to_string())
        .arg("-j")
        .arg(clients.min(2).to_string())
        .arg("-T")
        .arg(PGBENCH_SECONDS.to_string())
        .arg("-f")
        .arg(&script)
        // libpq takes the URL without sqlx's own parameters.
        .arg(database_url.split('?').next().unwrap_or(database_url))
        .output()
        .await
        .map_err(|e| format!("pgbench could not start ({e}): install postgresql-contrib"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| format!("pgbench printed no tps: {text}"))
}

/// Every phase, the systems in turn, `plan.repetitions` times.
pub(crate) async fn run(store: &PgStore, database_url: &str, cqrs: &Cqrs, plan: &Plan) -> Figures {
    let mut out = Figures {
        figures: LABELS
            .iter()
            .map(|label| Figure {
                label,
                ..Figure::default()
            })
            .collect(),
        ..Figures::default()
    };
    let mb = |kb: u64| kb as f64 / 1024.0;
    for rep in 0..plan.repetitions {
        for phase in PHASES {
            progress(format_args!(
                "headline: phase {phase}, repetition {}",
                rep + 1
            ));
            let slots: &[usize] = match phase {
                "ab" => &[0, 1],
                "c" => &[2],
                "d" => &[3],
                _ => &[4],
            };
            let es = es_child(database_url, phase, "cached", &format!("h{rep}e-")).await;
            let un = es_child(database_url, phase, "uncached", &format!("h{rep}u-")).await;
            let ungrouped = if phase == "ab" {
                Some(es_child(database_url, phase, "ungrouped", &format!("h{rep}g-")).await)
            } else {
                None
            };
            let theirs = cqrs.headline(phase).await;
            for (k, &slot) in slots.iter().enumerate() {
                let f = &mut out.figures[slot];
                f.es.push(es.per_second[k]);
                f.es_uncached.push(un.per_second[k]);
                f.es_errors += es.errors;
                f.es_retries += es.retries;
                f.es_uncached_errors += un.errors;
                f.es_peak_mb.push(mb(es.peak_kb));
                f.es_uncached_peak_mb.push(mb(un.peak_kb));
                if let Some(g) = &ungrouped {
                    f.es_ungrouped.push(g.per_second[k]);
                }
                if let Some(t) = &theirs {
                    f.cqrs.push(t.per_second[k]);
                    f.cqrs_errors += t.errors;
                    f.cqrs_peak_mb.push(mb(t.peak_kb));
                }
            }
        }
        for (clients, samples) in [(1, &mut out.raw_1), (8, &mut out.raw_8)] {
            progress(format_args!("headline: pgbench, {clients} client(s)"));
            match pgbench(store, database_url, clients).await {
                Ok(tps) => samples.push(tps),
                Err(why) => out.raw_missing = Some(why),
            }
        }
    }
    out
}
