//! [`Store`]: the event, snapshot and key store that the configuration
//! selects, and what runners need from it.

use std::sync::Arc;
use std::time::Duration;

use es_core::{
    AppendRequest, AppendResult, Checkpoint, DeadLetters, EventStore, ForgetOutcome,
    IdempotencyKey, IdempotentRecord, KeyStore, RecordedEvent, Snapshot, SnapshotStore, StoredKey,
    StreamId, StreamSummary, StreamVersion, SubjectId,
};
use es_store_postgres::{PgStore, RunnerLock, Wakeups};
use es_store_sqlite::{ProjectionLock, SqliteStore};

use crate::Error;
use crate::config::{Backend, Config, DATABASE_URL, scheme};

/// What `DATABASE_URL` may hold.
const EXPECTED_DATABASE_URL: &str =
    "postgres://…, postgresql://… or sqlite://… (or nothing, for the embedded file)";

/// The event, snapshot and key store that the configuration selects:
/// PostgreSQL or SQLite. Application code written against the es-core traits
/// ([`EventStore`], [`SnapshotStore`], [`KeyStore`]) runs unchanged on both.
///
/// Cloning shares the connection pool.
///
/// ```
/// use es_app::{Config, Store};
/// use es_core::{EventStore, StreamId, StreamVersion};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), es_app::Error> {
/// let dir = tempfile::tempdir().unwrap();
/// let store = Store::connect(&Config::embedded(dir.path())).await?;
/// store.migrate().await?;
/// assert!(dir.path().join("es.sqlite3").exists());
/// let stream = StreamId::new("account-1")?;
/// assert_eq!(store.stream_version(&stream).await?, StreamVersion::INITIAL);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Store {
    /// PostgreSQL.
    Postgres(PgStore),
    /// SQLite (a `sqlite://` URL or the embedded file).
    Sqlite(SqliteStore),
}

/// Calls the same method on whichever store is configured.
macro_rules! delegate {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            Store::Postgres($store) => $call,
            Store::Sqlite($store) => $call,
        }
    };
}

impl Store {
    /// Opens the store that `config` selects: `postgres://` or
    /// `postgresql://` connects to PostgreSQL; `sqlite://…` opens that SQLite
    /// file; no URL opens the embedded file `es.sqlite3` in the data directory
    /// (creating both). Any other scheme, or a URL that does not parse, is a
    /// typed error naming `DATABASE_URL` and what was expected.
    ///
    /// Does not migrate: call [`migrate`](Self::migrate) (or the CLI's
    /// `migrate`) first.
    ///
    /// ```
    /// use es_app::{Config, Error, Store};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let config = Config::embedded("data").with_database_url("mysql://localhost/app");
    /// let error = Store::connect(&config).await.unwrap_err();
    /// assert!(matches!(error, Error::UnsupportedScheme { .. }));
    /// assert!(error.to_string().contains("DATABASE_URL"));
    /// # }
    /// ```
    pub async fn connect(config: &Config) -> Result<Self, Error> {
        Self::connect_bounded(config, None).await
    }

    /// [`connect`](Self::connect), with every PostgreSQL statement bounded by
    /// `statement_timeout` (a server gives it its request budget, so that no
    /// statement outlives the request that ran it), and the wait for a pooled
    /// connection by half of it. SQLite statements are local and bounded by
    /// its busy timeout.
    pub async fn connect_bounded(
        config: &Config,
        statement_timeout: Option<std::time::Duration>,
    ) -> Result<Self, Error> {
        let Some(url) = config.database_url() else {
            return Ok(Self::Sqlite(SqliteStore::open_in(config.data_dir()).await?));
        };
        let url = url.trim();
        validate_url(url)?;
        let mut options = es_store_postgres::PgStoreOptions::default();
        if let Some(timeout) = statement_timeout {
            options.statement_timeout = timeout;
            // Waiting for a connection is part of the budget too: half of
            // it, so that an unreachable database is answered as such
            // before the request's own deadline.
            options.acquire_timeout = options.acquire_timeout.min(timeout / 2);
        }
        match (config.backend(), scheme(url)) {
            (Backend::Postgres, _) => {
                Ok(Self::Postgres(PgStore::connect_with(url, &options).await?))
            }
            (_, "sqlite") => Ok(Self::Sqlite(SqliteStore::from_url(url).await?)),
            (_, other) => Err(Error::UnsupportedScheme {
                variable: DATABASE_URL,
                scheme: other.to_owned(),
                expected: EXPECTED_DATABASE_URL,
            }),
        }
    }

