//! Files private by default (Unix): the data directory 0700, the database, its
//! write-ahead log and shared-memory file and the runner locks 0600, whatever
//! the umask; a data directory or database left open to others by an older
//! version is tightened when opened.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use es_core::ExpectedVersion;
use es_store_sqlite::{DATABASE_FILE, LOCK_DIR, SqliteStore};

use crate::support::{append, stream};

/// Asserts the permission bits of `path`.
#[track_caller]
fn assert_mode(path: &Path, want: u32) {
    let mode = mode(path);
    assert_eq!(
        mode,
        want,
        "{} has mode {mode:04o}, not {want:04o}",
        path.display()
    );
}

/// The permission bits of `path`.
#[track_caller]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The database file and the two files SQLite keeps beside it in WAL mode.
fn database_files(dir: &Path) -> [PathBuf; 3] {
    [
        dir.join(DATABASE_FILE),
        dir.join(format!("{DATABASE_FILE}-wal")),
        dir.join(format!("{DATABASE_FILE}-shm")),
    ]
}

/// Opens the store in `dir`, migrates, appends (so the log has content) and
/// takes a runner lock, returning both so the files stay open.
async fn use_store(dir: &Path) -> (SqliteStore, es_store_sqlite::ProjectionLock) {
    let store = SqliteStore::open_in(dir).await.expect("open");
    store.migrate().await.expect("migrate");
    append(&store, &stream("account-1"), ExpectedVersion::Any, 1)
        .await
        .expect("append");
    let lock = store
        .try_lock_projection("balances")
        .await
        .expect("lock")
        .expect("free");
    (store, lock)
}

#[tokio::test]
async fn the_data_dir_database_log_and_locks_are_created_private() {
    let parent = tempfile::tempdir().expect("temporary directory");
    let dir = parent.path().join("data");
    let (_store, lock) = use_store(&dir).await;
    assert_mode(&dir, 0o700);
    for file in database_files(&dir) {
        assert_mode(&file, 0o600);
    }
    assert_mode(&dir.join(LOCK_DIR), 0o700);
    assert_mode(lock.path(), 0o600);
}

#[tokio::test]
async fn a_data_dir_and_files_open_to_others_are_tightened() {
    let parent = tempfile::tempdir().expect("temporary directory");
    let dir = parent.path().join("data");
    {
        let (_store, lock) = use_store(&dir).await;
        // As an older version left them.
        for file in database_files(&dir) {
            set_mode(&file, 0o644);
        }
        set_mode(lock.path(), 0o644);
        set_mode(&dir.join(LOCK_DIR), 0o755);
        set_mode(&dir, 0o755);
    }
    let (_store, lock) = use_store(&dir).await;
    assert_mode(&dir, 0o700);
    for file in database_files(&dir) {
        assert_mode(&file, 0o600);
    }
    assert_mode(&dir.join(LOCK_DIR), 0o700);
    assert_mode(lock.path(), 0o600);
}

#[tokio::test]
async fn a_file_path_gets_private_new_directories_and_leaves_existing_ones() {
    let parent = tempfile::tempdir().expect("temporary directory");
    // Not the store's: a directory the database merely sits in.
    set_mode(parent.path(), 0o755);
    let path = parent.path().join("nested/deeper/events.sqlite3");
    let store = SqliteStore::open(&path).await.expect("open");
    store.migrate().await.expect("migrate");
    assert_mode(parent.path(), 0o755);
    assert_mode(&parent.path().join("nested"), 0o700);
    assert_mode(&parent.path().join("nested/deeper"), 0o700);
    assert_mode(&path, 0o600);

    let url = format!(
        "sqlite://{}",
        parent.path().join("url/es.sqlite3").display()
    );
    let store = SqliteStore::from_url(&url).await.expect("open the URL");
    store.migrate().await.expect("migrate");
    assert_mode(&parent.path().join("url"), 0o700);
    for file in database_files(&parent.path().join("url")) {
        assert_mode(&file, 0o600);
    }
}
