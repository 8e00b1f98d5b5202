//! Answers that can be trusted: hostile ids, a wrong master key (the
//! failures a hostile tester found, each reproduced here first).

use serde_json::json;

use crate::support::{Env, on_both_backends};

on_both_backends!(
    ids_that_look_like_the_sinks_own_keys_are_plain_ids,
    a_rebuild_with_a_wrong_master_key_is_refused_and_changes_nothing,
    concurrent_retries_of_one_intent_all_get_its_result,
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
