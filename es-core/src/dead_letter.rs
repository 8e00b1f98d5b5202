//! Dead letters: events a projection could not decode or apply. The contract
//! lives in es-core so that stores keep them durably beside the events.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::{Checkpoint, EventId, StreamId};
use chrono::{DateTime, Utc};

/// An event a projection could not decode or apply, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The projection.
    pub projection: String,
    /// Where the event stands in the global order.
    pub checkpoint: Checkpoint,
    /// The event.
    pub event_id: EventId,
    /// Its stream.
    pub stream_id: StreamId,
    /// Its type name.
    pub event_type: String,
    /// The error (no personal data: errors never carry any).
    pub error: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Recorded by a rebuild's runner (replaying into a new generation), not
    /// by the live one: the live generation has not gone past it, so a later
    /// rebuild does not skip it as decided, and it stops the rebuild's switch
    /// unless the operator accepts it. Recording the event again from the
    /// live runner (or an accepted switch) clears it.
    pub replay: bool,
}

/// A boxed future, so that dead-letter stores can be held as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where dead letters are kept. Recording the same event twice keeps one (the
/// first error and time), which is a replay's only while every recording was.
pub trait DeadLetters: Send + Sync {
    /// Records a dead letter.
    fn record(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), crate::Error>>;

    /// The projection's dead letters, oldest first.
    fn list<'a>(
        &'a self,
        projection: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, crate::Error>>;

    /// Removes a dead letter (once retried or deliberately skipped); returns
    /// whether it existed.
    fn remove<'a>(
        &'a self,
        projection: &'a str,
        event_id: EventId,
    ) -> BoxFuture<'a, Result<bool, crate::Error>>;
}

/// Dead letters in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryDeadLetters {
    letters: Arc<Mutex<Vec<DeadLetter>>>,
}

impl MemoryDeadLetters {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }
}

impl DeadLetters for MemoryDeadLetters {
    fn record(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), crate::Error>> {
        Box::pin(async move {
            let mut letters = self
                .letters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match letters
                .iter_mut()
                .find(|l| l.projection == letter.projection && l.event_id == letter.event_id)
            {
                Some(kept) => kept.replay &= letter.replay,
                None => letters.push(letter),
            }
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        projection: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, crate::Error>> {
        Box::pin(async move {
            let letters = self
                .letters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(letters
                .iter()
                .filter(|l| l.projection == projection)
                .cloned()
                .collect())
        })
    }

    fn remove<'a>(
        &'a self,
        projection: &'a str,
        event_id: EventId,
    ) -> BoxFuture<'a, Result<bool, crate::Error>> {
        Box::pin(async move {
            let mut letters = self
                .letters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = letters.len();
            letters.retain(|l| !(l.projection == projection && l.event_id == event_id));
            Ok(letters.len() < before)
        })
    }
}
