#![doc = include_str!("../README.md")]

mod column;
mod dead_letters;
mod error;
mod event_store;
mod key_store;
mod kv;
mod runner_lock;
mod snapshot_store;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;
mod wakeup;
mod wal;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use error::Error;
pub use kv::SqliteKv;
pub use runner_lock::{LOCK_DIR, ProjectionLock, lock_file_name};
pub use wakeup::Wakeups;

/// The embedded migrations: the event, idempotency, snapshot and key tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The name of the database file in a data directory
/// ([`SqliteStore::open_in`]).
pub const DATABASE_FILE: &str = "es.sqlite3";

/// The default data directory: `ES_DATA_DIR` when set and not empty, else
/// `./data` (relative to the working directory).
///
/// ```no_run
/// # async fn run() -> Result<(), es_store_sqlite::Error> {
/// use es_store_sqlite::{SqliteStore, data_dir};
///
/// let store = SqliteStore::open_in(data_dir()).await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
pub fn data_dir() -> PathBuf {
    resolve_data_dir(std::env::var_os("ES_DATA_DIR"))
}

fn resolve_data_dir(configured: Option<OsString>) -> PathBuf {
    configured
        .filter(|dir| !dir.is_empty())
        .map_or_else(|| PathBuf::from("./data"), PathBuf::from)
}

/// When a committed append is on disk (SQLite's `synchronous` setting, in WAL
/// mode).
///
/// ```
/// use es_store_sqlite::Synchronous;
///
/// assert_eq!(Synchronous::default(), Synchronous::Full);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous = FULL`: each commit syncs the write-ahead log before the
    /// append returns, so an acknowledged append survives a power loss or an
    /// operating-system crash. Costs one `fsync` per append.
    ///
    /// The default, because an event store's `Ok` is a promise that others act
    /// on: a projection may apply the event, a handler may send the email. An
    /// append lost after that leaves read models ahead of the log and the next
    /// append reusing its version and positions for different events.
    #[default]
    Full,
    /// `synchronous = NORMAL`: the log is synced only at checkpoints. The file
    /// stays consistent and no commit is lost when the application crashes or is
    /// killed, but a power loss or operating-system crash can roll back the last
    /// appends that already returned `Ok`. For data you can rebuild, or disks
    /// with a battery-backed cache.
    Normal,
}

impl From<Synchronous> for SqliteSynchronous {
    fn from(value: Synchronous) -> Self {
        match value {
            Synchronous::Full => Self::Full,
            Synchronous::Normal => Self::Normal,
        }
    }
}

/// Connection settings with embedded-store defaults.
///
/// ```
/// use std::time::Duration;
/// use es_store_sqlite::{SqliteStoreOptions, Synchronous};
///
/// let options = SqliteStoreOptions {
///     busy_timeout: Duration::from_secs(30),
///     ..SqliteStoreOptions::default()
/// };
/// assert_eq!(options.synchronous, Synchronous::Full);
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    /// The pool's size. SQLite writes one transaction at a time, but in WAL mode
    /// readers run beside the writer, each on its own connection.
    pub max_connections: u32,
    /// How long to wait for a free connection before reporting the store
    /// unavailable.
    pub acquire_timeout: Duration,
    /// How long a statement waits for a lock another process (or another store
    /// on the same file) holds before failing with `SQLITE_BUSY`, reported as
    /// [`es_core::Error::Unavailable`]. Appends from one store queue in the store
    /// instead and do not count against it.
    pub busy_timeout: Duration,
    /// When a commit is on disk; see [`Synchronous`].
    pub synchronous: Synchronous,
}

impl Default for SqliteStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(10),
            synchronous: Synchronous::Full,
        }
    }
}

