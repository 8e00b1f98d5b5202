//! [`Error`]: every failure of the example, with a stable kind for scripts, an
//! exit code for the CLI and a status for HTTP.

use es_core::CommandError;

use crate::account::AccountError;
use crate::ids::IdError;
use crate::money::MoneyError;
use crate::transfer::{TransferError, TransferStatus};

/// What went wrong. Messages never echo ids' contents or personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed id, amount, body or option.
    #[error("{0}")]
    InvalidInput(String),
    /// A request HTTP cannot take as one (a header given twice, say).
    #[error("{0}")]
    BadRequest(String),
    /// No valid bearer token (HTTP).
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid token without the route's role (HTTP).
    #[error("{0}")]
    Forbidden(String),
    /// The route does not take the request's method (HTTP).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request ran past its budget, or too many are in flight (HTTP).
    #[error("{0}")]
    Timeout(String),
    /// A request body over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The account (or transfer) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A business rule refused the command.
    #[error("{message}")]
    Rejected {
        /// The rule: `insufficient_funds`, `account_closed`, …
        kind: &'static str,
        /// What happened.
        message: String,
    },
    /// A transfer settled without moving the money.
    #[error("transfer {transfer} was {}: {}", status.name(), status.reason().unwrap_or("refused"))]
    TransferNotCompleted {
        /// The transfer.
        transfer: String,
        /// How it settled.
        status: TransferStatus,
    },
    /// A read needs a read model that is halted at a poison event.
    #[error("{0}")]
    ReadModelHalted(String),
    /// A version conflict outlasted the retries, or an idempotency key was
    /// reused for another request.
    #[error("{0}")]
    Conflict(String),
    /// Stored data cannot be read: an undecodable payload, an unknown event
    /// type or schema version, tampered ciphertext. Nothing is written on
    /// top of it.
    #[error("{0}")]
    Corrupt(String),
    /// The store (or Redis) could not be reached.
    #[error("{0}")]
    Unavailable(String),
    /// The configuration is wrong: a URL, the master key.
    #[error("{0}")]
    Config(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The stable kind: `invalid_input`, `too_large`, `not_found`, the business rule's
    /// name (`insufficient_funds`, `account_closed`, `already_exists`,
    /// `non_zero_balance`, `balance_too_large`, `same_account`,
    /// `owner_forgotten`), `transfer_refused`,
    /// `transfer_compensated`, `conflict`, `corrupt_data`,
    /// `read_model_halted`, `unavailable`, `config` or `internal`.
    ///
    /// ```
    /// use bank_account::Error;
    ///
    /// assert_eq!(Error::NotFound("no account".into()).kind(), "not_found");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::Forbidden(_) => "forbidden",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Timeout(_) => "timeout",
            Self::TooLarge(_) => "too_large",
            Self::NotFound(_) => "not_found",
            Self::Rejected { kind, .. } => kind,
            Self::TransferNotCompleted { status, .. } => match status {
                TransferStatus::Compensated { .. } => "transfer_compensated",
                _ => "transfer_refused",
            },
            Self::ReadModelHalted(_) => "read_model_halted",
            Self::Conflict(_) => "conflict",
            Self::Corrupt(_) => "corrupt_data",
            Self::Unavailable(_) => "unavailable",
            Self::Config(_) => "config",
            Self::Internal(_) => "internal",
        }
    }

    /// The CLI's exit code, after BSD's `sysexits.h`: 64 invalid input, 65 a
    /// business rule or a transfer that did not complete, 66 not found, 69
    /// unavailable or a halted read model, 70 corrupt stored data, 75
    /// conflict (try again), 78 configuration, 1 anything else. (clap exits with 2 on a command line it cannot parse.)
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::InvalidInput(_)
            | Self::BadRequest(_)
            | Self::TooLarge(_)
            | Self::MethodNotAllowed(_) => 64,
            Self::Unauthenticated(_) | Self::Forbidden(_) => 77,
            Self::Timeout(_) => 69,
            Self::Rejected { .. } | Self::TransferNotCompleted { .. } => 65,
            Self::NotFound(_) => 66,
            Self::Unavailable(_) | Self::ReadModelHalted(_) => 69,
            Self::Conflict(_) => 75,
            Self::Corrupt(_) => 70,
            Self::Config(_) => 78,
            Self::Internal(_) => 1,
        }
    }

    /// The HTTP status: 422 invalid input or a business rule, 404 not found,
    /// 409 conflict, 413 too large, 503 unavailable or a halted read model
    /// (with `Retry-After`), 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::InvalidInput(_) | Self::Rejected { .. } | Self::TransferNotCompleted { .. } => {
                422
            }
            Self::BadRequest(_) => 400,
            Self::Unauthenticated(_) => 401,
            Self::Forbidden(_) => 403,
            Self::MethodNotAllowed(_) => 405,
            Self::Timeout(_) => 503,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::TooLarge(_) => 413,
            Self::Unavailable(_) | Self::ReadModelHalted(_) => 503,
            Self::Config(_) | Self::Corrupt(_) | Self::Internal(_) => 500,
        }
    }

    /// The JSON form: `{"error": kind, "message": …}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self.kind(), "message": self.to_string() });
        if let Self::TransferNotCompleted { transfer, status } = self {
            body["transfer"] = transfer.as_str().into();
            body["status"] = status.name().into();
        }
        body
    }
}

