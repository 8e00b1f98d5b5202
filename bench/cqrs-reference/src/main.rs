//! Reference workloads for `docs/benchmarks.md`: the same deposit workload as the
//! framework's bank-account example, run on cqrs-es 0.5.0 + postgres-es 0.5.0.
//!
//! Called as a subprocess by the benchmark harness. Every run prints exactly one line of
//! JSON on stdout and exits 0, or prints an error on stderr and exits 1.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use serde::{Deserialize, Serialize};
use sqlx08::PgPool;
use sqlx08::postgres::PgPoolOptions;

// ---------------------------------------------------------------------------------------
// Domain
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum BankCommand {
    Deposit { amount: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankEvent {
    Deposited { amount: u64 },
}

impl DomainEvent for BankEvent {
    fn event_type(&self) -> String {
        match self {
            BankEvent::Deposited { .. } => "Deposited".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// Deposits cannot fail; cqrs-es still wants an error type.
#[derive(Debug)]
pub enum BankError {}

impl std::fmt::Display for BankError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}

impl std::error::Error for BankError {}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct BankAccount {
    pub balance: u64,
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "BankAccount";
    type Command = BankCommand;
    type Event = BankEvent;
    type Error = BankError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            BankCommand::Deposit { amount } => {
                // `EventSink::write` applies the event to the aggregate it is given, and
                // postgres-es 0.5.0's snapshot store applies the command's events to the
                // handled aggregate again before writing the snapshot (double counting).
                // Writing into a scratch clone keeps `self` untouched, so snapshots are
                // correct and the non-snapshot path is unaffected.
                let mut scratch = self.clone();
                sink.write(BankEvent::Deposited { amount }, &mut scratch).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            BankEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

/// The headline workload's account (`headline`): opened once, then deposited to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LedgerCommand {
    Open,
    Deposit { amount: u64 },
    /// `count` deposits of 1 in one command (the long stream).
    DepositMany { count: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LedgerEvent {
    Opened,
    Credited { amount: u64 },
}

impl DomainEvent for LedgerEvent {
    fn event_type(&self) -> String {
        match self {
            LedgerEvent::Opened => "Opened".to_string(),
            LedgerEvent::Credited { .. } => "Credited".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug)]
pub enum LedgerError {
    AlreadyOpen,
    NotOpen,
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::AlreadyOpen => f.write_str("the account is open already"),
            LedgerError::NotOpen => f.write_str("the account is not open"),
        }
    }
}

impl std::error::Error for LedgerError {}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Ledger {
    pub open: bool,
    pub balance: u64,
}

impl Aggregate for Ledger {
    const TYPE: &'static str = "Ledger";
    type Command = LedgerCommand;
    type Event = LedgerEvent;
    type Error = LedgerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        // A scratch clone, for the reason given in BankAccount::handle.
        let mut scratch = self.clone();
        match command {
            LedgerCommand::Open if self.open => return Err(LedgerError::AlreadyOpen),
            LedgerCommand::Open => sink.write(LedgerEvent::Opened, &mut scratch).await,
            _ if !self.open => return Err(LedgerError::NotOpen),
            LedgerCommand::Deposit { amount } => {
                sink.write(LedgerEvent::Credited { amount }, &mut scratch)
                    .await;
            }
            LedgerCommand::DepositMany { count } => {
                for _ in 0..count {
                    sink.write(LedgerEvent::Credited { amount: 1 }, &mut scratch)
                        .await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            LedgerEvent::Opened => self.open = true,
            LedgerEvent::Credited { amount } => self.balance += amount,
        }
    }
}

// ---------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------

#[derive(Parser, Debug)]
#[command(
    name = "cqrs-reference",
    about = "cqrs-es 0.5.0 + postgres-es 0.5.0 reference workloads (prints one line of JSON)"
)]
struct Cli {
    /// PostgreSQL connection URL, e.g. postgres://postgres@127.0.0.1:5432/bench
    #[arg(long)]
    database_url: String,

    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the postgres-es `events` and `snapshots` tables if they do not exist.
    Setup,
    /// N clients execute Deposit{amount:1} in a loop for S seconds (no conflict retries).
    Commands {
        /// Number of concurrent client tasks.
        #[arg(long)]
        clients: usize,
        /// Duration of the run in seconds (fractions allowed).
        #[arg(long)]
        seconds: f64,
        /// All clients deposit into one shared account instead of one account each.
        #[arg(long)]
        same_account: bool,
        /// Use postgres_snapshot_cqrs with this snapshot size (default: postgres_cqrs).
        #[arg(long)]
        snapshot_size: Option<usize>,
    },
    /// One phase of the headline workload (docs/benchmarks.md) on fresh accounts, with a
    /// pool of 10: "ab" opens 1,000 accounts, then (a) one task sends 20,000 deposits
    /// round-robin and (b) 8 tasks, task t on the accounts with a % 8 == t, 2,500 each;
    /// "c" 8 tasks x 250 deposits to one account; "d" a 10,000-event stream then 100
    /// commands on it; "d-snap" the same with snapshots every 100.
    Headline {
        #[arg(long)]
        phase: String,
    },
    /// Load one aggregate with N events L times and report load latency.
    Load {
        /// Number of Deposited events in the aggregate.
        #[arg(long)]
        events: u64,
        /// Number of sequential loads to time.
        #[arg(long)]
        loads: usize,
        /// Load through the snapshot store with this snapshot size (default: event store).
        #[arg(long)]
        snapshot_size: Option<usize>,
    },
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

#[derive(Serialize)]
struct SetupOutput {
    ok: bool,
}

#[derive(Serialize)]
struct CommandsOutput {
    scenario: &'static str,
    clients: usize,
    same_account: bool,
    seconds: f64,
    succeeded: u64,
    conflicts: u64,
    other_errors: u64,
    per_second: f64,
    verified: bool,
}

#[derive(Serialize)]
struct LoadOutput {
    scenario: &'static str,
    events: u64,
    loads: usize,
    snapshot_size: Option<usize>,
    p50_ms: f64,
    p99_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

fn emit<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprint!("{e}");
            std::process::exit(1);
        }
        Err(e) => {
            // --help / --version
            let _ = e.print();
            std::process::exit(0);
        }
    };

    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")
        .and_then(|rt| rt.block_on(run(cli)));

    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Setup => setup(&cli.database_url).await,
        Cmd::Commands {
            clients,
            seconds,
            same_account,
            snapshot_size,
        } => commands(&cli.database_url, clients, seconds, same_account, snapshot_size).await,
        Cmd::Load {
            events,
            loads,
            snapshot_size,
        } => load(&cli.database_url, events, loads, snapshot_size).await,
        Cmd::Headline { phase } => headline(&cli.database_url, &phase).await,
    }
}

async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Unique per process run: wall-clock nanoseconds (hex) plus the pid.
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos:x}-{}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// setup
// ---------------------------------------------------------------------------------------

/// DDL from postgres-es-0.5.0/db/init.sql, made idempotent.
const DDL: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS events (
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        sequence bigint CHECK (sequence >= 0) NOT NULL,
        event_type text NOT NULL,
        event_version text NOT NULL,
        payload json NOT NULL,
        metadata json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    )",
    "CREATE TABLE IF NOT EXISTS snapshots (
        aggregate_type text NOT NULL,
        aggregate_id text NOT NULL,
        last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
        current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
        payload json NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
    )",
];

