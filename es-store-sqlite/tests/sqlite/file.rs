//! The file and its connections: opening, settings on every connection,
//! concurrent migrations, a lock held by another store, a file that is not a
//! database, the global read's index, and deleted keys gone from the files.

use std::time::Duration;

use es_core::{
    AppendRequest, Checkpoint, Error, EventStore, ExpectedVersion, ForgetOutcome, KeyState,
    KeyStore, Snapshot, SnapshotStore, StoredKey, StreamVersion, SubjectId,
};
use es_store_sqlite::{DATABASE_FILE, SqliteStore, SqliteStoreOptions, Synchronous};
use sqlx::Row;

use crate::support::{append, events_with, stream};

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("es-store-sqlite-file-")
        .tempdir()
        .expect("temporary directory")
}

#[tokio::test]
async fn open_creates_the_file_and_its_directories_and_migrates_twice() {
    let dir = temp_dir();
    let path = dir.path().join("nested/deeper/events.sqlite3");
    let store = SqliteStore::open(&path).await.expect("open");
    assert!(path.is_file(), "the file is created on open");
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating again is a no-op");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .fetch_all(store.pool())
            .await
            .expect("tables");
    for table in [
        "es_events",
        "es_idempotency",
        "es_snapshots",
        "es_streams",
        "es_subject_keys",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
}

/// The settings of each of `n` connections held at once (so the pool opens
/// `n` distinct ones).
async fn settings_of_connections(
    store: &SqliteStore,
    n: usize,
) -> Vec<(String, i64, i64, i64, i64)> {
    let mut held = Vec::new();
    let mut settings = Vec::new();
    for _ in 0..n {
        let mut conn = store.pool().acquire().await.expect("acquire");
        let row = sqlx::query(
            "SELECT (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode,
                    (SELECT synchronous FROM pragma_synchronous) AS synchronous,
                    (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys,
                    (SELECT secure_delete FROM pragma_secure_delete) AS secure_delete,
                    (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout",
        )
        .fetch_one(&mut *conn)
        .await
        .expect("pragmas");
        settings.push((
            row.get("journal_mode"),
            row.get("synchronous"),
            row.get("foreign_keys"),
            row.get("secure_delete"),
            row.get("busy_timeout"),
        ));
        held.push(conn);
    }
    settings
}

#[tokio::test]
async fn every_connection_has_the_store_settings() {
    let dir = temp_dir();
    let options = SqliteStoreOptions {
        max_connections: 4,
        busy_timeout: Duration::from_millis(7_500),
        ..SqliteStoreOptions::default()
    };
    let store = SqliteStore::open_with(dir.path().join("a.sqlite3"), &options)
        .await
        .expect("open");
    // synchronous: 2 = FULL; foreign keys and secure_delete on.
    let want = ("wal".to_owned(), 2, 1, 1, 7_500);
    assert_eq!(settings_of_connections(&store, 4).await, vec![want; 4]);

    let normal = SqliteStore::open_with(
        dir.path().join("b.sqlite3"),
        &SqliteStoreOptions {
            synchronous: Synchronous::Normal,
            ..SqliteStoreOptions::default()
        },
    )
    .await
    .expect("open");
    let settings = settings_of_connections(&normal, 2).await;
    assert!(
        settings.iter().all(|s| s.1 == 1),
        "NORMAL is 1: {settings:?}"
    );
}

#[tokio::test]
async fn open_in_and_a_url_reach_the_same_file() {
    let dir = temp_dir();
    let data = dir.path().join("data dir");
    let store = SqliteStore::open_in(&data).await.expect("open_in");
    store.migrate().await.expect("migrate");
    assert!(data.join(DATABASE_FILE).is_file());
    let s = stream("shared-file");
    append(&store, &s, ExpectedVersion::NoStream, 2)
        .await
        .expect("append");

    let url = format!("sqlite://{}", data.join(DATABASE_FILE).display());
    let other = SqliteStore::from_url(&url).await.expect("from_url");
    assert_eq!(
        other.stream_version(&s).await.expect("version"),
        StreamVersion::new(2)
    );
    append(&other, &s, ExpectedVersion::Exact(StreamVersion::new(2)), 1)
        .await
        .expect("append through the other store");
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(3)
    );
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(other.pool())
        .await
        .expect("journal_mode");
    assert_eq!(journal, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_migrating_one_new_file_at_once_all_succeed() {
    for round in 0..5 {
        let dir = temp_dir();
        let path = dir.path().join(DATABASE_FILE);
        let mut stores = Vec::new();
        for _ in 0..3 {
            stores.push(SqliteStore::open(&path).await.expect("open"));
        }
        let results = futures::future::join_all(
            stores
                .iter()
                .map(|store| async move { store.migrate().await }),
        )
        .await;
        for result in results {
            result.unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        }
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(stores[0].pool())
            .await
            .expect("count");
        assert_eq!(
            applied,
            i64::try_from(es_store_sqlite::MIGRATOR.iter().count()).expect("count")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_past_the_busy_timeout_is_unavailable_and_reads_go_on() {
    let dir = temp_dir();
    let path = dir.path().join(DATABASE_FILE);
    let impatient = SqliteStore::open_with(
        &path,
        &SqliteStoreOptions {
            busy_timeout: Duration::from_millis(150),
            ..SqliteStoreOptions::default()
        },
    )
    .await
    .expect("open");
    impatient.migrate().await.expect("migrate");
    let s = stream("locked");
    append(&impatient, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("seed");

    // Another store on the file (as another process would) holds the write lock.
    let other = SqliteStore::open(&path).await.expect("open other");
    let holder = other
        .pool()
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("take the write lock");

    let blocked = append(&impatient, &s, ExpectedVersion::Any, 1).await;
    assert!(
        matches!(blocked, Err(Error::Unavailable { .. })),
        "a busy database is unavailable (retry later): {blocked:?}"
    );
    let snapshot = impatient
        .save_snapshot(Snapshot {
            stream_id: s.clone(),
            version: StreamVersion::new(1),
            schema_version: 1,
            payload: b"state".to_vec(),
            taken_at: chrono::Utc::now(),
        })
        .await;
    assert!(
        matches!(snapshot, Err(Error::Unavailable { .. })),
        "{snapshot:?}"
    );
    assert_eq!(
        impatient
            .read_all(Checkpoint::START, 10)
            .await
            .expect("readers are not blocked by the writer")
            .len(),
        1
    );

    holder.rollback().await.expect("release");
    let result = append(
        &impatient,
        &s,
        ExpectedVersion::Exact(StreamVersion::new(1)),
        1,
    )
    .await
    .expect("append after the lock is released");
    assert_eq!(result.version, StreamVersion::new(2));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let dir = temp_dir();
    let path = dir.path().join(DATABASE_FILE);
    std::fs::write(&path, vec![0x5a; 8192]).expect("write garbage");
    let opened = match SqliteStore::open(&path).await {
        Ok(store) => store.migrate().await.map(|()| store),
        Err(error) => Err(error),
    };
    assert!(
        matches!(opened, Err(es_store_sqlite::Error::Database { .. })),
        "{opened:?}"
    );
}

#[tokio::test]
async fn the_global_read_walks_its_index() {
    let store = es_store_sqlite::testing::fresh_store().await;
    let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {}",
        include_str!("../../src/event_store/sql/read_all.sql")
    )))
    .bind(1_i64)
    .bind(1_i64)
    .bind(10_i64)
    .fetch_all(store.pool())
    .await
    .expect("plan")
    .iter()
    .map(|row| row.get::<String, _>("detail"))
    .collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX es_events_global_order")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|step| step.contains("TEMP B-TREE")),
        "no sort step: {plan:?}"
    );
}

/// Whether any 8 consecutive bytes of `secret` occur in the database file or
/// its write-ahead log: a row rewritten in place may overwrite part of the old
/// bytes, but not all of them.
fn files_contain(dir: &std::path::Path, secret: &[u8]) -> bool {
    ["", "-wal"].iter().any(|suffix| {
        let path = dir.join(format!("{DATABASE_FILE}{suffix}"));
        let bytes = std::fs::read(path).unwrap_or_default();
        secret
            .windows(8)
            .any(|needle| bytes.windows(needle.len()).any(|w| w == needle))
    })
}

fn active_key(subject: &str, wrapped: Vec<u8>) -> StoredKey {
    StoredKey {
        subject: SubjectId::new(subject).expect("subject id"),
        key_version: 1,
        state: KeyState::Active {
            wrapped,
            master_key_id: "m1".to_owned(),
        },
    }
}

/// Stores a wrapped key among others, forgets it, truncates the log, and says
/// whether the key's bytes are still in the files. With `secure_delete`, the
/// store forgets; without, the control does what the store's forget does to
/// the key row on a connection with `secure_delete` off.
/// Whether a forgotten key is still in the files after a forget (the store's,
/// with `secure_delete`, or a hand-written one without it), then
/// `truncate_wal` when `truncate` says so, else only what the forget does
/// itself.
async fn forgotten_key_left_in_files(secure_delete: bool, truncate: bool) -> bool {
    let dir = temp_dir();
    let store = SqliteStore::open_in(dir.path()).await.expect("open");
    store.migrate().await.expect("migrate");
    let key: Vec<u8> = (0..48u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    store
        .create(active_key("ada", key.clone()), false)
        .await
        .expect("create the key");
    // Neighbours on the same page, so the page stays in use after the forget.
    let neighbours = (0..20).map(|i| active_key(&format!("subject-{i}"), vec![0; 48]));
    store
        .create_many(neighbours.collect(), false)
        .await
        .expect("create neighbours");
    assert!(store.truncate_wal().await.expect("checkpoint"));
    assert!(
        files_contain(dir.path(), &key),
        "the check must find a stored key"
    );

    if secure_delete {
        let ada = SubjectId::new("ada").expect("subject id");
        let event = AppendRequest::new(
            stream("forgotten-ada"),
            ExpectedVersion::NoStream,
            events_with([b"forgotten".to_vec()]),
        );
        let outcome = store.forget(&ada, event).await.expect("forget");
        assert!(
            matches!(outcome, ForgetOutcome::Forgotten(_)),
            "{outcome:?}"
        );
    } else {
        let mut conn = store.pool().acquire().await.expect("acquire");
        sqlx::query("PRAGMA secure_delete = OFF")
            .execute(&mut *conn)
            .await
            .expect("secure_delete off");
        sqlx::query(
            "UPDATE es_subject_keys SET wrapped_key = NULL, master_key_id = NULL,
                    forgotten_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE subject_id = 'ada'",
        )
        .execute(&mut *conn)
        .await
        .expect("forget");
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await
            .expect("secure_delete back on");
    }
    if truncate {
        assert!(store.truncate_wal().await.expect("truncate"));
    } else {
        assert!(store.wal_scrubbed(), "the forget scrubbed the log itself");
    }
    files_contain(dir.path(), &key)
}

#[tokio::test]
async fn a_forgotten_key_leaves_no_copy_in_the_files_after_truncate_wal() {
    assert!(
        forgotten_key_left_in_files(false, true).await,
        "control: without secure_delete the freed bytes stay in the page"
    );
    assert!(
        !forgotten_key_left_in_files(true, true).await,
        "with the store's secure_delete, the key is gone from the file and the log"
    );
}

/// A reader in the way of the truncation: the forget returns, the store keeps
/// trying, and the log is scrubbed once the reader is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_in_the_way_delays_the_scrub_but_does_not_stop_it() {
    let dir = temp_dir();
    let store = SqliteStore::open_in(dir.path()).await.expect("open");
    store.migrate().await.expect("migrate");
    store
        .create(active_key("ada", vec![7; 48]), false)
        .await
        .expect("create the key");
    let mut reader = store.pool().acquire().await.expect("acquire").detach();
    sqlx::query("BEGIN")
        .execute(&mut reader)
        .await
        .expect("begin");
    let _: i64 = sqlx::query_scalar("SELECT count(*) FROM es_subject_keys")
        .fetch_one(&mut reader)
        .await
        .expect("read");
    let ada = SubjectId::new("ada").expect("subject id");
    let event = AppendRequest::new(
        stream("forgotten-ada"),
        ExpectedVersion::NoStream,
        events_with([b"forgotten".to_vec()]),
    );
    store.forget(&ada, event).await.expect("forget");
    assert!(!store.wal_scrubbed(), "the open read kept the log");
    sqlx::query("COMMIT")
        .execute(&mut reader)
        .await
        .expect("commit");
    drop(reader);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !store.wal_scrubbed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the store never scrubbed the log after the reader left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// No maintenance is left to the application: the forget truncates the
/// write-ahead log itself once it has committed.
#[tokio::test]
async fn forgetting_scrubs_the_write_ahead_log_itself() {
    assert!(
        !forgotten_key_left_in_files(true, false).await,
        "the forget alone leaves no copy of the key in the file or the log"
    );
}