impl From<IdError> for Error {
    fn from(error: IdError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

impl From<MoneyError> for Error {
    fn from(error: MoneyError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}

impl From<es_core::Error> for Error {
    fn from(error: es_core::Error) -> Self {
        use es_core::Error as E;
        let message = es_app::report(&error);
        match error {
            E::Conflict { .. } | E::IdempotencyKeyReused { .. } => Self::Conflict(message),
            E::InvalidId { .. } => Self::InvalidInput(message),
            // Writing personal data for a forgotten owner is refused, and
            // nothing is written: a rule, not a failure.
            E::SubjectForgotten { .. } => Self::Rejected {
                kind: "owner_forgotten",
                message: "the owner was forgotten: their personal data cannot be written again"
                    .into(),
            },
            E::Unavailable { .. } => Self::Unavailable(message),
            E::Codec { .. }
            | E::UnknownEventType { .. }
            | E::UnknownSchemaVersion { .. }
            | E::Tampered { .. } => Self::Corrupt(message),
            E::CryptoNotConfigured
            | E::InvalidMasterKey { .. }
            | E::MasterKeyFile { .. }
            | E::UnknownMasterKey { .. }
            | E::MasterKeyMismatch { .. } => Self::Config(message),
            _ => Self::Internal(message),
        }
    }
}

impl From<es_app::Error> for Error {
    fn from(error: es_app::Error) -> Self {
        let message = es_app::report(&error);
        match error {
            es_app::Error::Store(inner) => inner.into(),
            es_app::Error::NoStore { .. } => Self::NotFound(message),
            es_app::Error::Postgres(inner) if inner.is_misconfigured() => Self::Config(
                "the database in DATABASE_URL does not exist or refuses the login (check its name, \
                 user and password)"
                    .into(),
            ),
            es_app::Error::Postgres(inner) if inner.is_unavailable() => Self::Unavailable(message),
            es_app::Error::Sqlite(inner) if inner.is_unavailable() => Self::Unavailable(message),
            es_app::Error::Postgres(_) | es_app::Error::Sqlite(_) => Self::Internal(message),
            es_app::Error::Kv(inner) => inner.into(),
            _ => Self::Config(message),
        }
    }
}

impl From<es_core::SinkError> for Error {
    fn from(error: es_core::SinkError) -> Self {
        let message = es_app::report(&error);
        match error {
            es_core::SinkError::Unavailable { .. } => Self::Unavailable(message),
            _ => Self::Internal(message),
        }
    }
}

impl From<es_app::projections::ProjectionsError> for Error {
    fn from(error: es_app::projections::ProjectionsError) -> Self {
        use es_app::projections::ProjectionsError as P;
        use es_projections::RunnerError as R;
        match error {
            P::Store(inner) | P::Runner(R::Store(inner)) => inner.into(),
            P::App(inner) => inner.into(),
            P::Sink { source, .. } | P::Runner(R::Sink(source)) => source.into(),
            P::Busy { .. } | P::Runner(R::Fenced { .. }) => Self::Conflict(es_app::report(&error)),
            other => Self::Internal(es_app::report(&other)),
        }
    }
}

impl From<CommandError<AccountError>> for Error {
    fn from(error: CommandError<AccountError>) -> Self {
        match error {
            CommandError::Rejected(AccountError::NotFound) => {
                Self::NotFound("the account does not exist".into())
            }
            CommandError::Rejected(rule) => Self::Rejected {
                kind: crate::transfer::refusal_kind(&rule),
                message: rule.to_string(),
            },
            CommandError::Store(error) => error.into(),
        }
    }
}

impl From<CommandError<TransferError>> for Error {
    fn from(error: CommandError<TransferError>) -> Self {
        match error {
            CommandError::Rejected(TransferError::SameAccount) => Self::Rejected {
                kind: "same_account",
                message: TransferError::SameAccount.to_string(),
            },
            CommandError::Rejected(TransferError::NotPositive) => {
                Self::InvalidInput(TransferError::NotPositive.to_string())
            }
            CommandError::Rejected(rule) => Self::Rejected {
                kind: "already_exists",
                message: rule.to_string(),
            },
            CommandError::Store(error) => error.into(),
        }
    }
}
