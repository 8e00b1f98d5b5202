//! Group commit: concurrent appends to different streams share one statement
//! and one commit, and each keeps its own version check, idempotency and
//! result.

use std::collections::HashSet;
use std::time::Duration;

use es_core::{
    AppendRequest, AppendResult, Error, EventStore, ExpectedVersion, Idempotency, IdempotencyKey,
    StreamVersion,
};
use es_store_postgres::testing::fresh_database_url;
use es_store_postgres::{GroupCommit, PgStore, PgStoreOptions};

use crate::support::{backend_pid, events, stream};

/// A store whose appends go one group at a time, so that appends made while
/// a group is on its way wait and go together in the next.
async fn one_group_at_a_time() -> PgStore {
    let url = fresh_database_url().await;
    let options = PgStoreOptions {
        group_commit: GroupCommit {
            in_flight: 1,
            ..GroupCommit::default()
        },
        ..PgStoreOptions::default()
    };
    let store = PgStore::connect_with(&url, &options)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    store
}

fn request(name: &str, expected: ExpectedVersion, n: usize) -> AppendRequest {
    AppendRequest::new(stream(name), expected, events(n))
}

/// Holds the row lock of stream `name` (which must exist) in an open
/// transaction, and starts an append to it, which waits on the lock with the
/// store's one group: everything appended meanwhile forms the next group.
async fn stall(
    store: &PgStore,
    name: &str,
) -> (
    sqlx::Transaction<'static, sqlx::Postgres>,
    tokio::task::JoinHandle<Result<AppendResult, Error>>,
) {
    let mut blocker = store.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM es_streams WHERE stream_id = $1 FOR UPDATE")
        .bind(name)
        .execute(&mut *blocker)
        .await
        .expect("lock");
    let stalled = {
        let store = store.clone();
        let r = request(name, ExpectedVersion::Any, 1);
        tokio::spawn(async move { store.append(r).await })
    };
    backend_pid(
        store,
        "wait_event_type = 'Lock' AND query LIKE '%es_append_group%'",
    )
    .await;
    (blocker, stalled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_to_different_streams_share_a_commit() {
    let store = one_group_at_a_time().await;
    store
        .append(request("stall", ExpectedVersion::NoStream, 1))
        .await
        .expect("seed");
    let (blocker, stalled) = stall(&store, "stall").await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(request(&format!("s-{i}"), ExpectedVersion::NoStream, i + 1))
                    .await
            })
        })
        .collect();
    // Let every append join the queue behind the stalled group.
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.commit().await.expect("release");
    stalled
        .await
        .expect("task")
        .expect("the stalled append lands");
    let mut commits = HashSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let done = task.await.expect("task").expect("append");
        assert_eq!(done.version, StreamVersion::new(i as u64 + 1));
        assert_eq!(done.positions.len(), i + 1);
        assert!(!done.deduplicated);
        commits.insert(done.checkpoint.commit);
    }
    assert_eq!(commits.len(), 1, "the 16 appends went in one group");
    for i in 0..16 {
        let read = store
            .read_stream(&stream(&format!("s-{i}")), StreamVersion::INITIAL, 100)
            .await
            .expect("read");
        assert_eq!(read.len(), i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_in_a_group_fails_that_append_alone() {
    let store = one_group_at_a_time().await;
    for name in ["stall", "behind", "exists"] {
        store
            .append(request(name, ExpectedVersion::NoStream, 2))
            .await
            .expect("seed");
    }
    let (blocker, stalled) = stall(&store, "stall").await;
    let spawn = |r: AppendRequest| {
        let store = store.clone();
        tokio::spawn(async move { store.append(r).await })
    };
    let stale = spawn(request(
        "behind",
        ExpectedVersion::Exact(StreamVersion::new(1)),
        1,
    ));
    let fresh = spawn(request("new", ExpectedVersion::NoStream, 3));
    let taken = spawn(request("exists", ExpectedVersion::NoStream, 1));
    let exact = spawn(request("exists-too", ExpectedVersion::StreamExists, 1));
    let any = spawn(request("behind-too", ExpectedVersion::Any, 2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.commit().await.expect("release");
    stalled.await.expect("task").expect("stalled");

    match stale.await.expect("task") {
        Err(Error::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::Exact(StreamVersion::new(1)));
            assert_eq!(actual, StreamVersion::new(2));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        taken.await.expect("task"),
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        exact.await.expect("task"),
        Err(Error::Conflict { .. })
    ));
    let fresh = fresh
        .await
        .expect("task")
        .expect("its neighbours' conflicts do not fail it");
    let any = any.await.expect("task").expect("nor this one");
    assert_eq!(fresh.version, StreamVersion::new(3));
    assert_eq!(any.version, StreamVersion::new(2));
    assert_eq!(fresh.checkpoint.commit, any.checkpoint.commit, "one group");
    for (name, version) in [("behind", 2), ("exists", 2), ("new", 3), ("behind-too", 2)] {
        assert_eq!(
            store.stream_version(&stream(name)).await.expect("version"),
            StreamVersion::new(version),
            "{name}"
        );
    }
    assert_eq!(
        store
            .stream_version(&stream("exists-too"))
            .await
            .expect("version"),
        StreamVersion::INITIAL
    );
}

fn keyed(name: &str, key: &str, n: usize) -> AppendRequest {
    let mut r = request(name, ExpectedVersion::Any, n);
    r.idempotency = Some(Idempotency {
        key: IdempotencyKey::new(key).expect("key"),
        fingerprint: [u8::try_from(n).expect("a small batch"); 32],
    });
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_holds_per_append_in_a_group() {
    let store = one_group_at_a_time().await;
    store
        .append(request("stall", ExpectedVersion::NoStream, 1))
        .await
        .expect("seed");
    let first = store.append(keyed("k-1", "once", 2)).await.expect("first");

    // A concurrent first use of a key, in a transaction of someone else's
    // that has claimed it and not committed: the group's append of that key
    // waits on it, then finds it taken; its neighbours are unaffected.
    let mut claimer = store.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO es_idempotency \
         (stream_id, idempotency_key, fingerprint, last_version, positions, transaction_id) \
         VALUES ('k-3', 'raced', $1, 7, ARRAY[70]::bigint[], pg_current_xact_id())",
    )
    .bind(vec![1u8; 32])
    .execute(&mut *claimer)
    .await
    .expect("claim");

    let (blocker, stalled) = stall(&store, "stall").await;
    let spawn = |r: AppendRequest| {
        let store = store.clone();
        tokio::spawn(async move { store.append(r).await })
    };
    let retried = spawn(keyed("k-1", "once", 2));
    let reused = spawn(keyed("k-1b", "once", 1));
    let new = spawn(keyed("k-2", "new", 3));
    let raced = spawn(keyed("k-3", "raced", 1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocker.commit().await.expect("release");
    stalled.await.expect("task").expect("stalled");
    // The group waits on the claimer's key; let it commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    claimer.commit().await.expect("commit the claim");

    let retried = retried.await.expect("task").expect("a retry");
    assert!(retried.deduplicated);
    assert_eq!(retried.version, first.version);
    assert_eq!(retried.positions, first.positions);
    let reused = reused.await.expect("task").expect("keys are per stream");
    assert!(!reused.deduplicated);
    let new = new.await.expect("task").expect("new key");
    assert!(!new.deduplicated);
    assert_eq!(new.version, StreamVersion::new(3));
    assert_eq!(reused.checkpoint.commit, new.checkpoint.commit, "one group");
    let raced = raced.await.expect("task").expect("the key's first result");
    assert!(raced.deduplicated);
    assert_eq!(raced.version, StreamVersion::new(7), "the claimer's result");
    assert_eq!(
        store.stream_version(&stream("k-3")).await.expect("version"),
        StreamVersion::INITIAL,
        "the raced append wrote nothing"
    );
    assert_eq!(
        store.stream_version(&stream("k-1")).await.expect("version"),
        StreamVersion::new(2),
        "the retry wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_to_one_stream_never_share_a_group() {
    let store = one_group_at_a_time().await;
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.append(request("hot", ExpectedVersion::Any, 2)).await })
        })
        .collect();
    let mut versions = Vec::new();
    let mut commits = HashSet::new();
    for task in tasks {
        let done = task.await.expect("task").expect("append");
        versions.push(done.version.get());
        commits.insert(done.checkpoint.commit);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=12).map(|i| i * 2).collect::<Vec<_>>());
    assert_eq!(
        commits.len(),
        12,
        "one transaction per append to the stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_group_commit_off_every_append_commits_alone() {
    let url = fresh_database_url().await;
    let options = PgStoreOptions {
        group_commit: GroupCommit::off(),
        ..PgStoreOptions::default()
    };
    let store = PgStore::connect_with(&url, &options)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .append(request(&format!("o-{i}"), ExpectedVersion::NoStream, 1))
                    .await
            })
        })
        .collect();
    let mut commits = HashSet::new();
    for task in tasks {
        commits.insert(task.await.expect("task").expect("append").checkpoint.commit);
    }
    assert_eq!(commits.len(), 8);
}
