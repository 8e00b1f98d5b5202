//! [`Projection`]: turns events into writes on a sink.

use es_core::{Checkpoint, Event, EventId, Metadata, Position, StreamId, StreamVersion, SubjectId};

use crate::Sink;

/// Where an event stands, delivered with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    /// The event's stream.
    pub stream_id: StreamId,
    /// Its version in the stream.
    pub version: StreamVersion,
    /// Its global position.
    pub position: Position,
    /// Its place in the global order (what the runner's checkpoint moves to).
    pub checkpoint: Checkpoint,
    /// Its id: a stable key for idempotent side effects.
    pub event_id: EventId,
    /// Its metadata.
    pub metadata: Metadata,
    /// Whether the event is being replayed into a generation that a rebuild
    /// builds (it was, or is being, applied live as well). Side effects that
    /// must happen once, like sending an email, skip replays.
    pub replaying: bool,
}

/// What a projection is asked to apply.
#[derive(Debug)]
pub enum Change<'a, E> {
    /// An event of the projection's type (personal data opened, or shredded once
    /// its subject was forgotten).
    Event {
        /// The decoded event.
        event: &'a E,
        /// Where it stands.
        meta: &'a EventMeta,
    },
    /// A subject was forgotten: purge everything held about it.
    Forgotten {
        /// The forgotten subject.
        subject: &'a SubjectId,
        /// Where the system event stands.
        meta: &'a EventMeta,
    },
}

/// Why a projection could not apply a change: the event goes to the dead
/// letters (or halts the runner, per its [`FailurePolicy`](crate::FailurePolicy)).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ProjectionError {
    message: String,
}

impl ProjectionError {
    /// An error with a message (no personal data: it is stored with the dead
    /// letter).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// A read model: names itself, says what it reads, and turns changes into
/// writes on its sink.
///
/// `apply` is synchronous and does no IO: it only adds writes to the batch the
/// runner commits, with the checkpoint, in one atomic step. Replaying the same
/// changes must produce the same writes.
///
/// ```
/// use es_core::{Event, SubjectId};
/// use es_projections::{Change, KvBatch, MemoryKv, Projection, ProjectionError};
///
/// #[derive(Debug, Clone, Event)]
/// enum AccountEvent {
///     Deposited { amount: i64 },
/// }
///
/// struct Balances;
///
/// impl Projection for Balances {
///     type Event = AccountEvent;
///     type Sink = MemoryKv;
///
///     fn name(&self) -> &str {
///         "balances"
///     }
///
///     fn apply(&self, change: Change<'_, AccountEvent>, writes: &mut KvBatch) -> Result<(), ProjectionError> {
///         if let Change::Event { event: AccountEvent::Deposited { amount }, meta } = change {
///             writes.incr_by(format!("balance:{}", meta.stream_id), *amount);
///         }
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a projection",
    note = "implement `es_projections::Projection` (name, apply)"
)]
pub trait Projection: Send + Sync + 'static {
    /// The application's event type it reads.
    type Event: Event;
    /// Where its writes go.
    type Sink: Sink;

    /// A stable name: the key of its checkpoint and dead letters.
    fn name(&self) -> &str;

    /// Only streams whose id starts with this are read (`None`: all streams
    /// whose event types `Self::Event` knows). System events always arrive.
    fn stream_prefix(&self) -> Option<&str> {
        None
    }

    /// Adds the writes for one change to the batch.
    fn apply(
        &self,
        change: Change<'_, Self::Event>,
        writes: &mut <Self::Sink as Sink>::Batch,
    ) -> Result<(), ProjectionError>;
}
