//! The `projections` commands of the CLI kit, through the `ops` example's
//! registered projections (a key-value `balances` model and a tantivy `owners`
//! index): list, status, rebuild, reset and dead letters, with their error
//! paths, on the embedded default and on PostgreSQL with Redis.

use es_app::testing::TEST_MASTER_KEY;
use serde_json::Value;

use crate::cli::Ops;

/// The projection named `name` in a `projections list --json` array.
fn entry<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .expect("an array")
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list}"))
}

#[test]
fn projections_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let ops = Ops::embedded(dir.path());
    ops.run(&[
        "seed",
        "acc-1",
        "owner-1",
        "Ada Lovelace",
        "--deposits",
        "3",
    ])
    .ok();
    ops.run(&[
        "seed",
        "acc-2",
        "owner-2",
        "Grace Hopper",
        "--deposits",
        "2",
    ])
    .ok();
    ops.run(&[
        "seed",
        "acc-3",
        "owner-3",
        "Poison",
        "--deposits",
        "1",
        "--amount",
        "999",
    ])
    .ok();

    // Nothing projected yet: generation 1, every event behind.
    let list = ops.run(&["projections", "list", "--json"]).ok().json();
    assert_eq!(entry(&list, "balances")["generation"], 1);
    assert_eq!(entry(&list, "balances")["lag_events"], 9);
    assert_eq!(entry(&list, "owners")["sink"], "tantivy");
    let text = ops.run(&["projections", "list"]).ok().stdout;
    assert!(
        text.contains("balances") && text.contains("9 events behind"),
        "{text}"
    );

    // The poison deposit halts `balances` and becomes a dead letter.
    let halted = ops.run(&["catch-up"]);
    assert_ne!(halted.code, 0, "{}", halted.stdout);
    assert!(
        halted.stderr.contains("deposits of 999 are refused"),
        "{}",
        halted.stderr
    );
    let letters = ops
        .run(&["projections", "dead-letters", "list", "balances", "--json"])
        .ok()
        .json();
    let letters = letters.as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["event_type"], "Deposited");
    assert_eq!(letters[0]["stream_id"], "account-acc-3");
    let poison = letters[0]["event_id"].as_str().unwrap().to_owned();
    let status = ops
        .run(&["projections", "status", "balances", "--json"])
        .ok()
        .json();
    let balances = &status["projections"][0];
    assert_eq!(balances["dead_letters"], 1);
    assert_eq!(balances["lag_events"], 1, "halted before the poison");
    assert_eq!(balances["runner_active"], false);
    assert_eq!(status["horizon"], Value::Null, "no horizon on SQLite");

    // Skipping moves the halted projection past it; the runner goes on.
    let skipped = ops
        .run(&[
            "projections",
            "dead-letters",
            "skip",
            "balances",
            &poison,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(skipped["skipped"], true);
    ops.run(&["catch-up"]).ok();
    assert_eq!(
        ops.run(&["get", "account-acc-1:balance"])
            .ok()
            .stdout
            .trim(),
        "300"
    );
    assert_eq!(
        ops.run(&["get", "account-acc-3:owner"]).ok().stdout.trim(),
        "Poison"
    );
    let list = ops.run(&["projections", "list", "--json"]).ok().json();
    assert_eq!(entry(&list, "balances")["lag_events"], 0);
    // The letter stays as the record of the decision, now behind the
    // checkpoint.
    assert_eq!(entry(&list, "balances")["dead_letters"], 1);
    let letters = ops
        .run(&["projections", "dead-letters", "list", "balances", "--json"])
        .ok()
        .json();
    assert_eq!(letters[0]["skipped"], true, "{letters}");

    // A rebuild skips it too: same model, no halt.
    let before = ops.run(&["get", "account-acc-1:balance"]).ok().stdout;
    let rebuilt = ops
        .run(&["projections", "rebuild", "balances", "--json"])
        .ok()
        .json();
    assert_eq!(rebuilt["to"], 2);
    assert_eq!(
        ops.run(&["get", "account-acc-1:balance"]).ok().stdout,
        before
    );
    let missing = ops.run(&["get", "account-acc-3:balance"]);
    assert_ne!(missing.code, 0, "the skipped deposit stays unapplied");

    // A rebuild of the search index: generation 2, the same documents.
    let rebuilt = ops
        .run(&["projections", "rebuild", "owners", "--json"])
        .ok()
        .json();
    assert_eq!(
        (rebuilt["from"].as_u64(), rebuilt["to"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(rebuilt["events"], 9);
    assert_eq!(rebuilt["dropped"], serde_json::json!([1]));
    let text = ops.run(&["projections", "reset", "owners"]).ok();
    assert!(
        text.stdout.contains("generation 3 is live (was 2)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr.contains("rebuild owners: generation 3"),
        "progress lines off a terminal: {}",
        text.stderr
    );
    let status = ops.run(&["projections", "status"]).ok().stdout;
    assert!(
        status.contains("owners (tantivy, generation 3)"),
        "{status}"
    );
    let show = ops.run(&["streams", "show", "account-acc-1"]).ok().stdout;
    assert!(show.contains("Ada Lovelace"), "{show}");

    // Error paths: kinds, exit codes, one line.
    let unknown = ops.run(&["projections", "status", "nope", "--json"]);
    let message = unknown.json_error("not_found", 66);
    assert!(message.contains("balances, owners"), "{message}");
    let unknown = ops.run(&["projections", "rebuild", "nope"]);
    let text = unknown.text_error(66);
    assert!(text.contains("no projection of that name"), "{text}");
    assert!(!text.contains("nope"), "the input is not echoed: {text}");
    let malformed = ops.run(&[
        "projections",
        "dead-letters",
        "skip",
        "balances",
        "x'; drop table es_events; --",
        "--json",
    ]);
    malformed.json_error("invalid_argument", 64);
    let missing = ops.run(&[
        "projections",
        "dead-letters",
        "retry",
        "balances",
        "01a20132-a2e0-75e8-9a24-46a2c9a25867",
        "--json",
    ]);
    missing.json_error("not_found", 66);
    let usage = ops.run(&["projections", "rebuild"]);
    assert_eq!(usage.code, 2, "clap's usage error: {}", usage.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_on_postgres_and_redis() {
    let dir = tempfile::tempdir().unwrap();
    let url = es_store_postgres::testing::fresh_database_url().await;
    // A Redis database of its own, emptied of this model's keys first.
    let db = 1 + rand_db();
    let redis = format!(
        "{}/{db}",
        es_app::testing::redis_url().trim_end_matches('/')
    );
    let keys = es_projections::RedisKv::connect(&redis, es_app::Kv::redis_prefix("balances"))
        .await
        .unwrap_or_else(|e| panic!("cannot reach Redis: start one (`bash .ci/services`): {e}"));
    keys.drop_all().await.unwrap();
    let ops = Ops::postgres(dir.path(), &url)
        .env("REDIS_URL", &redis)
        .env("ES_MASTER_KEY", TEST_MASTER_KEY);
    for a in 0..5 {
        ops.run(&[
            "seed",
            &format!("acc-{a}"),
            &format!("owner-{a}"),
            "Owner Name",
            "--deposits",
            "4",
        ])
        .ok();
    }
    ops.run(&["catch-up"]).ok();
    let before = ops.run(&["get", "account-acc-2:balance"]).ok().stdout;
    assert_eq!(before.trim(), "400");

    let rebuilt = ops
        .run(&["projections", "rebuild", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(rebuilt["skipped"], serde_json::json!([]), "{rebuilt}");
    assert_eq!(rebuilt["failed"], serde_json::json!([]), "{rebuilt}");
    let rebuilt = rebuilt["rebuilt"]
        .as_array()
        .expect("one report per projection");
    assert_eq!(rebuilt.len(), 2);
    assert!(rebuilt.iter().all(|r| r["to"] == 2), "{rebuilt:?}");
    assert_eq!(
        ops.run(&["get", "account-acc-2:balance"]).ok().stdout,
        before
    );
    let status = ops.run(&["projections", "status", "--json"]).ok().json();
    assert!(status["horizon"]["waiting_events"].is_u64(), "{status}");
    let balances = &status["projections"][0];
    assert_eq!(balances["generation"], 2);
    assert_eq!(balances["generations"], serde_json::json!([2]));
    assert_eq!(balances["lag_events"], 0);

    // New events after the rebuild reach the new generation.
    ops.run(&["seed", "acc-9", "owner-9", "Late Owner", "--deposits", "1"])
        .ok();
    ops.run(&["catch-up"]).ok();
    assert_eq!(
        ops.run(&["get", "account-acc-9:balance"])
            .ok()
            .stdout
            .trim(),
        "100"
    );
    keys.drop_all().await.unwrap();
}

/// A Redis database number in 0..14 for this run.
fn rand_db() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        % 14
}
