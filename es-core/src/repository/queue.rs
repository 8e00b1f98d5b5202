//! Commands for one aggregate, in one process, take turns: they queue behind
//! each other instead of racing to the store and retrying each other's
//! conflicts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OwnedMutexGuard;

use crate::StreamId;

/// One turn-taking slot per stream that has a command in flight; a slot goes
/// when its last user does, so the map holds only streams in use.
#[derive(Debug, Default)]
pub(crate) struct StreamQueue {
    slots: Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<()>>>>,
}

/// A command's turn on its stream, held until it is dropped.
pub(crate) struct Turn<'a> {
    queue: &'a StreamQueue,
    stream: StreamId,
    slot: Arc<tokio::sync::Mutex<()>>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl StreamQueue {
    /// Waits for the turn on `stream` (first come, first served).
    pub(crate) async fn enter(&self, stream: &StreamId) -> Turn<'_> {
        let slot = Arc::clone(
            self.slots
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(stream.clone())
                .or_default(),
        );
        let guard = Arc::clone(&slot).lock_owned().await;
        Turn {
            queue: self,
            stream: stream.clone(),
            slot,
            guard: Some(guard),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut slots = self
            .queue
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // Nobody else waits for it (new users clone it under this lock):
        // the map's reference and ours are the last.
        if Arc::strong_count(&self.slot) == 2 {
            slots.remove(&self.stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StreamQueue;
    use crate::StreamId;

    #[tokio::test]
    async fn turns_are_taken_in_order_and_slots_go_with_their_users() {
        let queue = std::sync::Arc::new(StreamQueue::default());
        let stream = StreamId::new("account-1").unwrap();
        let first = queue.enter(&stream).await;
        let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for n in 0..3 {
            let (queue, stream, order) = (queue.clone(), stream.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = queue.enter(&stream).await;
                order.lock().unwrap().push(n);
            }));
            tokio::task::yield_now().await;
        }
        // Another stream is not held up.
        drop(queue.enter(&StreamId::new("account-2").unwrap()).await);
        assert!(order.lock().unwrap().is_empty());
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
        assert_eq!(queue.len(), 0);
    }
}
