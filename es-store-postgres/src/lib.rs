#![doc = include_str!("../README.md")]

mod appender;
mod dead_letters;
mod error;
mod event_store;
mod group;
mod horizon;
mod key_store;
mod kv;
mod notifier;
mod runner_lock;
mod snapshot_store;
#[cfg(feature = "testing")]
pub mod testing;
mod wakeup;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

pub use appender::mark_appender;
pub use error::Error;
pub use group::GroupCommit;
pub use horizon::{Horizon, HorizonHolder};
pub use kv::PgKv;
pub use runner_lock::RunnerLock;
pub use wakeup::{Wakeup, Wakeups};

/// The embedded migrations: the event, idempotency, snapshot and key tables.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Connection settings with production defaults.
///
/// ```
/// use std::time::Duration;
/// use es_store_postgres::PgStoreOptions;
///
/// let options = PgStoreOptions {
///     max_connections: 32,
///     ..PgStoreOptions::default()
/// };
/// assert_eq!(options.statement_timeout, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct PgStoreOptions {
    /// The pool's size. Each appending command holds a connection for one round
    /// trip, so a few per core serve thousands of commands per second.
    pub max_connections: u32,
    /// How long to wait for a free connection before reporting the store
    /// unavailable.
    pub acquire_timeout: Duration,
    /// The server-side limit of any one statement, so a stuck query cannot hold
    /// a connection (and the read horizon) forever.
    pub statement_timeout: Duration,
    /// `application_name`, shown in `pg_stat_activity` and by the horizon
    /// diagnostics.
    pub application_name: String,
    /// How concurrent appends to different streams share one statement and
    /// one commit ([`GroupCommit`]).
    pub group_commit: GroupCommit,
    /// A pooled connection idle for longer than this is pinged before it is
    /// handed out (and replaced if dead). One in steady use is not: a ping
    /// on every checkout, the driver's default, is a round trip more per
    /// statement. A connection the server dropped meanwhile fails its next
    /// statement as [`es_core::Error::Unavailable`] (nothing was done; retry).
    pub ping_idle_after: Duration,
}

impl Default for PgStoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            application_name: "es".to_owned(),
            group_commit: GroupCommit::default(),
            ping_idle_after: Duration::from_secs(1),
        }
    }
}

/// The PostgreSQL event and snapshot store.
///
/// Implements [`es_core::EventStore`] and [`es_core::SnapshotStore`]. Cloning
/// shares the pool.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Wakes subscribers after appends, outside their transactions.
    notifier: std::sync::Arc<notifier::Notifier>,
    /// Groups concurrent appends into one statement and commit.
    groups: std::sync::Arc<group::Groups>,
}

impl PgStore {
    /// Connects with [`PgStoreOptions::default`]. Does not migrate: call
    /// [`migrate`](Self::migrate) (or the CLI's `migrate`) first.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, &PgStoreOptions::default()).await
    }

    /// Connects with the given options.
    pub async fn connect_with(url: &str, options: &PgStoreOptions) -> Result<Self, Error> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(Error::database("parsing the database URL"))?
            .application_name(&options.application_name)
            .options([(
                "statement_timeout",
                format!("{}ms", options.statement_timeout.as_millis()),
            )]);
        // One connection first, on its own: a refused connection or a
        // missing database is answered at once, as itself, where the pool
        // would retry until its acquire timeout and then say only that it
        // timed out.
        match tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        {
            Ok(Ok(probe)) => {
                let _ = probe.close().await;
            }
            Ok(Err(sqlx::Error::Io(source))) => {
                return Err(Error::Unreachable {
                    host: connect.get_host().to_owned(),
                    port: connect.get_port(),
                    source,
                });
            }
            Ok(Err(sqlx::Error::Database(db))) => {
                return Err(Error::ConnectionRefused {
                    code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
                    message: db.message().to_owned(),
                });
            }
            Ok(Err(error)) => return Err(Error::database("connecting")(error)),
            Err(_) => {
                return Err(Error::Unreachable {
                    host: connect.get_host().to_owned(),
                    port: connect.get_port(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {:?}", options.acquire_timeout),
                    ),
                });
            }
        }
        let ping_idle_after = options.ping_idle_after;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > ping_idle_after {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(connect)
            .await
            .map_err(Error::database("connecting"))?;
        Ok(Self::from_pool_with(pool, options.group_commit))
    }

    /// Wraps an existing pool, with [`GroupCommit::default`].
    pub fn from_pool(pool: PgPool) -> Self {
        Self::from_pool_with(pool, GroupCommit::default())
    }

    /// Wraps an existing pool, grouping appends as `group_commit` says.
    pub fn from_pool_with(pool: PgPool, group_commit: GroupCommit) -> Self {
        Self {
            pool,
            notifier: notifier::Notifier::new(),
            groups: group::Groups::new(group_commit),
        }
    }

    /// Events were committed: wake subscribers (see `notifier.rs`).
    pub(crate) fn appended_events(&self) {
        self.notifier.poke(&self.pool);
    }

    /// This process's wake-ups after appends.
    pub(crate) fn local_wakeups(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notifier.subscribe()
    }

    /// The pool, for stores and sinks that share it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Applies the embedded migrations, then checks the cluster (see
    /// [`check_cluster`](Self::check_cluster)).
    pub async fn migrate(&self) -> Result<(), Error> {
        MIGRATOR.run(&self.pool).await?;
        self.check_cluster().await
    }

    /// Refuses a database restored into a younger cluster: one whose stored
    /// transaction ids are at or above the cluster's next one
    /// ([`Error::YoungerCluster`]).
    pub async fn check_cluster(&self) -> Result<(), Error> {
        event_store::check_cluster(&self.pool).await
    }
}
