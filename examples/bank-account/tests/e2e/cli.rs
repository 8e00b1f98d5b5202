//! Every account subcommand, its output and exit codes, error paths included:
//! each error is typed and changes nothing.

use crate::support::{Env, on_both_backends, printed};

on_both_backends!(
    an_account_lives_and_closes,
    bad_input_is_refused_with_a_kind_and_changes_nothing,
    idempotent_retries_write_once,
    concurrent_deposits_from_several_processes_add_up,
    the_kit_is_built_in,
    the_demo_runs,
);

async fn an_account_lives_and_closes(env: &Env) {
    let opened = env
        .run(&[
            "open",
            "--account",
            "acc-1",
            "--owner-id",
            "owner-1",
            "--owner-name",
            "Ada Lovelace",
            "--email",
            "ada@example.org",
            "--initial",
            "10.00",
        ])
        .ok();
    assert_eq!(opened["balance"], 1000);
    env.run(&["deposit", "--account", "acc-1", "--amount", "2.50"])
        .ok();
    let withdrawn = env
        .run(&["withdraw", "--account", "acc-1", "--amount", "0.50"])
        .ok();
    assert_eq!(withdrawn["balance"], 1200);
    assert_eq!(env.balance("acc-1"), 1200);

    let balance = env.run(&["balance", "--account", "acc-1"]).ok();
    assert_eq!(balance["owner_name"], "Ada Lovelace");
    assert_eq!(balance["status"], "open");

    let history = env.run(&["history", "--account", "acc-1"]).ok();
    let events = history["events"].as_array().expect("events");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Opened", "Deposited", "Deposited", "Withdrawn"]);
    assert_eq!(events[0]["data"]["owner_name"], "Ada Lovelace");
    assert_eq!(events[0]["data"]["email"], "ada@example.org");
    assert_eq!(events[3]["version"], 4);

    env.run(&["close", "--account", "acc-1"])
        .fails("non_zero_balance", 65);
    env.run(&["withdraw", "--account", "acc-1", "--amount", "12.00"])
        .ok();
    env.run(&["close", "--account", "acc-1"]).ok();
    assert_eq!(
        env.run(&["balance", "--account", "acc-1"]).ok()["status"],
        "closed"
    );
    env.run(&["deposit", "--account", "acc-1", "--amount", "0.05"])
        .fails("account_closed", 65);

    // Human output, without --json.
    let text = env
        .command()
        .args(["balance", "--account", "acc-1"])
        .output()
        .unwrap();
    assert!(text.status.success());
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).trim(),
        "acc-1: 0.00 (closed), owner Ada Lovelace"
    );
}

