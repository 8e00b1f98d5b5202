//! Read-model contracts: [`Sink`], where a projection's writes go with its
//! checkpoint, and the key-value vocabulary ([`KvBatch`]) that the in-memory,
//! Redis and SQL sinks share.
//!
//! They live in es-core, beside the store contracts, so that store crates can
//! implement sinks (an SQL key-value table) without depending on the
//! projections crate.

use std::future::Future;

use crate::Checkpoint;

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

/// One write on a key-value read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvOp {
    /// Sets `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Removes `key`.
    Delete {
        /// The key.
        key: String,
    },
    /// Adds `delta` to the integer at `key` (missing: 0).
    IncrBy {
        /// The key.
        key: String,
        /// The amount.
        delta: i64,
    },
    /// Records that `key` holds personal data of `subject`.
    Tag {
        /// The subject id.
        subject: String,
        /// The key.
        key: String,
    },
    /// Deletes every key tagged with `subject`, and the tags.
    Purge {
        /// The subject id.
        subject: String,
    },
}

/// The writes of one batch on a key-value sink, applied in order.
///
/// ```
/// use es_core::{KvBatch, KvOp};
///
/// let mut batch = KvBatch::default();
/// batch.set("account:1:owner", "Ada").tag("owner-1", "account:1:owner");
/// batch.incr_by("account:1:balance", 250);
/// assert_eq!(batch.ops().len(), 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvBatch {
    ops: Vec<KvOp>,
}

impl KvBatch {
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.ops.push(KvOp::Set {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<String>) -> &mut Self {
        self.ops.push(KvOp::Delete { key: key.into() });
        self
    }

    /// Adds `delta` to the integer at `key`.
    pub fn incr_by(&mut self, key: impl Into<String>, delta: i64) -> &mut Self {
        self.ops.push(KvOp::IncrBy {
            key: key.into(),
            delta,
        });
        self
    }

    /// Records that `key` holds personal data of `subject`, so that
    /// [`purge`](Self::purge) removes it.
    pub fn tag(&mut self, subject: impl Into<String>, key: impl Into<String>) -> &mut Self {
        self.ops.push(KvOp::Tag {
            subject: subject.into(),
            key: key.into(),
        });
        self
    }

    /// Deletes every key tagged with `subject`.
    pub fn purge(&mut self, subject: impl Into<String>) -> &mut Self {
        self.ops.push(KvOp::Purge {
            subject: subject.into(),
        });
        self
    }

    /// The writes, in order.
    pub fn ops(&self) -> &[KvOp] {
        &self.ops
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Takes the writes out.
    pub fn into_ops(self) -> Vec<KvOp> {
        self.ops
    }
}

/// A key-value sink that can be read back: what applications query, and what
/// the key-value sink conformance suite checks.
pub trait KvSink: Sink<Batch = KvBatch> {
    /// The value at `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, SinkError>> + Send;

    /// Every key and value (for tests and rebuild comparisons; not for hot paths).
    fn entries(
        &self,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, String>, SinkError>> + Send;
}
