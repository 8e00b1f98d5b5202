//! [`Config`]: where the application's data lives, from the environment and
//! flags, and the master key.

use std::cell::Cell;
use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use clap::Parser;
use es_core::{KeyStore as _, MasterKey, MasterKeyring};

use crate::{Error, Store};

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// The file, in the data directory, that holds the development master key of
/// the embedded default.
pub const DEVELOPMENT_KEY_FILE: &str = "master.key";

/// The setting names used in error messages: variable and flag.
pub(crate) const DATABASE_URL: &str = "DATABASE_URL (--database-url)";
pub(crate) const REDIS_URL: &str = "REDIS_URL (--redis-url)";

/// Where an application's data lives: the backend is chosen by configuration,
/// not by code.
///
/// - `DATABASE_URL` (`--database-url`): `postgres://…` or `postgresql://…`
///   selects PostgreSQL, `sqlite://…` that SQLite file; unset, the embedded
///   SQLite file `es.sqlite3` in the data directory.
/// - `REDIS_URL` (`--redis-url`): set, key-value read models live in Redis;
///   unset, in the SQL key-value model of the same database.
/// - `ES_DATA_DIR` (`--data-dir`, default `./data`): the embedded database,
///   tantivy indexes and the development master key. On Unix it is private to
///   its owner (0700, see [`SqliteStore::open_in`](es_store_sqlite::SqliteStore::open_in)),
///   and so is every file the framework creates in it (0600).
/// - `ES_MASTER_KEY` (`--master-key`) or `ES_MASTER_KEY_FILE`
///   (`--master-key-file`): the master key that wraps the data keys of
///   personal data (see [`master_keyring`](Self::master_keyring)).
///
/// Flags override the environment, and empty values count as unset. Embed it
/// in an application's parser with `#[command(flatten)]` (every flag is global,
/// so it may follow a subcommand):
///
/// ```
/// use clap::Parser;
/// use es_app::Config;
///
/// #[derive(Parser)]
/// struct Cli {
///     #[command(flatten)]
///     config: Config,
/// }
///
/// let cli = Cli::try_parse_from(["app", "--database-url", "sqlite://app.sqlite3"]).unwrap();
/// assert_eq!(cli.config.database_url(), Some("sqlite://app.sqlite3"));
/// ```
///
/// or build it in code:
///
/// ```
/// use es_app::Config;
///
/// let config = Config::embedded("/var/lib/app");
/// assert_eq!(config.database_url(), None);
/// assert_eq!(config.data_dir(), std::path::Path::new("/var/lib/app"));
/// ```
#[derive(Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct Config {
    /// The event store: postgres://…, postgresql://… or sqlite://… (unset: the
    /// embedded SQLite file in the data directory).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis for key-value read models (unset: the SQL key-value model of the
    /// event store's database).
    #[arg(long, env = "REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,

    /// The namespace of this deployment's keys in Redis (unset: `es`), so
    /// that one Redis can serve several deployments: a read model `name`
    /// lives under `<namespace>:<name>:`.
    #[arg(
        long,
        env = "ES_REDIS_NAMESPACE",
        global = true,
        hide_env_values = true
    )]
    pub redis_namespace: Option<String>,

    /// The data directory: the embedded database, search indexes and the
    /// development master key.
    #[arg(
        long,
        env = "ES_DATA_DIR",
        global = true,
        default_value = DEFAULT_DATA_DIR,
        hide_env_values = true
    )]
    pub data_dir: PathBuf,

    /// The master key(s), `<id>:<base64 of 32 bytes>`, current first,
    /// comma-separated during a rotation.
    #[arg(long, env = "ES_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,

    /// A file holding the master key(s), read when no key is given directly.
    #[arg(
        long,
        env = "ES_MASTER_KEY_FILE",
        global = true,
        hide_env_values = true
    )]
    pub master_key_file: Option<PathBuf>,
}

impl Default for Config {
    /// Nothing configured: the embedded default in `./data`.
    fn default() -> Self {
        Self::embedded(DEFAULT_DATA_DIR)
    }
}

impl fmt::Debug for Config {
    /// Shows which settings are set, never their values' secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: Option<&str>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("database", &self.backend())
            .field("redis_url", &set(self.redis_url()))
            .field("redis_namespace", &self.redis_namespace())
            .field("data_dir", &self.data_dir)
            .field("master_key", &set(self.master_key.as_deref()))
            .field("master_key_file", &self.master_key_file())
            .finish()
    }
}

