//! Forgetting an owner: the account stays usable with `<shredded>` owner
//! data, and the owner's name appears nowhere afterwards: not in the
//! database files (SQLite file and WAL, or any PostgreSQL table), not in
//! Redis, not in the search index's files.

use crate::support::{Env, fresh, on_both_backends, places};

on_both_backends!(
    forget_shreds_everywhere,
    master_keys,
    forgetting_an_unknown_owner_says_so
);

async fn forget_shreds_everywhere(env: &Env) {
    let name = fresh("Zebulon");
    let email = format!("{}@example.org", fresh("canary"));
    env.run(&[
        "open",
        "--account",
        "acc-1",
        "--owner-id",
        "owner-1",
        "--owner-name",
        &name,
        "--email",
        &email,
        "--initial",
        "3.00",
    ])
    .ok();
    env.open("acc-2", "owner-2", "Kept Person", 0);
    let hits = env.run(&["search", &name[..7].to_lowercase()]).ok();
    assert_eq!(hits[0]["account"], "acc-1", "{hits}");
    assert_eq!(hits[0]["owner_name"], name.as_str());
    // The scan finds the plaintext where the read models hold it: it can fail.
    assert!(
        !places(env, &name).await.is_empty(),
        "the canary scan finds nothing even before forgetting"
    );

    let forgotten = env.run(&["forget", "--owner-id", "owner-1"]).ok();
    assert_eq!(forgotten["forgotten"], true);
    assert_eq!(forgotten["already_forgotten"], false);
    let again = env.run(&["forget", "--owner-id", "owner-1"]).ok();
    assert_eq!(again["already_forgotten"], true);

    assert_eq!(
        places(env, &name).await,
        Vec::<String>::new(),
        "the name survived"
    );
    assert_eq!(
        places(env, &email).await,
        Vec::<String>::new(),
        "the email survived"
    );

    // The account stays usable; the owner reads as shredded everywhere.
    let balance = env.run(&["balance", "--account", "acc-1"]).ok();
    assert_eq!(balance["balance"], 300);
    assert_eq!(balance["owner_name"], "<shredded>");
    env.run(&["deposit", "--account", "acc-1", "--amount", "0.05"])
        .ok();
    let history = env.run(&["history", "--account", "acc-1"]).ok();
    assert_eq!(history["events"][0]["data"]["owner_name"], "<shredded>");
    assert_eq!(history["events"][0]["data"]["email"], "<shredded>");
    let by_id = env.run(&["search", "acc-1"]).ok();
    let first = &by_id[0];
    assert_eq!(first["account"], "acc-1", "{by_id}");
    assert_eq!(first["owner_name"], "<shredded>");
    assert_eq!(env.run(&["search", &name]).ok(), serde_json::json!([]));
    // The other owner is untouched.
    assert_eq!(
        env.run(&["balance", "--account", "acc-2"]).ok()["owner_name"],
        "Kept Person"
    );
}

async fn master_keys(env: &Env) {
    if env.is_embedded() {
        // The first run creates a development key and says so, once.
        let first = env.run(&[
            "open",
            "--account",
            "a",
            "--owner-id",
            "o",
            "--owner-name",
            "Ada",
        ]);
        assert_eq!(first.code, 0, "{first:?}");
        assert!(
            first.stderr.contains("created a development master key"),
            "{first:?}"
        );
        let second = env.run(&["balance", "--account", "a"]);
        assert!(
            !second.stderr.contains("development master key"),
            "{second:?}"
        );
        // A wrong key for the data: a configuration error, nothing written.
        let wrong = env
            .command()
            .env(
                "ES_MASTER_KEY",
                "other:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
            )
            .args(["--json", "deposit", "--account", "a", "--amount", "0.05"])
            .output()
            .unwrap();
        let wrong = crate::support::Run::from(wrong);
        wrong.fails("config", 78);
        assert_eq!(env.balance("a"), 0);
    } else {
        // PostgreSQL never falls back to a development key.
        let missing = env
            .command()
            .env_remove("ES_MASTER_KEY")
            .args([
                "--json",
                "open",
                "--account",
                "a",
                "--owner-id",
                "o",
                "--owner-name",
                "Ada",
            ])
            .output()
            .unwrap();
        let missing = crate::support::Run::from(missing);
        let message = missing.fails("config", 78);
        assert!(message.contains("ES_MASTER_KEY"), "{message}");
        assert!(!env.data_dir().join("master.key").exists());
        let malformed = env
            .command()
            .env("ES_MASTER_KEY", "nonsense")
            .args(["--json", "balance", "--account", "a"])
            .output()
            .unwrap();
        crate::support::Run::from(malformed).fails("config", 78);
    }
}

/// A mistyped owner id has no key: `forget` says nothing was shredded,
/// exits `not_found` and writes nothing, unless `--force` asks for the
/// tombstone.
async fn forgetting_an_unknown_owner_says_so(env: &Env) {
    let owner = fresh("nobody-ever");
    let message = env
        .run(&["forget", "--owner-id", &owner])
        .fails("not_found", 66);
    assert!(message.contains("nothing was shredded"), "{message}");
    // Nothing was recorded: the id can still be opened with personal data.
    let account = fresh("acc");
    env.open(&account, &owner, "Ada Lovelace", 0);
    let history = env.run(&["history", "--account", &account]).ok();
    assert!(history.to_string().contains("Ada Lovelace"), "{history}");

    let other = fresh("nobody-else");
    let forced = env.run(&["forget", "--owner-id", &other, "--force"]).ok();
    assert_eq!(forced["forgotten"], true);
    assert_eq!(forced["already_forgotten"], false);
    let again = env.run(&["forget", "--owner-id", &other]).ok();
    assert_eq!(again["already_forgotten"], true);
}
