//! The key-value read-model vocabulary shared by the Redis, SQL and in-memory
//! sinks: set, delete, increment, and per-subject tags for purging.

mod memory;

pub use memory::MemoryKv;

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
/// use es_projections::{KvBatch, KvOp};
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