/// The SQLite event, snapshot and key store: one database file, shared by any
/// number of processes.
///
/// Implements [`es_core::EventStore`], [`es_core::SnapshotStore`],
/// [`es_core::KeyStore`] and [`es_core::DeadLetters`]; holds
/// [`SqliteKv`] read models and hands out runner locks
/// ([`try_lock_projection`](Self::try_lock_projection)). Cloning shares the pool. Every connection runs with:
///
/// - `journal_mode = WAL`: readers never block the writer nor the writer
///   readers, and a crash never leaves a half-written transaction;
/// - `synchronous` as configured ([`Synchronous::Full`] by default);
/// - `busy_timeout` ([`SqliteStoreOptions::busy_timeout`]): waiting for
///   another process's lock instead of failing at once;
/// - `foreign_keys = ON`: events and idempotency records need their stream row;
/// - `secure_delete = ON`: a deleted or overwritten value is overwritten with
///   zeros in its page instead of lingering in free space, where a copy of the
///   file would still show it. Crypto-shredding relies on it: forgetting a
///   subject deletes its data key, and that key must be gone from the file, not
///   just unlinked from the b-tree. The write-ahead log still holds earlier
///   images of the page until it is truncated: `forget`, and a key-value
///   commit that purges a subject, truncate it themselves right after they
///   commit, or, when a reader is in the way, from a task that tries again
///   every 50 ms for up to a minute (see [`truncate_wal`](Self::truncate_wal)
///   and [`wal_scrubbed`](Self::wal_scrubbed)).
///
/// Its files hold personal data (read models in clear), so on Unix they are
/// private to their owner whatever the umask: the database file is created
/// 0600 before SQLite opens it (SQLite gives its write-ahead log and
/// shared-memory file the same permissions), directories it creates are 0700,
/// and an existing database file or companion open to the group or others is
/// restricted to its owner when opened, with a warning.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Held by this store's writers (appends, snapshot saves, key changes) for
    /// the length of their transaction: they queue here in order instead of
    /// polling SQLite's lock through the busy handler. Writers of other
    /// processes still meet at SQLite's lock, within the busy timeout.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// The write-ahead log's scrubbing after personal data is deleted
    /// ([`wal`]).
    scrub: Arc<wal::Scrub>,
    /// The database file as opened (`None` for an in-memory database): the
    /// runner locks live beside it.
    database: Option<PathBuf>,
    /// The temporary directory of a test store, deleted with the last clone.
    #[cfg(feature = "testing")]
    temp_dir: Option<Arc<tempfile::TempDir>>,
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database file at
    /// `path` with [`SqliteStoreOptions::default`]. Does not migrate: call
    /// [`migrate`](Self::migrate) (or the CLI's `migrate`) first.
    ///
    /// The files are private to their owner (see [the type](Self)): missing
    /// directories are created 0700, the database 0600.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), es_store_sqlite::Error> {
    /// let store = es_store_sqlite::SqliteStore::open("data/es.sqlite3").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(path, &SqliteStoreOptions::default()).await
    }

    /// Opens the database file at `path` with the given options.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), es_store_sqlite::Error> {
    /// use es_store_sqlite::{SqliteStore, SqliteStoreOptions, Synchronous};
    ///
    /// let options = SqliteStoreOptions {
    ///     synchronous: Synchronous::Normal,
    ///     ..SqliteStoreOptions::default()
    /// };
    /// let store = SqliteStore::open_with("cache/projections.sqlite3", &options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: &SqliteStoreOptions,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        create_parent(path)?;
        Self::connect(SqliteConnectOptions::new().filename(path), options).await
    }

    /// Opens [`DATABASE_FILE`] in `data_dir` (see [`data_dir`]).
    ///
    /// The data directory is the store's own: created 0700 when missing, and
    /// on Unix an existing one that the group or others may enter (made by an
    /// older version, say) is restricted to its owner, with a warning.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_store_sqlite::Error> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let data_dir = dir.path().join("app");
    /// // Opens (and creates) <data_dir>/es.sqlite3.
    /// let store = es_store_sqlite::SqliteStore::open_in(&data_dir).await?;
    /// # #[cfg(unix)] {
    /// use std::os::unix::fs::PermissionsExt as _;
    /// let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    /// assert_eq!(mode(&data_dir), 0o700);
    /// assert_eq!(mode(&data_dir.join("es.sqlite3")), 0o600);
    /// # }
    /// # Ok(()) }
    /// ```
    pub async fn open_in(data_dir: impl AsRef<Path>) -> Result<Self, Error> {
        let data_dir = data_dir.as_ref();
        if !data_dir.as_os_str().is_empty() {
            es_files::create_private_dir(data_dir).map_err(|source| Error::CreateDir {
                path: data_dir.to_owned(),
                source,
            })?;
            es_files::restrict_to_owner(data_dir, "the data directory");
        }
        Self::open(data_dir.join(DATABASE_FILE)).await
    }

    /// Opens the database of a `sqlite://` URL, such as `DATABASE_URL`, with
    /// the default options; the URL's own parameters (`mode`, `cache`, …) apply
    /// first.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), es_store_sqlite::Error> {
    /// let store = es_store_sqlite::SqliteStore::from_url("sqlite://data/es.sqlite3").await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_url(url: &str) -> Result<Self, Error> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(Error::database("parsing the database URL"))?;
        create_parent(connect.get_filename())?;
        Self::connect(connect, &SqliteStoreOptions::default()).await
    }

    async fn connect(
        connect: SqliteConnectOptions,
        options: &SqliteStoreOptions,
    ) -> Result<Self, Error> {
        let database = database_file(connect.get_filename());
        if let Some(file) = &database {
            private_database_file(file)?;
        }
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(options.synchronous.into())
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true)
            // Deleted content is zeroed in its page, not left in free space: see
            // the type's documentation (crypto-shredding).
            .pragma("secure_delete", "ON");
        let pool_options = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout);
        // Turning a new file to WAL needs an exclusive lock that the busy timeout
        // does not wait for: a process opening the file at the same moment as
        // another gets SQLITE_BUSY at once. Try again until the busy timeout.
        let deadline = Instant::now() + options.busy_timeout;
        let pool = loop {
            match pool_options.clone().connect_with(connect.clone()).await {
                Ok(pool) => break pool,
                Err(error) if error::is_busy(&error) && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => return Err(Error::database("opening the database")(error)),
            }
        };
        Ok(Self {
            pool,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            scrub: Arc::default(),
            database,
            #[cfg(feature = "testing")]
            temp_dir: None,
        })
    }

    /// The pool, for stores and sinks that share the file (SQL read models,
    /// diagnostics). Its connections have the settings listed on the type.
    ///
    /// ```no_run
    /// # async fn run(store: es_store_sqlite::SqliteStore) -> Result<(), sqlx::Error> {
    /// let streams: i64 = sqlx::query_scalar("SELECT count(*) FROM es_streams")
    ///     .fetch_one(store.pool())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies the embedded migrations ([`MIGRATOR`]).
    ///
    /// Safe to run from several processes at once: sqlx takes no lock for
    /// SQLite migrations, so a process that loses the race fails on the tables
    /// the winner just created; it then runs again and finds them applied.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), es_store_sqlite::Error> {
    /// let store = es_store_sqlite::SqliteStore::open("data/es.sqlite3").await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), Error> {
        let attempts = MIGRATOR.iter().count() + 1;
        let mut attempt = 1;
        loop {
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < attempts => attempt += 1,
                Err(error) => return Err(error.into()),
            }
        }
    }
}

