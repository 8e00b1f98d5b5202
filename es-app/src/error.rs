//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong while wiring an application: configuration, connecting to
/// the configured backend, or the master key.
///
/// Messages are lowercase, name the setting at fault (environment variable and
/// flag) and never echo a URL (it may hold a password) or a key. Like every
/// error of the framework, the message does not repeat its source: print the
/// chain ([`report`](crate::report)) for the whole story on one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A URL setting does not parse as a URL.
    #[error("{variable} is not a valid URL ({reason}); expected {expected}")]
    InvalidUrl {
        /// The setting: environment variable and flag, such as
        /// `DATABASE_URL (--database-url)`.
        variable: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
        /// Why it does not parse (never the URL itself).
        reason: String,
    },
    /// A URL setting names a scheme this crate does not know.
    #[error("{variable} has an unsupported scheme ({} characters); expected {expected}", scheme.chars().count())]
    UnsupportedScheme {
        /// The setting: environment variable and flag.
        variable: &'static str,
        /// The scheme found.
        scheme: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// The environment could not be read (a variable that is not UTF-8).
    #[error("the environment cannot be read: {reason}")]
    Environment {
        /// What is wrong, naming the variable.
        reason: String,
    },
    /// No master key is configured and the backend needs one: PostgreSQL
    /// never falls back to a development key.
    #[error(
        "no master key is configured: set ES_MASTER_KEY (--master-key) or ES_MASTER_KEY_FILE \
         (--master-key-file); PostgreSQL never uses a development key"
    )]
    MissingMasterKey,
    /// The configured master key (or its file) is unusable.
    #[error("the master key configuration is unusable")]
    MasterKey(#[source] es_core::Error),
    /// The development master key file could not be created or read.
    #[error("cannot use the development master key file {}", path.display())]
    DevelopmentKeyFile {
        /// The file.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// A master key file (`ES_MASTER_KEY_FILE` or the development key) that
    /// the group or others may read or write is refused, as ssh refuses such
    /// a private key: whoever can read it can read every personal field.
    #[error(
        "the master key file {} has mode {mode:04o}, open to the group or others; restrict it to \
         its owner (chmod 600 {})",
        path.display(),
        path.display()
    )]
    UnprotectedKeyFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`0o644`, say).
        mode: u32,
    },
    /// The development master key file is missing although the store holds
    /// data keys: the lost key wrapped them, so a new one would leave every
    /// personal field unreadable and seal new ones under another key. It is
    /// never regenerated then ([`Config::master_keyring_for`](crate::Config::master_keyring_for)).
    #[error(
        "the development master key {} is missing, but the store holds data keys it wrapped; a new \
         key could not read them: restore the file from a backup, or set ES_MASTER_KEY_FILE \
         (--master-key-file) to the key that wrapped them",
        path.display()
    )]
    DevelopmentKeyLost {
        /// The missing file.
        path: PathBuf,
    },
    /// A command that only reads found no embedded store where it looked (a
    /// mistyped `--data-dir`, say): it creates none.
    #[error(
        "no store at {}: nothing was ever written there (check --data-dir / ES_DATA_DIR, or \
         DATABASE_URL)",
        path.display()
    )]
    NoStore {
        /// The database file looked for.
        path: PathBuf,
    },
    /// The data directory could not be created, or restricted to its owner.
    #[error("cannot make the data directory {} private to its owner", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
    /// Opening or migrating the PostgreSQL store failed.
    #[error("cannot use the PostgreSQL store")]
    Postgres(#[from] es_store_postgres::Error),
    /// Opening or migrating the SQLite store failed.
    #[error("cannot use the SQLite store")]
    Sqlite(#[from] es_store_sqlite::Error),
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] es_core::Error),
    /// The key-value read model could not be opened.
    #[error("cannot use the key-value read model")]
    Kv(#[source] es_core::SinkError),
}
