//! The repository: load (snapshot + tail), decide, append with an exact expected
//! version, retry on conflict.

mod cache;
mod queue;
mod retry;

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use retry::RetryPolicy;

use crate::crypto::{open_all, seal_all};
use crate::{
    Aggregate, AppendRequest, AppendResult, Bincode, Checkpoint, Codec, Crypto, Error, Event,
    EventId, ExpectedVersion, Idempotency, IdempotencyKey, Metadata, NewEvent, Position,
    RecordedEvent, Snapshot, Storage, StreamId, StreamVersion,
};
use crate::{decode_events, encode_events};

/// How many events one stream read fetches.
const PAGE: usize = 1024;

/// Executes commands against aggregates of type `A` stored in `S`, encoding
/// events with `C`.
///
/// ```
/// use es_core::{Aggregate, Event, MemoryStore, Repository, StreamVersion};
///
/// #[derive(Debug, Clone, PartialEq, Event)]
/// enum CounterEvent {
///     Incremented { by: u32 },
/// }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("cannot increment by zero")]
/// struct Zero;
///
/// #[derive(Default, Aggregate)]
/// #[aggregate(name = "counter")]
/// struct Counter {
///     total: u64,
/// }
///
/// impl Aggregate for Counter {
///     type Command = u32;
///     type Event = CounterEvent;
///     type Error = Zero;
///
///     fn handle(&self, by: u32) -> Result<Vec<CounterEvent>, Zero> {
///         if by == 0 { Err(Zero) } else { Ok(vec![CounterEvent::Incremented { by }]) }
///     }
///
///     fn apply(&mut self, event: &CounterEvent) {
///         let CounterEvent::Incremented { by } = event;
///         self.total += u64::from(*by);
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let repo = Repository::<Counter, _>::new(MemoryStore::new());
/// let done = repo.execute("c1", 5).await.unwrap();
/// assert_eq!(done.version, StreamVersion::new(1));
/// repo.execute("c1", 2).await.unwrap();
/// assert!(repo.execute("c1", 0).await.unwrap_err().is_rejected());
///
/// let loaded = repo.load("c1").await.unwrap();
/// assert_eq!(loaded.state.total, 7);
/// assert_eq!(loaded.version, StreamVersion::new(2));
/// # });
/// ```
pub struct Repository<A, S, C = Bincode> {
    store: S,
    codec: C,
    retry: RetryPolicy,
    /// Seals and opens personal data; without it, an event or snapshot holding
    /// personal data is refused with `Error::CryptoNotConfigured`.
    crypto: Option<Arc<Crypto>>,
    /// The state of recently commanded aggregates (on by default, see
    /// [`Repository::with_cache`]); shared by clones.
    cache: Option<Arc<cache::StateCache<A>>>,
    /// Commands for one stream take turns (shared by clones).
    queue: Arc<queue::StreamQueue>,
    aggregate: PhantomData<fn() -> A>,
}

impl<A, S: Clone, C: Clone> Clone for Repository<A, S, C> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            codec: self.codec.clone(),
            retry: self.retry.clone(),
            crypto: self.crypto.clone(),
            cache: self.cache.clone(),
            queue: Arc::clone(&self.queue),
            aggregate: PhantomData,
        }
    }
}

impl<A, S, C> std::fmt::Debug for Repository<A, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &std::any::type_name::<A>())
            .field("codec", &std::any::type_name::<C>())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// An aggregate's state with the stream version it includes.
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The state after applying every event up to `version`.
    pub state: A,
    /// The last applied event's version (`INITIAL` for a new aggregate).
    pub version: StreamVersion,
}

/// A point in an aggregate's history, for temporal queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The state after the event at this version (or the latest, if earlier).
    Version(StreamVersion),
    /// The state after the last event recorded at or before this time, taking
    /// events in stream order.
    Time(DateTime<Utc>),
}

/// Options for one command execution.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// One key per user intent; a retry with the same key and command returns the
    /// original result and writes nothing.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Stored in every event's metadata.
    pub correlation_id: Option<Uuid>,
    /// Stored in every event's metadata.
    pub causation_id: Option<Uuid>,
    /// Stored in every event's metadata. No personal data: metadata is clear text.
    pub headers: BTreeMap<String, String>,
}

