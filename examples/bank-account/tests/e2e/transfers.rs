//! Transfers: completed, refused and compensated, each settled before the
//! command returns; money conserved at every settled point; a retried
//! transfer moves nothing twice.

use crate::support::{Env, on_both_backends};

on_both_backends!(transfers_settle_and_conserve_money);

fn total(env: &Env, accounts: &[&str]) -> u64 {
    accounts.iter().map(|a| env.balance(a)).sum()
}

async fn transfers_settle_and_conserve_money(env: &Env) {
    env.open("a", "owner-a", "Ada", 10_000);
    env.open("b", "owner-b", "Alan", 0);
    env.open("c", "owner-c", "Grace", 0);
    env.run(&["close", "--account", "c"]).ok();
    let accounts = ["a", "b", "c"];
    assert_eq!(total(env, &accounts), 10_000);

    let done = env
        .run(&["transfer", "--from", "a", "--to", "b", "--amount", "25.00"])
        .ok();
    assert_eq!(done["status"], "completed");
    assert_eq!((env.balance("a"), env.balance("b")), (7_500, 2_500));

    // Refused: nothing moved.
    let refused = env.run(&[
        "transfer", "--from", "b", "--to", "a", "--amount", "9999.99",
    ]);
    refused.fails("transfer_refused", 65);
    assert_eq!(refused.json()["status"], "refused");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("insufficient_funds")
    );
    assert_eq!(total(env, &accounts), 10_000);

    // Compensated: the target is closed, the source refunded.
    let compensated = env.run(&["transfer", "--from", "a", "--to", "c", "--amount", "1.00"]);
    compensated.fails("transfer_compensated", 65);
    assert_eq!(env.balance("a"), 7_500);
    // A missing target: compensated too.
    env.run(&[
        "transfer", "--from", "a", "--to", "ghost", "--amount", "1.00",
    ])
    .fails("transfer_compensated", 65);
    assert_eq!(env.balance("a"), 7_500);
    // A missing source: refused.
    env.run(&[
        "transfer", "--from", "ghost", "--to", "a", "--amount", "1.00",
    ])
    .fails("transfer_refused", 65);
    // The same account twice.
    env.run(&["transfer", "--from", "a", "--to", "a", "--amount", "1.00"])
        .fails("same_account", 65);
    assert_eq!(total(env, &accounts), 10_000);

    // Retried with one key: moved once.
    for _ in 0..3 {
        env.run(&[
            "transfer",
            "--from",
            "a",
            "--to",
            "b",
            "--amount",
            "10.00",
            "--idempotency-key",
            "t-1",
        ])
        .ok();
    }
    assert_eq!((env.balance("a"), env.balance("b")), (6_500, 3_500));
    // The key reused for another transfer: a conflict.
    env.run(&[
        "transfer",
        "--from",
        "a",
        "--to",
        "b",
        "--amount",
        "10.01",
        "--idempotency-key",
        "t-1",
    ])
    .fails("conflict", 75);
    assert_eq!(total(env, &accounts), 10_000);

    // The saga's steps are in the history, keyed, caused by the transfer.
    let history = env.run(&["history", "--account", "a"]).ok();
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Opened",
            "Deposited",
            "Withdrawn",
            "Withdrawn",
            "Refunded",
            "Withdrawn",
            "Refunded",
            "Withdrawn"
        ]
    );
    // Everything settled: the saga is not behind.
    let status = env.run(&["projections", "status", "transfer-saga"]).ok();
    assert_eq!(
        status["projections"][0]["name"], "transfer-saga",
        "{status}"
    );
    assert_eq!(status["projections"][0]["lag_events"], 0, "{status}");
}