async fn setup(url: &str) -> anyhow::Result<()> {
    let pool = connect(url, 1).await?;
    for ddl in DDL {
        sqlx08::query(ddl)
            .execute(&pool)
            .await
            .context("creating tables")?;
    }
    pool.close().await;
    emit(&SetupOutput { ok: true })
}

// ---------------------------------------------------------------------------------------
// commands
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct ClientResult {
    succeeded: u64,
    conflicts: u64,
    other_errors: u64,
    first_other_error: Option<String>,
}

async fn commands(
    url: &str,
    clients: usize,
    seconds: f64,
    same_account: bool,
    snapshot_size: Option<usize>,
) -> anyhow::Result<()> {
    ensure!(clients >= 1, "--clients must be at least 1");
    ensure!(
        seconds.is_finite() && seconds > 0.0,
        "--seconds must be a positive number"
    );
    if let Some(k) = snapshot_size {
        ensure!(k >= 1, "--snapshot-size must be at least 1");
    }
    let max_connections = u32::try_from(clients + 2).context("--clients is too large")?;
    let pool = connect(url, max_connections).await?;

    // Open the connections before the clock starts so connection setup is not measured.
    {
        let mut warm = Vec::with_capacity(clients);
        for _ in 0..clients {
            warm.push(pool.acquire().await.context("opening pool connections")?);
        }
    }

    let cqrs: Arc<PostgresCqrs<BankAccount>> = Arc::new(match snapshot_size {
        Some(k) => postgres_es::postgres_snapshot_cqrs(pool.clone(), vec![], k, ()),
        None => postgres_es::postgres_cqrs(pool.clone(), vec![], ()),
    });

    let run = run_id();
    let ids: Vec<String> = (0..clients)
        .map(|i| {
            if same_account {
                format!("cqrs-ref-{run}-shared")
            } else {
                format!("cqrs-ref-{run}-c{i}")
            }
        })
        .collect();

    let duration = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let deadline = start + duration;
    let mut handles = Vec::with_capacity(clients);
    for id in ids.clone() {
        let cqrs = Arc::clone(&cqrs);
        handles.push(tokio::spawn(async move {
            let mut r = ClientResult::default();
            while Instant::now() < deadline {
                match cqrs.execute(&id, BankCommand::Deposit { amount: 1 }).await {
                    Ok(()) => r.succeeded += 1,
                    // postgres-es does not retry optimistic-lock conflicts; neither do we.
                    Err(AggregateError::AggregateConflict) => r.conflicts += 1,
                    Err(e) => {
                        r.other_errors += 1;
                        if r.first_other_error.is_none() {
                            r.first_other_error = Some(e.to_string());
                        }
                    }
                }
            }
            r
        }));
    }
    let mut results = Vec::with_capacity(clients);
    for h in handles {
        results.push(h.await.context("client task panicked")?);
    }
    let elapsed = start.elapsed().as_secs_f64();

    let succeeded: u64 = results.iter().map(|r| r.succeeded).sum();
    let conflicts: u64 = results.iter().map(|r| r.conflicts).sum();
    let other_errors: u64 = results.iter().map(|r| r.other_errors).sum();
    if let Some(msg) = results.iter().find_map(|r| r.first_other_error.as_ref()) {
        eprintln!("warning: {other_errors} non-conflict error(s); first: {msg}");
    }

    // Verification: every aggregate's balance (replayed from all events, and additionally
    // through the snapshot store when snapshots are in use) equals its successful deposits.
    let mut expected: Vec<(String, u64)> = Vec::new();
    for (id, r) in ids.iter().zip(&results) {
        match expected.iter_mut().find(|(e, _)| e == id) {
            Some((_, n)) => *n += r.succeeded,
            None => expected.push((id.clone(), r.succeeded)),
        }
    }
    let event_store = PersistedEventStore::<_, BankAccount>::new_event_store(
        PostgresEventRepository::new(pool.clone()),
    );
    let snapshot_store = snapshot_size.map(|k| {
        PersistedEventStore::<_, BankAccount>::new_snapshot_store(
            PostgresEventRepository::new(pool.clone()),
            k,
        )
    });
    let mut verified = true;
    for (id, want) in &expected {
        let ctx = event_store
            .load_aggregate(id)
            .await
            .with_context(|| format!("verifying {id}"))?;
        if ctx.aggregate.balance != *want || ctx.current_sequence as u64 != *want {
            eprintln!(
                "verification failed for {id}: replayed balance {} (sequence {}), expected {want}",
                ctx.aggregate.balance, ctx.current_sequence
            );
            verified = false;
        }
        if let Some(store) = &snapshot_store {
            let ctx = store
                .load_aggregate(id)
                .await
                .with_context(|| format!("verifying {id} via snapshot store"))?;
            if ctx.aggregate.balance != *want {
                eprintln!(
                    "verification failed for {id}: snapshot-store balance {}, expected {want}",
                    ctx.aggregate.balance
                );
                verified = false;
            }
        }
    }
    pool.close().await;

    emit(&CommandsOutput {
        scenario: "commands",
        clients,
        same_account,
        seconds: elapsed,
        succeeded,
        conflicts,
        other_errors,
        per_second: succeeded as f64 / elapsed,
        verified,
    })
}

