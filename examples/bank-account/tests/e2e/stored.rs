//! Bad stored data and a read-only database, through the binary:
//! each a typed error with its exit code, and nothing written on top.

use sqlx::{Connection, Executor};

use crate::support::Env;

async fn sql(env: &Env, statement: &str) {
    let mut conn = sqlx::PgConnection::connect(env.database_url.as_deref().unwrap())
        .await
        .expect("connect");
    conn.execute(sqlx::AssertSqlSafe(statement.to_owned()))
        .await
        .expect("the statement runs");
}

async fn events(env: &Env, account: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(env.database_url.as_deref().unwrap())
        .await
        .expect("connect");
    sqlx::query_scalar("SELECT count(*) FROM es_events WHERE stream_id = $1")
        .bind(format!("account-{account}"))
        .fetch_one(&mut conn)
        .await
        .expect("count")
}

/// Damages one stored event of `account` with `damage` (SQL on `es_events`
/// with the event at `version`), then checks reads and writes refuse it.
async fn refused(env: &Env, account: &str, version: u32, damage: &str, says: &str) {
    env.open(account, &format!("owner-{account}"), "Ada Lovelace", 100);
    env.run(&["deposit", "--account", account, "--amount", "0.05"])
        .ok();
    sql(
        env,
        &format!("UPDATE es_events SET {damage} WHERE stream_id = 'account-{account}' AND version = {version}"),
    )
    .await;
    let before = events(env, account).await;
    // The history shows every event; the damaged one says what is wrong with
    // it instead of hiding the others.
    let history = env.run(&["history", "--account", account]).json();
    let shown = &history["events"][version as usize - 1];
    assert_eq!(shown["version"], version, "{history}");
    assert_eq!(shown["error"]["error"], "corrupt_data", "{history}");
    let message = shown["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message}");
    let readable = history["events"]
        .as_array()
        .map_or(0, |e| e.iter().filter(|e| e.get("data").is_some()).count());
    assert_eq!(i64::try_from(readable).ok(), Some(before - 1), "{history}");
    env.run(&["deposit", "--account", account, "--amount", "0.05"])
        .fails("corrupt_data", 70);
    assert_eq!(
        events(env, account).await,
        before,
        "a write went on top of bad data"
    );
    // The other accounts are not affected.
    env.open(&format!("{account}-other"), "owner-x", "Grace", 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_payload() {
    let env = Env::servers().await;
    refused(&env, "p", 3, "payload = '\\x00ff'::bytea", "decod").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_event_type() {
    let env = Env::servers().await;
    refused(&env, "t", 3, "event_type = 'Teleported'", "Teleported").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_schema_version() {
    let env = Env::servers().await;
    refused(&env, "v", 3, "schema_version = 99", "99").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_ciphertext() {
    let env = Env::servers().await;
    // Flip a bit in the authentication tag of the owner's sealed name (the
    // opening event ends with it, then the absent email's one byte).
    refused(
        &env,
        "c",
        1,
        "payload = set_byte(payload, length(payload) - 2, get_byte(payload, length(payload) - 2) # 1)",
        "tamper",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_database_is_unavailable_and_loses_nothing() {
    let env = Env::servers().await;
    env.open("r", "owner-r", "Ada", 100);
    let db = env
        .database_url
        .as_deref()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    sql(
        &env,
        &format!("ALTER DATABASE {db} SET default_transaction_read_only = on"),
    )
    .await;
    env.run(&[
        "deposit",
        "--account",
        "r",
        "--amount",
        "0.05",
        "--idempotency-key",
        "ro-1",
    ])
    .fails("unavailable", 69);
    // Every start checks the migrations, which needs a write: reads are
    // unavailable too, and say why.
    let message = env
        .run(&["history", "--account", "r"])
        .fails("unavailable", 69);
    assert!(message.contains("read-only"), "{message}");
    let mut conn = sqlx::PgConnection::connect(env.database_url.as_deref().unwrap())
        .await
        .unwrap();
    // One statement at a time: a multi-statement query is one transaction,
    // read-only from its start.
    conn.execute("SET default_transaction_read_only = off")
        .await
        .unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = off"
    )))
    .await
    .unwrap();
    // The retry with the same key lands once.
    env.run(&[
        "deposit",
        "--account",
        "r",
        "--amount",
        "0.05",
        "--idempotency-key",
        "ro-1",
    ])
    .ok();
    env.run(&[
        "deposit",
        "--account",
        "r",
        "--amount",
        "0.05",
        "--idempotency-key",
        "ro-1",
    ])
    .ok();
    assert_eq!(env.balance("r"), 105);
}