    /// Which backend this is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_app::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// assert_eq!(store.backend(), es_app::Backend::Sqlite);
    /// # Ok(()) }
    /// ```
    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the backend's embedded migrations (idempotent).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_app::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// store.migrate().await?;
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), Error> {
        match self {
            Self::Postgres(store) => Ok(store.migrate().await?),
            Self::Sqlite(store) => Ok(store.migrate().await?),
        }
    }

    /// Wake-ups for a subscriber of the global log: PostgreSQL's LISTEN/NOTIFY
    /// with polling every `poll` as a fallback; on SQLite, which has no
    /// notifications, a change check every 10 ms (`PRAGMA data_version`) and
    /// the same fallback.
    ///
    /// ```
    /// use std::time::Duration;
    /// use es_core::Wakeup as _;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_app::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// let mut wakeups = store.wakeups(Duration::from_millis(1));
    /// wakeups.wait().await;
    /// # Ok(()) }
    /// ```
    pub fn wakeups(&self, poll: Duration) -> StoreWakeups {
        match self {
            Self::Postgres(store) => StoreWakeups::Notify(store.wakeups(poll)),
            Self::Sqlite(store) => StoreWakeups::Changes(store.wakeups(poll)),
        }
    }

    /// The backend's durable dead letters.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// store.migrate().await?;
    /// let letters = store.dead_letters();
    /// assert!(letters.list("balances").await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn dead_letters(&self) -> Arc<dyn DeadLetters> {
        match self {
            Self::Postgres(store) => Arc::new(store.clone()),
            Self::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// Takes the runner lock of `projection` if no other runner holds it: one
    /// active runner per projection (a PostgreSQL advisory lock across
    /// machines; on SQLite, a file lock across the processes of one machine).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_app::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// let lock = store.try_lock_projection("balances").await?.expect("free");
    /// assert!(store.try_lock_projection("balances").await?.is_none(), "held");
    /// lock.release().await?;
    /// assert!(store.try_lock_projection("balances").await?.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn try_lock_projection(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionGuard>, Error> {
        Ok(match self {
            Self::Postgres(store) => store
                .try_lock_projection(projection)
                .await?
                .map(ProjectionGuard::Postgres),
            Self::Sqlite(store) => store
                .try_lock_projection(projection)
                .await?
                .map(ProjectionGuard::Sqlite),
        })
    }

    /// Waits until the runner lock of `projection` is free and takes it,
    /// trying every `retry`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es_app::Error> {
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// let lock = store.lock_projection("balances", Duration::from_millis(50)).await?;
    /// assert_eq!(lock.projection(), "balances");
    /// # Ok(()) }
    /// ```
    pub async fn lock_projection(
        &self,
        projection: &str,
        retry: Duration,
    ) -> Result<ProjectionGuard, Error> {
        Ok(match self {
            Self::Postgres(store) => {
                ProjectionGuard::Postgres(store.lock_projection(projection, retry).await?)
            }
            Self::Sqlite(store) => {
                ProjectionGuard::Sqlite(store.lock_projection(projection, retry).await?)
            }
        })
    }

    /// The PostgreSQL store, if that is the backend.
    pub fn as_postgres(&self) -> Option<&PgStore> {
        match self {
            Self::Postgres(store) => Some(store),
            Self::Sqlite(_) => None,
        }
    }

    /// The SQLite store, if that is the backend.
    pub fn as_sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Self::Sqlite(store) => Some(store),
            Self::Postgres(_) => None,
        }
    }
}

impl From<PgStore> for Store {
    fn from(store: PgStore) -> Self {
        Self::Postgres(store)
    }
}

impl From<SqliteStore> for Store {
    fn from(store: SqliteStore) -> Self {
        Self::Sqlite(store)
    }
}

