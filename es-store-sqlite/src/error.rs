//! The crate's error type, and the mapping of SQLite errors into
//! [`es_core::Error`] for the store traits.

use std::path::PathBuf;

/// What can go wrong opening, migrating or maintaining the SQLite store outside
/// the [`es_core`] store traits (which return [`es_core::Error`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The directory of the database file could not be created.
    #[error("cannot create the data directory {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },

    /// The database file could not be created (readable by its owner only).
    #[error("cannot create the database file {}", path.display())]
    CreateFile {
        /// The file.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },

    /// A file or directory of the store is open to the group or others and
    /// could not be restricted to its owner.
    #[error("cannot restrict {} to its owner", path.display())]
    Permissions {
        /// The file or directory.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },

    /// SQLite rejected or failed an operation.
    #[error("database error while {context}")]
    Database {
        /// What the store was doing.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// The migrations failed.
    #[error("migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),

    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] es_core::Error),
}

impl Error {
    pub(crate) fn database(context: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { context, source }
    }

    /// Whether the database could not be reached or is busy, so that trying
    /// again later may succeed (the same classification as the store's
    /// [`es_core::Error::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database { source, .. } => sqlx_unavailable(source),
            Self::Store(error) => error.is_unavailable(),
            _ => false,
        }
    }
}

/// SQLite's primary result codes (the low byte of an extended code) that mean
/// "try again later": `SQLITE_BUSY` (another connection holds the lock past the
/// busy timeout), `SQLITE_LOCKED`, `SQLITE_IOERR`, `SQLITE_FULL` (disk full),
/// `SQLITE_CANTOPEN` and `SQLITE_PROTOCOL` (a WAL lock race).
const UNAVAILABLE_CODES: [i32; 6] = [5, 6, 10, 13, 14, 15];

/// The primary result code of a database error, if SQLite reported one.
fn primary_code(error: &sqlx::Error) -> Option<i32> {
    let sqlx::Error::Database(db) = error else {
        return None;
    };
    db.code()?.parse::<i32>().ok().map(|code| code & 0xff)
}

/// Whether SQLite reported `SQLITE_BUSY`: the lock was held past the busy
/// timeout, or a journal-mode change could not get its exclusive lock.
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    primary_code(error) == Some(5)
}

/// Maps a driver error into the core error: a busy or locked database, an IO
/// failure and a lost pool are [`es_core::Error::Unavailable`] (retry later),
/// the rest [`es_core::Error::Backend`].
pub(crate) fn store_error(context: &'static str, error: sqlx::Error) -> es_core::Error {
    let unavailable = sqlx_unavailable(&error);
    if unavailable {
        es_core::Error::unavailable(context, error)
    } else {
        es_core::Error::backend(context, error)
    }
}

/// Whether a driver error means "try again later".
fn sqlx_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(_) => {
            primary_code(error).is_some_and(|code| UNAVAILABLE_CODES.contains(&code))
        }
        _ => false,
    }
}

/// A value read from or written to the database that does not fit its type.
pub(crate) fn corrupt(context: &'static str, what: impl std::fmt::Display) -> es_core::Error {
    es_core::Error::Backend {
        message: format!("{context}: {what}"),
        source: None,
    }
}
