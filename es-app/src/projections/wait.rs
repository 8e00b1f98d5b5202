//! Read-your-writes: [`Projections::wait_for`] returns once the projections
//! have passed a command's checkpoint, or says which lag and why.

use std::sync::Arc;
use std::time::Duration;

use es_core::Checkpoint;
use es_projections::{RunnerError, Step};
use serde::Serialize;
use tokio::time::Instant;

use super::local::{Halt, RunnerState};
use super::{Context, Drive, Projections, ProjectionsError, Registered};
use crate::ProjectionGuard;

/// How long the first pause between two looks at the checkpoints is; it
/// doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(20);
/// How often the wait asks the store about projections that others run: is
/// one halted, has its runner gone (then this process catches it up).
const RECHECK: Duration = Duration::from_millis(200);

/// Whether a write is visible in the read models ([`Projections::wait_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visibility {
    /// The projections that have not passed the write, with why; empty when
    /// every one has.
    pub lagging: Vec<Lag>,
}

impl Visibility {
    /// Whether every projection waited for has passed the write.
    pub fn visible(&self) -> bool {
        self.lagging.is_empty()
    }

    /// One line for people: which read models lag and why (empty when
    /// visible).
    pub fn describe(&self) -> String {
        self.lagging
            .iter()
            .map(|lag| match &lag.reason {
                LagReason::Behind => format!("{} is behind", lag.projection),
                LagReason::Halted(halt) => format!(
                    "{} is halted at event {} ({})",
                    lag.projection, halt.event_id, halt.event_type
                ),
                LagReason::Failed { error } => format!("{} failed: {error}", lag.projection),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A projection that had not passed the write when the wait ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lag {
    /// The projection.
    pub projection: String,
    /// Its checkpoint then (`commit:position`).
    pub checkpoint: Option<String>,
    /// Why.
    pub reason: LagReason,
}

/// Why a projection had not passed the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LagReason {
    /// Still behind when the time was up (busy, or held back by an open
    /// appending transaction).
    Behind,
    /// Halted at a poison event: it will not pass the write before an
    /// operator retries or skips the event.
    Halted(Halt),
    /// Catching it up here failed (the sink or the store is unavailable).
    Failed {
        /// Why.
        error: String,
    },
}

/// One projection being waited for.
struct Waiting {
    entry: Arc<dyn Registered>,
    name: String,
    /// Its runner, driven here, with the lock that makes it ours.
    owned: Option<(ProjectionGuard, Box<dyn Drive>)>,
    checkpoint: Option<Checkpoint>,
    state: State,
}

#[derive(PartialEq)]
enum State {
    /// Still to look at.
    Open,
    /// Done: passed the target (or, for a refresh, caught up here).
    Passed,
    /// A refresh of a projection that a runner follows: nothing to do.
    Followed,
    /// Done: it will not pass the target in this wait.
    Lagging(LagReason),
}

impl Waiting {
    fn is_open(&self) -> bool {
        self.state == State::Open
    }

    fn saw(&mut self, checkpoint: Option<Checkpoint>, target: Option<Checkpoint>) {
        self.checkpoint = checkpoint;
        if target.is_some_and(|t| checkpoint >= Some(t)) {
            self.state = State::Passed;
        }
    }

    async fn let_go(&mut self) {
        if let Some((guard, driver)) = self.owned.take() {
            drop(driver);
            self.entry.release().await;
            if let Err(error) = guard.release().await {
                tracing::warn!(projection = %self.name, error = %crate::report(&error), "releasing a runner lock failed");
            }
        }
    }
}

fn failed(error: &(dyn std::error::Error + 'static)) -> State {
    State::Lagging(LagReason::Failed {
        error: crate::report(error),
    })
}

impl Projections {
    /// Waits until every projection has passed `target` (a command's
    /// [`Executed::checkpoint`](es_core::Executed)), for at most `timeout`:
    /// read-your-writes, whoever runs the projections.
    ///
    /// A projection whose runner is active in this process
    /// ([`run_all`](Self::run_all)) is watched in memory; one that another
    /// process runs is watched through its checkpoint in the sink. A
    /// projection nobody runs (the embedded CLI used alone) is caught up
    /// here: its lock is taken without waiting (a lock that another holds is
    /// never waited for, so two processes cannot block each other) and its
    /// runner driven until it has passed `target`. Every lock taken is let go
    /// before this returns.
    ///
    /// Never fails: a write is written whatever this says. The answer lists
    /// the projections that lag, with why (behind, halted at a poison event,
    /// failed here); a halted projection is reported at once instead of
    /// waited for.
    ///
    /// ```
    /// use std::time::Duration;
    /// # use es_app::projections::{Context, Projections};
    /// # use es_core::Checkpoint;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// # store.migrate().await?;
    /// let cx = Context { store, crypto: None };
    /// let seen = Projections::new()
    ///     .wait_for(&cx, Checkpoint::START, Duration::from_secs(2))
    ///     .await;
    /// assert!(seen.visible());
    /// # Ok(()) }
    /// ```
    pub async fn wait_for(
        &self,
        cx: &Context,
        target: Checkpoint,
        timeout: Duration,
    ) -> Visibility {
        let entries = self.entries.iter().map(Arc::clone).collect();
        self.wait(cx, entries, Some(target), timeout).await
    }

    /// [`wait_for`](Self::wait_for) on the projections named.
    ///
    /// # Errors
    ///
    /// [`ProjectionsError::Unknown`] for a name not registered.
    pub async fn wait_for_some(
        &self,
        cx: &Context,
        names: &[&str],
        target: Checkpoint,
        timeout: Duration,
    ) -> Result<Visibility, ProjectionsError> {
        let entries = self.select(names)?;
        Ok(self.wait(cx, entries, Some(target), timeout).await)
    }

    /// Before a read: catches up the projections named that nobody runs (as
    /// far as the log goes now, for at most `timeout`), and says which are
    /// halted or failed. Projections that a runner follows are not waited
    /// for.
    ///
    /// # Errors
    ///
    /// [`ProjectionsError::Unknown`] for a name not registered.
    pub async fn refresh(
        &self,
        cx: &Context,
        names: &[&str],
        timeout: Duration,
    ) -> Result<Visibility, ProjectionsError> {
        let entries = self.select(names)?;
        Ok(self.wait(cx, entries, None, timeout).await)
    }

    fn select(&self, names: &[&str]) -> Result<Vec<Arc<dyn Registered>>, ProjectionsError> {
        names
            .iter()
            .map(|name| self.find(name).map(Arc::clone))
            .collect()
    }

    /// The wait; `target` `None` is a refresh.
    async fn wait(
        &self,
        cx: &Context,
        entries: Vec<Arc<dyn Registered>>,
        target: Option<Checkpoint>,
        timeout: Duration,
    ) -> Visibility {
        let deadline = Instant::now() + timeout;
        let mut waiting: Vec<Waiting> = entries
            .into_iter()
            .map(|entry| Waiting {
                name: entry.name(),
                entry,
                owned: None,
                checkpoint: None,
                state: State::Open,
            })
            .collect();
        let mut pause = FIRST_PAUSE;
        let mut recheck = Instant::now();
        loop {
            let now = Instant::now();
            let look_around = now >= recheck;
            if look_around {
                recheck = now + RECHECK;
            }
            for w in waiting.iter_mut().filter(|w| w.is_open()) {
                self.advance(cx, w, target, deadline, look_around).await;
            }
            if waiting.iter().all(|w| !w.is_open()) || Instant::now() >= deadline {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
        let mut lagging = Vec::new();
        for mut w in waiting {
            w.let_go().await;
            let reason = match w.state {
                State::Passed | State::Followed => continue,
                State::Open => LagReason::Behind,
                State::Lagging(reason) => reason,
            };
            lagging.push(Lag {
                projection: w.name,
                checkpoint: w.checkpoint.map(|c| c.to_string()),
                reason,
            });
        }
        Visibility { lagging }
    }

    /// One look at `w`: its checkpoint, and the work to move it when it is
    /// ours. `look_around`: also try to own it, and ask the store whether it
    /// is halted.
    async fn advance(
        &self,
        cx: &Context,
        w: &mut Waiting,
        target: Option<Checkpoint>,
        deadline: Instant,
        look_around: bool,
    ) {
        match self.local.state(&w.name) {
            Some(RunnerState::Active) => {
                // A runner of this process: in memory.
                let checkpoint = self.local.checkpoint(&w.name).flatten();
                w.saw(checkpoint, target);
                if target.is_none() {
                    w.state = State::Followed;
                }
                return;
            }
            // This process's supervisor is waiting for the lock: another
            // process runs it. Trying the lock here too would only open and
            // close a connection per look.
            Some(RunnerState::Standby) => {
                watch_elsewhere(cx, w, target, look_around).await;
                return;
            }
            Some(RunnerState::Halted(halt)) => {
                if let Ok(checkpoint) = w.entry.checkpoint().await {
                    w.checkpoint = checkpoint;
                }
                w.state = State::Lagging(LagReason::Halted(halt));
                return;
            }
            _ => {}
        }
        if w.owned.is_none() && look_around {
            match cx.store.try_lock_projection(&w.name).await {
                Ok(Some(guard)) => {
                    // Halted: driving it would only meet the poison event
                    // again (and log it again). Said at once instead.
                    match w.entry.halt(cx).await {
                        Ok(Some(halt)) => {
                            if let Ok(checkpoint) = w.entry.checkpoint().await {
                                w.checkpoint = checkpoint;
                            }
                            w.state = State::Lagging(LagReason::Halted(halt));
                            w.owned = Some((guard, w.entry.driver(cx)));
                            return;
                        }
                        Ok(None) => {}
                        Err(error) => {
                            w.state = failed(&error);
                            w.owned = Some((guard, w.entry.driver(cx)));
                            return;
                        }
                    }
                    w.owned = Some((guard, w.entry.driver(cx)));
                }
                Ok(None) => {}
                Err(error) => {
                    w.state = failed(&error);
                    return;
                }
            }
        }
        if let Some((guard, mut driver)) = w.owned.take() {
            // Ours: drive it until it passes the target or the log ends.
            let outcome = loop {
                match driver.step().await {
                    Ok(Step::Committed { .. }) => {
                        w.saw(driver.checkpoint(), target);
                        if !w.is_open() || Instant::now() >= deadline {
                            break Ok(());
                        }
                    }
                    Ok(Step::Idle) => {
                        w.saw(driver.checkpoint(), target);
                        if target.is_none() {
                            w.state = State::Passed;
                        }
                        break Ok(());
                    }
                    Err(error) => break Err(error),
                }
            };
            w.owned = Some((guard, driver));
            match outcome {
                Ok(()) => {}
                Err(RunnerError::Halted { .. }) => {
                    w.checkpoint = w.owned.as_ref().and_then(|(_, d)| d.checkpoint());
                    w.state = match w.entry.halt(cx).await {
                        Ok(Some(halt)) => State::Lagging(LagReason::Halted(halt)),
                        Ok(None) => State::Lagging(LagReason::Behind),
                        Err(error) => failed(&error),
                    };
                }
                // Another runner took over: watch it instead.
                Err(RunnerError::Fenced { .. }) => w.let_go().await,
                Err(error) => w.state = failed(&error),
            }
            return;
        }
        // Another process runs it.
        watch_elsewhere(cx, w, target, look_around).await;
    }
}

/// A projection another process runs: its checkpoint in the sink (nothing to
/// do for a refresh), and now and then whether it is halted.
async fn watch_elsewhere(
    cx: &Context,
    w: &mut Waiting,
    target: Option<Checkpoint>,
    look_around: bool,
) {
    if target.is_none() {
        w.state = State::Followed;
    } else {
        match w.entry.checkpoint().await {
            Ok(checkpoint) => w.saw(checkpoint, target),
            Err(error) => {
                w.state = failed(&error);
                return;
            }
        }
    }
    if look_around && (w.is_open() || w.state == State::Followed) {
        match w.entry.halt(cx).await {
            Ok(Some(halt)) => w.state = State::Lagging(LagReason::Halted(halt)),
            Ok(None) => {}
            Err(error) => w.state = failed(&error),
        }
    }
}
