//! Only transactions that append events hold subscribers back: an open
//! transaction on other tables, or one that only reads, does not delay the
//! global log; an open appender does, until it ends.

use es_core::{Checkpoint, EventStore, ExpectedVersion};
use es_store_postgres::PgStore;
use es_store_postgres::testing::fresh_store;

use crate::support::{Tail, append, backend_pid, open_append, open_bystander, stream};

/// Appends three events while a transaction that ran `how` is open, and checks
/// that subscribers see them at once and the horizon report does not blame it.
async fn a_bystander_does_not_hold_the_log(store: &PgStore, how: &'static str) {
    append(store, &stream("before"), ExpectedVersion::Any, 2)
        .await
        .expect("append");
    let (bystander, pid) = open_bystander(store, how).await;
    append(store, &stream("during"), ExpectedVersion::Any, 3)
        .await
        .expect("append");

    let read = store
        .read_all(Checkpoint::START, 100)
        .await
        .expect("read_all");
    assert_eq!(read.len(), 5, "{how}: every committed event is readable");
    assert_eq!(
        store.count_after(Checkpoint::START).await.expect("count"),
        5,
        "{how}"
    );
    let horizon = store.horizon().await.expect("horizon");
    assert!(!horizon.is_held(), "{how}: {horizon:?}");
    assert!(
        horizon.holders.iter().all(|h| h.pid != pid),
        "{how}: the bystander is not named: {horizon:?}"
    );
    bystander.rollback().await.expect("rollback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_writing_another_table_does_not_hold_the_log() {
    let store = fresh_store().await;
    sqlx::query("CREATE TABLE other_table (n int)")
        .execute(store.pool())
        .await
        .expect("create");
    a_bystander_does_not_hold_the_log(&store, "INSERT INTO other_table VALUES (1)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_creating_a_table_does_not_hold_the_log() {
    let store = fresh_store().await;
    a_bystander_does_not_hold_the_log(&store, "CREATE TABLE made_in_a_transaction (n int)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_that_drew_a_transaction_id_does_not_hold_the_log() {
    let store = fresh_store().await;
    a_bystander_does_not_hold_the_log(&store, "SELECT pg_current_xact_id()").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_read_only_transaction_does_not_hold_the_log() {
    let store = fresh_store().await;
    a_bystander_does_not_hold_the_log(&store, "SELECT count(*) FROM es_events").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_appender_holds_the_log_until_it_commits() {
    let store = fresh_store().await;
    append(&store, &stream("before"), ExpectedVersion::Any, 2)
        .await
        .expect("append");
    let (appender, _) = open_append(&store, &stream("held")).await;
    let appender_pid = backend_pid(&store, "state = 'idle in transaction'").await;
    append(&store, &stream("behind"), ExpectedVersion::Any, 3)
        .await
        .expect("append");

    let read = store
        .read_all(Checkpoint::START, 100)
        .await
        .expect("read_all");
    let streams: Vec<&str> = read.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(
        streams,
        ["before", "before"],
        "nothing past the open appender"
    );
    assert_eq!(
        store.count_after(Checkpoint::START).await.expect("count"),
        2
    );
    let held = store.horizon().await.expect("horizon");
    assert!(held.is_held(), "{held:?}");
    assert_eq!(held.waiting_events, 3, "{held:?}");
    let oldest = held.holders.first().expect("a holder");
    assert_eq!(oldest.pid, appender_pid);
    assert_eq!(oldest.state.as_deref(), Some("idle in transaction"));

    appender.commit().await.expect("commit");
    let mut tail = Tail::new();
    tail.until(&store, 6, 2).await;
    assert_eq!(tail.seen.len(), 6);
    let streams: Vec<&str> = tail.seen.iter().map(|e| e.stream_id.as_str()).collect();
    assert_eq!(
        streams,
        ["before", "before", "held", "behind", "behind", "behind"],
        "in transaction order: the appender drew its id before the later appends"
    );
    let order: Vec<_> = tail.seen.iter().map(|e| e.checkpoint()).collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "(xid, position) order"
    );
    tail.assert_exactly_once_in_stream_order();
    assert!(!store.horizon().await.expect("horizon").is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_in_another_database_does_not_hold_the_log() {
    let store = fresh_store().await;
    let elsewhere = fresh_store().await;
    let (bystander, _) = open_bystander(&elsewhere, "SELECT pg_current_xact_id()").await;
    append(&store, &stream("during"), ExpectedVersion::Any, 3)
        .await
        .expect("append");
    let read = store
        .read_all(Checkpoint::START, 100)
        .await
        .expect("read_all");
    assert_eq!(
        read.len(),
        3,
        "transaction ids are the cluster's, marks are not"
    );
    assert!(!store.horizon().await.expect("horizon").is_held());
    bystander.rollback().await.expect("rollback");
}
