//! [`Sink`]: where a projection's writes go, with its checkpoint.

use std::future::Future;

use es_core::Checkpoint;

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink could not be reached: the runner retries with backoff.
    #[error("sink unavailable: {message}")]
    Unavailable {
        /// What failed.
        message: String,
        /// The client's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The stored checkpoint was not the one this runner last committed:
    /// another runner moved it (this one is stale and must stop).
    #[error(
        "the checkpoint of projection `{projection}` moved under this runner: another runner is active"
    )]
    Fenced {
        /// The projection.
        projection: String,
    },
    /// Anything else: a rejected write, a corrupt stored checkpoint.
    #[error("sink failed: {message}")]
    Failed {
        /// What failed.
        message: String,
        /// The client's error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl SinkError {
    /// An unavailable sink, with its cause.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A failed sink, with its cause.
    pub fn failed(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Failed {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// A read-model store that commits a batch of writes **and** the projection's
/// checkpoint atomically, so that a crash never applies an event twice or skips
/// one.
///
/// `commit` is a compare-and-set on the checkpoint: it succeeds only when the
/// stored checkpoint is still `expected`, which also fences out a stale runner.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a projection sink",
    note = "use `MemoryKv`, the Redis or tantivy sinks, or an SQL key-value sink"
)]
pub trait Sink: Send + Sync {
    /// The writes of one batch (cloned to retry a commit).
    type Batch: Default + Clone + Send;

    /// The projection's committed checkpoint (`None`: never committed).
    fn checkpoint(
        &self,
        projection: &str,
    ) -> impl Future<Output = Result<Option<Checkpoint>, SinkError>> + Send;

    /// Applies `batch` and moves the checkpoint from `expected` to `next`, all or
    /// nothing.
    fn commit(
        &self,
        projection: &str,
        batch: Self::Batch,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}
