//! The [`Runner`]: reads the global log from the projection's checkpoint, applies
//! batches, and commits writes and checkpoint atomically.

mod options;
mod progress;

use std::sync::Arc;

use chrono::Utc;
use es_core::{
    Bincode, Checkpoint, Codec, Crypto, Event, EventStore, KeyStore, RecordedEvent, SystemEvent,
    decode_events,
};
use tracing::Instrument;

pub use options::{Backoff, FailurePolicy, RunnerOptions};
pub use progress::{Progress, WaitError};

use crate::{Change, DeadLetter, DeadLetters, EventMeta, Projection, Sink, SinkError};

/// Why a runner stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// Reading the event store failed in a way retries do not fix.
    #[error("reading the event store failed")]
    Store(#[from] es_core::Error),
    /// The sink failed in a way retries do not fix.
    #[error(transparent)]
    Sink(SinkError),
    /// Another runner moved the checkpoint: this one is stale and stopped.
    #[error("another runner is active for projection `{projection}`")]
    Fenced {
        /// The projection.
        projection: String,
    },
    /// The runner writes a generation of the read model that a newer one
    /// replaced, and its sink handle is pinned to it (a rebuild that another
    /// rebuild overtook): it stopped without writing.
    #[error(
        "projection `{projection}`: generation {generation} was superseded by generation {live}"
    )]
    Superseded {
        /// The projection.
        projection: String,
        /// The runner's generation.
        generation: u64,
        /// The live one.
        live: u64,
    },
    /// An event could not be decoded or applied and the policy is to halt. It is
    /// in the dead letters; everything before it was committed.
    #[error("projection `{projection}` halted at event {event_id} ({event_type}): {error}")]
    Halted {
        /// The projection.
        projection: String,
        /// The event.
        event_id: es_core::EventId,
        /// Its type.
        event_type: String,
        /// Why.
        error: String,
    },
}

/// What one [`Runner::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing new in the log.
    Idle,
    /// Read this many events (some may not concern the projection) and committed.
    Committed {
        /// Events read from the log.
        read: usize,
        /// Changes applied by the projection.
        applied: usize,
    },
}

/// Runs one projection: reads the global log in batches, decodes (opening
/// personal data), applies, and commits the writes with the checkpoint.
pub struct Runner<P: Projection, S, C = Bincode> {
    pub(crate) projection: Arc<P>,
    pub(crate) sink: P::Sink,
    pub(crate) store: S,
    codec: C,
    crypto: Option<Arc<Crypto>>,
    pub(crate) dead_letters: Arc<dyn DeadLetters>,
    pub(crate) options: RunnerOptions,
    /// The last committed checkpoint (`None`: nothing committed yet).
    pub(crate) checkpoint: Option<Checkpoint>,
    pub(crate) loaded: bool,
    /// The generation of the last commit refused as superseded: a second refusal
    /// for the same one means the sink is pinned to it.
    superseded: Option<u64>,
    /// Whether this runner replays (a rebuild's): [`EventMeta::replaying`].
    pub(crate) replaying: bool,
    /// Events the live generation went past although they failed (skipped by
    /// policy or by an operator): a rebuild skips them too instead of halting.
    pub(crate) passed: std::collections::BTreeSet<es_core::EventId>,
    progress: Progress,
    /// The size of the next read ([`RunnerOptions::next_read`]); 0 before
    /// the first.
    read_size: usize,
}

impl<P: Projection, S, C> std::fmt::Debug for Runner<P, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("projection", &self.projection.name())
            .field("checkpoint", &self.checkpoint)
            .finish_non_exhaustive()
    }
}

impl<P: Projection, S: EventStore + KeyStore> Runner<P, S, Bincode> {
    /// A runner with the default codec and options.
    pub fn new(projection: P, sink: P::Sink, store: S, dead_letters: Arc<dyn DeadLetters>) -> Self {
        Self::with_codec(projection, sink, store, Bincode, dead_letters)
    }
}