/// Parses only the environment (no arguments).
#[derive(Parser)]
struct FromEnv {
    #[command(flatten)]
    config: Config,
}

/// Which backend a [`Config`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres,
    /// SQLite: a `sqlite://` URL, or the embedded file when no URL is set.
    Sqlite,
}

/// Where the master keys came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySource {
    /// `ES_MASTER_KEY`/`ES_MASTER_KEY_FILE` (or their flags).
    Configured,
    /// The development key file of the embedded default.
    Development {
        /// The key file.
        path: PathBuf,
        /// Whether this call created it (say so to the operator, once).
        created: bool,
    },
}

/// The master keys, and where they came from.
#[derive(Debug, Clone)]
pub struct MasterKeys {
    /// The keys: the current one wraps new data keys.
    pub keyring: MasterKeyring,
    /// Where they came from.
    pub source: KeySource,
}

impl MasterKeys {
    /// The line to show the operator when this call created a development key
    /// (`None` otherwise).
    ///
    /// ```
    /// use es_app::{KeySource, MasterKeys};
    /// use es_core::{MasterKey, MasterKeyring};
    ///
    /// let keys = MasterKeys {
    ///     keyring: MasterKeyring::new(MasterKey::generate("dev").unwrap()),
    ///     source: KeySource::Development { path: "data/master.key".into(), created: true },
    /// };
    /// assert!(keys.notice().unwrap().contains("set ES_MASTER_KEY_FILE for production"));
    /// ```
    pub fn notice(&self) -> Option<String> {
        match &self.source {
            KeySource::Development {
                path,
                created: true,
            } => Some(format!(
                "created a development master key at {}; set ES_MASTER_KEY_FILE for production",
                path.display()
            )),
            _ => None,
        }
    }
}

/// The value of an optional setting, `None` when unset or empty.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