/// Refuses a database URL that does not parse, without echoing it.
fn validate_url(url: &str) -> Result<(), Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        variable: DATABASE_URL,
        expected: EXPECTED_DATABASE_URL,
        reason: reason.to_owned(),
    };
    let scheme = scheme(url);
    if scheme.is_empty() || url.len() == scheme.len() {
        return Err(invalid("it has no scheme"));
    }
    if !scheme
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return Err(invalid("its scheme has invalid characters"));
    }
    if url.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    let rest = &url[scheme.len() + 1..];
    match scheme {
        "postgres" | "postgresql" => {
            let Some(authority) = rest.strip_prefix("//") else {
                return Err(invalid("it does not start with `postgres://`"));
            };
            let host_port = authority
                .split(['/', '?'])
                .next()
                .unwrap_or_default()
                .rsplit('@')
                .next()
                .unwrap_or_default();
            // A port, when given after the last `:` outside brackets, is a number.
            if let Some((_, port)) = host_port.rsplit_once(':')
                && !port.ends_with(']')
                && !port.is_empty()
                && port.parse::<u16>().is_err()
            {
                return Err(invalid("its port is not a number"));
            }
            Ok(())
        }
        "sqlite" => {
            if rest.is_empty() || rest == "//" {
                return Err(invalid("it names no database file"));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Wake-ups for a subscriber of the global log ([`Store::wakeups`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreWakeups {
    /// PostgreSQL's LISTEN/NOTIFY, with a polling fallback.
    Notify(Wakeups),
    /// SQLite's change counter (`PRAGMA data_version`), with a polling
    /// fallback.
    Changes(es_store_sqlite::Wakeups),
}

impl es_core::Wakeup for StoreWakeups {
    async fn wait(&mut self) {
        match self {
            Self::Notify(wakeups) => {
                wakeups.wait().await;
            }
            Self::Changes(changes) => changes.wait().await,
        }
    }
}

/// The right to run a projection, held while this value lives
/// ([`Store::try_lock_projection`]); dropping it, or the death of the
/// process, releases it.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProjectionGuard {
    /// A PostgreSQL advisory lock on a dedicated connection.
    Postgres(RunnerLock),
    /// A file lock beside the SQLite database.
    Sqlite(ProjectionLock),
}

impl ProjectionGuard {
    /// The projection it is held for.
    pub fn projection(&self) -> &str {
        match self {
            Self::Postgres(lock) => lock.projection(),
            Self::Sqlite(lock) => lock.projection(),
        }
    }

    /// Releases the lock now; it is free when this returns.
    pub async fn release(self) -> Result<(), Error> {
        match self {
            Self::Postgres(lock) => Ok(lock.release().await?),
            Self::Sqlite(lock) => Ok(lock.release()?),
        }
    }
}

impl EventStore for Store {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, es_core::Error> {
        delegate!(self, s => s.append(request).await)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, es_core::Error> {
        delegate!(self, s => s.read_stream(stream, after, limit).await)
    }

    async fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, es_core::Error> {
        delegate!(self, s => s.read_all(after, limit).await)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, es_core::Error> {
        delegate!(self, s => s.stream_version(stream).await)
    }

    async fn count_after(&self, after: Checkpoint) -> Result<u64, es_core::Error> {
        delegate!(self, s => s.count_after(after).await)
    }

    async fn idempotent_result(
        &self,
        stream: &StreamId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotentRecord>, es_core::Error> {
        delegate!(self, s => s.idempotent_result(stream, key).await)
    }

    async fn list_streams(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, es_core::Error> {
        delegate!(self, s => s.list_streams(after, limit).await)
    }
}

impl SnapshotStore for Store {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), es_core::Error> {
        delegate!(self, s => s.save_snapshot(snapshot).await)
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        schema_version: u32,
    ) -> Result<Option<Snapshot>, es_core::Error> {
        delegate!(self, s => s.load_snapshot(stream, schema_version).await)
    }

    async fn prune_snapshots(
        &self,
        stream_prefix: &str,
        keep: Option<u32>,
    ) -> Result<u64, es_core::Error> {
        delegate!(self, s => s.prune_snapshots(stream_prefix, keep).await)
    }
}

impl KeyStore for Store {
    async fn load_keys(&self, subjects: &[SubjectId]) -> Result<Vec<StoredKey>, es_core::Error> {
        delegate!(self, s => s.load_keys(subjects).await)
    }

    async fn create(
        &self,
        key: StoredKey,
        replace_forgotten: bool,
    ) -> Result<StoredKey, es_core::Error> {
        delegate!(self, s => s.create(key, replace_forgotten).await)
    }

    async fn create_many(
        &self,
        keys: Vec<StoredKey>,
        replace_forgotten: bool,
    ) -> Result<Vec<StoredKey>, es_core::Error> {
        delegate!(self, s => s.create_many(keys, replace_forgotten).await)
    }

    async fn forget(
        &self,
        subject: &SubjectId,
        event: AppendRequest,
    ) -> Result<ForgetOutcome, es_core::Error> {
        delegate!(self, s => s.forget(subject, event).await)
    }

    async fn keys_to_rewrap(
        &self,
        master_key_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredKey>, es_core::Error> {
        delegate!(self, s => s.keys_to_rewrap(master_key_id, limit).await)
    }

    async fn rewrap(
        &self,
        old: &StoredKey,
        wrapped: Vec<u8>,
        master_key_id: &str,
    ) -> Result<bool, es_core::Error> {
        delegate!(self, s => s.rewrap(old, wrapped, master_key_id).await)
    }
}

#[cfg(test)]
mod tests {
    use super::validate_url;

    #[test]
    fn urls_are_validated_without_echoing_them() {
        assert!(validate_url("postgres://u:secret@localhost:5432/db").is_ok());
        assert!(validate_url("postgresql://localhost/db?sslmode=disable").is_ok());
        assert!(validate_url("postgres://[::1]:5432/db").is_ok());
        assert!(validate_url("sqlite://data/es.sqlite3").is_ok());
        assert!(validate_url("sqlite::memory:").is_ok());
        for bad in [
            "localhost/db",
            "postgres:localhost",
            "postgres://u:secret@localhost:port/db",
            "sqlite://",
            "po stgres://x",
        ] {
            let error = validate_url(bad).unwrap_err().to_string();
            assert!(error.contains("DATABASE_URL"), "{error}");
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
