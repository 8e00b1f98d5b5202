//! Faults and diagnostics: a backend killed mid-append, a database from a
//! younger cluster, a held read horizon, lost listeners, idempotency retention.

use std::time::Duration;

use es_core::{
    AppendRequest, Error, EventStore, ExpectedVersion, Idempotency, IdempotencyKey, StreamVersion,
};
use es_store_postgres::testing::fresh_store;
use es_store_postgres::{PgStore, Wakeup};
use sqlx::Executor;

use crate::support::{append, append_by_hand, backend_pid, events, held_append, stream, terminate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_append_leaves_no_partial_batch() {
    let store = fresh_store().await;
    let s = stream("killed");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("seed");

    // Hold the stream's row lock so the next append blocks inside its statement.
    let mut blocker = store.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM es_streams WHERE stream_id = $1 FOR UPDATE")
        .bind(s.as_str())
        .execute(&mut *blocker)
        .await
        .expect("lock");

    let appending = {
        let store = store.clone();
        let s = s.clone();
        tokio::spawn(async move {
            append(
                &store,
                &s,
                ExpectedVersion::Exact(StreamVersion::new(1)),
                50,
            )
            .await
        })
    };
    let pid = backend_pid(
        &store,
        "wait_event_type = 'Lock' AND query LIKE '%es_append_group%'",
    )
    .await;
    terminate(&store, pid).await;
    let outcome = appending.await.expect("task");
    blocker.rollback().await.expect("rollback");

    match outcome {
        Err(error @ (Error::Unavailable { .. } | Error::Backend { .. })) => {
            assert!(
                error.is_unavailable(),
                "a terminated backend is 'unavailable' (retryable): {error:?}"
            );
        }
        other => panic!("expected a typed store error, got {other:?}"),
    }
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(1),
        "no partial batch"
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM es_events WHERE stream_id = $1")
        .bind(s.as_str())
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(count, 1);

    let retried = append(
        &store,
        &s,
        ExpectedVersion::Exact(StreamVersion::new(1)),
        50,
    )
    .await
    .expect("a retry succeeds");
    assert_eq!(retried.version, StreamVersion::new(51));
}

#[tokio::test]
async fn a_database_from_a_younger_cluster_is_refused() {
    let store = fresh_store().await;
    store
        .check_cluster()
        .await
        .expect("a fresh database is fine");
    append(&store, &stream("ok"), ExpectedVersion::Any, 2)
        .await
        .expect("append");
    store
        .check_cluster()
        .await
        .expect("its own events are fine");
    // What a restore into a younger cluster looks like: ids from its future.
    append_by_hand(
        &store,
        sqlx::query(
            "INSERT INTO es_events (transaction_id, stream_id, version, event_id, event_type,
                                    schema_version, payload, recorded_at)
             VALUES ('900000000000'::xid8, 'restored', 1, gen_random_uuid(), 'X', 1, '\\x00', now())",
        ),
    )
    .await;
    match store.check_cluster().await {
        Err(es_store_postgres::Error::YoungerCluster {
            max_stored,
            next_xid,
        }) => {
            assert_eq!(max_stored, 900_000_000_000);
            assert!(next_xid < max_stored);
        }
        other => panic!("expected YoungerCluster, got {other:?}"),
    }
    let message = store
        .migrate()
        .await
        .expect_err("migrate refuses too")
        .to_string();
    assert!(message.contains("younger cluster"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_horizon_report_names_the_transaction_that_holds_it() {
    let store = fresh_store().await;
    let idle = store.horizon().await.expect("horizon");
    assert!(!idle.is_held(), "{idle:?}");

    let holder = {
        let store = store.clone();
        tokio::spawn(async move {
            held_append(&store, &stream("held"), Duration::from_millis(1500)).await;
        })
    };
    let holder_pid = backend_pid(&store, "state = 'idle in transaction'").await;
    append(&store, &stream("behind"), ExpectedVersion::Any, 3)
        .await
        .expect("append");
    let held = store.horizon().await.expect("horizon");
    assert!(held.is_held(), "{held:?}");
    assert!(held.waiting_events >= 3, "{held:?}");
    let oldest = held.holders.first().expect("a holder");
    assert_eq!(oldest.pid, holder_pid);
    assert_eq!(oldest.state.as_deref(), Some("idle in transaction"));
    holder.await.expect("holder");
    assert!(!store.horizon().await.expect("horizon").is_held());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakeups_come_from_notify_and_survive_a_lost_listener() {
    let store = fresh_store().await;
    // The writer is another store on the database (its own notifier, as in
    // another process): its appends reach this subscriber only by NOTIFY.
    let other = PgStore::from_pool(store.pool().clone());
    // A long poll interval: a wake-up within it must come from NOTIFY.
    let mut wakeups = store.wakeups(Duration::from_secs(20));
    // The first call connects the listener; give it an append to report.
    let writer = {
        let store = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            append(&store, &stream("notify"), ExpectedVersion::Any, 5)
                .await
                .expect("append");
        })
    };
    let woke = tokio::time::timeout(Duration::from_secs(10), wakeups.wait())
        .await
        .expect("woken before the poll interval");
    assert_eq!(woke, Wakeup::Notified);
    writer.await.expect("writer");

    // Kill the listener's connection: the next wait reports it at once, so the
    // subscriber reads and misses nothing, and the one after listens again.
    let listener = backend_pid(&store, "query LIKE 'LISTEN%'").await;
    terminate(&store, listener).await;
    let woke = tokio::time::timeout(Duration::from_secs(10), wakeups.wait())
        .await
        .expect("the lost connection is reported");
    assert_eq!(woke, Wakeup::Reconnect);
    let writer = {
        let store = other.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            append(&store, &stream("notify"), ExpectedVersion::Any, 1)
                .await
                .expect("append");
        })
    };
    let woke = tokio::time::timeout(Duration::from_secs(10), wakeups.wait())
        .await
        .expect("woken again");
    assert_eq!(woke, Wakeup::Notified);
    writer.await.expect("writer");
}

