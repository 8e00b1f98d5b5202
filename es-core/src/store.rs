//! The backend contracts: [`EventStore`] and [`SnapshotStore`].
//!
//! Both work on serialized records, not domain types, so that one conformance
//! suite ([`testing::conformance`](crate::testing)) checks every backend.

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Checkpoint, Error, IdempotencyKey, NewEvent, Position, RecordedEvent, StreamId, StreamVersion,
};

/// What an append expects the stream's version to be.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the version.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream must be at exactly this version (`Exact(INITIAL)` is `NoStream`).
    Exact(StreamVersion),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    ///
    /// ```
    /// use es_core::{ExpectedVersion, StreamVersion};
    ///
    /// let v3 = StreamVersion::new(3);
    /// assert!(ExpectedVersion::Exact(v3).accepts(v3));
    /// assert!(!ExpectedVersion::NoStream.accepts(v3));
    /// assert!(ExpectedVersion::NoStream.accepts(StreamVersion::INITIAL));
    /// assert!(!ExpectedVersion::StreamExists.accepts(StreamVersion::INITIAL));
    /// ```
    pub fn accepts(self, actual: StreamVersion) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == StreamVersion::INITIAL,
            Self::StreamExists => actual > StreamVersion::INITIAL,
            Self::Exact(expected) => actual == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any version"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(v) => write!(f, "version {v}"),
        }
    }
}

impl fmt::Debug for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::NoStream => f.write_str("NoStream"),
            Self::StreamExists => f.write_str("StreamExists"),
            Self::Exact(v) => write!(f, "Exact({})", v.get()),
        }
    }
}

/// An idempotency key with the fingerprint of the request it was first used for.
///
/// The fingerprint is a hash of the *command* (not of the events, which differ by
/// id and time between retries), computed by the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// One key per user intent, reused by every retry.
    pub key: IdempotencyKey,
    /// A hash of the request; the same key with another fingerprint is an error.
    pub fingerprint: [u8; 32],
}

/// One atomic append: a batch of events to one stream.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream to append to.
    pub stream: StreamId,
    /// What the stream's version must be.
    pub expected: ExpectedVersion,
    /// The events, in order; at least one.
    pub events: Vec<NewEvent>,
    /// When set, a repeat of this request returns the first result and writes
    /// nothing.
    pub idempotency: Option<Idempotency>,
}

impl AppendRequest {
    /// An append without idempotency key.
    pub fn new(stream: StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Self {
        Self {
            stream,
            expected,
            events,
            idempotency: None,
        }
    }

    /// Adds an idempotency key and request fingerprint.
    #[must_use]
    pub fn idempotent(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = Some(idempotency);
        self
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// The stream's version after the append (the last event's version).
    pub version: StreamVersion,
    /// The global position of each appended event, in order.
    pub positions: Vec<Position>,
    /// The last event's place in the global order: await it on a projection for
    /// read-your-writes.
    pub checkpoint: Checkpoint,
    /// `true` when an earlier append with the same idempotency key already wrote
    /// these events and this call wrote nothing.
    pub deduplicated: bool,
}

impl AppendResult {
    /// The version of the first event this append wrote.
    pub fn first_version(&self) -> StreamVersion {
        let n = self.positions.len() as u64;
        StreamVersion::new(self.version.get() + 1 - n.max(1))
    }
}

/// The result an idempotency key was first recorded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRecord {
    /// The fingerprint of the first request.
    pub fingerprint: [u8; 32],
    /// The result of the first request (with `deduplicated: true`).
    pub result: AppendResult,
}

/// An append-only, optimistically versioned event store.
///
/// Implementations guarantee:
/// - a batch is appended atomically, in one round trip, or not at all;
/// - stream versions are 1-based and gap-free; a version mismatch is
///   [`Error::Conflict`] with the actual version, and writes nothing;
/// - [`read_all`](Self::read_all) returns committed events in the order of their
///   [`Checkpoint`], and never returns an event after one that a later call could
///   still place before it (no event is ever skipped by a subscriber). An event
///   may therefore become visible to `read_all` a little after its append
///   returned, once older transactions have finished;
/// - an idempotency key seen before on the stream returns the first result with
///   `deduplicated: true` and writes nothing, or [`Error::IdempotencyKeyReused`]
///   when the fingerprint differs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event store",
    note = "use `es_core::MemoryStore`, or a store from `es-store-postgres` or `es-store-sqlite`"
)]
pub trait EventStore: Send + Sync {
    /// Appends a batch atomically.
    fn append(
        &self,
        request: AppendRequest,
    ) -> impl Future<Output = Result<AppendResult, Error>> + Send;

    /// Up to `limit` events of `stream` with versions after `after`, in order.
    fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;