impl CommandOptions {
    /// Options with an idempotency key.
    pub fn idempotent(key: IdempotencyKey) -> Self {
        Self {
            idempotency_key: Some(key),
            ..Self::default()
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Executed<E> {
    /// The aggregate's stream.
    pub stream_id: StreamId,
    /// The stream version after the command.
    pub version: StreamVersion,
    /// The global positions of the events written.
    pub positions: Vec<Position>,
    /// The last written event's checkpoint (the stream head's when nothing was
    /// written): await it on a projection to read your own writes.
    pub checkpoint: Option<Checkpoint>,
    /// The events the command produced (for a deduplicated retry: the events the
    /// first execution wrote).
    pub events: Vec<E>,
    /// Whether this was a repeat of an idempotent command that wrote nothing.
    pub deduplicated: bool,
    /// How many conflicts were retried.
    pub retries: u32,
}

/// Why a command failed: the aggregate refused it, or the infrastructure failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The aggregate refused the command (a business rule).
    #[error("command rejected: {0}")]
    Rejected(#[source] E),
    /// The store or codec failed, or conflicts outlasted the retry policy.
    #[error(transparent)]
    Store(#[from] Error),
}

impl<E> CommandError<E> {
    /// Whether the aggregate refused the command.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }

    /// Whether the command lost every retry to concurrent writers.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_conflict())
    }
}

/// How many aggregate states a repository keeps by default
/// ([`Repository::with_cache`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// How long a cached state is trusted without a command (it is checked by
/// every append in any case; the lifetime bounds how long opened personal
/// data stays in memory after a forget made elsewhere).
const CACHE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(30);

impl<A: Aggregate, S: Storage> Repository<A, S> {
    /// A repository with the default codec ([`Bincode`]) and retry policy.
    pub fn new(store: S) -> Self {
        Self::with_codec(store, Bincode)
    }
}

impl<A: Aggregate, S: Storage, C: Codec> Repository<A, S, C> {
    /// A repository with the given codec.
    pub fn with_codec(store: S, codec: C) -> Self {
        Self {
            store,
            codec,
            retry: RetryPolicy::default(),
            crypto: None,
            cache: Some(Arc::new(cache::StateCache::new(
                DEFAULT_CACHE_CAPACITY,
                CACHE_LIFETIME,
            ))),
            queue: Arc::default(),
            aggregate: PhantomData,
        }
    }

    /// Encrypts personal data with `crypto` (keys in this repository's store).
    #[must_use]
    pub fn with_crypto(mut self, crypto: Arc<Crypto>) -> Self {
        self.crypto = Some(crypto);
        self
    }

    /// Keeps the state of up to `capacity` aggregates after each command, so
    /// that the next command on a hot aggregate skips the load (one round
    /// trip instead of two, and no replay). On by default, for
    /// [`DEFAULT_CACHE_CAPACITY`] aggregates; [`without_cache`](Self::without_cache)
    /// turns it off.
    ///
    /// Safe with other writers: a cached state is trusted at its version, and
    /// the append's exact expected version refuses it if anyone wrote since;
    /// the conflict drops the entry and the retry reloads. A refusal or a
    /// no-op, which append nothing, is never decided on a cached state alone:
    /// the command is decided again on a fresh load first. Entries live at most
    /// 30 seconds, and any forget or eviction through this repository's
    /// [`Crypto`] drops every entry, so opened personal data does not outlive
    /// its subject here. [`load`](Self::load) always reads the store.
    ///
    /// ```
    /// use es_core::{Aggregate, MemoryStore, Repository};
    /// # #[derive(Debug, Clone, PartialEq, es_core::Event)]
    /// # enum E { Added { n: u64 } }
    /// # #[derive(Debug, thiserror::Error)] #[error("never")] struct Never;
    /// # #[derive(Default, es_core::Aggregate)] struct Counter { total: u64 }
    /// # impl Aggregate for Counter {
    /// #     type Command = u64; type Event = E; type Error = Never;
    /// #     fn handle(&self, n: u64) -> Result<Vec<E>, Never> { Ok(vec![E::Added { n }]) }
    /// #     fn apply(&mut self, E::Added { n }: &E) { self.total += n; }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let hot = Repository::<Counter, _>::new(store.clone()).with_cache(10_000);
    /// hot.execute("c1", 1).await.unwrap();
    /// // Someone else writes: the cached state is stale, the append says so,
    /// // and the command is retried on the reloaded state.
    /// Repository::<Counter, _>::new(store).execute("c1", 10).await.unwrap();
    /// hot.execute("c1", 100).await.unwrap();
    /// assert_eq!(hot.load("c1").await.unwrap().state.total, 111);
    /// # });
    /// ```
    #[must_use]
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = Some(Arc::new(cache::StateCache::new(capacity, CACHE_LIFETIME)));
        self
    }

    /// Loads every aggregate from the store for every command.
    ///
    /// The cache is safe with any number of writers (see
    /// [`with_cache`](Self::with_cache)); turn it off when memory is tight
    /// (states are kept whole), or when aggregate states hold opened personal
    /// data and subjects are forgotten by *other* processes: a state cached
    /// here then keeps that data in this process's memory for up to 30
    /// seconds after the forget (it is never returned by
    /// [`load`](Self::load), only used to decide the next command, which
    /// sees the subject's data as it was).
    ///
    /// ```
    /// # use es_core::{Aggregate, MemoryStore, Repository};
    /// # #[derive(Debug, Clone, PartialEq, es_core::Event)]
    /// # enum E { Added { n: u64 } }
    /// # #[derive(Debug, thiserror::Error)] #[error("never")] struct Never;
    /// # #[derive(Default, es_core::Aggregate)] struct Counter { total: u64 }
    /// # impl Aggregate for Counter {
    /// #     type Command = u64; type Event = E; type Error = Never;
    /// #     fn handle(&self, n: u64) -> Result<Vec<E>, Never> { Ok(vec![E::Added { n }]) }
    /// #     fn apply(&mut self, E::Added { n }: &E) { self.total += n; }
    /// # }
    /// let cold = Repository::<Counter, _>::new(MemoryStore::new()).without_cache();
    /// # let _ = cold;
    /// ```
    #[must_use]
    pub fn without_cache(mut self) -> Self {
        self.cache = None;
        self
    }

    /// The crypto configuration, if any.
    pub fn crypto(&self) -> Option<&Arc<Crypto>> {
        self.crypto.as_ref()
    }

    /// Decodes recorded events, opening personal data (or marking it shredded).
    pub async fn decode_events(&self, recorded: &[RecordedEvent]) -> Result<Vec<A::Event>, Error> {
        decode_events(self.crypto.as_deref(), &self.store, &self.codec, recorded).await
    }

    /// Encodes events under fresh ids, sealing personal data.
    async fn encode_events(
        &self,
        events: &[A::Event],
        metadata: &Metadata,
    ) -> Result<Vec<NewEvent>, Error> {
        let ids: Vec<(EventId, &A::Event)> = events.iter().map(|e| (EventId::new(), e)).collect();
        let payloads =
            encode_events(self.crypto.as_deref(), &self.store, &self.codec, &ids).await?;
        Ok(ids
            .into_iter()
            .zip(payloads)
            .map(|((event_id, event), payload)| NewEvent {
                event_id,
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                payload,
                metadata: metadata.clone(),
            })
            .collect())
    }

    fn snapshot_record(stream: &StreamId, version: StreamVersion) -> Vec<u8> {
        format!("snapshot\0{stream}\0{version}").into_bytes()
    }

    /// Encodes the state for a snapshot, sealing personal data; `None` when the
    /// aggregate has snapshots disabled.
    async fn encode_snapshot(
        &self,
        stream: &StreamId,
        version: StreamVersion,
        state: &A,
    ) -> Result<Option<Vec<u8>>, Error> {
        let mut encoded = seal_all(
            self.crypto.as_deref(),
            &self.store,
            std::slice::from_ref(state),
            |_| Self::snapshot_record(stream, version),
            |state| state.encode_snapshot(&self.codec),
        )
        .await?;
        Ok(encoded.pop().flatten())
    }

    /// Replaces the retry policy for version conflicts.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// The stream id of the aggregate with id `id`.
    pub fn stream_id(id: &str) -> Result<StreamId, Error> {
        StreamId::for_aggregate(A::TYPE_NAME, id)
    }

    /// Loads the current state: the latest snapshot (when enabled and of the
    /// current schema) plus the events after it.
    pub async fn load(&self, id: &str) -> Result<Loaded<A>, Error> {
        let stream = Self::stream_id(id)?;
        self.load_stream(stream, None).await
    }

    /// Loads the state as of a version or a point in time.
    pub async fn load_as_of(&self, id: &str, as_of: AsOf) -> Result<Loaded<A>, Error> {
        let stream = Self::stream_id(id)?;
        self.load_stream(stream, Some(as_of)).await
    }

    async fn load_stream(&self, stream: StreamId, as_of: Option<AsOf>) -> Result<Loaded<A>, Error> {
        let (mut state, mut version) = match self.snapshot_for(&stream, as_of).await? {
            Some(found) => found,
            None => (A::default(), StreamVersion::INITIAL),
        };
        let until = match as_of {
            Some(AsOf::Version(v)) => Some(v),
            _ => None,
        };
        'pages: loop {
            if until.is_some_and(|until| version >= until) {
                break;
            }
            let page = self.store.read_stream(&stream, version, PAGE).await?;
            let fetched = page.len();
            let mut wanted = Vec::with_capacity(fetched);
            let mut stop = false;
            for recorded in page {
                if until.is_some_and(|until| recorded.version > until) {
                    stop = true;
                    break;
                }
                if let Some(AsOf::Time(t)) = as_of
                    && recorded.metadata.recorded_at > t
                {
                    stop = true;
                    break;
                }
                if recorded.version != version.advance(wanted.len() as u64 + 1) {
                    return Err(Error::Backend {
                        message: format!(
                            "stream {stream} returned version {} after {}",
                            recorded.version,
                            version.advance(wanted.len() as u64)
                        ),
                        source: None,
                    });
                }
                wanted.push(recorded);
            }
            for event in self.decode_events(&wanted).await? {
                state.apply(&event);
            }
            version = version.advance(wanted.len() as u64);
            if stop {
                break 'pages;
            }
            if fetched < PAGE {
                break;
            }
        }
        Ok(Loaded {
            stream_id: stream,
            state,
            version,
        })
    }

    /// The snapshot to start from, if snapshots are on and one fits `as_of`.
    async fn snapshot_for(
        &self,
        stream: &StreamId,
        as_of: Option<AsOf>,
    ) -> Result<Option<(A, StreamVersion)>, Error> {
        if A::SNAPSHOT_EVERY.is_none() || matches!(as_of, Some(AsOf::Time(_))) {
            return Ok(None);
        }
        let Some(snapshot) = self
            .store
            .load_snapshot(stream, A::SNAPSHOT_VERSION)
            .await?
        else {
            return Ok(None);
        };
        if let Some(AsOf::Version(v)) = as_of
            && snapshot.version > v
        {
            return Ok(None);
        }
        let decoded = open_all(
            self.crypto.as_deref(),
            &self.store,
            std::slice::from_ref(&snapshot.payload),
            |_| Self::snapshot_record(stream, snapshot.version),
            |payload| A::decode_snapshot(&self.codec, payload),
        )
        .await
        .map(|mut states| states.pop().flatten());
        match decoded {
            Ok(Some(state)) => Ok(Some((state, snapshot.version))),
            Ok(None) => Ok(None),
            Err(error) => {
                // A snapshot is a cache: one that does not decode (or whose personal
                // data fails authentication) is ignored and the state rebuilt from
                // events, never served half-read.
                tracing::warn!(%stream, %error, "ignoring undecodable snapshot");
                Ok(None)
            }
        }
    }

    /// Executes a command: load, handle, append at the loaded version; on a
    /// version conflict, reload and retry per the [`RetryPolicy`].
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        let stream = Self::stream_id(id)?;
        self.run(stream, command, CommandOptions::default(), None)
            .await
    }

