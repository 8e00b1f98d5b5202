//! [`CliError`]: a command's failure, with a stable kind for scripts.

use std::fmt;

/// What kind of failure a command met: stable names for scripts (the
/// `"error"` field of `--json` output) and the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A malformed argument: a stream or subject id that is not valid.
    InvalidArgument,
    /// The stream (or other thing asked for) does not exist.
    NotFound,
    /// The configuration is wrong or incomplete: a bad URL, a missing or
    /// unusable master key.
    Config,
    /// The store could not be reached.
    Unavailable,
    /// The command needs an event or aggregate type the application did not
    /// register with the kit.
    Unregistered,
    /// The registered aggregate does not support it (snapshots disabled).
    Unsupported,
    /// The store failed otherwise.
    Store,
}

impl ErrorKind {
    /// The stable name: `invalid_argument`, `not_found`, `config`,
    /// `unavailable`, `unregistered`, `unsupported` or `store`.
    ///
    /// ```
    /// assert_eq!(es_app::cli::ErrorKind::NotFound.as_str(), "not_found");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::NotFound => "not_found",
            Self::Config => "config",
            Self::Unavailable => "unavailable",
            Self::Unregistered => "unregistered",
            Self::Unsupported => "unsupported",
            Self::Store => "store",
        }
    }

    /// The exit code, after BSD's `sysexits.h`: 64 invalid argument, 65
    /// unregistered or unsupported, 66 not found, 69 unavailable, 78
    /// configuration, 1 any other store failure. (clap itself exits with 2
    /// on a command line it cannot parse.)
    ///
    /// ```
    /// assert_eq!(es_app::cli::ErrorKind::Config.exit_code(), 78);
    /// ```
    pub fn exit_code(self) -> u8 {
        match self {
            Self::InvalidArgument => 64,
            Self::Unregistered | Self::Unsupported => 65,
            Self::NotFound => 66,
            Self::Unavailable => 69,
            Self::Config => 78,
            Self::Store => 1,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a command failed: a kind and a one-line message (the whole cause
/// chain; never a URL, a key or personal data).
///
/// ```
/// use es_app::cli::{CliError, ErrorKind};
///
/// let error = CliError::from(es_app::Error::MissingMasterKey);
/// assert_eq!(error.kind(), ErrorKind::Config);
/// assert!(error.message().contains("ES_MASTER_KEY"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    kind: ErrorKind,
    message: String,
    /// What the command did before it failed (`projections rebuild --all`
    /// reports every rebuild, then fails if one did).
    partial: Option<Box<super::kit::Report>>,
}

impl CliError {
    /// A failure of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into().replace(['\n', '\r'], " "),
            partial: None,
        }
    }

    /// The same failure, with what the command did before it: printed
    /// before the error, and merged into its JSON document.
    #[must_use]
    pub(crate) fn with_report(mut self, report: super::kit::Report) -> Self {
        self.partial = Some(Box::new(report));
        self
    }

    /// What the command did before it failed, if it says.
    pub(crate) fn partial(&self) -> Option<&super::kit::Report> {
        self.partial.as_deref()
    }

    /// The JSON document of the failure: `{"error": kind, "message": …}`,
    /// with the fields of what was done before it, if any.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "error": self.kind.as_str(),
            "message": self.message,
        });
        if let (Some(partial), Some(fields)) = (
            self.partial.as_deref().and_then(|p| p.json.as_object()),
            json.as_object_mut(),
        ) {
            for (key, value) in partial {
                fields.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        json
    }

    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Its one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The kind of an es-core error.
fn core_kind(error: &es_core::Error) -> ErrorKind {
    match error {
        es_core::Error::InvalidId { .. } => ErrorKind::InvalidArgument,
        es_core::Error::Unavailable { .. } => ErrorKind::Unavailable,
        es_core::Error::InvalidMasterKey { .. }
        | es_core::Error::MasterKeyFile { .. }
        | es_core::Error::MasterKeyMismatch { .. }
        | es_core::Error::UnknownMasterKey { .. }
        | es_core::Error::CryptoNotConfigured => ErrorKind::Config,
        es_core::Error::UnknownEventType { .. } => ErrorKind::Unregistered,
        _ => ErrorKind::Store,
    }
}

impl From<es_core::Error> for CliError {
    fn from(error: es_core::Error) -> Self {
        Self::new(core_kind(&error), crate::report(&error))
    }
}

impl From<crate::Error> for CliError {
    fn from(error: crate::Error) -> Self {
        use crate::Error;
        let kind = match &error {
            Error::InvalidUrl { .. }
            | Error::Environment { .. }
            | Error::UnsupportedScheme { .. }
            | Error::MissingMasterKey
            | Error::MasterKey(_)
            | Error::DevelopmentKeyFile { .. }
            | Error::UnprotectedKeyFile { .. }
            | Error::DevelopmentKeyLost { .. } => ErrorKind::Config,
            Error::Postgres(inner) if inner.is_misconfigured() => ErrorKind::Config,
            Error::Postgres(es_store_postgres::Error::Unreachable { .. }) => ErrorKind::Unavailable,
            Error::NoStore { .. } => ErrorKind::NotFound,
            Error::Store(inner)
            | Error::Postgres(es_store_postgres::Error::Store(inner))
            | Error::Sqlite(es_store_sqlite::Error::Store(inner)) => core_kind(inner),
            Error::Postgres(es_store_postgres::Error::Database { .. })
            | Error::Sqlite(es_store_sqlite::Error::Database { .. })
            | Error::Sqlite(
                es_store_sqlite::Error::CreateDir { .. }
                | es_store_sqlite::Error::CreateFile { .. }
                | es_store_sqlite::Error::Permissions { .. },
            )
            | Error::DataDir { .. }
            | Error::Kv(_) => ErrorKind::Unavailable,
            _ => ErrorKind::Store,
        };
        Self::new(kind, crate::report(&error))
    }
}
