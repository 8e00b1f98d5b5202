//! Process managers (sagas): react to events by sending commands, with the
//! checkpoint of a read model and command ids derived from the triggering
//! event, so that a crash and a redelivery never act twice.
//!
//! A [`ProcessManager`] runs on the ordinary [`Runner`](crate::Runner): the
//! [`Reactions`] projection hands each event to the [`Reactor`] sink, whose
//! commit calls [`ProcessManager::react`] for every event of the batch, in
//! order, and then moves the checkpoint in a sink of the application's choice
//! (a key-value read model). Everything the runner offers comes with it: the
//! lock that keeps one runner per process manager, wake-ups, retries behind
//! the circuit breaker, progress and lag.
//!
//! Delivery is at least once: a batch whose reactions ran but whose checkpoint
//! did not move (a crash, a lost connection) is delivered again. Reactions are
//! made idempotent by sending every command with a key from
//! [`Reaction::key`], the same on every delivery of that event: the event
//! store returns the first result and writes nothing the second time.

use std::sync::Arc;

use es_core::{Checkpoint, Event, Generations, IdempotencyKey, Sink, SinkError, Switch};

use crate::{Change, EventMeta, Projection, ProjectionError};

/// Why a reaction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReactionError {
    /// Something it needs is unreachable (the store, a service): the runner
    /// delivers the batch again after a backoff.
    #[error("reaction unavailable: {0}")]
    Unavailable(String),
    /// Retrying will not help (a bug, data the manager cannot handle): the
    /// runner halts at this batch with the message, and nothing after it runs.
    #[error("reaction failed: {0}")]
    Failed(String),
}

impl ReactionError {
    /// The error that a store failure maps to: [`Unavailable`](Self::Unavailable)
    /// when a retry may fix it (unreachable, or a conflict that outlasted the
    /// repository's retries), [`Failed`](Self::Failed) otherwise.
    ///
    /// ```
    /// use es_projections::ReactionError;
    ///
    /// let down = es_core::Error::Unavailable { message: "connection reset".into(), source: None };
    /// assert!(matches!(ReactionError::from_store(&down), ReactionError::Unavailable(_)));
    /// ```
    pub fn from_store(error: &es_core::Error) -> Self {
        let message = error.to_string();
        if error.is_unavailable() || error.is_conflict() {
            Self::Unavailable(message)
        } else {
            Self::Failed(message)
        }
    }
}

/// The event a reaction answers, and the keys for the commands it sends.
#[derive(Debug, Clone)]
pub struct Reaction {
    process: String,
    meta: EventMeta,
}

impl Reaction {
    /// The reaction of process manager `process` to the event at `meta` (the
    /// reactor builds these; a saga's unit tests build their own).
    pub fn new(process: impl Into<String>, meta: EventMeta) -> Self {
        Self {
            process: process.into(),
            meta,
        }
    }

    /// The triggering event's place, id and metadata.
    pub fn meta(&self) -> &EventMeta {
        &self.meta
    }

    /// The idempotency key of the step named `step` of this reaction: the
    /// same on every delivery of the event, distinct across process managers,
    /// events and steps.
    ///
    /// ```
    /// # use es_projections::{EventMeta, Reaction};
    /// # fn demo(reaction: &Reaction) {
    /// let debit = reaction.key("debit");
    /// assert_ne!(debit, reaction.key("credit"));
    /// assert_eq!(debit, reaction.key("debit"));
    /// # }
    /// ```
    pub fn key(&self, step: &str) -> IdempotencyKey {
        let key = format!("{}/{}/{step}", self.process, self.meta.event_id);
        // Process names and step labels come from code, not from users; a key
        // that does not validate (too long, a control character) is a bug the
        // first test run shows.
        IdempotencyKey::new(key).unwrap_or_else(|error| {
            panic!("process manager `{}`: step `{step}`: {error}", self.process)
        })
    }
}