    /// Executes a command with options (idempotency key, correlation, headers).
    ///
    /// With an idempotency key, the command is fingerprinted (SHA-256 of its
    /// encoding): a repeat returns the first result with `deduplicated: true` and
    /// writes nothing, and the same key with another command is
    /// [`Error::IdempotencyKeyReused`].
    pub async fn execute_with(
        &self,
        id: &str,
        command: A::Command,
        options: CommandOptions,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A::Command: Clone + Serialize,
    {
        let stream = Self::stream_id(id)?;
        let idempotency = match &options.idempotency_key {
            Some(key) => Some(Idempotency {
                key: key.clone(),
                fingerprint: self.fingerprint(&stream, &command)?,
            }),
            None => None,
        };
        self.run(stream, command, options, idempotency).await
    }

    fn fingerprint(&self, stream: &StreamId, command: &A::Command) -> Result<[u8; 32], Error>
    where
        A::Command: Serialize,
    {
        let encoded = self.codec.encode(command).map_err(|source| Error::Codec {
            what: format!("command for {}", A::TYPE_NAME),
            op: "encoded",
            codec: C::NAME,
            source,
        })?;
        let mut hash = Sha256::new();
        hash.update(A::TYPE_NAME.as_bytes());
        hash.update([0]);
        hash.update(stream.as_str().as_bytes());
        hash.update([0]);
        hash.update(&encoded);
        Ok(hash.finalize().into())
    }

    async fn run(
        &self,
        stream: StreamId,
        command: A::Command,
        options: CommandOptions,
        idempotency: Option<Idempotency>,
    ) -> Result<Executed<A::Event>, CommandError<A::Error>>
    where
        A::Command: Clone,
    {
        // Commands for this stream through this repository (or its clones)
        // take turns: they queue here instead of racing to the store and
        // retrying each other's conflicts. Other processes (and other
        // repositories) are still refused by the exact expected version.
        let _turn = self.queue.enter(&stream).await;
        let mut retries = 0;
        loop {
            // An intent that landed is answered with its first result, never
            // decided again: checked before every decision, so a concurrent
            // duplicate that lost the race (a conflict) finds the winner's
            // record instead of refusing what the winner did.
            if let Some(done) = self.landed(&stream, idempotency.as_ref(), retries).await? {
                return Ok(done);
            }
            // The forget epoch before the state is read: a state cached under
            // it is dropped by any forget that happens from now on.
            let epoch = self.crypto.as_ref().map_or(0, |c| c.forget_epoch());
            let cached = self.cache.as_ref().and_then(|c| c.take(&stream, epoch));
            let from_cache = cached.is_some();
            let mut loaded = match cached {
                Some((state, version)) => Loaded {
                    stream_id: stream.clone(),
                    state,
                    version,
                },
                None => self.load_stream(stream.clone(), None).await?,
            };
            let mut decided = loaded.state.handle(command.clone());
            if from_cache && !matches!(&decided, Ok(events) if !events.is_empty()) {
                // A refusal or a no-op writes nothing, so no append checks the
                // state it was decided on: decided on a cached state, it could
                // be that of a state someone else has moved on from. Decide
                // again on the store's latest.
                loaded = self.load_stream(stream.clone(), None).await?;
                decided = loaded.state.handle(command.clone());
            }
            let events = match decided {
                Ok(events) => events,
                Err(rejection) => {
                    self.keep(&stream, loaded.state, loaded.version, epoch);
                    // The state may show a duplicate's effect that landed
                    // after the check above: then this is its retry, not a
                    // refusal. (A refusal writes nothing and is not
                    // remembered: a retry of a refused command is decided
                    // again.)
                    if let Some(done) = self.landed(&stream, idempotency.as_ref(), retries).await? {
                        return Ok(done);
                    }
                    return Err(CommandError::Rejected(rejection));
                }
            };
            if events.is_empty() {
                self.keep(&stream, loaded.state, loaded.version, epoch);
                return Ok(Executed {
                    stream_id: stream,
                    version: loaded.version,
                    positions: Vec::new(),
                    checkpoint: None,
                    events,
                    deduplicated: false,
                    retries,
                });
            }
            let metadata = Metadata {
                correlation_id: options.correlation_id,
                causation_id: options.causation_id,
                recorded_at: Metadata::now().recorded_at,
                idempotency_key: options.idempotency_key.clone(),
                headers: options.headers.clone(),
            };
            let new_events = self.encode_events(&events, &metadata).await?;
            let request = AppendRequest {
                stream: stream.clone(),
                expected: ExpectedVersion::Exact(loaded.version),
                events: new_events,
                idempotency: idempotency.clone(),
            };
            match self.store.append(request).await {
                Ok(result) if result.deduplicated => {
                    // Another execution with the same key won the race.
                    return Ok(self.replayed(stream, result, retries).await?);
                }
                Ok(result) => {
                    let mut state = loaded.state;
                    for event in &events {
                        state.apply(event);
                    }
                    self.maybe_snapshot(&stream, loaded.version, &result, &state)
                        .await;
                    self.keep(&stream, state, result.version, epoch);
                    return Ok(Executed {
                        stream_id: stream,
                        version: result.version,
                        positions: result.positions,
                        checkpoint: Some(result.checkpoint),
                        events,
                        deduplicated: false,
                        retries,
                    });
                }
                Err(error) if error.is_conflict() && retries < self.retry.max_retries => {
                    retries += 1;
                    tokio::time::sleep(self.retry.backoff(retries)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The first result of the intent `idempotency` names, if it landed; the
    /// same key with another command is [`Error::IdempotencyKeyReused`].
    async fn landed(
        &self,
        stream: &StreamId,
        idempotency: Option<&Idempotency>,
        retries: u32,
    ) -> Result<Option<Executed<A::Event>>, Error> {
        let Some(idem) = idempotency else {
            return Ok(None);
        };
        let Some(record) = self.store.idempotent_result(stream, &idem.key).await? else {
            return Ok(None);
        };
        if record.fingerprint != idem.fingerprint {
            return Err(Error::IdempotencyKeyReused {
                stream: stream.clone(),
                key: idem.key.clone(),
            });
        }
        Ok(Some(
            self.replayed(stream.clone(), record.result, retries)
                .await?,
        ))
    }

    /// Puts a state back in the cache, if there is one.
    fn keep(&self, stream: &StreamId, state: A, version: StreamVersion, epoch: u64) {
        if let Some(cache) = &self.cache {
            cache.put(stream.clone(), state, version, epoch);
        }
    }

    /// The result of an earlier execution with the same idempotency key, with its
    /// events read back from the stream.
    async fn replayed(
        &self,
        stream: StreamId,
        result: AppendResult,
        retries: u32,
    ) -> Result<Executed<A::Event>, Error> {
        let first = result.first_version();
        let count = result.positions.len();
        let recorded: Vec<RecordedEvent> = self
            .store
            .read_stream(&stream, StreamVersion::new(first.get() - 1), count)
            .await?;
        let events = self.decode_events(&recorded).await?;
        Ok(Executed {
            stream_id: stream,
            version: result.version,
            positions: result.positions,
            checkpoint: Some(result.checkpoint),
            events,
            deduplicated: true,
            retries,
        })
    }

    /// Saves a snapshot when the append crossed a multiple of `SNAPSHOT_EVERY`.
    /// A failure is logged, not returned: the command's events are committed and a
    /// snapshot is only a cache.
    async fn maybe_snapshot(
        &self,
        stream: &StreamId,
        before: StreamVersion,
        result: &AppendResult,
        state: &A,
    ) {
        let Some(every) = A::SNAPSHOT_EVERY.filter(|n| *n > 0) else {
            return;
        };
        if before.get() / every == result.version.get() / every {
            return;
        }
        let payload = match self.encode_snapshot(stream, result.version, state).await {
            Ok(Some(payload)) => payload,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot not taken");
                return;
            }
        };
        let snapshot = Snapshot {
            stream_id: stream.clone(),
            version: result.version,
            schema_version: A::SNAPSHOT_VERSION,
            payload,
            taken_at: Utc::now(),
        };
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(%stream, %error, "snapshot not saved");
        }
    }

    /// Takes a snapshot of the aggregate's current state now, whatever the policy
    /// says (for `snapshots take`). Returns the version snapshotted, or `None` when
    /// the aggregate has snapshots disabled.
    pub async fn take_snapshot(&self, id: &str) -> Result<Option<StreamVersion>, Error> {
        let loaded = self.load(id).await?;
        let Some(payload) = self
            .encode_snapshot(&loaded.stream_id, loaded.version, &loaded.state)
            .await?
        else {
            return Ok(None);
        };
        self.store
            .save_snapshot(Snapshot {
                stream_id: loaded.stream_id,
                version: loaded.version,
                schema_version: A::SNAPSHOT_VERSION,
                payload,
                taken_at: Utc::now(),
            })
            .await?;
        Ok(Some(loaded.version))
    }
}
