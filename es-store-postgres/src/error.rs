//! The crate's error type, and the mapping of database errors into
//! [`es_core::Error`] for the store traits.

/// What can go wrong setting up or operating the PostgreSQL store outside the
/// [`es_core`] store traits (which return [`es_core::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database rejected or failed an operation.
    #[error("database error while {context}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// No PostgreSQL server answered at the URL's host and port (nothing
    /// listening, a firewall, a name that does not resolve): start it, or fix
    /// `DATABASE_URL`.
    #[error("cannot reach PostgreSQL at {host}:{port}: {source}")]
    Unreachable {
        /// The host of the URL (a socket directory for a Unix socket).
        host: String,
        /// Its port.
        port: u16,
        /// What the connection attempt met.
        #[source]
        source: std::io::Error,
    },

    /// The server answered the connection with an error: the database
    /// does not exist, the role may not log in, too many connections…
    #[error("PostgreSQL refused the connection: {message} (SQLSTATE {code})")]
    ConnectionRefused {
        /// The SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },

    /// The migrations failed.
    #[error("migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// The database holds transaction ids from this cluster's future: it was
    /// restored into a younger cluster (pg_dump/restore, a new cluster from a
    /// logical backup). New events would sort before old ones and subscribers
    /// would skip them.
    #[error(
        "the database was restored into a younger cluster: stored transaction id {max_stored} \
         is at or above the cluster's next transaction id {next_xid}; refusing to run (see \
         docs/operations.md, 'Restoring a database')"
    )]
    YoungerCluster {
        /// The newest transaction id stored in `es_events`.
        max_stored: u64,
        /// The cluster's next transaction id.
        next_xid: u64,
    },

    /// [`mark_appender`](crate::mark_appender) was called in a transaction
    /// that had already written (it has a transaction id) without the mark.
    /// Subscribers may have read past it already, so its events could be
    /// skipped: mark first, before any write, in a new transaction.
    #[error(
        "the transaction wrote before it was marked as an appender: call mark_appender first, \
         before any write"
    )]
    AppenderMarkedLate,

    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] es_core::Error),
}

impl Error {
    pub(crate) fn database(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }

    /// Whether the configuration is wrong rather than the server down: the
    /// database named does not exist, or the role may not log in (bad
    /// password, no such role). Trying again does not help; fixing
    /// `DATABASE_URL` does.
    pub fn is_misconfigured(&self) -> bool {
        if let Self::ConnectionRefused { code, .. } = self {
            return code.starts_with("28") || code == INVALID_CATALOG_NAME;
        }
        let (Self::Database { source, .. }
        | Self::Migrate(
            sqlx::migrate::MigrateError::Execute(source)
            | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
        )) = self
        else {
            return false;
        };
        let Some(database) = source.as_database_error() else {
            return false;
        };
        // Class 28 (invalid authorization) and 3D000 (invalid catalog name:
        // no such database), by SQLSTATE since sqlx names neither.
        database
            .code()
            .is_some_and(|code| code.starts_with("28") || code == INVALID_CATALOG_NAME)
    }

    /// Whether the database could not be reached or is busy, so that trying
    /// again later may succeed (the same classification as the store's
    /// [`es_core::Error::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::ConnectionRefused { code, .. } => {
                code.starts_with("08") || code.starts_with("53") || code.starts_with("57")
            }
            Self::Database { source, .. } => sqlx_unavailable(source),
            Self::Migrate(
                sqlx::migrate::MigrateError::Execute(source)
                | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
            ) => sqlx_unavailable(source),
            Self::Store(error) => error.is_unavailable(),
            _ => false,
        }
    }
}

/// SQLSTATE 3D000: the database named in the URL does not exist.
const INVALID_CATALOG_NAME: &str = "3D000";

/// Maps a driver error into the core error: connection-level failures are
/// [`es_core::Error::Unavailable`] (retry later), the rest
/// [`es_core::Error::Backend`].
pub(crate) fn store_error(context: &'static str, error: sqlx::Error) -> es_core::Error {
    let unavailable = sqlx_unavailable(&error);
    if unavailable {
        es_core::Error::unavailable(context, error)
    } else {
        es_core::Error::backend(context, error)
    }
}

/// Whether a driver error means "try again later".
pub(crate) fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08 (connection exception), 53 (insufficient resources: too many
        // connections, out of memory or disk) and 57 (operator intervention: admin
        // shutdown, a terminated backend, crash recovery) mean "try again later".
        // sqlx has no kind for these, so the SQLSTATE class decides.
        // And 25006: the database is read-only (a standby, or writes switched
        // off during a failover or maintenance): writes can succeed later.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || code.starts_with("53")
                || code.starts_with("57")
                || code == "25006"
        }),
        _ => false,
    }
}

/// A value read from the database that does not fit its type.
pub(crate) fn corrupt(context: &'static str, what: impl std::fmt::Display) -> es_core::Error {
    es_core::Error::Backend {
        message: format!("{context}: {what}"),
        source: None,
    }
}
