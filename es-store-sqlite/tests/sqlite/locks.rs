//! Runner locks: one holder per projection, in this process and across
//! processes; a holder killed with SIGKILL frees the lock.
//!
//! The holder process is this test binary itself, started with
//! `ES_SQLITE_TEST_LOCK_DB` set and running only [`lock_holder`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use es_store_sqlite::testing::fresh_store;
use es_store_sqlite::{DATABASE_FILE, LOCK_DIR, SqliteStore, lock_file_name};

/// The database file the holder opens; unset in a normal test run.
const DB_ENV: &str = "ES_SQLITE_TEST_LOCK_DB";
/// The projection the holder locks.
const PROJECTION_ENV: &str = "ES_SQLITE_TEST_LOCK_PROJECTION";
/// The file the holder creates once it holds the lock.
const READY_ENV: &str = "ES_SQLITE_TEST_LOCK_READY";

const RETRY: Duration = Duration::from_millis(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the entry point of the lock-holding child process spawned by the other tests in \
            this module; without ES_SQLITE_TEST_LOCK_DB set it does nothing"]
async fn lock_holder() {
    let Some(db) = std::env::var_os(DB_ENV).map(PathBuf::from) else {
        return;
    };
    let projection = std::env::var(PROJECTION_ENV).expect("ES_SQLITE_TEST_LOCK_PROJECTION");
    let ready = PathBuf::from(std::env::var_os(READY_ENV).expect("ES_SQLITE_TEST_LOCK_READY"));
    let store = SqliteStore::open(&db).await.expect("open");
    let _lock = store
        .try_lock_projection(&projection)
        .await
        .expect("lock file")
        .expect("the lock is free when the holder starts");
    std::fs::write(&ready, b"").expect("ready signal");
    // Held until the parent kills this process.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn spawn_holder(db: &Path, projection: &str, ready: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "locks::lock_holder",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(DB_ENV, db)
        .env(PROJECTION_ENV, projection)
        .env(READY_ENV, ready)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the lock holder")
}

/// Waits until the holder signals that it holds the lock; panics with its
/// stderr if it exits first or takes more than 60 s.
async fn wait_until_held(child: &mut Child, ready: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready.exists() {
        if let Some(status) = child.try_wait().expect("poll the holder") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            panic!("the lock holder exited ({status}) before taking the lock:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "the lock holder did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_held_lock_is_not_given_twice() {
    let store = fresh_store().await;
    let lock = store
        .try_lock_projection("balances")
        .await
        .expect("lock file")
        .expect("free");
    assert!(
        lock.path()
            .ends_with(Path::new(LOCK_DIR).join("balances.lock"))
    );
    assert!(
        store
            .try_lock_projection("balances")
            .await
            .expect("lock file")
            .is_none(),
        "a second runner of the same projection waits"
    );
    let other = store
        .try_lock_projection("search")
        .await
        .expect("lock file");
    assert!(other.is_some(), "other projections are not blocked");
    drop(lock);
    assert!(
        store
            .try_lock_projection("balances")
            .await
            .expect("lock file")
            .is_some(),
        "dropping the lock frees it"
    );
}

#[tokio::test]
async fn a_released_lock_can_be_taken_by_a_waiter() {
    let store = fresh_store().await;
    let lock = store
        .try_lock_projection("balances")
        .await
        .expect("lock file")
        .expect("free");
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.lock_projection("balances", RETRY).await }
    });
    tokio::task::yield_now().await;
    assert!(
        !waiter.is_finished(),
        "the waiter waits while the lock is held"
    );
    lock.release().expect("release");
    let taken = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the waiter takes the released lock")
        .expect("the waiter ran")
        .expect("lock file");
    assert_eq!(taken.projection(), "balances");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_another_process_dies_with_it() {
    let dir = tempfile::Builder::new()
        .prefix("es-store-sqlite-locks-")
        .tempdir()
        .expect("temporary directory");
    let db = dir.path().join(DATABASE_FILE);
    let store = SqliteStore::open(&db).await.expect("open");
    store.migrate().await.expect("migrate");
    let projection = "Balances/v2";
    let ready = dir.path().join("held");

    let mut holder = spawn_holder(&db, projection, &ready);
    wait_until_held(&mut holder, &ready).await;
    assert!(
        dir.path()
            .join(LOCK_DIR)
            .join(lock_file_name(projection))
            .exists(),
        "the lock file is beside the database"
    );

    assert!(
        store
            .try_lock_projection(projection)
            .await
            .expect("lock file")
            .is_none(),
        "another process holds the lock"
    );
    let waiter = tokio::spawn({
        let store = store.clone();
        async move { store.lock_projection(projection, RETRY).await }
    });
    // The waiter keeps trying while the holder lives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the waiter waits for the other process"
    );

    holder.kill().expect("SIGKILL the holder");
    let status = holder.wait().expect("reap the holder");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "the holder died of SIGKILL");
    }
    #[cfg(not(unix))]
    assert!(!status.success());

    let lock = tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the lock is freed by the holder's death")
        .expect("the waiter ran")
        .expect("lock file");
    assert_eq!(lock.projection(), projection);
}
