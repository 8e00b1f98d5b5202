//! Only transactions that append events hold subscribers back: an open
//! transaction on other tables, or one that only reads, does not delay the
//! global log; an open appender does, until it ends.

use std::time::Duration;

use es_core::{
    AppendRequest, Checkpoint, EventStore, ExpectedVersion, Idempotency, IdempotencyKey, KeyStore,
    StreamVersion, SubjectId,
};
use es_store_postgres::testing::fresh_store;
use es_store_postgres::{Error, PgStore, mark_appender};
use sqlx::{Connection, Executor};

use crate::support::{Tail, append, backend_pid, events, open_append, open_bystander, stream};

/// The appender mark's key, as `mark_appender` documents it for SQL clients.
const MARK: (i32, i32) = (0x6573_0002, 0);

/// Reads the log until all `n` committed events are readable (and counted,
/// and the horizon is not held), while whatever the test keeps open stays
/// open; fails after 10 s. Not at the first read: another test's
/// transaction, in another database of the cluster, drawing or releasing its
/// id may hold the horizon for an instant, which the rule counts as a
/// possible appender to be safe.
async fn readable(store: &PgStore, n: usize, what: &str) -> es_store_postgres::Horizon {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = store
            .read_all(Checkpoint::START, 100)
            .await
            .expect("read_all");
        let count = store.count_after(Checkpoint::START).await.expect("count");
        let horizon = store.horizon().await.expect("horizon");
        if read.len() == n && count == n as u64 && !horizon.is_held() {
            return horizon;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: {} of {n} events readable ({count} counted), {horizon:?}",
            read.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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

    let horizon = readable(store, 5, how).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_appender_in_another_database_does_not_hold_this_log() {
    let store = fresh_store().await;
    let elsewhere = fresh_store().await;
    let (appender, _) = open_append(&elsewhere, &stream("elsewhere")).await;
    // A committed transaction after it, so that it is in this snapshot's xip.
    append(&store, &stream("during"), ExpectedVersion::Any, 3)
        .await
        .expect("append");
    // Marks are per database: with the other database's appender open all
    // along, this log is read to its end.
    let horizon = readable(&store, 3, "marks are per database").await;
    assert!(horizon.holders.is_empty(), "{horizon:?}");
    appender.commit().await.expect("commit");
}

/// Runs `appending` while a session holds the mark's key exclusively, so that
/// the append waits at its mark: it must have no transaction id then.
async fn marks_before_its_transaction_id<F>(store: &PgStore, what: &str, appending: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut gate = store.pool().acquire().await.expect("acquire").detach();
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(MARK.0)
        .bind(MARK.1)
        .execute(&mut gate)
        .await
        .expect("gate");
    let task = tokio::spawn(appending);
    let pid = backend_pid(
        store,
        "wait_event_type = 'Lock' AND wait_event = 'advisory'",
    )
    .await;
    let xid: Option<String> =
        sqlx::query_scalar("SELECT backend_xid::text FROM pg_stat_activity WHERE pid = $1")
            .bind(pid)
            .fetch_one(store.pool())
            .await
            .expect("pg_stat_activity");
    assert_eq!(
        xid, None,
        "{what}: waiting for the mark without a transaction id"
    );
    sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(MARK.0)
        .bind(MARK.1)
        .execute(&mut gate)
        .await
        .expect("ungate");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap_or_else(|_| panic!("{what}: the append finishes once the mark is free"))
        .expect("task");
    gate.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_append_takes_the_mark_before_its_transaction_id() {
    let store = fresh_store().await;
    append(&store, &stream("existing"), ExpectedVersion::NoStream, 1)
        .await
        .expect("seed");
    let cases = [
        ("any, new stream", "fresh-any", ExpectedVersion::Any),
        ("any, existing stream", "existing", ExpectedVersion::Any),
        ("no stream", "fresh", ExpectedVersion::NoStream),
        (
            "exact",
            "existing",
            ExpectedVersion::Exact(StreamVersion::new(3)),
        ),
        ("stream exists", "existing", ExpectedVersion::StreamExists),
    ];
    for (what, s, expected) in cases {
        let writer = store.clone();
        marks_before_its_transaction_id(&store, what, async move {
            append(&writer, &stream(s), expected, 2)
                .await
                .expect("append");
        })
        .await;
    }
    let writer = store.clone();
    marks_before_its_transaction_id(&store, "forget", async move {
        let subject = SubjectId::new("someone").expect("subject");
        KeyStore::forget(
            &writer,
            &subject,
            AppendRequest::new(stream("$forgotten"), ExpectedVersion::Any, events(1)),
        )
        .await
        .expect("forget");
    })
    .await;
    readable(&store, 12, "every append landed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deduplicated_append_takes_no_mark() {
    let store = fresh_store().await;
    let request = || {
        AppendRequest::new(stream("idem"), ExpectedVersion::Any, events(1)).idempotent(
            Idempotency {
                key: IdempotencyKey::new("once").expect("key"),
                fingerprint: [7; 32],
            },
        )
    };
    store.append(request()).await.expect("first");
    let mut gate = store.pool().acquire().await.expect("acquire").detach();
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(MARK.0)
        .bind(MARK.1)
        .execute(&mut gate)
        .await
        .expect("gate");
    let repeat = tokio::time::timeout(Duration::from_secs(5), store.append(request()))
        .await
        .expect("a repeat writes nothing, so it does not wait for the mark")
        .expect("repeat");
    assert!(repeat.deduplicated);
    gate.close().await.expect("close");
}

#[tokio::test]
async fn mark_appender_refuses_a_transaction_that_wrote_first() {
    let store = fresh_store().await;

    let mut late = store.pool().begin().await.expect("begin");
    late.execute("SELECT pg_current_xact_id()")
        .await
        .expect("draw an id");
    match mark_appender(&mut late).await {
        Err(Error::AppenderMarkedLate) => {}
        other => panic!("expected AppenderMarkedLate, got {other:?}"),
    }
    late.rollback().await.expect("rollback");

    let mut early = store.pool().begin().await.expect("begin");
    mark_appender(&mut early).await.expect("mark first");
    early
        .execute("SELECT pg_current_xact_id()")
        .await
        .expect("draw an id");
    mark_appender(&mut early)
        .await
        .expect("marking a marked transaction again is fine");
    early.rollback().await.expect("rollback");

    // A mark taken in a savepoint goes with it when it is rolled back to; the
    // transaction id drawn in it stays: the transaction can no longer mark.
    let mut outer = store.pool().begin().await.expect("begin");
    let mut savepoint = outer.begin().await.expect("savepoint");
    mark_appender(&mut savepoint).await.expect("mark");
    savepoint
        .execute("SELECT pg_current_xact_id()")
        .await
        .expect("draw an id");
    savepoint.rollback().await.expect("rollback to savepoint");
    match mark_appender(&mut outer).await {
        Err(Error::AppenderMarkedLate) => {}
        other => panic!("expected AppenderMarkedLate, got {other:?}"),
    }
    outer.rollback().await.expect("rollback");
}