/// A process manager: turns events into commands.
///
/// `react` runs after the event is durable, once per delivery; it must send
/// each command with [`Reaction::key`] so that a second delivery is a no-op.
/// Replays (a rebuild's) are never delivered.
///
/// ```
/// use es_core::Event;
/// use es_projections::{ProcessManager, Reaction, ReactionError};
///
/// #[derive(Debug, Clone, Event)]
/// enum OrderEvent {
///     Placed { total: u64 },
/// }
///
/// struct Billing;
///
/// impl ProcessManager for Billing {
///     type Event = OrderEvent;
///
///     fn name(&self) -> &str {
///         "billing"
///     }
///
///     async fn react(&self, event: &OrderEvent, reaction: &Reaction) -> Result<(), ReactionError> {
///         let OrderEvent::Placed { total } = event;
///         // repository.execute_with(…, CommandOptions::idempotent(reaction.key("charge")))
///         let _ = (total, reaction.key("charge"));
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a process manager",
    note = "implement `es_projections::ProcessManager` (name, react)"
)]
pub trait ProcessManager: Send + Sync + 'static {
    /// The events it reacts to.
    type Event: Event + Clone;

    /// A stable name: the key of its checkpoint, and the prefix of its
    /// command keys.
    fn name(&self) -> &str;

    /// Only streams whose id starts with this are read.
    fn stream_prefix(&self) -> Option<&str> {
        None
    }

    /// Reacts to one event: sends commands keyed with `reaction.key(…)`.
    fn react(
        &self,
        event: &Self::Event,
        reaction: &Reaction,
    ) -> impl Future<Output = Result<(), ReactionError>> + Send;
}

/// The projection side of a process manager: queues each live event for the
/// [`Reactor`]. Give it to a [`Runner`](crate::Runner) with the reactor as its
/// sink.
pub struct Reactions<M, K> {
    manager: Arc<M>,
    _checkpoints: std::marker::PhantomData<fn() -> K>,
}

impl<M, K> Reactions<M, K> {
    /// The projection of `manager`.
    pub fn new(manager: Arc<M>) -> Self {
        Self {
            manager,
            _checkpoints: std::marker::PhantomData,
        }
    }
}

impl<M: ProcessManager, K> std::fmt::Debug for Reactions<M, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactions")
            .field("manager", &self.manager.name())
            .finish()
    }
}

/// One event waiting for its reaction.
#[derive(Debug, Clone)]
pub struct Pending<E> {
    event: E,
    meta: EventMeta,
}

/// The events of one batch, in log order.
#[derive(Debug, Clone)]
pub struct PendingBatch<E>(Vec<Pending<E>>);

impl<E> Default for PendingBatch<E> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<M, K> Projection for Reactions<M, K>
where
    M: ProcessManager,
    K: Sink + Generations + Send + Sync + 'static,
{
    type Event = M::Event;
    type Sink = Reactor<M, K>;

    fn name(&self) -> &str {
        self.manager.name()
    }

    fn stream_prefix(&self) -> Option<&str> {
        self.manager.stream_prefix()
    }

    fn apply(
        &self,
        change: Change<'_, M::Event>,
        writes: &mut PendingBatch<M::Event>,
    ) -> Result<(), ProjectionError> {
        // A replay re-reads events that were reacted to already; a forgotten
        // subject concerns read models, not the commands already sent.
        if let Change::Event { event, meta } = change
            && !meta.replaying
        {
            writes.0.push(Pending {
                event: event.clone(),
                meta: meta.clone(),
            });
        }
        Ok(())
    }
}

/// The sink side of a process manager: runs the reactions of a batch, then
/// moves the checkpoint in `K` (with an empty batch of `K`'s writes).
pub struct Reactor<M, K> {
    manager: Arc<M>,
    checkpoints: K,
}

impl<M, K: Clone> Clone for Reactor<M, K> {
    fn clone(&self) -> Self {
        Self {
            manager: Arc::clone(&self.manager),
            checkpoints: self.checkpoints.clone(),
        }
    }
}