// ---------------------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------------------

async fn load(
    url: &str,
    events: u64,
    loads: usize,
    snapshot_size: Option<usize>,
) -> anyhow::Result<()> {
    ensure!(loads >= 1, "--loads must be at least 1");
    if let Some(k) = snapshot_size {
        ensure!(k >= 1, "--snapshot-size must be at least 1");
    }
    let n = i64::try_from(events).context("--events is too large")?;
    let pool = connect(url, 2).await?;
    let id = format!("cqrs-ref-{}-load", run_id());

    // Rows exactly as postgres-es 0.5.0 writes them for executed commands: payload is
    // serde_json of the event enum, metadata an empty map. postgres-es binds
    // serde_json::Value, which sqlx sends as jsonb, so the json column stores jsonb's
    // canonical text (`{"Deposited": {"amount": 1}}`); casting through jsonb matches that.
    let event = BankEvent::Deposited { amount: 1 };
    let payload = serde_json::to_string(&event)?;
    let mut tx = pool.begin().await?;
    sqlx08::query(
        "INSERT INTO events
             (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT $1, $2, s, $3, $4, $5::jsonb::json, '{}'::jsonb::json
           FROM generate_series(1::bigint, $6::bigint) AS s",
    )
    .bind(BankAccount::TYPE)
    .bind(&id)
    .bind(event.event_type())
    .bind(event.event_version())
    .bind(&payload)
    .bind(n)
    .execute(&mut *tx)
    .await
    .context("inserting events")?;

    // postgres-es keeps one snapshot row per aggregate, rewritten every K events:
    // last_sequence = sequence it covers, current_snapshot = number of snapshots taken
    // so far, payload = serde_json of the aggregate.
    let mut expected_snapshot = None;
    if let Some(k) = snapshot_size {
        let taken = events / k as u64;
        if taken > 0 {
            let last = taken * k as u64;
            let snap = serde_json::to_string(&BankAccount { balance: last })?;
            sqlx08::query(
                "INSERT INTO snapshots
                     (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
                 VALUES ($1, $2, $3, $4, $5::jsonb::json)",
            )
            .bind(BankAccount::TYPE)
            .bind(&id)
            .bind(last as i64)
            .bind(taken as i64)
            .bind(&snap)
            .execute(&mut *tx)
            .await
            .context("inserting snapshot")?;
            expected_snapshot = Some(taken as usize);
        }
    }
    tx.commit().await?;

    let repo = PostgresEventRepository::new(pool.clone());
    let store = match snapshot_size {
        Some(k) => PersistedEventStore::<_, BankAccount>::new_snapshot_store(repo, k),
        None => PersistedEventStore::<_, BankAccount>::new_event_store(repo),
    };

    let mut latencies = Vec::with_capacity(loads);
    for i in 0..loads {
        let t = Instant::now();
        let ctx = store
            .load_aggregate(&id)
            .await
            .with_context(|| format!("load {i} of {id}"))?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        if ctx.aggregate.balance != events || ctx.current_sequence as u64 != events {
            bail!(
                "load {i}: balance {} at sequence {}, expected {events}",
                ctx.aggregate.balance,
                ctx.current_sequence
            );
        }
        if snapshot_size.is_some() && ctx.current_snapshot != expected_snapshot {
            bail!(
                "load {i}: snapshot {:?} was not used (expected {:?})",
                ctx.current_snapshot,
                expected_snapshot
            );
        }
    }
    pool.close().await;

    latencies.sort_by(f64::total_cmp);
    emit(&LoadOutput {
        scenario: "load",
        events,
        loads,
        snapshot_size,
        p50_ms: percentile(&latencies, 0.50),
        p99_ms: percentile(&latencies, 0.99),
        min_ms: latencies[0],
        max_ms: latencies[latencies.len() - 1],
    })
}

/// Nearest-rank percentile of a sorted, non-empty slice.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------
// headline
// ---------------------------------------------------------------------------------------

const ACCOUNTS: usize = 1_000;
const DEPOSITS: usize = 20_000;
const TASKS: usize = 8;
const HOT_EACH: usize = 250;
const LONG: usize = 10_000;
const ON_LONG: usize = 100;
const POOL: u32 = 10;

#[derive(Serialize)]
struct HeadlineOutput {
    per_second: Vec<f64>,
    errors: u64,
    peak_kb: u64,
    verified: bool,
}

/// The process's peak resident set (`VmHWM`) in kB.
fn peak_kb() -> u64 {
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

type Framework = Arc<PostgresCqrs<Ledger>>;

/// `tasks` tasks, task t sending `per_task` deposits to `target(t, i)`:
/// commands/s and (successes, errors).
async fn drive(
    cqrs: &Framework,
    tasks: usize,
    per_task: usize,
    target: Arc<dyn Fn(usize, usize) -> String + Send + Sync>,
) -> anyhow::Result<(f64, u64, u64)> {
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let (cqrs, target) = (Arc::clone(cqrs), Arc::clone(&target));
        handles.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            for i in 0..per_task {
                match cqrs
                    .execute(&target(t, i), LedgerCommand::Deposit { amount: 1 })
                    .await
                {
                    Ok(()) => ok += 1,
                    Err(_) => errors += 1,
                }
            }
            (ok, errors)
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for h in handles {
        let (o, e) = h.await.context("client task panicked")?;
        ok += o;
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok((ok as f64 / elapsed, ok, errors))
}

async fn balance(pool: &PgPool, id: &str) -> anyhow::Result<u64> {
    let store = PersistedEventStore::<_, Ledger>::new_event_store(PostgresEventRepository::new(
        pool.clone(),
    ));
    Ok(store.load_aggregate(id).await?.aggregate.balance)
}

async fn headline(url: &str, phase: &str) -> anyhow::Result<()> {
    let pool = connect(url, POOL).await?;
    let cqrs: Framework = Arc::new(match phase {
        "d-snap" => postgres_es::postgres_snapshot_cqrs(pool.clone(), vec![], 100, ()),
        _ => postgres_es::postgres_cqrs(pool.clone(), vec![], ()),
    });
    let run = run_id();
    let account = move |a: usize| format!("cqrs-{run}-acct-{a:06}");
    let (per_second, errors, verified) = match phase {
        "ab" => {
            let mut handles = Vec::new();
            for t in 0..TASKS {
                let (cqrs, account) = (Arc::clone(&cqrs), account.clone());
                handles.push(tokio::spawn(async move {
                    for a in (t..ACCOUNTS).step_by(TASKS) {
                        cqrs.execute(&account(a), LedgerCommand::Open).await?;
                    }
                    Ok::<_, AggregateError<LedgerError>>(())
                }));
            }
            for h in handles {
                h.await?.map_err(|e| anyhow::anyhow!("opening: {e}"))?;
            }
            let acc = account.clone();
            let (a, _, ea) = drive(&cqrs, 1, DEPOSITS, Arc::new(move |_, i| acc(i % ACCOUNTS))).await?;
            let acc = account.clone();
            let (b, _, eb) = drive(
                &cqrs,
                TASKS,
                DEPOSITS / TASKS,
                Arc::new(move |t, i| acc(t + TASKS * (i % (ACCOUNTS / TASKS)))),
            )
            .await?;
            let mut verified = true;
            for a in 0..ACCOUNTS {
                verified &= balance(&pool, &account(a)).await? == (2 * DEPOSITS / ACCOUNTS) as u64;
            }
            (vec![a, b], ea + eb, verified)
        }
        "c" => {
            let id = account(0);
            cqrs.execute(&id, LedgerCommand::Open)
                .await
                .map_err(|e| anyhow::anyhow!("opening: {e}"))?;
            let hot = id.clone();
            let (rate, ok, errors) = drive(&cqrs, TASKS, HOT_EACH, Arc::new(move |_, _| hot.clone())).await?;
            (vec![rate], errors, balance(&pool, &id).await? == ok)
        }
        "d" | "d-snap" => {
            let id = account(0);
            cqrs.execute(&id, LedgerCommand::Open)
                .await
                .map_err(|e| anyhow::anyhow!("opening: {e}"))?;
            cqrs.execute(&id, LedgerCommand::DepositMany { count: LONG - 1 })
                .await
                .map_err(|e| anyhow::anyhow!("the long command: {e}"))?;
            let long = id.clone();
            let (rate, _, errors) = drive(&cqrs, 1, ON_LONG, Arc::new(move |_, _| long.clone())).await?;
            (vec![rate], errors, balance(&pool, &id).await? == (LONG - 1 + ON_LONG) as u64)
        }
        other => bail!("unknown phase {other}"),
    };
    pool.close().await;
    emit(&HeadlineOutput {
        per_second,
        errors,
        peak_kb: peak_kb(),
        verified,
    })
}