impl<P: Projection, S: EventStore + KeyStore, C: Codec> Runner<P, S, C> {
    /// A runner whose store's events are encoded with `codec`.
    pub fn with_codec(
        projection: P,
        sink: P::Sink,
        store: S,
        codec: C,
        dead_letters: Arc<dyn DeadLetters>,
    ) -> Self {
        Self {
            projection: Arc::new(projection),
            sink,
            store,
            codec,
            crypto: None,
            dead_letters,
            options: RunnerOptions::default(),
            checkpoint: None,
            loaded: false,
            superseded: None,
            replaying: false,
            passed: std::collections::BTreeSet::new(),
            progress: Progress::new(),
            read_size: 0,
        }
    }

    /// Opens personal data with `crypto` (without it, events holding personal
    /// data go to the dead letters).
    #[must_use]
    pub fn with_crypto(mut self, crypto: Arc<Crypto>) -> Self {
        self.crypto = Some(crypto);
        self
    }

    /// Replaces the options.
    #[must_use]
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Marks every event this runner delivers as a replay
    /// ([`EventMeta::replaying`]): what a [`Rebuild`](crate::Rebuild) does.
    #[must_use]
    pub fn replaying(mut self) -> Self {
        self.replaying = true;
        self
    }

    /// The event store it reads.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// A handle to await the runner's progress (read-your-writes).
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// The sink.
    pub fn sink(&self) -> &P::Sink {
        &self.sink
    }