async fn bad_input_is_refused_with_a_kind_and_changes_nothing(env: &Env) {
    env.open("acc-1", "owner-1", "Ada", 500);
    let history = |env: &Env| {
        env.run(&["history", "--account", "acc-1"]).ok()["events"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = history(env);

    for id in [
        "acc-1'; DROP TABLE es_events; --",
        "$(rm -rf /)",
        "acc`id`",
        "ünïcødé",
        "a/b",
        "",
        &"x".repeat(65),
    ] {
        let message = env
            .run(&["deposit", "--account", id, "--amount", "0.05"])
            .fails("invalid_input", 64);
        if id.len() > 3 {
            assert!(
                !message.contains(id),
                "the message echoes the id: {message}"
            );
        }
    }
    for amount in [
        "-5",
        "0",
        "0.00",
        "5",
        "1.5",
        "12abc",
        "",
        "18446744073709551616",
        "1000000000000001",
    ] {
        env.run(&["deposit", "--account", "acc-1", "--amount", amount])
            .fails("invalid_input", 64);
    }
    env.run(&[
        "open",
        "--account",
        "acc-2",
        "--owner-id",
        "o 2",
        "--owner-name",
        "x",
    ])
    .fails("invalid_input", 64);
    env.run(&[
        "open",
        "--account",
        "acc-2",
        "--owner-id",
        "o2",
        "--owner-name",
        "  ",
    ])
    .fails("invalid_input", 64);
    env.run(&[
        "open",
        "--account",
        "acc-2",
        "--owner-id",
        "o2",
        "--owner-name",
        "x",
        "--email",
        "nope",
    ])
    .fails("invalid_input", 64);
    env.run(&[
        "deposit",
        "--account",
        "acc-1",
        "--amount",
        "0.05",
        "--idempotency-key",
        "k\u{7}",
    ])
    .fails("invalid_input", 64);

    env.run(&["deposit", "--account", "nobody", "--amount", "0.05"])
        .fails("not_found", 66);
    env.run(&["balance", "--account", "nobody"])
        .fails("not_found", 66);
    env.run(&["history", "--account", "nobody"])
        .fails("not_found", 66);
    env.run(&["withdraw", "--account", "acc-1", "--amount", "5.01"])
        .fails("insufficient_funds", 65);
    env.run(&[
        "open",
        "--account",
        "acc-1",
        "--owner-id",
        "o9",
        "--owner-name",
        "Eve",
    ])
    .fails("already_exists", 65);
    // A balance past the maximum.
    env.run(&[
        "deposit",
        "--account",
        "acc-1",
        "--amount",
        "10000000000000.00",
    ])
    .fails("balance_too_large", 65);

    // clap's own usage errors: exit 2.
    let missing = env.run(&["deposit", "--account", "acc-1"]);
    assert_eq!(missing.code, 2, "{missing:?}");

    assert_eq!(history(env), before, "an error wrote something");
    assert_eq!(env.balance("acc-1"), 500);
    // Nothing was created for the refused ids either.
    env.run(&["balance", "--account", "acc-2"])
        .fails("not_found", 66);
}

async fn idempotent_retries_write_once(env: &Env) {
    env.open("acc-1", "owner-1", "Ada", 0);
    for _ in 0..3 {
        env.run(&[
            "deposit",
            "--account",
            "acc-1",
            "--amount",
            "7.00",
            "--idempotency-key",
            "pay-1",
        ])
        .ok();
    }
    let retry = env
        .run(&[
            "deposit",
            "--account",
            "acc-1",
            "--amount",
            "7.00",
            "--idempotency-key",
            "pay-1",
        ])
        .ok();
    assert_eq!(retry["deduplicated"], true);
    assert_eq!(env.balance("acc-1"), 700);
    // The same key for another request is a conflict, not a silent success.
    env.run(&[
        "deposit",
        "--account",
        "acc-1",
        "--amount",
        "7.01",
        "--idempotency-key",
        "pay-1",
    ])
    .fails("conflict", 75);
    env.run(&[
        "withdraw",
        "--account",
        "acc-1",
        "--amount",
        "1.00",
        "--idempotency-key",
        "w-1",
    ])
    .ok();
    env.run(&[
        "withdraw",
        "--account",
        "acc-1",
        "--amount",
        "1.00",
        "--idempotency-key",
        "w-1",
    ])
    .ok();
    assert_eq!(env.balance("acc-1"), 600);
}

async fn concurrent_deposits_from_several_processes_add_up(env: &Env) {
    env.open("shared", "owner-1", "Ada", 0);
    let processes = 4;
    let deposits = 5;
    let children: Vec<_> = (0..processes)
        .map(|p| {
            let command = env.command();
            let script = (0..deposits)
                .map(|d| {
                    format!(
                        "\"$0\" --json deposit --account shared --amount {} --idempotency-key p{p}-d{d} >/dev/null || exit 1",
                        printed(100 + p)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let program = command.get_program().to_owned();
            let mut shell = std::process::Command::new("sh");
            shell.arg("-c").arg(script).arg(program);
            for (key, value) in command.get_envs() {
                match value {
                    Some(value) => shell.env(key, value),
                    None => shell.env_remove(key),
                };
            }
            shell.spawn().expect("a writer process")
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer failed");
    }
    let expected: u64 = (0..processes).map(|p| (100 + p) * deposits).sum();
    assert_eq!(env.balance("shared"), expected);
    let history = env.run(&["history", "--account", "shared"]).ok();
    assert_eq!(
        history["events"].as_array().unwrap().len() as u64,
        1 + processes * deposits
    );
}

async fn the_kit_is_built_in(env: &Env) {
    env.open("acc-1", "owner-1", "Ada", 100);
    env.run(&["migrate"]).ok();
    let status = env.run(&["projections", "status"]).ok();
    let names: Vec<&str> = status
        .as_array()
        .or_else(|| status["projections"].as_array())
        .expect("a list of projections")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["balances", "account-search", "transfer-saga"]);
    let shown = env.run(&["streams", "show", "account-acc-1"]).ok();
    assert!(shown.to_string().contains("Ada"), "{shown}");
    env.run(&["snapshots", "take", "account-acc-1"]).ok();
    let rebuilt = env.run(&["projections", "rebuild", "balances"]);
    assert_eq!(rebuilt.code, 0, "{rebuilt:?}");
    assert_eq!(env.balance("acc-1"), 100);
    // The saga refuses to be rebuilt, and says why.
    let saga = env.run(&["projections", "rebuild", "transfer-saga"]);
    assert_ne!(saga.code, 0);
    assert!(saga.stdout.contains("process manager"), "{saga:?}");
}

async fn the_demo_runs(env: &Env) {
    let output = env.command().arg("demo").output().expect("the demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "retry: true",
        "refused: insufficient funds",
        ": completed",
        "was refused: insufficient_funds",
        "was compensated: account_closed",
        "search \"lovelace\" now: 0 result(s)",
        "owner <shredded>",
        "== done",
    ] {
        assert!(
            stdout.contains(line),
            "the demo did not print `{line}`:\n{stdout}"
        );
    }
    // A second run in the same data directory works too (fresh ids).
    let again = env.command().arg("demo").output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn an_unreachable_database_is_unavailable() {
    let env = Env::embedded();
    let run: crate::support::Run = env
        .command()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")
        .env("ES_MASTER_KEY", crate::support::TEST_MASTER_KEY)
        .args(["--json", "balance", "--account", "a"])
        .output()
        .unwrap()
        .into();
    let message = run.fails("unavailable", 69);
    // Said at once, as what it is, not after the pool's wait.
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("timed out"), "{message}");
    // The test server's URL, naming a database that does not exist.
    let server = es_store_postgres::testing::test_database_url();
    let server = server.split('?').next().unwrap_or(&server);
    let missing = format!("{server}_missing_{}", std::process::id());
    let run: crate::support::Run = env
        .command()
        .env("DATABASE_URL", &missing)
        .env("ES_MASTER_KEY", crate::support::TEST_MASTER_KEY)
        .args(["--json", "streams", "list"])
        .output()
        .unwrap()
        .into();
    assert_ne!(
        run.json()["error"],
        "unavailable",
        "this needs the test PostgreSQL (ES_TEST_DATABASE_URL): start it (`bash .ci/services`): {run:?}"
    );
    let message = run.fails("config", 78);
    assert!(message.contains("does not exist"), "{message}");
    assert!(!message.contains("at line"), "{message}");
    let run: crate::support::Run = env
        .command()
        .env("DATABASE_URL", "mysql://127.0.0.1/x")
        .args(["--json", "balance", "--account", "a"])
        .output()
        .unwrap()
        .into();
    let message = run.fails("config", 78);
    assert!(message.contains("DATABASE_URL"), "{message}");
}

/// A reader that goes away (`| head`) ends the command quietly with the
/// status a SIGPIPE gives; a standard output that cannot be written (a full
/// disk) is one `error:` line and status 74. Neither panics.
#[test]
fn output_that_cannot_be_written_ends_quietly() {
    let env = Env::embedded();
    env.run(&["migrate"]);
    let mut watch = env
        .command()
        .args(["projections", "status", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = watch.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("it prints");
    drop(stdout);
    let output = watch.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let output = env
        .command()
        .args(["streams", "list"])
        .stdout(full)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(74), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write to standard output"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Amounts go in as they come out: `25.00` as printed; any other form (a
/// whole number included: `7` could mean 7.00 or 0.07) is refused and
/// changes nothing.
#[test]
fn amounts_are_accepted_as_printed() {
    let env = Env::embedded();
    env.open("printed", "owner-printed", "Grace Hopper", 0);
    env.run(&["deposit", "--account", "printed", "--amount", "25.00"])
        .ok();
    env.run(&["deposit", "--account", "printed", "--amount", "0.07"])
        .ok();
    assert_eq!(env.balance("printed"), 2507);
    let text = env
        .command()
        .args(["balance", "--account", "printed"])
        .output()
        .expect("the binary runs");
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("25.07"),
        "{text:?}"
    );
    for bad in ["7", "2500", "25.5", "25.000", "1e3", "2,50", ".50", "25."] {
        let message = env
            .run(&["deposit", "--account", "printed", "--amount", bad])
            .fails("invalid_input", 64);
        assert!(message.contains("12.50"), "{bad}: {message}");
    }
    assert_eq!(env.balance("printed"), 2507);
}

/// Under `--json`, a command line that does not parse is a JSON document
/// too, and names what is wrong without echoing what was typed.
#[test]
fn usage_errors_are_json_under_json() {
    let env = Env::embedded();
    for (args, what) in [
        (&["deposit", "--Zq9Canary", "1"][..], "an argument"),
        (&["Zq9Canary"][..], "no such command"),
        (&["deposit", "--account", "a"][..], "required argument"),
    ] {
        let run = env.run(args);
        let message = run.fails("usage", 2);
        assert!(message.contains(what), "{args:?}: {message}");
        assert!(!run.stdout.contains("Zq9Canary"), "{run:?}");
    }
    // Without --json, clap's own text on stderr, same status.
    let text = env
        .command()
        .args(["deposit", "--bogus"])
        .output()
        .expect("the binary runs");
    assert_eq!(text.status.code(), Some(2));
    assert!(text.stdout.is_empty());
}

/// A command that only reads opens an existing store only: a mistyped data
/// directory is `not_found`, names the file looked for, and creates nothing
/// (no store, no development key).
#[test]
fn a_read_of_a_mistyped_data_dir_creates_nothing() {
    let env = Env::embedded();
    let typo = env.data_dir().join("typo");
    let typo_arg = typo.to_str().expect("a UTF-8 path");
    for args in [
        &["balance", "--account", "a"][..],
        &["history", "--account", "a"][..],
        &["search", "ada"][..],
        &["streams", "list"][..],
        &["projections", "status"][..],
    ] {
        let run: crate::support::Run = env
            .command()
            .arg("--json")
            .args(["--data-dir", typo_arg])
            .args(args)
            .output()
            .expect("the binary runs")
            .into();
        let message = run.fails("not_found", 66);
        assert!(message.contains("es.sqlite3"), "{args:?}: {message}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
}