/// The file behind a connection's file name; `None` for an in-memory database
/// (`:memory:`, or the `file:` URI sqlx gives one).
fn database_file(filename: &Path) -> Option<PathBuf> {
    let text = filename.to_string_lossy();
    if text.is_empty() || text == ":memory:" || text.starts_with("file:") {
        None
    } else {
        Some(filename.to_owned())
    }
}

/// Creates the directory of a database file, if it has one (private, see
/// [`create_private_dir`]).
fn create_parent(path: &Path) -> Result<(), Error> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            es_files::create_private_dir(dir).map_err(|source| Error::CreateDir {
                path: dir.to_owned(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// What SQLite keeps beside a database file: the write-ahead log, the
/// shared-memory index of the log, and the rollback journal (briefly, before
/// the switch to WAL).
const COMPANION_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Creates the database file readable and writable by its owner only (0600,
/// whatever the umask) before SQLite opens it, or restricts an existing one
/// to its owner, and its companions too: SQLite creates the write-ahead log
/// and its shared-memory file with the database file's permissions, so they
/// follow.
fn private_database_file(path: &Path) -> Result<(), Error> {
    match es_files::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        // An empty file is an empty database to SQLite.
        Ok(_) => es_files::set_mode(path, 0o600).map_err(|source| Error::Permissions {
            path: path.to_owned(),
            source,
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            es_files::restrict_to_owner(path, "the database file");
        }
        Err(source) => {
            return Err(Error::CreateFile {
                path: path.to_owned(),
                source,
            });
        }
    }
    for suffix in COMPANION_SUFFIXES {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        es_files::restrict_to_owner(Path::new(&companion), "a file beside the database");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_dir_is_es_data_dir_or_data() {
        assert_eq!(resolve_data_dir(None), PathBuf::from("./data"));
        assert_eq!(
            resolve_data_dir(Some(OsString::new())),
            PathBuf::from("./data")
        );
        assert_eq!(
            resolve_data_dir(Some(OsString::from("/var/lib/app"))),
            PathBuf::from("/var/lib/app")
        );
    }
}
