//! The write path: runners run on their own (`serve`, `projections run`),
//! a command returns when it is written, whoever runs the projections, and
//! a written command is never reported as failed.

use std::time::{Duration, Instant};

use es_core::{EventStore, ExpectedVersion, Metadata, NewEvent, StreamId};
use serde_json::{Value, json};

use crate::support::{Env, on_both_backends};

on_both_backends!(
    concurrent_writers_beside_a_server_all_return_written,
    a_killed_runner_is_taken_over_by_a_standby,
    a_poison_event_halts_visibly_and_commands_keep_working,
    the_embedded_cli_alone_catches_up_itself,
    rebuild_all_rebuilds_every_read_model_and_names_the_saga_it_skips,
);

/// Polls `ready` (every 50 ms, at most 20 s).
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A command's JSON answer: written, and no error (a warning at most).
#[track_caller]
fn written(run: &crate::support::Run) -> Value {
    assert_eq!(
        run.code, 0,
        "a written command was reported as failed: {run:?}"
    );
    let json = run.json();
    assert!(json.get("error").is_none(), "{run:?}");
    assert!(json["visible"].is_boolean(), "{run:?}");
    json
}

fn statuses(env: &Env) -> Vec<Value> {
    env.run(&["projections", "status"]).ok()["projections"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn concurrent_writers_beside_a_server_all_return_written(env: &Env) {
    let server = env.serve();
    env.open("c-1", "owner-c", "Ada", 0);
    // 4 CLI processes and 4 HTTP clients deposit at once.
    let http = futures::future::join_all((0..4).map(|i| {
        let server = &server;
        async move {
            let mut answers = Vec::new();
            for n in 0..8 {
                let key = format!("http-{i}-{n}");
                answers.push(
                    server
                        .post(
                            "/accounts/c-1/deposits",
                            &[("Idempotency-Key", key.as_str())],
                            &json!({"amount": 1}),
                        )
                        .await,
                );
            }
            answers
        }
    }));
    let (runs, answers) = std::thread::scope(|scope| {
        let cli: Vec<_> = (0..4)
            .map(|i| {
                scope.spawn(move || {
                    (0..8)
                        .map(|n| {
                            let key = format!("cli-{i}-{n}");
                            env.run(&[
                                "deposit",
                                "--account",
                                "c-1",
                                "--amount",
                                "0.01",
                                "--idempotency-key",
                                &key,
                            ])
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let answers =
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(http));
        let runs: Vec<_> = cli
            .into_iter()
            .flat_map(|t| t.join().expect("a client thread"))
            .collect();
        (runs, answers)
    });
    for run in &runs {
        written(run);
    }
    for answer in answers.into_iter().flatten() {
        assert_eq!(answer.status, 201, "{answer:?}");
        assert!(answer.json()["visible"].is_boolean(), "{answer:?}");
    }
    assert_eq!(env.balance("c-1"), 64);
    assert_eq!(server.get("/accounts/c-1").await.json()["balance"], 64);
}

/// Deposits 1 cent on `k-1` once per `n`, keyed; returns how many.
fn deposit_keyed(env: &Env, ns: std::ops::Range<u64>) -> u64 {
    for n in ns.clone() {
        let key = format!("k-{n}");
        written(&env.run(&[
            "deposit",
            "--account",
            "k-1",
            "--amount",
            "0.01",
            "--idempotency-key",
            &key,
        ]));
    }
    ns.end - ns.start
}

async fn a_killed_runner_is_taken_over_by_a_standby(env: &Env) {
    env.open("k-1", "owner-k", "Ada", 0);
    let active = env.worker();
    eventually("the first worker to run every projection", || {
        statuses(env).iter().all(|s| s["runner_active"] == true)
    })
    .await;
    let standby = env.worker();
    let mut deposited = 0;
    deposited += deposit_keyed(env, 0..10);
    // Mid-stream: the active runner dies as a crash would.
    active.kill();
    deposited += deposit_keyed(env, 10..20);
    // The standby took over: every projection is run again, and catches up
    // without losing or doubling anything.
    eventually("the standby to take over and catch up", || {
        statuses(env)
            .iter()
            .all(|s| s["runner_active"] == true && s["lag_events"] == 0)
    })
    .await;
    assert_eq!(env.balance("k-1"), deposited);
    // A write now is visible at once: the standby follows the log.
    let after = written(&env.run(&["deposit", "--account", "k-1", "--amount", "0.01"]));
    assert_eq!(after["visible"], true, "{after}");
    assert_eq!(after["balance"], deposited + 1);
    for s in statuses(env) {
        assert_eq!(s["dead_letters"], 0, "{s}");
    }
    drop(standby);
}

/// Appends an event that no projection can decode (a schema version from
/// the future) to a stream of its own, through the store's real append.
async fn append_poison(env: &Env) -> String {
    let store = env.store().await;
    let event = NewEvent {
        event_id: es_core::EventId::new(),
        event_type: "Deposited".into(),
        schema_version: 99,
        payload: vec![0xff, 0x00],
        metadata: Metadata::now(),
    };
    let id = event.event_id.to_string();
    store
        .append(es_core::AppendRequest::new(
            StreamId::new("account-poison").expect("a stream id"),
            ExpectedVersion::Any,
            vec![event],
        ))
        .await
        .expect("the poison appends");
    id
}

async fn a_poison_event_halts_visibly_and_commands_keep_working(env: &Env) {
    let server = env.serve();
    env.open("h-1", "owner-h", "Ada", 100);
    env.open("h-2", "owner-i", "Grace", 100);
    let poison = append_poison(env).await;
    eventually("the balances to halt at the poison event", || {
        statuses(env)
            .iter()
            .any(|s| s["name"] == "balances" && s["halted"]["event_id"] == poison.as_str())
    })
    .await;

    // Everywhere an operator looks.
    let text = env
        .command()
        .args(["projections", "status", "balances"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(&format!("halted at event {poison}")),
        "{text}"
    );
    assert!(!text.contains("up to date"), "{text}");
    let health = server.get("/health").await;
    assert_eq!(health.status, 200, "{health:?}");
    let health = health.json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["halted"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["projection"] == "balances")),
        "{health}"
    );
    let metrics = server.get("/metrics").await.body;
    assert!(
        metrics.contains("es_projection_halted{projection=\"balances\"} 1"),
        "{metrics}"
    );

    // Reads of the halted model answer one kind; commands still work.
    env.run(&["balance", "--account", "h-1"])
        .fails("read_model_halted", 69);
    let read = server.get("/accounts/h-1").await;
    assert_eq!(read.status, 503, "{read:?}");
    assert_eq!(read.json()["error"], "read_model_halted");
    let deposit = written(&env.run(&["deposit", "--account", "h-2", "--amount", "0.05"]));
    assert_eq!(deposit["visible"], false, "{deposit}");
    assert_eq!(deposit["balance"], 105, "{deposit}");
    assert!(
        deposit["lagging"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l["projection"] == "balances" && l["reason"]["reason"] == "halted")),
        "{deposit}"
    );
    let over_http = server
        .post("/accounts/h-2/deposits", &[], &json!({"amount": 5}))
        .await;
    assert_eq!(over_http.status, 201, "{over_http:?}");
    assert!(
        over_http.headers.contains("read-models-lag: balances"),
        "{over_http:?}"
    );
    env.run(&["history", "--account", "h-2"]).ok();

    // The operator skips the event: the runners go on by themselves.
    for name in ["balances", "account-search"] {
        env.run(&["projections", "dead-letters", "skip", name, &poison])
            .ok();
    }
    eventually("the read models to go on after the skip", || {
        env.run(&["balance", "--account", "h-2"]).json()["balance"] == 110
    })
    .await;
    assert_eq!(server.get("/health").await.json()["status"], "ok");
}

async fn the_embedded_cli_alone_catches_up_itself(env: &Env) {
    // No server, no worker: each command catches the read models up itself
    // and lets go of every lock before it exits.
    env.open("e-1", "owner-e", "Ada Lovelace", 10);
    let deposit = written(&env.run(&["deposit", "--account", "e-1", "--amount", "0.05"]));
    assert_eq!(deposit["visible"], true, "{deposit}");
    assert_eq!(env.balance("e-1"), 15);
    let found = env.run(&["search", "lovelace"]).ok();
    assert_eq!(found[0]["account"], "e-1", "{found}");
    // And a server started afterwards takes the runners (no lock is left).
    let server = env.serve();
    let deposit = server
        .post("/accounts/e-1/deposits", &[], &json!({"amount": 5}))
        .await;
    assert_eq!(deposit.status, 201, "{deposit:?}");
    assert_eq!(deposit.json()["visible"], true, "{deposit:?}");
}

async fn rebuild_all_rebuilds_every_read_model_and_names_the_saga_it_skips(env: &Env) {
    env.open("r-1", "owner-r", "Ada Lovelace", 10);
    let json = env.run(&["projections", "rebuild", "--all"]).ok();
    let rebuilt: Vec<&str> = json["rebuilt"]
        .as_array()
        .expect("the rebuilds")
        .iter()
        .filter_map(|r| r["projection"].as_str())
        .collect();
    assert_eq!(rebuilt, ["balances", "account-search"], "{json}");
    assert!(
        json["rebuilt"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["to"] == 2),
        "{json}"
    );
    assert_eq!(json["skipped"][0]["projection"], "transfer-saga", "{json}");
    assert!(
        json["skipped"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("process manager")),
        "{json}"
    );
    assert_eq!(json["failed"], json!([]), "{json}");
    // The text form prints each result.
    let text = env
        .command()
        .args(["projections", "rebuild", "--all"])
        .output()
        .expect("runs");
    assert!(text.status.success(), "{text:?}");
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("balances: generation 3 is live (was 2)"),
        "{text}"
    );
    assert!(
        text.contains("account-search: generation 3 is live (was 2)"),
        "{text}"
    );
    assert!(
        text.contains("transfer-saga: skipped (a process manager"),
        "{text}"
    );
    assert_eq!(env.balance("r-1"), 10);
}

/// The user's report: a transaction in the same database that touches
/// another table, held open (`begin; insert …; select pg_sleep(45)`), made
/// every write wait 30 s and fail. Now commands return at once, visible, while
/// it is open; only a transaction that appends holds the log back, and
/// `projections status` then names it.
#[tokio::test(flavor = "multi_thread")]
async fn only_an_open_appending_transaction_holds_the_log_back() {
    use sqlx::Connection as _;
    let env = Env::servers().await;
    let url = env.database_url.clone().expect("postgres");
    let server = env.serve();
    env.open("u-1", "owner-u", "Ada", 0);

    let mut unrelated = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut unrelated)
        .await
        .expect("begin");
    sqlx::query("CREATE TABLE some_other_table (x int)")
        .execute(&mut unrelated)
        .await
        .expect("create");
    sqlx::query("INSERT INTO some_other_table VALUES (1)")
        .execute(&mut unrelated)
        .await
        .expect("insert");
    for n in 0..3 {
        let deposit = written(&env.run(&["deposit", "--account", "u-1", "--amount", "0.01"]));
        assert_eq!(
            deposit["visible"], true,
            "deposit {n} behind an unrelated transaction: {deposit}"
        );
    }
    let over_http = server
        .post("/accounts/u-1/deposits", &[], &json!({"amount": 1}))
        .await;
    assert_eq!(over_http.json()["visible"], true, "{over_http:?}");
    let status = env.run(&["projections", "status"]).ok();
    assert_eq!(status["horizon"]["held_back"], false, "{status}");
    assert_eq!(env.balance("u-1"), 4);

    // An appending transaction held open (a batch job that marked itself and
    // wrote an event) holds the log back, and says so.
    let mut appender = sqlx::PgConnection::connect(&url).await.expect("connect");
    sqlx::query("BEGIN")
        .execute(&mut appender)
        .await
        .expect("begin");
    es_store_postgres::mark_appender(&mut appender)
        .await
        .expect("mark");
    sqlx::query(
        "INSERT INTO es_events (stream_id, version, event_id, event_type, schema_version,
                                payload, recorded_at)
         VALUES ('batch-1', 1, gen_random_uuid(), 'Imported', 1, '\\x00', now())",
    )
    .execute(&mut appender)
    .await
    .expect("insert");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut appender)
        .await
        .expect("pid");
    let behind = written(&env.run(&[
        "--wait",
        "0.3",
        "deposit",
        "--account",
        "u-1",
        "--amount",
        "0.01",
    ]));
    assert_eq!(behind["visible"], false, "{behind}");
    assert_eq!(
        behind["balance"], 5,
        "the balance comes from the account's events: {behind}"
    );
    let status = env.run(&["projections", "status"]).ok();
    assert_eq!(status["horizon"]["held_back"], true, "{status}");
    assert_eq!(status["horizon"]["holders"][0]["pid"], pid, "{status}");
    let text = env
        .command()
        .args(["projections", "status"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("held back"), "{text}");
    assert!(text.contains(&format!("pid {pid}")), "{text}");
    assert!(!text.contains("up to date"), "{text}");

    // Once it ends, everything is projected, nothing skipped.
    sqlx::query("ROLLBACK")
        .execute(&mut appender)
        .await
        .expect("rollback");
    sqlx::query("ROLLBACK")
        .execute(&mut unrelated)
        .await
        .expect("rollback");
    eventually("the read models to catch up", || env.balance("u-1") == 5).await;
}
