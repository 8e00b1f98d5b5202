//! Answers that can be trusted: hostile ids, a wrong master key (the
//! failures a hostile tester found, each reproduced here first).

use serde_json::json;

use crate::support::{Env, on_both_backends};

on_both_backends!(
    ids_that_look_like_the_sinks_own_keys_are_plain_ids,
    a_rebuild_with_a_wrong_master_key_is_refused_and_changes_nothing,
    concurrent_retries_of_one_intent_all_get_its_result,
    the_search_box_takes_words_not_queries,
);

/// `{"account": "__tags"}` (valid by the id rule) made Redis refuse the key;
/// from then on every request answered 500 while writes still landed.
async fn ids_that_look_like_the_sinks_own_keys_are_plain_ids(env: &Env) {
    let server = env.serve();
    let ids = ["__tags", "__checkpoint", "live", "g1", "v", "c", "t"];
    for (n, id) in ids.iter().enumerate() {
        let opened = server
            .post(
                "/accounts",
                &[],
                &json!({"account": id, "owner_id": format!("__tags-{n}"), "owner_name": "Ada Lovelace", "initial": 100}),
            )
            .await;
        assert_eq!(opened.status, 201, "{id}: {opened:?}");
        assert_eq!(opened.json()["visible"], true, "{id}: {opened:?}");
        let deposit = server
            .post(
                &format!("/accounts/{id}/deposits"),
                &[],
                &json!({"amount": 5}),
            )
            .await;
        assert_eq!(deposit.status, 201, "{id}: {deposit:?}");
        assert_eq!(deposit.json()["balance"], 105, "{id}: {deposit:?}");
    }
    let moved = server
        .post(
            "/transfers",
            &[],
            &json!({"from": "__tags", "to": "__checkpoint", "amount": 50}),
        )
        .await;
    assert_eq!(moved.status, 201, "{moved:?}");
    assert_eq!(server.get("/accounts/__tags").await.json()["balance"], 55);
    assert_eq!(
        server.get("/accounts/__checkpoint").await.json()["balance"],
        155
    );
    let found = server.get("/search?q=lovelace").await;
    assert_eq!(found.status, 200, "{found:?}");
    assert_eq!(
        found.json().as_array().map(Vec::len),
        Some(ids.len()),
        "{found:?}"
    );
    assert_eq!(server.get("/health").await.json()["status"], "ok");
    let forgotten = server
        .request("DELETE", "/owners/__tags-0", &[], None)
        .await;
    assert_eq!(forgotten.status, 200, "{forgotten:?}");
    assert_eq!(
        server.get("/accounts/__tags").await.json()["owner_name"],
        "<shredded>"
    );
    for status in env.run(&["projections", "status"]).ok()["projections"]
        .as_array()
        .unwrap()
    {
        assert_eq!(status["dead_letters"], 0, "{status}");
        assert_eq!(status["lag_events"], 0, "{status}");
    }
}

/// `ES_MASTER_KEY=<another key> projections rebuild balances`, three times:
/// the first two exited `store` and left dead letters, the third switched
/// the broken generation live and dropped the good one.
async fn a_rebuild_with_a_wrong_master_key_is_refused_and_changes_nothing(env: &Env) {
    env.open("w-1", "owner-w", "Ada", 100);
    let wrong = "test:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    for attempt in 1..=3 {
        let run: crate::support::Run = env
            .command()
            .env("ES_MASTER_KEY", wrong)
            .args(["--json", "projections", "rebuild", "balances"])
            .output()
            .expect("runs")
            .into();
        let message = run.fails("config", 78);
        assert!(
            message.contains("master key"),
            "attempt {attempt}: {message}"
        );
    }
    let status = &env.run(&["projections", "status", "balances"]).ok()["projections"][0];
    assert_eq!(status["generation"], 1, "{status}");
    assert_eq!(status["generations"], json!([1]), "{status}");
    assert_eq!(status["dead_letters"], 0, "{status}");
    assert_eq!(env.balance("w-1"), 100);
    // The right key rebuilds.
    let rebuilt = env.run(&["projections", "rebuild", "balances"]).ok();
    assert_eq!(rebuilt["to"], 2, "{rebuilt}");
    assert_eq!(env.balance("w-1"), 100);
}