impl Config {
    /// The embedded default in `data_dir`: no database URL, no Redis, no
    /// master key configured.
    pub fn embedded(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            database_url: None,
            redis_url: None,
            redis_namespace: None,
            data_dir: data_dir.into(),
            master_key: None,
            master_key_file: None,
        }
    }

    /// The configuration from the environment alone (no flags). A variable
    /// that is not valid UTF-8 is [`Error::Environment`], never silently
    /// ignored.
    ///
    /// ```no_run
    /// let config = es_app::Config::from_env()?;
    /// println!("{config:?}");
    /// # Ok::<(), es_app::Error>(())
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        FromEnv::try_parse_from(["app"])
            .map(|parsed| parsed.config)
            .map_err(|error| Error::Environment {
                reason: error
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_owned(),
            })
    }

    /// Sets the database URL.
    ///
    /// ```
    /// let config = es_app::Config::embedded("data").with_database_url("postgres://localhost/app");
    /// assert_eq!(config.backend(), es_app::Backend::Postgres);
    /// ```
    #[must_use]
    pub fn with_database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Sets the Redis URL.
    ///
    /// ```
    /// let config = es_app::Config::embedded("data").with_redis_url("redis://127.0.0.1:6379");
    /// assert_eq!(config.redis_url(), Some("redis://127.0.0.1:6379"));
    /// ```
    #[must_use]
    pub fn with_redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// Sets the master key(s) (`<id>:<base64>`, current first).
    ///
    /// ```
    /// let config = es_app::Config::embedded("data")
    ///     .with_master_key("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    /// let keys = config.master_keyring().unwrap();
    /// assert_eq!(keys.keyring.current().id(), "k1");
    /// ```
    #[must_use]
    pub fn with_master_key(mut self, key: impl Into<String>) -> Self {
        self.master_key = Some(key.into());
        self
    }

    /// Sets the master key file.
    #[must_use]
    pub fn with_master_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.master_key_file = Some(path.into());
        self
    }

    /// The database URL, `None` when unset or empty.
    pub fn database_url(&self) -> Option<&str> {
        non_empty(self.database_url.as_deref())
    }

    /// The Redis URL, `None` when unset or empty.
    pub fn redis_url(&self) -> Option<&str> {
        non_empty(self.redis_url.as_deref())
    }

    /// Sets the Redis namespace.
    ///
    /// ```
    /// let config = es_app::Config::embedded("data").with_redis_namespace("staging");
    /// assert_eq!(config.redis_namespace(), "staging");
    /// assert_eq!(es_app::Config::embedded("data").redis_namespace(), "es");
    /// ```
    #[must_use]
    pub fn with_redis_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.redis_namespace = Some(namespace.into());
        self
    }

    /// The Redis namespace, `es` when unset or empty.
    pub fn redis_namespace(&self) -> &str {
        non_empty(self.redis_namespace.as_deref()).unwrap_or("es")
    }

    /// For a command that only reads: the embedded store must exist already
    /// ([`Error::NoStore`] naming the file looked for otherwise), so that a
    /// mistyped data directory is said, not silently made into a new store.
    /// A `DATABASE_URL` is always fine here (connecting says the rest).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let config = es_app::Config::embedded(dir.path().join("typo"));
    /// assert!(matches!(config.require_existing_store(), Err(es_app::Error::NoStore { .. })));
    /// ```
    pub fn require_existing_store(&self) -> Result<(), Error> {
        if self.database_url().is_some() {
            return Ok(());
        }
        let path = self.data_dir().join(es_store_sqlite::DATABASE_FILE);
        if path.exists() {
            Ok(())
        } else {
            Err(Error::NoStore { path })
        }
    }

    /// The data directory (`./data` when empty).
    pub fn data_dir(&self) -> &Path {
        if self.data_dir.as_os_str().is_empty() {
            Path::new(DEFAULT_DATA_DIR)
        } else {
            &self.data_dir
        }
    }

    /// The master key file, `None` when unset or empty.
    pub fn master_key_file(&self) -> Option<&Path> {
        self.master_key_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }

    /// The backend the database URL selects, by its scheme alone (any scheme
    /// that is not PostgreSQL's counts as SQLite here;
    /// [`Store::connect`](crate::Store::connect) refuses unknown ones).
    ///
    /// ```
    /// use es_app::{Backend, Config};
    ///
    /// assert_eq!(Config::embedded("data").backend(), Backend::Sqlite);
    /// let pg = Config::embedded("data").with_database_url("postgresql://db/app");
    /// assert_eq!(pg.backend(), Backend::Postgres);
    /// ```
    pub fn backend(&self) -> Backend {
        match self.database_url().map(scheme) {
            Some("postgres" | "postgresql") => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// The master keys: `ES_MASTER_KEY` (`--master-key`), else the file of
    /// `ES_MASTER_KEY_FILE` (`--master-key-file`).
    ///
    /// With neither set, the embedded default (SQLite) uses a development key
    /// in `<data dir>/master.key`, creating it (mode 0600, the data directory
    /// 0700) on first use: the result then says so ([`MasterKeys::notice`]),
    /// and a warning is logged once, without the key. PostgreSQL never falls
    /// back: a missing key is [`Error::MissingMasterKey`].
    ///
    /// On Unix, a key file (configured or the development one) that the group
    /// or others may read or write is refused, as ssh refuses such a private
    /// key: [`Error::UnprotectedKeyFile`], naming the file and its mode.
    ///
    /// This does not look at the store, so it cannot tell a first start from a
    /// lost development key: once a store is open, call
    /// [`master_keyring_for`](Self::master_keyring_for) instead.
    ///
    /// ```
    /// use es_app::{Config, KeySource};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let config = Config::embedded(dir.path());
    /// let first = config.master_keyring().unwrap();
    /// assert!(first.notice().is_some(), "created now");
    /// let again = config.master_keyring().unwrap();
    /// assert!(again.notice().is_none(), "reused");
    /// assert_eq!(first.keyring.current().id(), again.keyring.current().id());
    ///
    /// let pg = config.with_database_url("postgres://localhost/app");
    /// assert!(matches!(pg.master_keyring(), Err(es_app::Error::MissingMasterKey)));
    /// ```
    pub fn master_keyring(&self) -> Result<MasterKeys, Error> {
        // The mode of a configured key file that others may read, found while
        // reading it (on the open file: no race with a chmod).
        let unprotected = Cell::new(None);
        let configured = MasterKeyring::from_sources(
            |name| match name {
                "ES_MASTER_KEY" => non_empty(self.master_key.as_deref()).map(str::to_owned),
                "ES_MASTER_KEY_FILE" => self
                    .master_key_file()
                    .map(|p| p.to_string_lossy().into_owned()),
                _ => None,
            },
            |path| {
                read_private(path).map_err(|error| match error {
                    KeyFileError::Io(error) => error,
                    KeyFileError::Unprotected(mode) => {
                        unprotected.set(Some(mode));
                        std::io::Error::new(
                            std::io::ErrorKind::PermissionDenied,
                            "open to the group or others",
                        )
                    }
                })
            },
        );
        if let (Some(mode), Some(path)) = (unprotected.get(), self.master_key_file()) {
            return Err(Error::UnprotectedKeyFile {
                path: path.to_owned(),
                mode,
            });
        }
        if let Some(keyring) = configured.map_err(Error::MasterKey)? {
            return Ok(MasterKeys {
                keyring,
                source: KeySource::Configured,
            });
        }
        if self.backend() == Backend::Postgres {
            return Err(Error::MissingMasterKey);
        }
        let path = self.data_dir().join(DEVELOPMENT_KEY_FILE);
        let (keyring, created) = development_key(&path)?;
        if created {
            tracing::warn!(
                path = %path.display(),
                "created a development master key; set ES_MASTER_KEY_FILE for production"
            );
        }
        Ok(MasterKeys {
            keyring,
            source: KeySource::Development { path, created },
        })
    }

    /// The master keys, for `store`: [`master_keyring`](Self::master_keyring),
    /// except that a missing development key is not created while the store
    /// holds data keys. The lost key wrapped them: a new one could read none of
    /// the personal fields and would seal new ones under another key. That is
    /// [`Error::DevelopmentKeyLost`] (a configuration error), saying how to
    /// recover: restore the file, or set `ES_MASTER_KEY_FILE` to the key.
    ///
    /// Every application that opens a store must call it, after
    /// [`Store::connect`] and [`Store::migrate`] and before anything else asks
    /// for the keys (anything that calls `master_keyring` would create the new
    /// key first). The CLI kit ([`Kit`](crate::cli::Kit)) does, before it
    /// builds the application's projections.
    ///
    /// ```
    /// use es_app::{Config, Error, Store};
    /// use es_core::{Crypto, Personal, SubjectId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let config = Config::embedded(dir.path());
    /// let store = Store::connect(&config).await?;
    /// store.migrate().await?;
    /// let keys = config.master_keyring_for(&store).await?;
    /// assert!(keys.notice().is_some(), "created: the store holds no data keys");
    ///
    /// let owner = SubjectId::new("owner-1")?;
    /// let crypto = Crypto::new(keys.keyring);
    /// crypto.seal_value(&store, b"record", &Personal::new(owner, "Ada".to_owned())).await?;
    ///
    /// std::fs::remove_file(dir.path().join(es_app::DEVELOPMENT_KEY_FILE))?;
    /// let lost = config.master_keyring_for(&store).await.unwrap_err();
    /// assert!(matches!(lost, Error::DevelopmentKeyLost { .. }));
    /// # Ok(()) }
    /// ```
    pub async fn master_keyring_for(&self, store: &Store) -> Result<MasterKeys, Error> {
        if let Some(path) = self.development_key_path()
            && matches!(path.try_exists(), Ok(false))
            && !store.keys_to_rewrap(NO_MASTER_KEY, 1).await?.is_empty()
        {
            return Err(Error::DevelopmentKeyLost { path });
        }
        self.master_keyring()
    }

    /// Where the development key is, when this configuration uses one: no key
    /// configured, and SQLite.
    fn development_key_path(&self) -> Option<PathBuf> {
        let configured =
            non_empty(self.master_key.as_deref()).is_some() || self.master_key_file().is_some();
        (!configured && self.backend() == Backend::Sqlite)
            .then(|| self.data_dir().join(DEVELOPMENT_KEY_FILE))
    }
}

/// A master key id no key has (ids never hold `:`): every active data key is
/// wrapped by another, so [`keys_to_rewrap`](es_core::KeyStore::keys_to_rewrap)
/// with it lists any.
const NO_MASTER_KEY: &str = ":";

/// The scheme of a URL: what comes before the first `:`.
pub(crate) fn scheme(url: &str) -> &str {
    url.split_once(':').map_or("", |(scheme, _)| scheme)
}

/// Reads the development key at `path`, creating it first when missing;
/// returns whether this call created it.
///
/// The key is written to a private temporary file that is then hard-linked
/// into place: linking fails when the file exists, so two processes starting
/// together agree on one key, and nobody ever reads a half-written file.
fn development_key(path: &Path) -> Result<(MasterKeyring, bool), Error> {
    let fail = |source| Error::DevelopmentKeyFile {
        path: path.to_owned(),
        source,
    };
    match read_key_file(path) {
        Ok(keyring) => return Ok((keyring, false)),
        Err(Error::DevelopmentKeyFile { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir(dir)?;
    let key = MasterKey::generate("dev").map_err(Error::MasterKey)?;
    let temporary = dir.join(format!(
        ".{DEVELOPMENT_KEY_FILE}.{}.{}",
        std::process::id(),
        uuid_like_suffix()
    ));
    let text = key.to_text();
    write_private(&temporary, text.as_bytes()).map_err(fail)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    let created = match linked {
        Ok(()) => Ok(()),
        // A file system without hard links: create the file in place (still
        // first-writer-wins, though a concurrent reader may see it half
        // written for a moment).
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            write_private(path, text.as_bytes())
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => Ok((MasterKeyring::new(key), true)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key_file(path).map(|keyring| (keyring, false))
        }
        Err(e) => Err(fail(e)),
    }
}

/// Reads the development key file, refusing one others may read.
fn read_key_file(path: &Path) -> Result<MasterKeyring, Error> {
    let text = read_private(path).map_err(|error| match error {
        KeyFileError::Io(source) => Error::DevelopmentKeyFile {
            path: path.to_owned(),
            source,
        },
        KeyFileError::Unprotected(mode) => Error::UnprotectedKeyFile {
            path: path.to_owned(),
            mode,
        },
    })?;
    MasterKeyring::parse(&text).map_err(Error::MasterKey)
}

/// Why a key file could not be read.
enum KeyFileError {
    /// The file system's error.
    Io(std::io::Error),
    /// The group or others may read or write it: its permission bits.
    Unprotected(u32),
}

/// Reads a key file, unless (on Unix) the group or others may read or write
/// it: ssh's rule for private keys. The mode is that of the open file.
fn read_private(path: &Path) -> Result<String, KeyFileError> {
    let mut file = std::fs::File::open(path).map_err(KeyFileError::Io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file
            .metadata()
            .map_err(KeyFileError::Io)?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Unprotected(mode));
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(KeyFileError::Io)?;
    Ok(text)
}

/// Creates the data directory `dir` (and its missing parents) with mode
/// 0700, or restricts an existing one that the group or others may enter to
/// its owner, with a warning (one made by an older version: refusing it, as
/// ssh refuses an open `~/.ssh`, would stop an upgrade for no gain). Failing
/// to restrict it (another user's directory) is a warning too.
fn private_dir(dir: &Path) -> Result<(), Error> {
    es_files::create_private_dir(dir).map_err(|source| Error::DataDir {
        path: dir.to_owned(),
        source,
    })?;
    es_files::restrict_to_owner(dir, "the data directory");
    Ok(())
}

/// A suffix that two threads of one process do not share.
fn uuid_like_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = es_files::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme("postgres://h/db"), "postgres");
        assert_eq!(scheme("sqlite::memory:"), "sqlite");
        assert_eq!(scheme("nothing"), "");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = Config {
            database_url: Some(String::new()),
            redis_url: Some(" ".into()),
            redis_namespace: Some(String::new()),
            data_dir: PathBuf::new(),
            master_key: Some(String::new()),
            master_key_file: Some(PathBuf::new()),
        };
        assert_eq!(config.database_url(), None);
        assert_eq!(config.redis_url(), None);
        assert_eq!(config.data_dir(), Path::new(DEFAULT_DATA_DIR));
        assert_eq!(config.master_key_file(), None);
        assert_eq!(config.redis_namespace(), "es");
        assert_eq!(config.backend(), Backend::Sqlite);
    }

    #[test]
    fn debug_hides_secrets() {
        let config = Config::embedded("d")
            .with_database_url("postgres://user:hunter2@h/db")
            .with_master_key("k:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("AAAA"), "{shown}");
    }
}