    /// Up to `limit` events of the global log after `after`, in global order.
    fn read_all(
        &self,
        after: Checkpoint,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;

    /// The stream's current version (`INITIAL` for a stream with no events).
    fn stream_version(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<StreamVersion, Error>> + Send;

    /// How many events of the global log come after `after` (what a subscriber at
    /// that checkpoint still has to read: its lag in events). The default pages
    /// through [`read_all`](Self::read_all); stores override it with a count.
    fn count_after(&self, after: Checkpoint) -> impl Future<Output = Result<u64, Error>> + Send
    where
        Self: Sync,
    {
        async move {
            let mut count = 0u64;
            let mut from = after;
            loop {
                let page = self.read_all(from, 1024).await?;
                let Some(last) = page.last() else {
                    return Ok(count);
                };
                from = last.checkpoint();
                count += page.len() as u64;
            }
        }
    }

    /// The first result recorded for an idempotency key on a stream, if any.
    fn idempotent_result(
        &self,
        stream: &StreamId,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<Option<IdempotentRecord>, Error>> + Send;

    /// Up to `limit` streams with ids after `after` (all when `None`), in the
    /// byte order of their ids, each with its version and when its last event
    /// was recorded: what an operator pages through (`streams list`).
    ///
    /// The default pages through the whole global log; stores override it with
    /// a query on their stream table.
    fn list_streams(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StreamSummary>, Error>> + Send
    where
        Self: Sync,
    {
        async move {
            let mut streams = std::collections::BTreeMap::<StreamId, StreamSummary>::new();
            let mut from = Checkpoint::START;
            loop {
                let page = self.read_all(from, 1024).await?;
                let Some(last) = page.last() else {
                    break;
                };
                from = last.checkpoint();
                for event in page {
                    if after.is_some_and(|after| event.stream_id.as_str() <= after.as_str()) {
                        continue;
                    }
                    let summary = StreamSummary {
                        stream_id: event.stream_id.clone(),
                        version: event.version,
                        last_recorded_at: event.metadata.recorded_at,
                    };
                    match streams.get_mut(&event.stream_id) {
                        Some(known) if known.version >= event.version => {}
                        Some(known) => *known = summary,
                        None => {
                            streams.insert(event.stream_id, summary);
                        }
                    }
                }
            }
            Ok(streams.into_values().take(limit).collect())
        }
    }
}

/// One stream as [`EventStore::list_streams`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// The stream.
    pub stream_id: StreamId,
    /// Its version: the number of events in it.
    pub version: StreamVersion,
    /// When its last event was recorded (the event's `Metadata::recorded_at`).
    pub last_recorded_at: DateTime<Utc>,
}

/// A stored snapshot of an aggregate's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version the state includes.
    pub version: StreamVersion,
    /// The aggregate's snapshot schema version.
    pub schema_version: u32,
    /// The encoded state.
    pub payload: Vec<u8>,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// A backend as a [`Repository`](crate::Repository) uses it: the events,
/// the snapshots and the data keys of personal fields, shared by clones. Every
/// store of the framework is one; name this bound instead of spelling out the
/// three traits.
///
/// ```
/// use es_core::{MemoryStore, Storage};
///
/// fn describe<S: Storage>(_store: &S) -> &'static str {
///     "events, snapshots and keys"
/// }
/// assert_eq!(describe(&MemoryStore::new()), "events, snapshots and keys");
/// ```
pub trait Storage:
    EventStore + SnapshotStore + crate::KeyStore + Clone + Send + Sync + 'static
{
}

impl<S> Storage for S where
    S: EventStore + SnapshotStore + crate::KeyStore + Clone + Send + Sync + 'static
{
}

/// Keeps the latest snapshot per stream.
///
/// Implementations guarantee: saving replaces the stored snapshot only when the new
/// one is of a higher version or of a different schema version; loading returns
/// a snapshot only of the requested schema version.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a snapshot store",
    note = "use `es_core::MemoryStore`, or a store from `es-store-postgres` or `es-store-sqlite`"
)]
pub trait SnapshotStore: Send + Sync {
    /// Saves a snapshot if it is newer than (or of another schema than) the
    /// stored one.
    fn save_snapshot(&self, snapshot: Snapshot) -> impl Future<Output = Result<(), Error>> + Send;

    /// The stored snapshot of `stream`, if it has `schema_version`.
    fn load_snapshot(
        &self,
        stream: &StreamId,
        schema_version: u32,
    ) -> impl Future<Output = Result<Option<Snapshot>, Error>> + Send;

    /// Deletes the snapshots of the streams whose ids start with
    /// `stream_prefix` and whose schema version is not `keep` (every one of
    /// them when `keep` is `None`): snapshots that their aggregate can no
    /// longer load (`snapshots prune`). Returns how many were deleted.
    ///
    /// The default refuses with [`Error::Backend`]: a store that keeps
    /// snapshots overrides it.
    fn prune_snapshots(
        &self,
        stream_prefix: &str,
        keep: Option<u32>,
    ) -> impl Future<Output = Result<u64, Error>> + Send {
        let _ = (stream_prefix, keep);
        std::future::ready(Err(Error::Backend {
            message: "this snapshot store cannot prune snapshots".into(),
            source: None,
        }))
    }
}

/// Tells a subscriber of the global log when to read again: a store's
/// notifications, or a timer.
///
/// A wake-up is only a hint: subscribers always read from their checkpoint, so
/// a lost or coalesced wake-up delays an event, never drops it.
pub trait Wakeup: Send {
    /// Returns when the log may have new events.
    fn wait(&mut self) -> impl Future<Output = ()> + Send;
}

/// Wakes up every `interval`: polling, for stores without notifications.
///
/// ```
/// use std::time::Duration;
/// use es_core::{PollEvery, Wakeup};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let mut poll = PollEvery(Duration::from_millis(1));
/// poll.wait().await;
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PollEvery(pub std::time::Duration);

impl Wakeup for PollEvery {
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
    }
}