/// 20 parallel withdrawals with one `Idempotency-Key` on a balance of
/// exactly 100: 13 of 60 answers were `insufficient_funds` for a withdrawal
/// that had landed; transfers with one key answered `already_exists`; one key
/// with another amount answered 422 instead of 409.
async fn concurrent_retries_of_one_intent_all_get_its_result(env: &Env) {
    let server = env.serve();
    env.open("i-1", "owner-i", "Ada", 100);
    env.open("i-2", "owner-j", "Grace", 0);
    let key = [("Idempotency-Key", "withdraw-all")];
    let all = json!({"amount": 100});
    let answers = futures::future::join_all(
        (0..20).map(|_| server.post("/accounts/i-1/withdrawals", &key, &all)),
    )
    .await;
    let mut first = 0;
    for answer in &answers {
        assert!(matches!(answer.status, 200 | 201), "{answer:?}");
        let body = answer.json();
        assert_eq!(body["version"], 3, "{body}");
        assert_eq!(body["balance"], 0, "{body}");
        first += usize::from(answer.status == 201);
    }
    assert_eq!(first, 1, "exactly one answer is the first execution");
    assert_eq!(env.balance("i-1"), 0);

    // The same key for another amount is a conflict, not a business refusal.
    let other = server
        .post("/accounts/i-1/withdrawals", &key, &json!({"amount": 50}))
        .await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_eq!(other.json()["error"], "conflict");

    // Transfers with one key: one transfer, every answer its result.
    server
        .post("/accounts/i-1/deposits", &[], &json!({"amount": 30}))
        .await;
    let key = [("Idempotency-Key", "move-30")];
    let move_30 = json!({"from": "i-1", "to": "i-2", "amount": 30});
    let answers =
        futures::future::join_all((0..10).map(|_| server.post("/transfers", &key, &move_30))).await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            assert!(matches!(a.status, 200 | 201), "{a:?}");
            assert_eq!(a.json()["status"], "completed", "{a:?}");
            a.json()["transfer"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let other = server
        .post(
            "/transfers",
            &key,
            &json!({"from": "i-1", "to": "i-2", "amount": 10}),
        )
        .await;
    assert_eq!(other.status, 409, "{other:?}");
    assert_eq!(env.balance("i-1"), 0);
    assert_eq!(env.balance("i-2"), 30);

    // Two keys in one request: which is meant cannot be guessed.
    let two = server
        .post(
            "/accounts/i-2/deposits",
            &[("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
            &json!({"amount": 1}),
        )
        .await;
    assert_eq!(two.status, 400, "{two:?}");
    assert_eq!(two.json()["error"], "bad_request");
    assert_eq!(env.balance("i-2"), 30);
}

/// No error message, of the API or the CLI, ever quotes its input: a canary
/// sent in every place input goes comes back in no answer. (clap's own usage
/// errors name a mistyped flag, as every CLI does; they are not run here.)
#[tokio::test(flavor = "multi_thread")]
async fn no_error_message_echoes_its_input() {
    const CANARY: &str = "Zq9Canary";
    let env = Env::embedded();
    env.open("k-1", "owner-k", "Ada", 10);
    let server = env.serve();
    let bodies: Vec<(&str, String)> = vec![
        (
            "/accounts",
            format!("\"{CANARY} Ada Lovelace {CANARY}@example.org\""),
        ),
        (
            "/accounts",
            format!("{{\"account\": \"{CANARY}!\", \"owner_id\": \"o\", \"owner_name\": \"x\"}}"),
        ),
        (
            "/accounts",
            format!("{{\"account\": \"a\", \"owner_id\": \"{CANARY} \", \"owner_name\": \"x\"}}"),
        ),
        (
            "/accounts",
            format!(
                "{{\"account\": \"a\", \"owner_id\": \"o\", \"owner_name\": \"x\", \"{CANARY}\": 1}}"
            ),
        ),
        (
            "/accounts",
            format!(
                "{{\"account\": \"a\", \"owner_id\": \"o\", \"owner_name\": \"x\", \"email\": \"{CANARY}\"}}"
            ),
        ),
        (
            "/accounts",
            format!("{{\"account\": 5, \"owner_id\": \"{CANARY}\"}}"),
        ),
        (
            "/accounts/k-1/deposits",
            format!("{{\"amount\": \"{CANARY}\"}}"),
        ),
        (
            "/accounts/k-1/deposits",
            format!("{{\"amount\": {CANARY}}}"),
        ),
        ("/accounts/k-1/deposits", format!("[\"{CANARY}\"]")),
        (
            "/accounts/k-1/withdrawals",
            format!("{{\"amount\": 1, \"{CANARY}\": true}}"),
        ),
        (
            "/transfers",
            format!("{{\"from\": \"{CANARY}\", \"to\": \"{CANARY}\", \"amount\": 1}}"),
        ),
        (
            "/transfers",
            format!("{{\"from\": \"k-1\", \"to\": \"{CANARY}-x\", \"amount\": 1}}"),
        ),
        (
            "/accounts/Zq9Canary%FF/deposits",
            "{\"amount\": 1}".to_owned(),
        ),
        ("/accounts/Zq9Canary/deposits", "{\"amount\": 1}".to_owned()),
    ];
    let mut answers = Vec::new();
    for (path, body) in &bodies {
        answers.push(
            server
                .request("POST", path, &[], Some(body.as_bytes()))
                .await,
        );
    }
    for key in [
        format!("{CANARY} é"),
        format!("{CANARY}{}", "x".repeat(300)),
    ] {
        answers.push(
            server
                .request(
                    "POST",
                    "/accounts/k-1/deposits",
                    &[("Idempotency-Key", key.as_str())],
                    Some(b"{\"amount\": 1}"),
                )
                .await,
        );
    }
    let reused = [("Idempotency-Key", "Zq9Canary-key")];
    server
        .post("/accounts/k-1/deposits", &reused, &json!({"amount": 1}))
        .await;
    answers.push(
        server
            .post("/accounts/k-1/deposits", &reused, &json!({"amount": 2}))
            .await,
    );
    for path in [
        format!("/accounts/{CANARY}"),
        format!("/accounts/{CANARY}%FF"),
        format!("/accounts/{CANARY}/history"),
        format!("/search?q={}", CANARY.repeat(30)),
        format!("/{CANARY}"),
    ] {
        answers.push(server.get(&path).await);
    }
    answers.push(
        server
            .request("DELETE", &format!("/owners/{CANARY}!"), &[], None)
            .await,
    );
    answers.push(
        server
            .request("PUT", &format!("/accounts/{CANARY}"), &[], None)
            .await,
    );
    for answer in &answers {
        assert!(answer.status >= 400, "{answer:?}");
        assert!(answer.json()["error"].is_string(), "{answer:?}");
        assert!(
            !answer.body.contains(CANARY),
            "the answer echoes its input: {answer:?}"
        );
        assert!(!answer.body.contains("zq9canary"), "{answer:?}");
    }

    let runs = [
        vec![
            "open",
            "--account",
            "Zq9Canary!",
            "--owner-id",
            "o",
            "--owner-name",
            "x",
        ],
        vec![
            "open",
            "--account",
            "a",
            "--owner-id",
            "Zq9Canary ",
            "--owner-name",
            "x",
        ],
        vec![
            "open",
            "--account",
            "a",
            "--owner-id",
            "o",
            "--owner-name",
            "x",
            "--email",
            "Zq9Canary",
        ],
        vec!["deposit", "--account", "k-1", "--amount", "Zq9Canary"],
        vec!["deposit", "--account", "Zq9Canary", "--amount", "0.01"],
        vec![
            "deposit",
            "--account",
            "k-1",
            "--amount",
            "0.01",
            "--idempotency-key",
            "Zq9Canary\u{7}",
        ],
        vec!["withdraw", "--account", "k-1", "--amount", "-Zq9Canary"],
        vec!["history", "--account", "Zq9Canary"],
        vec!["balance", "--account", "Zq9Canary!"],
        vec![
            "transfer",
            "--from",
            "Zq9Canary",
            "--to",
            "Zq9Canary",
            "--amount",
            "0.01",
        ],
        vec!["forget", "--owner-id", "Zq9Canary!"],
        vec!["streams", "show", "Zq9Canary"],
        vec!["streams", "show", "Zq9Canary!"],
        vec!["projections", "status", "Zq9Canary"],
        vec![
            "--database-url",
            "postgres://Zq9Canary:Zq9Canary@127.0.0.1:1/Zq9Canary",
            "balance",
            "--account",
            "k-1",
        ],
        vec![
            "--database-url",
            "Zq9Canary://x",
            "balance",
            "--account",
            "k-1",
        ],
    ];
    for args in runs {
        let run = env.run(&args);
        assert_ne!(run.code, 0, "{args:?}: {run:?}");
        assert!(run.json()["error"].is_string(), "{args:?}: {run:?}");
        for output in [&run.stdout, &run.stderr] {
            assert!(
                !output.contains(CANARY),
                "{args:?} echoes its input: {run:?}"
            );
        }
    }
}

/// A PostgreSQL database that does not exist was `internal` (exit 1) with
/// PostgreSQL's source line in the message: it is the configuration.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_database_is_a_configuration_error() {
    let mut env = Env::servers().await;
    let url = env.database_url.clone().expect("postgres");
    let (base, _) = url.rsplit_once('/').expect("a database path");
    env.database_url = Some(format!(
        "{base}/es_no_such_database_{}",
        uuid::Uuid::now_v7().simple()
    ));
    let message = env
        .run(&["balance", "--account", "a-1"])
        .fails("config", 78);
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains("line"), "{message}");
}

/// `q=*` listed every owner, `q=owner_name:[a TO z]` paged through all
/// names, `q=subject:<owner id>` and `id:/.*/` reached internal fields.
async fn the_search_box_takes_words_not_queries(env: &Env) {
    let server = env.serve();
    env.open("q-1", "owner-q1", "Ada Lovelace", 0);
    env.open("q-2", "owner-q2", "Grace Hopper", 0);
    for q in [
        "*",
        "owner_name:[a%20TO%20z]",
        "subject:owner-q1",
        "id:/.*/",
        "owner_name:*",
        "%22%22",
        "(",
        "!",
    ] {
        let found = server.get(&format!("/search?q={q}")).await;
        assert!(matches!(found.status, 200 | 422), "{q}: {found:?}");
        if found.status == 200 {
            assert_eq!(
                found.json(),
                json!([]),
                "{q} reaches what plain words do not"
            );
        }
    }
    let found = server.get("/search?q=ada%20lovelace").await.json();
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
    assert_eq!(found[0]["account"], "q-1");
    let found = server.get("/search?q=q-2").await.json();
    assert_eq!(found[0]["account"], "q-2", "{found}");
}
