//! The chaos run: the bank-account workload (deposits, withdrawals,
//! transfers, forgets) from several client processes against PostgreSQL and a
//! private Redis, while faults are injected at random: the framework's
//! PostgreSQL connections terminated, Redis killed and restarted (losing its
//! data: it runs without persistence), runner processes (`serve`) killed with
//! SIGKILL and restarted, rebuilds started and killed. Then the invariants:
//! every acknowledged command's events are in the store exactly once, stream
//! versions are gap-free, money is conserved, the read models equal their
//! replay and a clean rebuild, no dead letter, every transfer settled, and the
//! forgotten owners appear nowhere.
//!
//! `ES_CHAOS_SECONDS` sets how long the faults last (CI: 20); `ES_CHAOS_REPORT`
//! names a file for the summary (JSON); `ES_CHAOS_SEED` replays a run.
//!
//! ```sh
//! ES_CHAOS_SECONDS=600 ES_CHAOS_REPORT=/tmp/chaos.json cargo test --release -p bank-account --test chaos -- --nocapture
//! ```

#[path = "e2e/support.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Env, Run, places};

const ACCOUNTS: usize = 6;
const INITIAL: u64 = 10_000;
const CLIENTS: usize = 3;

/// A small deterministic generator (xorshift), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }
}

/// Counts of what happened.
#[derive(Default)]
struct Counts {
    commands: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    unavailable: AtomicU64,
    conflicts: AtomicU64,
    rejected: AtomicU64,
    pg_terminations: AtomicU64,
    backends_terminated: AtomicU64,
    redis_kills: AtomicU64,
    runner_kills: AtomicU64,
    rebuild_kills: AtomicU64,
}

/// An acknowledged client intent.
#[derive(Debug, Clone)]
enum Acked {
    Deposit {
        account: String,
        key: String,
        amount: u64,
    },
    Withdraw {
        account: String,
        key: String,
        amount: u64,
    },
    Transfer {
        status: String,
    },
    Refused,
}

/// A private Redis without persistence, killed and restarted at will.
struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (install Redis: `bash .ci/services` does)");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the private Redis did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs one client intent to its end: retried with the same idempotency key
/// while the outcome is unknown (unavailable, conflict, a transfer still
/// pending).
fn intent(env: &Env, counts: &Counts, args: &[&str]) -> Option<Run> {
    counts.commands.fetch_add(1, Ordering::Relaxed);
    for attempt in 0..60 {
        if attempt > 0 {
            counts.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(150));
        }
        counts.attempts.fetch_add(1, Ordering::Relaxed);
        let run = env.run(args);
        let pending = run.code == 0
            && serde_json::from_str::<Value>(run.stdout.trim())
                .is_ok_and(|json| json["status"] == "pending");
        match run.code {
            // A transfer written but not yet settled by the saga (it is,
            // later): ask again with the same key for its outcome.
            0 if pending => counts.conflicts.fetch_add(1, Ordering::Relaxed),
            0 | 65 | 66 => return Some(run),
            69 => counts.unavailable.fetch_add(1, Ordering::Relaxed),
            75 => counts.conflicts.fetch_add(1, Ordering::Relaxed),
            _ => panic!("an unexpected failure: {run:?}"),
        };
    }
    None
}