impl<M: ProcessManager, K> std::fmt::Debug for Reactor<M, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reactor")
            .field("manager", &self.manager.name())
            .finish_non_exhaustive()
    }
}

impl<M, K> Reactor<M, K> {
    /// Reactions of `manager`, with its checkpoint kept in `checkpoints`.
    pub fn new(manager: Arc<M>, checkpoints: K) -> Self {
        Self {
            manager,
            checkpoints,
        }
    }

    /// Where the checkpoint is kept.
    pub fn checkpoints(&self) -> &K {
        &self.checkpoints
    }
}

impl<M, K> Sink for Reactor<M, K>
where
    M: ProcessManager,
    K: Sink + Send + Sync,
{
    type Batch = PendingBatch<M::Event>;

    async fn checkpoint(&self, projection: &str) -> Result<Option<Checkpoint>, SinkError> {
        self.checkpoints.checkpoint(projection).await
    }

    async fn release(&self) {
        self.checkpoints.release().await;
    }

    async fn commit(
        &self,
        projection: &str,
        batch: PendingBatch<M::Event>,
        expected: Option<Checkpoint>,
        next: Checkpoint,
    ) -> Result<(), SinkError> {
        // A runner that another one fenced out must not act: it checks before
        // reacting. (Reacting twice would be harmless, keys make it a no-op,
        // but a stale runner has no business sending anything.)
        if !batch.0.is_empty() && self.checkpoints.checkpoint(projection).await? != expected {
            return Err(SinkError::Fenced {
                projection: projection.to_owned(),
            });
        }
        for pending in batch.0 {
            let reaction = Reaction {
                process: projection.to_owned(),
                meta: pending.meta,
            };
            self.manager
                .react(&pending.event, &reaction)
                .await
                .map_err(|error| match error {
                    ReactionError::Unavailable(message) => SinkError::Unavailable {
                        message: format!(
                            "reaction to event {} of `{}`: {message}",
                            reaction.meta.event_id, reaction.meta.stream_id
                        ),
                        source: None,
                    },
                    ReactionError::Failed(message) => SinkError::Failed {
                        message: format!(
                            "reaction to event {} of `{}`: {message}",
                            reaction.meta.event_id, reaction.meta.stream_id
                        ),
                        source: None,
                    },
                })?;
        }
        self.checkpoints
            .commit(projection, K::Batch::default(), expected, next)
            .await
    }
}

/// A process manager has no read model to rebuild, and a replay does not
/// react: a rebuilt generation would move the checkpoint past events never
/// reacted to. It is not [`rebuildable`](Generations::rebuildable), so a
/// rebuild is refused before it builds anything, and a switch is refused as
/// well; the checkpoint's own generation is followed as usual.
impl<M, K> Generations for Reactor<M, K>
where
    M: ProcessManager,
    K: Generations + Send + Sync,
{
    fn rebuildable(&self) -> bool {
        false
    }

    fn live_generation(&self) -> impl Future<Output = Result<u64, SinkError>> + Send {
        self.checkpoints.live_generation()
    }

    fn generations(&self) -> impl Future<Output = Result<Vec<u64>, SinkError>> + Send {
        self.checkpoints.generations()
    }

    fn at_generation(&self, generation: u64) -> Self {
        Self {
            manager: Arc::clone(&self.manager),
            checkpoints: self.checkpoints.at_generation(generation),
        }
    }

    async fn switch_generation(
        &self,
        projection: &str,
        _from: u64,
        _to: u64,
    ) -> Result<Switch, SinkError> {
        Err(SinkError::Failed {
            message: format!(
                "`{projection}` is a process manager: it reacts to each event once and cannot be rebuilt"
            ),
            source: None,
        })
    }

    fn drop_generation(
        &self,
        generation: u64,
    ) -> impl Future<Output = Result<(), SinkError>> + Send {
        self.checkpoints.drop_generation(generation)
    }
}
