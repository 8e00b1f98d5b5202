//! Read-model contracts: [`Sink`], where a projection's writes go with its
//! checkpoint, and the key-value vocabulary ([`KvBatch`]) that the in-memory,
//! Redis and SQL sinks share.
//!
//! They live in es-core, beside the store contracts, so that store crates can
//! implement sinks (an SQL key-value table) without depending on the
//! projections crate.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

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
    /// A newer generation of the read model is live (a rebuild switched): this
    /// handle's generation takes no more writes. A runner reloads its
    /// checkpoint, which binds it to the live generation, and goes on.
    #[error(
        "generation {generation} of the read model of projection `{projection}` was superseded by generation {live}"
    )]
    Superseded {
        /// The projection.
        projection: String,
        /// The generation the write was for.
        generation: u64,
        /// The live generation.
        live: u64,
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

    /// Lets go of what only the projection's active runner may hold, such as
    /// a search index's writer (its lock file): called when a runner stops or
    /// hands the projection over, so that the next runner, in this process or
    /// another, can write. The next commit takes it again. Nothing to do for
    /// most sinks.
    fn release(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
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

    /// The same writes in fewer ops: applied in order, the result has exactly
    /// the effect of this batch, values and tags, and fails exactly when it
    /// would. A set or delete followed by another on the same key keeps the
    /// last; increments of one sign on the same key add up; an increment
    /// after a set of an integer, or after a delete, becomes a set. Nothing
    /// moves across a purge. Sinks compact before they write, so that a hot
    /// key costs one write per batch.
    ///
    /// ```
    /// use es_core::{KvBatch, KvOp};
    ///
    /// let mut batch = KvBatch::default();
    /// for _ in 0..100 {
    ///     batch.incr_by("balance", 5).set("last", "5");
    /// }
    /// let compacted = batch.compacted();
    /// assert_eq!(compacted.ops().len(), 2);
    /// assert!(compacted.ops().contains(&KvOp::IncrBy { key: "balance".into(), delta: 500 }));
    /// ```
    #[must_use]
    pub fn compacted(self) -> Self {
        let mut out: Vec<Option<KvOp>> = Vec::with_capacity(self.ops.len());
        // The index in `out` of the last op on each key since the last purge.
        let mut last: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for op in self.ops {
            match op {
                KvOp::Set { key, value } => {
                    if let Some(&i) = last.get(&key)
                        && matches!(out[i], Some(KvOp::Set { .. } | KvOp::Delete { .. }))
                    {
                        out[i] = None;
                    }
                    last.insert(key.clone(), out.len());
                    out.push(Some(KvOp::Set { key, value }));
                }
                KvOp::Delete { key } => {
                    if let Some(&i) = last.get(&key)
                        && matches!(out[i], Some(KvOp::Set { .. } | KvOp::Delete { .. }))
                    {
                        out[i] = None;
                    }
                    last.insert(key.clone(), out.len());
                    out.push(Some(KvOp::Delete { key }));
                }
                KvOp::IncrBy { key, delta } => {
                    let merged = match last.get(&key).map(|&i| (i, &out[i])) {
                        // The increment reads exactly this value.
                        Some((i, Some(KvOp::Set { value, .. }))) => value
                            .parse::<i64>()
                            .ok()
                            .and_then(|v| v.checked_add(delta))
                            .map(|sum| {
                                (
                                    i,
                                    KvOp::Set {
                                        key: key.clone(),
                                        value: sum.to_string(),
                                    },
                                )
                            }),
                        Some((i, Some(KvOp::Delete { .. }))) => Some((
                            i,
                            KvOp::Set {
                                key: key.clone(),
                                value: delta.to_string(),
                            },
                        )),
                        // One sign: if the sum fits, every partial sum did.
                        Some((i, Some(KvOp::IncrBy { delta: before, .. })))
                            if (*before >= 0) == (delta >= 0) =>
                        {
                            before.checked_add(delta).map(|sum| {
                                (
                                    i,
                                    KvOp::IncrBy {
                                        key: key.clone(),
                                        delta: sum,
                                    },
                                )
                            })
                        }
                        _ => None,
                    };
                    match merged {
                        Some((i, op)) => out[i] = Some(op),
                        None => {
                            last.insert(key.clone(), out.len());
                            out.push(Some(KvOp::IncrBy { key, delta }));
                        }
                    }
                }
                KvOp::Tag { subject, key } => out.push(Some(KvOp::Tag { subject, key })),
                KvOp::Purge { subject } => {
                    last.clear();
                    out.push(Some(KvOp::Purge { subject }));
                }
            }
        }
        Self {
            ops: out.into_iter().flatten().collect(),
        }
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

    /// A page of the entries whose keys start with `prefix`, in the byte
    /// order of their keys: those after `after` (exclusive; `None` from the
    /// first), at most `limit`. The next page starts after the last key of
    /// this one. What a query-shaped model reads ("every loan of member
    /// 7": keys `member:7:loan:…`); an empty prefix pages through the whole
    /// model.
    ///
    /// The provided method filters [`entries`](Self::entries) (what the
    /// in-memory sink uses); the SQL and Redis sinks read only the page (an
    /// index range in SQL, a sorted index of the keys in Redis). The key-value suite
    /// (`testing::kv_conformance`) holds them all to this one page; see
    /// [`kv_page`] for an example.
    fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(String, String)>, SinkError>> + Send {
        let (prefix, after) = (prefix.to_owned(), after.map(str::to_owned));
        async move {
            let entries = self.entries().await?;
            Ok(kv_page(&entries, &prefix, after.as_deref(), limit))
        }
    }

    /// The value at `key` parsed as `T` (a number, say): `None` when the key
    /// has no value, [`SinkError::Failed`] when the value does not parse (the
    /// message names the type, never the value).
    fn get_parsed<T: std::str::FromStr>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, SinkError>> + Send {
        let key = key.to_owned();
        async move {
            match self.get(&key).await? {
                None => Ok(None),
                Some(text) => text.parse().map(Some).map_err(|_| SinkError::Failed {
                    message: format!(
                        "the value of a key ({} bytes) is not a {}",
                        text.len(),
                        std::any::type_name::<T>()
                    ),
                    source: None,
                }),
            }
        }
    }
}

/// The page [`KvSink::scan`] returns, cut from every entry of a model in key
/// order.
///
/// ```
/// use std::collections::BTreeMap;
///
/// let model = BTreeMap::from([
///     ("member:7:loan:b1".to_owned(), "due 2026-12-18".to_owned()),
///     ("member:7:loan:b2".to_owned(), "due 2026-12-20".to_owned()),
///     ("member:8:loan:b3".to_owned(), "due 2026-12-19".to_owned()),
/// ]);
/// let first = es_core::kv_page(&model, "member:7:", None, 1);
/// assert_eq!(first, [("member:7:loan:b1".to_owned(), "due 2026-12-18".to_owned())]);
/// let next = es_core::kv_page(&model, "member:7:", Some("member:7:loan:b1"), 10);
/// assert_eq!(next, [("member:7:loan:b2".to_owned(), "due 2026-12-20".to_owned())]);
/// ```
pub fn kv_page(
    entries: &std::collections::BTreeMap<String, String>,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Vec<(String, String)> {
    use std::ops::Bound;
    let start = match after {
        Some(after) if after >= prefix => Bound::Excluded(after.to_owned()),
        _ => Bound::Included(prefix.to_owned()),
    };
    entries
        .range((start, Bound::Unbounded))
        .take_while(|(key, _)| key.starts_with(prefix))
        .take(limit)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The outcome of [`Generations::switch_generation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// The new generation is live.
    Done,
    /// Nothing changed: the new generation's checkpoint is behind the live
    /// one's, and readers would see the model go back in time. Catch up and
    /// switch again.
    Behind {
        /// The live generation's checkpoint.
        live: Option<Checkpoint>,
        /// The new generation's checkpoint.
        next: Option<Checkpoint>,
    },
}

/// A read model kept in numbered generations, so that it can be rebuilt beside
/// the live one and switched to in one atomic step: zero-downtime rebuilds.
///
/// One sink (a Redis prefix, an SQL namespace, an index directory) holds one
/// projection's model. Generation 1 is live until a switch. Handles come in two
/// kinds:
///
/// - a **following** handle (what the sink's constructor returns) reads the
///   live generation on every read; [`Sink::checkpoint`] binds it to the
///   generation live at that moment, and its commits go there;
/// - a **pinned** handle ([`at_generation`](Self::at_generation)) reads and
///   writes one generation, live or not: what a rebuild writes through.
///
/// A commit to a generation older than the live one is refused with
/// [`SinkError::Superseded`], atomically with the switch, so a runner that
/// missed the switch writes nothing to the generation about to be dropped; it
/// reloads its checkpoint and carries on in the new one.
pub trait Generations: Sink + Clone {
    /// Whether a rebuild may build a new generation of this model from a
    /// replay and switch to it (the default). A sink whose effects a replay
    /// cannot reproduce, like a process manager's, says no, and a rebuild is
    /// refused before it builds anything.
    fn rebuildable(&self) -> bool {
        true
    }

    /// The generation readers see.
    fn live_generation(&self) -> impl Future<Output = Result<u64, SinkError>> + Send;

    /// Every generation that holds a checkpoint, ascending: the live one once
    /// committed to, and rebuilds in progress or abandoned.
    fn generations(&self) -> impl Future<Output = Result<Vec<u64>, SinkError>> + Send;

    /// A handle pinned to `generation` (at least 1).
    fn at_generation(&self, generation: u64) -> Self;

    /// Makes `to` live in place of `from`, in one atomic step: fails with
    /// [`SinkError::Fenced`] when `from` is not live, and changes nothing
    /// ([`Switch::Behind`]) when `projection`'s checkpoint in `to` is behind
    /// the one in `from`.
    fn switch_generation(
        &self,
        projection: &str,
        from: u64,
        to: u64,
    ) -> impl Future<Output = Result<Switch, SinkError>> + Send;

    /// Deletes a generation that is not live: its values, tags and
    /// checkpoints. Refused ([`SinkError::Failed`]) for the live one.
    fn drop_generation(
        &self,
        generation: u64,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Which generation a sink handle reads and writes; the bookkeeping that every
/// [`Generations`] sink shares. Clones keep their own binding.
///
/// ```
/// use es_core::GenerationBinding;
///
/// let following = GenerationBinding::follow();
/// assert_eq!(following.read(3), 3);
/// assert_eq!(following.write(), None); // not bound yet: the live one
/// following.bind(3);
/// assert_eq!(following.write(), Some(3));
///
/// let pinned = GenerationBinding::pinned(2);
/// assert_eq!(pinned.read(3), 2);
/// assert_eq!(pinned.bind(3), 2);
/// ```
#[derive(Debug)]
pub struct GenerationBinding {
    pinned: Option<u64>,
    /// The generation bound by the last checkpoint read (0: none).
    bound: AtomicU64,
}

impl Clone for GenerationBinding {
    fn clone(&self) -> Self {
        Self {
            pinned: self.pinned,
            bound: AtomicU64::new(self.bound.load(Ordering::Relaxed)),
        }
    }
}

impl GenerationBinding {
    /// Follows the live generation.
    pub fn follow() -> Self {
        Self {
            pinned: None,
            bound: AtomicU64::new(0),
        }
    }

    /// Pinned to `generation` (0 is taken as 1).
    pub fn pinned(generation: u64) -> Self {
        Self {
            pinned: Some(generation.max(1)),
            bound: AtomicU64::new(0),
        }
    }

    /// The pinned generation, if any.
    pub fn pinned_generation(&self) -> Option<u64> {
        self.pinned
    }

    /// The generation to read when `live` is live.
    pub fn read(&self, live: u64) -> u64 {
        self.pinned.unwrap_or(live)
    }

    /// Binds a following handle to `live` (a checkpoint read); returns the
    /// generation the handle now writes.
    pub fn bind(&self, live: u64) -> u64 {
        match self.pinned {
            Some(generation) => generation,
            None => {
                self.bound.store(live, Ordering::Relaxed);
                live
            }
        }
    }

    /// The generation to write: the pinned or bound one (`None`: a following
    /// handle never bound, which writes the live one).
    pub fn write(&self) -> Option<u64> {
        self.pinned
            .or_else(|| Some(self.bound.load(Ordering::Relaxed)).filter(|g| *g > 0))
    }
}
