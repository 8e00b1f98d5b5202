//! What this process knows of the runners it supervises: their state and a
//! handle on their progress, so that a command waiting for its write asks
//! memory, not the sink, when the runner is here.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use es_core::{Checkpoint, EventId};
use es_projections::Progress;
use serde::Serialize;

/// Where a supervised runner stands in this process
/// ([`Projections::runners`](super::Projections::runners)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunnerState {
    /// Waiting for the projection's lock: another process runs it.
    Standby,
    /// Holds the lock and follows the log.
    Active,
    /// Stopped at a poison event (in the dead letters); tried again now and
    /// then, and at once after `projections dead-letters retry|skip`.
    Halted(Halt),
    /// Failed for another reason; tried again after a backoff.
    Failed {
        /// Why.
        error: String,
    },
    /// Shut down.
    Stopped,
}

/// Where and why a projection halted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Halt {
    /// The event it could not decode or apply.
    pub event_id: EventId,
    /// Its type.
    pub event_type: String,
    /// Its stream.
    pub stream_id: String,
    /// Its place in the log (`commit:position`).
    pub checkpoint: String,
    /// The error.
    pub error: String,
}

#[derive(Debug, Default)]
pub(super) struct Local {
    runners: Mutex<HashMap<String, Supervised>>,
}

#[derive(Debug, Clone)]
struct Supervised {
    state: RunnerState,
    progress: Option<Progress>,
}

impl Local {
    pub(super) fn set(&self, name: &str, state: RunnerState, progress: Option<Progress>) {
        let halted = matches!(state, RunnerState::Halted(_));
        let active = matches!(state, RunnerState::Active);
        metrics::gauge!("es_projection_halted", "projection" => name.to_owned()).set(if halted {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("es_projection_runner_active", "projection" => name.to_owned())
            .set(if active { 1.0 } else { 0.0 });
        self.runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Supervised { state, progress });
    }

    pub(super) fn state(&self, name: &str) -> Option<RunnerState> {
        self.runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|s| s.state.clone())
    }

    pub(super) fn states(&self) -> Vec<(String, RunnerState)> {
        let mut all: Vec<_> = self
            .runners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, s)| (name.clone(), s.state.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The progress of the runner of `name` if it is active in this process.
    pub(super) fn active(&self, name: &str) -> Option<Progress> {
        let runners = self.runners.lock().unwrap_or_else(PoisonError::into_inner);
        let supervised = runners.get(name)?;
        match supervised.state {
            RunnerState::Active => supervised.progress.clone(),
            _ => None,
        }
    }

    /// The checkpoint of the runner of `name` if it is active here.
    pub(super) fn checkpoint(&self, name: &str) -> Option<Option<Checkpoint>> {
        self.active(name).map(|p| p.current())
    }
}
