//! Dead letters: events a projection could not decode or apply.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use es_core::{Checkpoint, EventId, StreamId};

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
}

/// A boxed future, so that dead-letter stores can be held as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where dead letters are kept. Recording the same event twice keeps one.
pub trait DeadLetters: Send + Sync {
    /// Records a dead letter.
    fn record(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), es_core::Error>>;

    /// The projection's dead letters, oldest first.
    fn list<'a>(
        &'a self,
        projection: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, es_core::Error>>;
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
    fn record(&self, letter: DeadLetter) -> BoxFuture<'_, Result<(), es_core::Error>> {
        Box::pin(async move {
            let mut letters = self
                .letters
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !letters
                .iter()
                .any(|l| l.projection == letter.projection && l.event_id == letter.event_id)
            {
                letters.push(letter);
            }
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        projection: &'a str,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, es_core::Error>> {
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
}
