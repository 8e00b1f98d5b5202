//! The HTTP API against a running `bank-account serve`: every endpoint, its
//! status codes and error bodies.

use serde_json::json;

use crate::support::{Env, on_both_backends};

on_both_backends!(the_http_api);

async fn the_http_api(env: &Env) {
    let server = env.serve();
    let health = server.get("/health").await;
    assert_eq!(health.status, 200, "{health:?}");

    let opened = server
        .post(
            "/accounts",
            &[],
            &json!({"account": "h-1", "owner_id": "o-1", "owner_name": "Ada Lovelace", "email": "ada@example.org", "initial": 1000}),
        )
        .await;
    assert_eq!(opened.status, 201, "{opened:?}");
    let second = server
        .post(
            "/accounts",
            &[],
            &json!({"account": "h-2", "owner_id": "o-2", "owner_name": "Alan Turing"}),
        )
        .await;
    assert_eq!(second.status, 201, "{second:?}");

    let key = [("Idempotency-Key", "dep-1")];
    let deposit = server
        .post("/accounts/h-1/deposits", &key, &json!({"amount": 500}))
        .await;
    assert_eq!(deposit.status, 201, "{deposit:?}");
    let retry = server
        .post("/accounts/h-1/deposits", &key, &json!({"amount": 500}))
        .await;
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(retry.json()["deduplicated"], true);
    let reused = server
        .post("/accounts/h-1/deposits", &key, &json!({"amount": 501}))
        .await;
    assert_eq!(reused.status, 409, "{reused:?}");
    assert_eq!(reused.json()["error"], "conflict");

    let account = server.get("/accounts/h-1").await;
    assert_eq!(account.status, 200);
    assert_eq!(account.json()["account"], "h-1");
    assert_eq!(account.json()["balance"], 1500);

    let withdrawal = server
        .post("/accounts/h-1/withdrawals", &[], &json!({"amount": 200}))
        .await;
    assert_eq!(withdrawal.status, 201, "{withdrawal:?}");
    let overdraft = server
        .post("/accounts/h-1/withdrawals", &[], &json!({"amount": 100000}))
        .await;
    assert_eq!(overdraft.status, 422);
    assert_eq!(overdraft.json()["error"], "insufficient_funds");

    let transfer = server
        .post(
            "/transfers",
            &[],
            &json!({"from": "h-1", "to": "h-2", "amount": 300}),
        )
        .await;
    assert_eq!(transfer.status, 201, "{transfer:?}");
    assert_eq!(transfer.json()["status"], "completed");
    let refused = server
        .post(
            "/transfers",
            &[],
            &json!({"from": "h-2", "to": "h-1", "amount": 99999}),
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.json()["error"], "transfer_refused");
    assert_eq!(server.get("/accounts/h-1").await.json()["balance"], 1000);
    assert_eq!(server.get("/accounts/h-2").await.json()["balance"], 300);

    // Bad input: typed, and nothing changes.
    for (path, body) in [
        ("/accounts/h-1/deposits", json!({"amount": -5})),
        ("/accounts/h-1/deposits", json!({"amount": 0})),
        ("/accounts/h-1/deposits", json!({"amount": 1.5})),
        ("/accounts/h-1/deposits", json!({"amount": "5"})),
        (
            "/accounts/h-1/deposits",
            json!({"amount": 18446744073709551615u64}),
        ),
        (
            "/accounts/h-1/deposits",
            json!({"amount": 5, "extra": true}),
        ),
        ("/accounts/h-1/deposits", json!({})),
        (
            "/accounts",
            json!({"account": "bad id!", "owner_id": "o", "owner_name": "x"}),
        ),
        (
            "/transfers",
            json!({"from": "h-1", "to": "h-1", "amount": 1}),
        ),
    ] {
        let response = server.post(path, &[], &body).await;
        assert_eq!(response.status, 422, "{path} {body}: {response:?}");
        assert!(response.json()["message"].is_string());
    }
    let malformed = server
        .request(
            "POST",
            "/accounts/h-1/deposits",
            &[],
            Some(b"{\"amount\": "),
        )
        .await;
    assert_eq!(malformed.status, 422, "{malformed:?}");
    assert_eq!(malformed.json()["error"], "invalid_input");
    let huge = vec![b' '; 64 * 1024];
    let oversized = server
        .request("POST", "/accounts/h-1/deposits", &[], Some(&huge))
        .await;
    assert_eq!(oversized.status, 413, "{oversized:?}");
    assert_eq!(oversized.json()["error"], "too_large");
    let unknown = server
        .post("/accounts/nobody/deposits", &[], &json!({"amount": 5}))
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(server.get("/accounts/nobody").await.status, 404);
    assert_eq!(server.get("/accounts/bad%20id").await.status, 422);
    assert_eq!(server.get("/no/such/route").await.status, 404);
    assert_eq!(server.get("/accounts/h-1").await.json()["balance"], 1000);

    let history = server.get("/accounts/h-1/history").await;
    assert_eq!(history.status, 200);
    assert_eq!(
        history.json()["events"][0]["data"]["owner_name"],
        "Ada Lovelace"
    );

    let search = server.get("/search?q=lovelase").await;
    assert_eq!(search.status, 200);
    assert_eq!(search.json()[0]["account"], "h-1", "{search:?}");
    assert_eq!(server.get("/search").await.status, 422);

    let forget = server.request("DELETE", "/owners/o-1", &[], None).await;
    assert_eq!(forget.status, 200, "{forget:?}");
    assert_eq!(
        server.get("/accounts/h-1").await.json()["owner_name"],
        "<shredded>"
    );
    assert_eq!(server.get("/search?q=lovelace").await.json(), json!([]));

    let metrics = server.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers.contains("text/plain"));
    assert!(
        metrics.body.contains("bank_http_requests_total"),
        "{}",
        metrics.body
    );
}

/// The database goes away under a running server: requests answer 503 with
/// `Retry-After` and change nothing; when it is back, everything works and
/// nothing was lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_goes_away_is_503_and_loses_nothing() {
    let mut env = Env::servers().await;
    let direct = env.database_url.clone().unwrap();
    let proxy = crate::support::Proxy::to(&direct).await;
    env.database_url = Some(proxy.url(&direct));
    let server = env.serve();
    let opened = server
        .post(
            "/accounts",
            &[],
            &json!({"account": "x", "owner_id": "o", "owner_name": "Ada", "initial": 100}),
        )
        .await;
    assert_eq!(opened.status, 201, "{opened:?}");

    proxy.cut();
    let key = [("Idempotency-Key", "during-outage")];
    let deposit = server
        .post("/accounts/x/deposits", &key, &json!({"amount": 5}))
        .await;
    assert_eq!(deposit.status, 503, "{deposit:?}");
    assert!(deposit.headers.contains("retry-after: 1"), "{deposit:?}");
    assert_eq!(deposit.json()["error"], "unavailable");
    // Reads come from the read model, which is still there.
    let read = server.get("/accounts/x").await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.json()["balance"], 100, "{read:?}");
    assert_eq!(server.get("/health").await.status, 503);

    proxy.restore().await;
    // The client retries with the same key: applied once.
    let mut retried = None;
    for _ in 0..100 {
        let response = server
            .post("/accounts/x/deposits", &key, &json!({"amount": 5}))
            .await;
        if response.status != 503 {
            retried = Some(response);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let retried = retried.expect("the server recovers once the database is back");
    assert!(matches!(retried.status, 200 | 201), "{retried:?}");
    let again = server
        .post("/accounts/x/deposits", &key, &json!({"amount": 5}))
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(server.get("/accounts/x").await.json()["balance"], 105);
}