fn client(env: &Env, counts: &Counts, seed: u64, worker: usize, deadline: Instant) -> Vec<Acked> {
    let mut rng = Rng(seed ^ (worker as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut acked = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let key = format!("c{worker}-{n}");
        let account = format!("acc-{}", rng.below(ACCOUNTS as u64));
        let cents = rng.below(500) + 1;
        let amount = format!("{}.{:02}", cents / 100, cents % 100);
        let choice = rng.below(100);
        let outcome = if choice < 45 {
            intent(
                env,
                counts,
                &[
                    "deposit",
                    "--account",
                    &account,
                    "--amount",
                    &amount,
                    "--idempotency-key",
                    &key,
                ],
            )
            .map(|run| (run, "deposit"))
        } else if choice < 70 {
            intent(
                env,
                counts,
                &[
                    "withdraw",
                    "--account",
                    &account,
                    "--amount",
                    &amount,
                    "--idempotency-key",
                    &key,
                ],
            )
            .map(|run| (run, "withdraw"))
        } else {
            let to = format!("acc-{}", rng.below(ACCOUNTS as u64 + 1)); // acc-6 does not exist
            intent(
                env,
                counts,
                &[
                    "transfer",
                    "--from",
                    &account,
                    "--to",
                    &to,
                    "--amount",
                    &amount,
                    "--idempotency-key",
                    &key,
                ],
            )
            .map(|run| (run, "transfer"))
        };
        let Some((run, kind)) = outcome else { continue };
        let json = run.json();
        let amount: u64 = cents;
        acked.push(match (run.code, kind) {
            (0, "deposit") => Acked::Deposit {
                account,
                key,
                amount,
            },
            (0, "withdraw") => Acked::Withdraw {
                account,
                key,
                amount,
            },
            (0, "transfer") => Acked::Transfer {
                status: json["status"].as_str().unwrap().to_owned(),
            },
            (65, "transfer") => Acked::Transfer {
                status: json["status"].as_str().unwrap_or("refused").to_owned(),
            },
            _ => {
                counts.rejected.fetch_add(1, Ordering::Relaxed);
                Acked::Refused
            }
        });
    }
    acked
}

fn spawn_runner(env: &Env) -> Child {
    env.command()
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a runner process")
}

async fn terminate_backends(database_url: &str) -> u64 {
    use sqlx::{Connection, Row};
    let db = database_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let admin_url = database_url.replacen(&format!("/{db}"), "/postgres", 1);
    let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await else {
        return 0;
    };
    let row = sqlx::query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    u64::try_from(row.get::<i64, _>(0)).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos() {
    let seconds: u64 = std::env::var("ES_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("ES_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            u64::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos(),
            ) | 1
        });
    eprintln!("chaos: {seconds} s of faults, seed {seed} (ES_CHAOS_SEED replays it)");
    let mut redis = Redis::start();
    let base = Env::servers().await;
    let env = Arc::new(Env {
        dir: tempfile::tempdir().unwrap(),
        database_url: base.database_url.clone(),
        redis_url: Some(redis.url()),
        redis_namespace: "chaos".into(),
    });
    let database_url = env.database_url.clone().unwrap();
    let counts = Arc::new(Counts::default());
    let names: Vec<String> = (0..ACCOUNTS)
        .map(|a| format!("Chaosowner{a}x{seed}"))
        .collect();
    for (a, name) in names.iter().enumerate() {
        env.run(&[
            "open",
            "--account",
            &format!("acc-{a}"),
            "--owner-id",
            &format!("owner-{a}"),
            "--owner-name",
            name,
            "--initial",
            &format!("{}.{:02}", INITIAL / 100, INITIAL % 100),
        ])
        .ok();
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let runners = Arc::new(Mutex::new(vec![spawn_runner(&env), spawn_runner(&env)]));

    // The clients.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let (env, counts) = (Arc::clone(&env), Arc::clone(&counts));
            tokio::task::spawn_blocking(move || client(&env, &counts, seed, w, deadline))
        })
        .collect();

    // The faults, and two forgets on the way.
    let mut rng = Rng(seed.wrapping_mul(31) | 1);
    let mut forgotten = Vec::new();
    let mut rebuilds: Vec<Child> = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1200))).await;
        let elapsed = started.elapsed().as_secs_f64() / seconds as f64;
        if forgotten.is_empty() && elapsed > 0.3 || forgotten.len() == 1 && elapsed > 0.6 {
            let owner = forgotten.len();
            let env2 = Arc::clone(&env);
            let counts2 = Arc::clone(&counts);
            let done = tokio::task::spawn_blocking(move || {
                intent(
                    &env2,
                    &counts2,
                    &["forget", "--owner-id", &format!("owner-{owner}")],
                )
            })
            .await
            .unwrap();
            assert!(
                done.is_some_and(|r| r.code == 0),
                "the forget did not complete"
            );
            forgotten.push(owner);
            continue;
        }
        match rng.below(4) {
            0 => {
                counts.pg_terminations.fetch_add(1, Ordering::Relaxed);
                counts
                    .backends_terminated
                    .fetch_add(terminate_backends(&database_url).await, Ordering::Relaxed);
            }
            1 => {
                counts.redis_kills.fetch_add(1, Ordering::Relaxed);
                redis.kill();
                tokio::time::sleep(Duration::from_millis(200 + rng.below(500))).await;
                redis.spawn();
            }
            2 => {
                counts.runner_kills.fetch_add(1, Ordering::Relaxed);
                let mut runners = runners.lock().unwrap();
                let i = rng.index(runners.len());
                let _ = runners[i].kill();
                let _ = runners[i].wait();
                runners[i] = spawn_runner(&env);
            }
            _ => {
                counts.rebuild_kills.fetch_add(1, Ordering::Relaxed);
                let model = ["balances", "account-search"][rng.index(2)];
                let mut rebuild = env
                    .command()
                    .args(["--json", "projections", "rebuild", model])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(50 + rng.below(800))).await;
                let _ = rebuild.kill();
                rebuilds.push(rebuild);
            }
        }
    }
    let mut acked = Vec::new();
    for client in clients {
        acked.extend(client.await.unwrap());
    }
    for mut child in rebuilds {
        let _ = child.wait();
    }
    for mut runner in runners.lock().unwrap().drain(..) {
        let _ = runner.kill();
        let _ = runner.wait();
    }

    // The invariants, once everything has settled.
    let mut balances = BTreeMap::new();
    let mut history: HashMap<String, Vec<Value>> = HashMap::new();
    for a in 0..ACCOUNTS {
        let account = format!("acc-{a}");
        balances.insert(account.clone(), env.balance(&account));
        let events = env.run(&["history", "--account", &account]).ok()["events"]
            .as_array()
            .unwrap()
            .clone();
        // Gap-free versions.
        for (i, event) in events.iter().enumerate() {
            assert_eq!(
                event["version"],
                i as u64 + 1,
                "{account}: a gap or a repeat"
            );
        }
        history.insert(account, events);
    }
    // Every acknowledged client command is in the store exactly once.
    let mut keys: HashMap<String, usize> = HashMap::new();
    for events in history.values() {
        for event in events {
            if let Some(key) = event["idempotency_key"].as_str() {
                *keys.entry(key.to_owned()).or_default() += 1;
            }
        }
    }
    assert!(
        keys.values().all(|n| *n == 1),
        "an idempotency key appears twice"
    );
    let (mut deposited, mut withdrawn) = (0u64, 0u64);
    for (account, events) in &history {
        for event in events {
            let key = event["idempotency_key"].as_str().unwrap_or("");
            let amount = event["data"]["amount"].as_u64().unwrap_or(0);
            if key.starts_with('c') {
                match event["event_type"].as_str() {
                    Some("Deposited") => deposited += amount,
                    Some("Withdrawn") => withdrawn += amount,
                    other => panic!("{account}: a client key on {other:?}"),
                }
            }
        }
    }
    let mut transfers = BTreeMap::<String, u64>::new();
    for a in &acked {
        match a {
            Acked::Deposit {
                account,
                key,
                amount,
            }
            | Acked::Withdraw {
                account,
                key,
                amount,
            } => {
                let found: Vec<&Value> = history[account]
                    .iter()
                    .filter(|e| e["idempotency_key"] == key.as_str())
                    .collect();
                assert_eq!(
                    found.len(),
                    1,
                    "acknowledged {key} is not in {account} exactly once"
                );
                assert_eq!(found[0]["data"]["amount"], *amount);
            }
            Acked::Transfer { status } => *transfers.entry(status.clone()).or_default() += 1,
            Acked::Refused => {}
        }
    }
    assert!(
        transfers
            .keys()
            .all(|s| ["completed", "refused", "compensated"].contains(&s.as_str())),
        "{transfers:?}"
    );
    // The read model equals the replay of each stream.
    for (account, events) in &history {
        let replayed: i64 = events
            .iter()
            .map(|e| {
                let amount = i64::try_from(e["data"]["amount"].as_u64().unwrap_or(0)).unwrap();
                if e["event_type"] == "Withdrawn" {
                    -amount
                } else {
                    amount
                }
            })
            .sum();
        assert_eq!(
            i64::try_from(balances[account]).unwrap(),
            replayed,
            "{account}: read model vs replay"
        );
    }
    // Money is conserved: transfers move it, never make or lose it.
    let total: u64 = balances.values().sum();
    assert_eq!(
        total,
        INITIAL * ACCOUNTS as u64 + deposited - withdrawn,
        "money was made or lost"
    );
    // No dead letter.
    for model in ["balances", "account-search", "transfer-saga"] {
        let letters = env
            .run(&["projections", "dead-letters", "list", model])
            .ok();
        let empty = letters
            .as_array()
            .map(Vec::is_empty)
            .or_else(|| letters["dead_letters"].as_array().map(Vec::is_empty));
        assert_eq!(empty, Some(true), "{model}: {letters}");
    }
    // The read models equal a clean rebuild.
    // What a search finds (scores depend on the index's deleted documents,
    // which a rebuild has none of: compare the accounts and names found).
    let found = |name: &str| {
        let mut hits: Vec<(String, String)> = env
            .run(&["search", name])
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["account"].as_str().unwrap().to_owned(),
                    h["owner_name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        hits.sort();
        hits
    };
    let searches: Vec<Vec<(String, String)>> = names.iter().map(|n| found(n)).collect();
    for model in ["balances", "account-search"] {
        env.run(&["projections", "rebuild", model, "--restart"])
            .ok();
    }
    for (account, balance) in &balances {
        assert_eq!(
            env.balance(account),
            *balance,
            "{account}: the rebuild differs"
        );
    }
    for (name, before) in names.iter().zip(&searches) {
        assert_eq!(&found(name), before, "search {name}: the rebuild differs");
    }
    // The forgotten owners appear nowhere.
    for owner in &forgotten {
        assert_eq!(
            places(&env, &names[*owner]).await,
            Vec::<String>::new(),
            "owner-{owner} survived"
        );
    }
    assert!(
        !places(&env, &names[ACCOUNTS - 1]).await.is_empty(),
        "the scan finds a kept owner"
    );

    let summary = json!({
        "seed": seed,
        "seconds": seconds,
        "wall_seconds": started.elapsed().as_secs_f64().round(),
        "client_commands": counts.commands.load(Ordering::Relaxed),
        "attempts": counts.attempts.load(Ordering::Relaxed),
        "retries": counts.retries.load(Ordering::Relaxed),
        "unavailable_answers": counts.unavailable.load(Ordering::Relaxed),
        "conflict_or_pending_answers": counts.conflicts.load(Ordering::Relaxed),
        "business_rejections": counts.rejected.load(Ordering::Relaxed),
        "transfers": transfers,
        "forgotten_owners": forgotten.len(),
        "faults": {
            "pg_terminate_rounds": counts.pg_terminations.load(Ordering::Relaxed),
            "pg_backends_terminated": counts.backends_terminated.load(Ordering::Relaxed),
            "redis_kills": counts.redis_kills.load(Ordering::Relaxed),
            "runner_kills": counts.runner_kills.load(Ordering::Relaxed),
            "rebuild_kills": counts.rebuild_kills.load(Ordering::Relaxed),
        },
        "invariant_violations": 0,
    });
    eprintln!("chaos summary: {summary}");
    if let Ok(path) = std::env::var("ES_CHAOS_REPORT") {
        std::fs::write(path, serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    }
    drop(base);
}