    /// The last committed checkpoint.
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.checkpoint
    }

    /// How far behind the head of the log the runner is: events still to read
    /// after its checkpoint (also published as `es_projection_lag_events`).
    pub async fn lag_events(&self) -> Result<u64, RunnerError> {
        let lag = self
            .store
            .count_after(self.checkpoint.unwrap_or(Checkpoint::START))
            .await?;
        metrics::gauge!("es_projection_lag_events", "projection" => self.projection.name().to_owned())
            .set(lag as f64);
        Ok(lag)
    }

    /// Reads, applies and commits one batch.
    pub async fn step(&mut self) -> Result<Step, RunnerError> {
        let name = self.projection.name().to_owned();
        if !self.loaded {
            self.checkpoint = self.retry_sink(|| self.sink.checkpoint(&name)).await?;
            self.loaded = true;
            self.progress.advance(self.checkpoint);
        }
        let from = self.checkpoint.unwrap_or(Checkpoint::START);
        let events = self.read(from).await?;
        let Some(last) = events.last().map(RecordedEvent::checkpoint) else {
            metrics::gauge!("es_projection_lag_seconds", "projection" => name).set(0.0);
            return Ok(Step::Idle);
        };
        let started = std::time::Instant::now();
        let newest = events.last().map(|e| e.metadata.recorded_at);
        let read = events.len();
        let span = tracing::info_span!("projection batch", projection = %name, events = read);
        async {
            let (batch, mut applied, mut halt) = self.build(&events).await?;
            let next = match &halt {
                Some((at, _)) => *at,
                None => Some(last),
            };
            if let Some(next) = next
                && Some(next) != self.checkpoint
            {
                match self.commit(batch, next).await {
                    Ok(true) => {}
                    // A rebuild switched generations: nothing was written; the
                    // next step reloads the checkpoint in the live generation.
                    Ok(false) => return Ok(Step::Committed { read, applied: 0 }),
                    // The sink refused the batch for good: find the event it
                    // refuses, and give it the projection's dead-letter policy
                    // like any poison event.
                    Err(RunnerError::Sink(SinkError::Failed { .. })) => {
                        let upto = next;
                        match self.isolate(&events, upto).await? {
                            Isolated::Done(n) => applied = n,
                            Isolated::Superseded => {
                                return Ok(Step::Committed { read, applied: 0 });
                            }
                            Isolated::Halted(n, error) => {
                                applied = n;
                                halt = Some((self.checkpoint, error));
                            }
                        }
                    }
                    Err(error) => return Err(error),
                }
            }
            metrics::histogram!("es_projection_batch_seconds", "projection" => name.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("es_projection_events_total", "projection" => name.clone())
                .increment(applied as u64);
            if let Some(newest) = newest {
                // How old the newest event of the batch is: the delay between a
                // write and its appearance in the read model.
                let lag = (Utc::now() - newest).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::gauge!("es_projection_lag_seconds", "projection" => name.clone()).set(lag);
            }
            if let Some((_, error)) = halt {
                return Err(error);
            }
            Ok(Step::Committed { read, applied })
        }
        .instrument(span)
        .await
    }

    /// Runs until `shutdown` resolves, finishing the batch in progress. When the
    /// log has nothing new, waits on `wakeup` (a store's notifications, or
    /// [`PollEvery`](es_core::PollEvery)). Returns the runner, to inspect or run
    /// again.
    pub async fn run(
        mut self,
        mut wakeup: impl es_core::Wakeup,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<Self, RunnerError> {
        tokio::pin!(shutdown);
        loop {
            let idle = matches!(self.step().await?, Step::Idle);
            if idle {
                tokio::select! {
                    () = &mut shutdown => return Ok(self),
                    () = wakeup.wait() => {}
                }
            } else if futures_ready(&mut shutdown).await {
                return Ok(self);
            }
        }
    }

    /// Reads the next batch, larger while the runner is behind
    /// ([`RunnerOptions::next_read`]).
    async fn read(&mut self, from: Checkpoint) -> Result<Vec<RecordedEvent>, RunnerError> {
        let size = match self.read_size {
            0 => self.options.batch_size.max(1),
            n => n,
        };
        let mut attempt = 0;
        loop {
            match self.store.read_all(from, size).await {
                Ok(events) => {
                    self.read_size = self.options.next_read(size, events.len());
                    return Ok(events);
                }
                Err(error) if error.is_unavailable() => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "event store unavailable; retrying");
                    tokio::time::sleep(self.options.backoff.delay(attempt)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Decodes and applies a batch. Returns the writes, how many changes were
    /// applied, and (when the policy halts) where to stop with which error.
    #[allow(clippy::type_complexity)]
    async fn build(
        &self,
        events: &[RecordedEvent],
    ) -> Result<
        (
            <P::Sink as Sink>::Batch,
            usize,
            Option<(Option<Checkpoint>, RunnerError)>,
        ),
        RunnerError,
    > {
        let mut batch = <P::Sink as Sink>::Batch::default();
        let mut applied = 0;
        let relevant: Vec<&RecordedEvent> = events.iter().filter(|e| self.reads(e)).collect();
        let decoded = self.decode(&relevant).await;
        let mut previous = self.checkpoint;
        for (recorded, decoded) in relevant.into_iter().zip(decoded) {
            let meta = EventMeta {
                stream_id: recorded.stream_id.clone(),
                version: recorded.version,
                position: recorded.position,
                checkpoint: recorded.checkpoint(),
                event_id: recorded.event_id,
                metadata: recorded.metadata.clone(),
                replaying: self.replaying,
            };
            let outcome = match decoded {
                Ok(Decoded::Event(event)) => self
                    .projection
                    .apply(
                        Change::Event {
                            event: &event,
                            meta: &meta,
                        },
                        &mut batch,
                    )
                    .map_err(|e| e.to_string()),
                Ok(Decoded::Forgotten(subject)) => self
                    .projection
                    .apply(
                        Change::Forgotten {
                            subject: &subject,
                            meta: &meta,
                        },
                        &mut batch,
                    )
                    .map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(()) => applied += 1,
                Err(error) => {
                    self.bury(recorded, &error).await?;
                    if self.options.failure_policy == FailurePolicy::Halt
                        && !self.passed.contains(&recorded.event_id)
                    {
                        let halted = RunnerError::Halted {
                            projection: self.projection.name().to_owned(),
                            event_id: recorded.event_id,
                            event_type: recorded.event_type.clone(),
                            error,
                        };
                        // Commit what came before the poison event, not past it.
                        return Ok((batch, applied, Some((previous, halted))));
                    }
                }
            }
            previous = Some(recorded.checkpoint());
        }
        Ok((batch, applied, None))
    }

    /// Commits `events` (up to the checkpoint `upto`) one event at a time,
    /// after the sink refused them as one batch: an event whose own commit is
    /// refused for good goes to the dead letters with the sink's error, and
    /// the policy decides (halt before it, or skip past it).
    async fn isolate(
        &mut self,
        events: &[RecordedEvent],
        upto: Checkpoint,
    ) -> Result<Isolated, RunnerError> {
        let mut applied = 0;
        for event in events.iter().take_while(|e| e.checkpoint() <= upto) {
            let one = std::slice::from_ref(event);
            let (batch, n, halt) = self.build(one).await?;
            if let Some((_, error)) = halt {
                // Refused before the sink (decoding, applying): already a dead
                // letter, and the policy is to halt.
                return Ok(Isolated::Halted(applied, error));
            }
            let at = event.checkpoint();
            match self.commit(batch, at).await {
                Ok(true) => applied += n,
                Ok(false) => return Ok(Isolated::Superseded),
                Err(RunnerError::Sink(error @ SinkError::Failed { .. })) => {
                    let message = format!("the read model refused it: {error}");
                    self.bury(event, &message).await?;
                    if self.options.failure_policy == FailurePolicy::Halt
                        && !self.passed.contains(&event.event_id)
                    {
                        return Ok(Isolated::Halted(
                            applied,
                            RunnerError::Halted {
                                projection: self.projection.name().to_owned(),
                                event_id: event.event_id,
                                event_type: event.event_type.clone(),
                                error: message,
                            },
                        ));
                    }
                    // Skipped: the checkpoint moves past it alone.
                    let empty = <P::Sink as Sink>::Batch::default();
                    if !self.commit(empty, at).await? {
                        return Ok(Isolated::Superseded);
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Ok(Isolated::Done(applied))
    }

    /// Whether the projection reads this event.
    fn reads(&self, event: &RecordedEvent) -> bool {
        if event.event_type.starts_with('$') {
            return true;
        }
        if let Some(prefix) = self.projection.stream_prefix()
            && !event.stream_id.as_str().starts_with(prefix)
        {
            return false;
        }
        <P::Event as Event>::TYPES
            .iter()
            .any(|t| t.name == event.event_type)
    }

    /// Decodes the relevant events in one pass (one key round trip); if that
    /// fails, one by one, to isolate the ones that do not decode.
    async fn decode(
        &self,
        events: &[&RecordedEvent],
    ) -> Vec<Result<Decoded<P::Event>, es_core::Error>> {
        let owned: Vec<RecordedEvent> = events
            .iter()
            .filter(|e| !e.event_type.starts_with('$'))
            .map(|e| (*e).clone())
            .collect();
        let mut app = match decode_events::<P::Event, C, S>(
            self.crypto.as_deref(),
            &self.store,
            &self.codec,
            &owned,
        )
        .await
        {
            Ok(decoded) => decoded.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(_) => {
                let mut one_by_one = Vec::with_capacity(owned.len());
                for event in &owned {
                    one_by_one.push(
                        decode_events::<P::Event, C, S>(
                            self.crypto.as_deref(),
                            &self.store,
                            &self.codec,
                            std::slice::from_ref(event),
                        )
                        .await
                        .and_then(|mut v| v.pop().ok_or(es_core::Error::EmptyAppend)),
                    );
                }
                one_by_one
            }
        }
        .into_iter();
        events
            .iter()
            .map(|e| {
                if e.event_type.starts_with('$') {
                    match SystemEvent::decode_recorded(e) {
                        Ok(Some(SystemEvent::SubjectForgotten { subject })) => {
                            Ok(Decoded::Forgotten(subject))
                        }
                        Ok(None) => Err(es_core::Error::UnknownEventType {
                            event_type: e.event_type.clone(),
                        }),
                        Err(error) => Err(error),
                    }
                } else {
                    app.next()
                        .unwrap_or(Err(es_core::Error::EmptyAppend))
                        .map(Decoded::Event)
                }
            })
            .collect()
    }

    async fn bury(&self, event: &RecordedEvent, error: &str) -> Result<(), RunnerError> {
        tracing::error!(
            projection = self.projection.name(),
            event_id = %event.event_id,
            event_type = %event.event_type,
            error,
            "event to the dead letters"
        );
        self.dead_letters
            .record(DeadLetter {
                projection: self.projection.name().to_owned(),
                checkpoint: event.checkpoint(),
                event_id: event.event_id,
                stream_id: event.stream_id.clone(),
                event_type: event.event_type.clone(),
                error: error.to_owned(),
                recorded_at: Utc::now(),
                replay: self.replaying,
            })
            .await?;
        metrics::counter!("es_projection_dead_letters_total", "projection" => self.projection.name().to_owned())
            .increment(1);
        Ok(())
    }

    /// Commits with retries; after an ambiguous failure, reads the checkpoint
    /// back to learn whether the commit happened. `false`: the generation was
    /// superseded and nothing was written (the next step reloads).
    async fn commit(
        &mut self,
        batch: <P::Sink as Sink>::Batch,
        next: Checkpoint,
    ) -> Result<bool, RunnerError> {
        let name = self.projection.name().to_owned();
        let expected = self.checkpoint;
        let mut attempt = 0;
        loop {
            match self.sink.commit(&name, batch.clone(), expected, next).await {
                Ok(()) => break,
                Err(SinkError::Fenced { projection }) => {
                    return Err(RunnerError::Fenced { projection });
                }
                Err(SinkError::Superseded {
                    projection,
                    generation,
                    live,
                }) => {
                    if self.superseded == Some(generation) {
                        return Err(RunnerError::Superseded {
                            projection,
                            generation,
                            live,
                        });
                    }
                    tracing::info!(
                        projection = %name,
                        generation,
                        live,
                        "the read model moved to a new generation; reloading the checkpoint"
                    );
                    self.superseded = Some(generation);
                    self.loaded = false;
                    return Ok(false);
                }
                Err(SinkError::Unavailable { message, .. }) => {
                    attempt += 1;
                    metrics::counter!("es_projection_retries_total", "projection" => name.clone())
                        .increment(1);
                    tracing::warn!(projection = %name, attempt, %message, "sink unavailable; retrying");
                    tokio::time::sleep(self.options.backoff.delay(attempt)).await;
                    match self.retry_sink(|| self.sink.checkpoint(&name)).await? {
                        stored if stored == Some(next) => break,
                        stored if stored == expected => {}
                        _ => return Err(RunnerError::Fenced { projection: name }),
                    }
                }
                Err(other) => return Err(RunnerError::Sink(other)),
            }
        }
        self.checkpoint = Some(next);
        self.superseded = None;
        self.progress.advance(self.checkpoint);
        Ok(true)
    }

    async fn retry_sink<T, Fut>(&self, call: impl Fn() -> Fut) -> Result<T, RunnerError>
    where
        Fut: std::future::Future<Output = Result<T, SinkError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(SinkError::Unavailable { message, .. }) => {
                    attempt += 1;
                    tracing::warn!(attempt, %message, "sink unavailable; retrying");
                    tokio::time::sleep(self.options.backoff.delay(attempt)).await;
                }
                Err(SinkError::Fenced { projection }) => {
                    return Err(RunnerError::Fenced { projection });
                }
                Err(other) => return Err(RunnerError::Sink(other)),
            }
        }
    }
}

/// What [`Runner::isolate`] came to.
enum Isolated {
    /// Every event committed or skipped; this many changes applied.
    Done(usize),
    /// A rebuild switched generations meanwhile: nothing more written.
    Superseded,
    /// Halted at a refused event, after applying this many changes.
    Halted(usize, RunnerError),
}

enum Decoded<E> {
    Event(E),
    Forgotten(es_core::SubjectId),
}

/// Whether `future` is already complete (without waiting).
async fn futures_ready<F: std::future::Future<Output = ()>>(
    future: &mut std::pin::Pin<&mut F>,
) -> bool {
    tokio::select! {
        biased;
        () = future.as_mut() => true,
        () = std::future::ready(()) => false,
    }
}
