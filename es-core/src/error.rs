//! The error type of `es-core` and of every store built on it.

use crate::store::ExpectedVersion;
use crate::{IdempotencyKey, StreamId, StreamVersion};

/// Everything that can go wrong in the framework, apart from an aggregate's own
/// business rejections (those stay typed: see
/// [`CommandError`](crate::CommandError)).
///
/// Messages are lowercase and never contain personal data or payload bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream's version was not the one the append expected.
    #[error("version conflict on stream {stream}: expected {expected}, actual {actual}")]
    Conflict {
        /// The stream appended to.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The stream's version at the time of the append.
        actual: StreamVersion,
    },

    /// An idempotency key already seen on this stream came with a different request.
    #[error("an idempotency key was already used on stream {stream} for a different request")]
    IdempotencyKeyReused {
        /// The stream appended to.
        stream: StreamId,
        /// The reused key.
        key: IdempotencyKey,
    },

    /// An identifier failed validation.
    #[error("invalid {kind}: {reason} ({len} bytes)")]
    InvalidId {
        /// Which kind of identifier.
        kind: &'static str,
        /// What is wrong with it.
        reason: &'static str,
        /// Its length in bytes (the value itself is not echoed: it may be personal).
        len: usize,
    },

    /// A checkpoint string could not be parsed.
    #[error("invalid checkpoint ({len} bytes): expected `<commit>:<position>`")]
    InvalidCheckpoint {
        /// The length of the rejected text.
        len: usize,
    },

    /// An append carried no events.
    #[error("an append needs at least one event")]
    EmptyAppend,

    /// A stored event names a type this application does not know.
    #[error("unknown event type `{event_type}`")]
    UnknownEventType {
        /// The stored type name.
        event_type: String,
    },

    /// A stored event has a schema version with no upcaster to the current one.
    #[error(
        "event type `{event_type}` has no decoder for schema version {schema_version} (current: {current})"
    )]
    UnknownSchemaVersion {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The version the application writes today.
        current: u32,
    },

    /// A payload, snapshot or command could not be encoded or decoded.
    #[error("{what} could not be {op} with the {codec} codec")]
    Codec {
        /// What was being (de)serialised, for instance `event Deposited v2`.
        what: String,
        /// `encoded` or `decoded`.
        op: &'static str,
        /// The codec's name.
        codec: &'static str,
        /// The codec's own error.
        #[source]
        source: CodecError,
    },

    /// A personal value failed authentication: its ciphertext was altered, moved
    /// to another record or field, or sealed under another key. Distinct from a
    /// shredded value, which decodes as `Personal::shredded`.
    #[error(
        "personal data at `{path}` failed authentication: tampered, moved or sealed under another key"
    )]
    Tampered {
        /// The field path (`Event.field`; empty outside derived events).
        path: String,
    },

    /// Personal data was written for a subject that was forgotten (see
    /// `ForgottenSubjects` to re-admit returning subjects instead).
    #[error("personal data was written for a forgotten subject")]
    SubjectForgotten {
        /// The subject (an opaque id; never printed in the message).
        subject: crate::SubjectId,
    },

    /// A personal field's subject is not the subject its event names.
    #[error("personal field `{path}` belongs to another subject than its event names")]
    SubjectMismatch {
        /// The field path.
        path: &'static str,
    },

    /// Personal data was encoded or decoded without a `Crypto` configured.
    #[error("personal data needs a crypto configuration: set ES_MASTER_KEY or ES_MASTER_KEY_FILE")]
    CryptoNotConfigured,

    /// The configured master key cannot be used.
    #[error("invalid master key (ES_MASTER_KEY / ES_MASTER_KEY_FILE): {reason}")]
    InvalidMasterKey {
        /// What is wrong with it (the key itself is never echoed).
        reason: &'static str,
    },

    /// The file named by `ES_MASTER_KEY_FILE` could not be read.
    #[error("cannot read the master key file {path} (ES_MASTER_KEY_FILE)")]
    MasterKeyFile {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A data key was wrapped by a master key that is not configured.
    #[error(
        "data keys are wrapped by master key `{master_key_id}`, which is not configured: add it to ES_MASTER_KEY (current key first) or ES_MASTER_KEY_FILE"
    )]
    UnknownMasterKey {
        /// The id stored with the data key.
        master_key_id: String,
    },

    /// A data key did not unwrap under the master key of its id: the configured
    /// key with that id is not the one that wrapped it.
    #[error(
        "the configured master key `{master_key_id}` does not unwrap the stored data keys: wrong ES_MASTER_KEY or ES_MASTER_KEY_FILE"
    )]
    MasterKeyMismatch {
        /// The master key's id.
        master_key_id: String,
    },

    /// The backend could not be reached: connection refused or lost, pool
    /// exhausted, server shutting down. Worth retrying later.
    ///
    /// An append interrupted this way may or may not have committed; retry it
    /// with an idempotency key to make that safe.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What the backend was doing.
        message: String,
        /// The backend's own error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The backend failed in a way a retry will not fix: a constraint, a
    /// malformed row, a server-side error.
    #[error("store backend failed: {message}")]
    Backend {
        /// What the backend was doing.
        message: String,
        /// The backend's own error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A backend failure with its cause.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The backend could not be reached, with its cause.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// Whether the backend was unreachable (a retry later may succeed).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether this error is a version conflict (the repository retries those).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// A codec's own error: the message of the underlying serde format.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub(crate) String);

impl CodecError {
    /// Wraps a format's error message.
    pub fn new(message: impl std::fmt::Display) -> Self {
        Self(message.to_string())
    }
}
