//! Everything the binary logs during a full workload, at `trace`: no
//! personal value, no master key, no data key (wrapped or not).

use sqlx::Connection;

use crate::support::{Env, TEST_MASTER_KEY, fresh};

#[tokio::test(flavor = "multi_thread")]
async fn logs_hold_no_personal_data_and_no_key() {
    let env = Env::servers().await;
    let name = fresh("Secretname");
    let email = format!("{}@example.org", fresh("secretmail"));
    let mut logs = String::new();
    let mut run = |args: &[&str]| {
        let output = env
            .command()
            .env("RUST_LOG", "trace")
            .arg("--json")
            .args(args)
            .output()
            .expect("the binary runs");
        assert!(
            output.status.success() || args[0] == "withdraw",
            "{args:?}: {output:?}"
        );
        logs.push_str(&String::from_utf8_lossy(&output.stderr));
    };
    run(&[
        "open",
        "--account",
        "s-1",
        "--owner-id",
        "owner-s",
        "--owner-name",
        &name,
        "--email",
        &email,
        "--initial",
        "5.00",
    ]);
    run(&[
        "open",
        "--account",
        "s-2",
        "--owner-id",
        "owner-t",
        "--owner-name",
        "Other Person",
    ]);
    run(&[
        "deposit",
        "--account",
        "s-1",
        "--amount",
        "1.00",
        "--idempotency-key",
        "k-1",
    ]);
    run(&["withdraw", "--account", "s-2", "--amount", "1.00"]);
    run(&[
        "transfer", "--from", "s-1", "--to", "s-2", "--amount", "0.50",
    ]);
    run(&["history", "--account", "s-1"]);
    run(&["search", &name]);
    run(&["balance", "--account", "s-1"]);
    run(&["projections", "rebuild", "balances"]);
    run(&["forget", "--owner-id", "owner-s"]);
    run(&["history", "--account", "s-1"]);
    // The capture is real: the framework and its drivers did log.
    assert!(
        logs.lines().count() > 50,
        "too few log lines to judge: {logs}"
    );
    assert!(!logs.contains(&name), "the owner's name is in the logs");
    assert!(!logs.contains(&email), "the owner's email is in the logs");
    let master = TEST_MASTER_KEY.split_once(':').unwrap().1;
    assert!(!logs.contains(master), "the master key is in the logs");
    // The wrapped data keys, in any of the forms a log could print them.
    let mut conn = sqlx::PgConnection::connect(env.database_url.as_deref().unwrap())
        .await
        .unwrap();
    let wrapped: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT wrapped_key FROM es_subject_keys WHERE wrapped_key IS NOT NULL")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(!wrapped.is_empty(), "no data key to look for");
    for key in wrapped {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!logs.contains(&hex), "a data key is in the logs");
        assert!(
            !logs.contains(&format!("{:?}", &key[..8])),
            "a data key is in the logs"
        );
    }
}