/// An append in this process wakes its subscribers well within the poll
/// interval (in memory or by its NOTIFY, whichever comes first; the memory
/// path alone is tested in `notifier.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_of_this_process_wake_its_subscribers_at_once() {
    let store = fresh_store().await;
    let mut wakeups = store.wakeups(Duration::from_secs(20));
    // Connect the listener first, then append.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            append(&store, &stream("local"), ExpectedVersion::Any, 1)
                .await
                .expect("append");
        })
    };
    let woke = tokio::time::timeout(Duration::from_secs(10), wakeups.wait())
        .await
        .expect("woken before the poll interval");
    assert_eq!(woke, Wakeup::Notified);
    writer.await.expect("writer");
}

/// No trigger notifies inside the appends' transactions (it serialised their
/// commits); the store sends the wake-ups after, coalesced.
#[tokio::test]
async fn appends_do_not_notify_inside_their_transactions() {
    let store = fresh_store().await;
    let triggers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'es_events'::regclass AND NOT tgisinternal",
    )
    .fetch_one(store.pool())
    .await
    .expect("triggers");
    assert_eq!(triggers, 0);
}

#[tokio::test]
async fn one_notification_per_append_not_per_event() {
    let store = fresh_store().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(store.pool())
        .await
        .expect("listener");
    listener.listen("es_events").await.expect("listen");
    append(&store, &stream("batch"), ExpectedVersion::Any, 100)
        .await
        .expect("append");
    append(&store, &stream("batch"), ExpectedVersion::Any, 100)
        .await
        .expect("append");
    let mut received = 0;
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_millis(500), listener.try_recv()).await
    {
        received += 1;
    }
    // One per append at most (coalesced while one is in flight), never one
    // per event.
    assert!((1..=2).contains(&received), "{received} notifications");
}

async fn idempotent_append(store: &PgStore, key: &str) -> es_core::AppendResult {
    store
        .append(
            AppendRequest::new(stream("retained"), ExpectedVersion::Any, events(1)).idempotent(
                Idempotency {
                    key: IdempotencyKey::new(key).expect("key"),
                    fingerprint: [9; 32],
                },
            ),
        )
        .await
        .expect("append")
}

#[tokio::test]
async fn idempotency_records_are_pruned_after_their_retention() {
    let store = fresh_store().await;
    assert!(!idempotent_append(&store, "old").await.deduplicated);
    assert!(!idempotent_append(&store, "new").await.deduplicated);
    store
        .pool()
        .execute(
            "UPDATE es_idempotency SET created_at = now() - interval '8 days'
             WHERE idempotency_key = 'old'",
        )
        .await
        .expect("age");
    let pruned = store
        .prune_idempotency(Duration::from_secs(7 * 24 * 3600))
        .await
        .expect("prune");
    assert_eq!(pruned, 1);
    assert!(idempotent_append(&store, "new").await.deduplicated, "kept");
    assert!(
        !idempotent_append(&store, "old").await.deduplicated,
        "pruned: executed again"
    );
}
