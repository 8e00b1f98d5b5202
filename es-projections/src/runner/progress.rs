//! Read-your-writes: await a runner's checkpoint passing a command's.

use std::time::Duration;

use es_core::Checkpoint;
use tokio::sync::watch;

/// A handle on a runner's committed checkpoint.
///
/// A command returns the checkpoint of its last event
/// ([`Executed::checkpoint`](es_core::Executed)); [`wait_for`](Self::wait_for)
/// returns once the projection has committed past it, so a read of the
/// projection then sees the command's effect.
#[derive(Debug, Clone)]
pub struct Progress {
    sender: std::sync::Arc<watch::Sender<Option<Checkpoint>>>,
}

/// The runner did not reach the checkpoint in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the projection did not reach the awaited checkpoint within {0:?}")]
pub struct WaitError(pub Duration);

impl Progress {
    pub(crate) fn new() -> Self {
        Self {
            sender: std::sync::Arc::new(watch::channel(None).0),
        }
    }

    pub(crate) fn advance(&self, checkpoint: Option<Checkpoint>) {
        self.sender.send_replace(checkpoint);
    }

    /// The last committed checkpoint.
    pub fn current(&self) -> Option<Checkpoint> {
        *self.sender.borrow()
    }

    /// Waits until the committed checkpoint is at or past `checkpoint`.
    pub async fn wait_for(
        &self,
        checkpoint: Checkpoint,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        let mut receiver = self.sender.subscribe();
        let reached = receiver.wait_for(|current| current.is_some_and(|c| c >= checkpoint));
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(WaitError(timeout)),
        }
    }
}
