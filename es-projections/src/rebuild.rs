//! [`Rebuild`]: a new generation of a read model built beside the live one,
//! then switched to atomically; readers never see an empty or half-built model.

use std::time::{Duration, Instant};

use es_core::{Checkpoint, Codec, EventStore, Generations, KeyStore, Sink, SinkError, Switch};

use crate::{Projection, Runner, RunnerError, Step};

/// How many times a rebuild catches up again when the live generation moved
/// ahead between its last batch and the switch, before giving up.
const SWITCH_ATTEMPTS: u32 = 1000;

/// Where a rebuild stands, reported after every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The projection.
    pub projection: String,
    /// The generation being built.
    pub generation: u64,
    /// Events read so far (including those the projection does not read).
    pub read: u64,
    /// Events between the generation's checkpoint and the head of the log when
    /// the rebuild started: what `read` moves toward (new events make it
    /// overshoot).
    pub target: u64,
    /// Since the rebuild started.
    pub elapsed: Duration,
}

impl RebuildProgress {
    /// Events read per second so far.
    pub fn rate(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.read as f64 / seconds
        } else {
            0.0
        }
    }

    /// The estimated time left to reach `target`, at the rate so far.
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (rate > 0.0)
            .then(|| Duration::from_secs_f64(self.target.saturating_sub(self.read) as f64 / rate))
    }
}

/// What a finished rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The projection.
    pub projection: String,
    /// The generation that was live before.
    pub from: u64,
    /// The generation now live.
    pub to: u64,
    /// Whether it resumed a rebuild that had stopped part way.
    pub resumed: bool,
    /// Events read.
    pub read: u64,
    /// The new generation's checkpoint at the switch.
    pub checkpoint: Option<Checkpoint>,
    /// Generations deleted: the old live one and abandoned rebuilds.
    pub dropped: Vec<u64>,
    /// How long it took.
    pub elapsed: Duration,
}

/// Why a rebuild stopped. The live generation is untouched by every one of
/// them; running the rebuild again resumes where it stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RebuildError {
    /// Building the new generation failed (a poison event under
    /// [`FailurePolicy::Halt`](crate::FailurePolicy), the store, the sink).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The sink failed while listing, switching or dropping generations.
    #[error("rebuilding projection `{projection}`: {source}")]
    Sink {
        /// The projection.
        projection: String,
        /// The sink's error.
        #[source]
        source: SinkError,
    },
    /// Another rebuild switched the live generation first.
    #[error("another rebuild of projection `{projection}` switched to generation {live} first")]
    Overtaken {
        /// The projection.
        projection: String,
        /// The generation it made live.
        live: u64,
    },
    /// The projection's sink cannot be rebuilt from a replay (a process
    /// manager's): nothing was built.
    #[error(
        "projection `{projection}` cannot be rebuilt: its sink does not rebuild from a replay (a process manager reacts to each event once)"
    )]
    NotRebuildable {
        /// The projection.
        projection: String,
    },
    /// The live generation kept moving ahead of the new one.
    #[error("projection `{projection}`: the rebuild could not catch up with the live generation")]
    CannotCatchUp {
        /// The projection.
        projection: String,
    },
    /// The new generation went past events that failed (in the dead letters,
    /// recorded by this rebuild) where the live generation did not: it is
    /// incomplete, and is not switched to unless accepted
    /// ([`Rebuild::accept_dead_letters`]). It stays, to resume or restart.
    #[error(
        "projection `{projection}`: generation {generation} skipped {count} events that failed (see the dead letters); it is not switched to. Fix the cause and run the rebuild again, or accept them"
    )]
    Incomplete {
        /// The projection.
        projection: String,
        /// The generation built.
        generation: u64,
        /// How many events it skipped.
        count: usize,
    },
}

type ProgressHook = Box<dyn FnMut(&RebuildProgress) + Send>;

/// Rebuilds a projection's read model without downtime: builds a new
/// generation from the start of the log through a runner pinned to it, catches
/// up with the head, switches the live generation atomically (only when the new
/// one is at least as far as the live one), then drops the old generation.
///
/// Readers go on reading the live generation throughout. The live runner, if
/// one is running, keeps it current until the switch; its next commit after the
/// switch is refused as superseded, and it carries on in the new generation
/// from there. A rebuild that stops (a crash, a kill, an error) leaves the live
/// generation untouched; the next rebuild resumes the generation it was
/// building from its checkpoint (or, with [`restart`](Self::restart), drops it
/// and starts over).
///
/// Events reach the projection marked [`replaying`](crate::EventMeta::replaying).
/// An event that fails and that the live generation went past (it is in the
/// dead letters, behind the live checkpoint: skipped by policy or by an
/// operator) is skipped again, whatever the failure policy, so the rebuild
/// builds the model the live generation has.
///
/// ```
/// use std::sync::Arc;
/// use es_core::{Event, Generations, MemoryStore};
/// use es_projections::{Change, KvBatch, MemoryDeadLetters, MemoryKv, Projection, ProjectionError, Runner};
///
/// #[derive(Debug, Clone, Event)]
/// enum Counted {
///     Ticked,
/// }
///
/// struct Ticks;
///
/// impl Projection for Ticks {
///     type Event = Counted;
///     type Sink = MemoryKv;
///     fn name(&self) -> &str {
///         "ticks"
///     }
///     fn apply(&self, _: Change<'_, Counted>, writes: &mut KvBatch) -> Result<(), ProjectionError> {
///         writes.incr_by("ticks", 1);
///         Ok(())
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let (store, kv) = (MemoryStore::new(), MemoryKv::new());
/// let report = Runner::new(Ticks, kv.clone(), store, Arc::new(MemoryDeadLetters::new()))
///     .rebuild()
///     .run()
///     .await?;
/// assert_eq!((report.from, report.to), (1, 2));
/// assert_eq!(kv.live_generation().await?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Rebuild<P: Projection, S, C> {
    runner: Runner<P, S, C>,
    restart: bool,
    accept_dead_letters: bool,
    on_progress: Option<ProgressHook>,
}

impl<P: Projection, S, C> std::fmt::Debug for Rebuild<P, S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuild")
            .field("runner", &self.runner)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

impl<P, S, C> Runner<P, S, C>
where
    P: Projection,
    P::Sink: Generations,
    S: EventStore + KeyStore,
    C: Codec,
{
    /// A rebuild of this runner's projection into a new generation of its
    /// sink, with this runner's codec, crypto, dead letters and options.
    pub fn rebuild(self) -> Rebuild<P, S, C> {
        Rebuild {
            runner: self,
            restart: false,
            accept_dead_letters: false,
            on_progress: None,
        }
    }
}

impl<P, S, C> Rebuild<P, S, C>
where
    P: Projection,
    P::Sink: Generations,
    S: EventStore + KeyStore,
    C: Codec,
{
    /// Drops a rebuild in progress and starts from the beginning instead of
    /// resuming it.
    #[must_use]
    pub fn restart(mut self, restart: bool) -> Self {
        self.restart = restart;
        self
    }

    /// Switches to the new generation even when it went past events that
    /// failed during the rebuild (under
    /// [`FailurePolicy::SkipAndRecord`](crate::FailurePolicy)): the
    /// operator's explicit decision. The dead letters then become the live
    /// generation's record, as if the live runner had skipped them. Without
    /// it, such a rebuild ends in [`RebuildError::Incomplete`].
    #[must_use]
    pub fn accept_dead_letters(mut self, accept: bool) -> Self {
        self.accept_dead_letters = accept;
        self
    }

    /// Calls `hook` after every batch (for a progress bar or log lines).
    #[must_use]
    pub fn on_progress(mut self, hook: impl FnMut(&RebuildProgress) + Send + 'static) -> Self {
        self.on_progress = Some(Box::new(hook));
        self
    }

    /// Builds, switches and drops; returns what it did.
    pub async fn run(mut self) -> Result<RebuildReport, RebuildError> {
        let started = Instant::now();
        let name = self.runner.projection.name().to_owned();
        let live_sink = self.runner.sink.clone();
        let sink_error = |source| RebuildError::Sink {
            projection: name.clone(),
            source,
        };
        if !live_sink.rebuildable() {
            return Err(RebuildError::NotRebuildable { projection: name });
        }
        let live = live_sink.live_generation().await.map_err(sink_error)?;
        let existing = live_sink.generations().await.map_err(sink_error)?;
        let pending: Vec<u64> = existing.iter().copied().filter(|g| *g > live).collect();
        let (to, resumed) = match pending.last() {
            Some(&last) if !self.restart => (last, true),
            _ => (
                existing.iter().copied().max().unwrap_or(0).max(live) + 1,
                false,
            ),
        };
        let mut dropped = Vec::new();
        for generation in pending.into_iter().filter(|g| *g != to) {
            live_sink
                .drop_generation(generation)
                .await
                .map_err(sink_error)?;
            dropped.push(generation);
        }
        tracing::info!(projection = %name, from = live, to, resumed, "rebuilding");
        // Dead letters the live generation went past (skipped by policy or by
        // an operator) are skipped by the rebuild too: it builds the same
        // model, and does not halt where the live runner did not.
        let live_checkpoint = live_sink
            .clone()
            .checkpoint(&name)
            .await
            .map_err(sink_error)?;
        // Not the letters a rebuild recorded (`replay`): the live generation
        // did not decide to go past those.
        let letters = self
            .runner
            .dead_letters
            .list(&name)
            .await
            .map_err(RunnerError::from)?;
        self.runner.passed = letters
            .iter()
            .filter(|letter| !letter.replay)
            .filter(|letter| live_checkpoint.is_some_and(|c| letter.checkpoint <= c))
            .map(|letter| letter.event_id)
            .collect();
        self.runner.sink = live_sink.at_generation(to);
        self.runner.loaded = false;
        self.runner.checkpoint = None;
        self.runner.replaying = true;

        let start = self
            .runner
            .sink
            .checkpoint(&name)
            .await
            .map_err(sink_error)?;
        // A rebuild's letters beyond where this generation stands are
        // decided again by this run (an earlier attempt halted there, or its
        // generation was dropped); those it went past stay, and stop the
        // switch.
        for letter in letters.iter().filter(|l| l.replay) {
            if start.is_none_or(|s| letter.checkpoint > s) {
                self.runner
                    .dead_letters
                    .remove(&name, letter.event_id)
                    .await
                    .map_err(RunnerError::from)?;
            }
        }
        let target = self
            .runner
            .store
            .count_after(start.unwrap_or(Checkpoint::START))
            .await
            .map_err(RunnerError::from)?;
        let mut progress = RebuildProgress {
            projection: name.clone(),
            generation: to,
            read: 0,
            target,
            elapsed: Duration::ZERO,
        };
        self.catch_up(&mut progress, started).await?;
        let mut skipped = replay_letters(
            &*self.runner.dead_letters,
            self.accept_dead_letters,
            &name,
            to,
        )
        .await?;
        let mut attempts = 0;
        loop {
            match live_sink.switch_generation(&name, live, to).await {
                Ok(Switch::Done) => break,
                Ok(Switch::Behind { .. }) => {
                    attempts += 1;
                    if attempts > SWITCH_ATTEMPTS {
                        return Err(RebuildError::CannotCatchUp { projection: name });
                    }
                    self.catch_up(&mut progress, started).await?;
                    skipped = replay_letters(
                        &*self.runner.dead_letters,
                        self.accept_dead_letters,
                        &name,
                        to,
                    )
                    .await?;
                }
                Err(SinkError::Fenced { .. }) => {
                    let live = live_sink.live_generation().await.map_err(sink_error)?;
                    return Err(RebuildError::Overtaken {
                        projection: name,
                        live,
                    });
                }
                Err(SinkError::Unavailable { message, .. }) => {
                    attempts += 1;
                    tracing::warn!(projection = %name, %message, "switching generations; retrying");
                    tokio::time::sleep(self.runner.options.backoff.delay(attempts)).await;
                }
                Err(error) => return Err(sink_error(error)),
            }
        }
        tracing::info!(projection = %name, from = live, to, "switched generations");
        // Accepted: the rebuild's letters are the live generation's record now.
        for letter in skipped {
            self.runner
                .dead_letters
                .record(es_core::DeadLetter {
                    replay: false,
                    ..letter
                })
                .await
                .map_err(RunnerError::from)?;
        }
        for generation in live_sink.generations().await.map_err(sink_error)? {
            if generation < to {
                live_sink
                    .drop_generation(generation)
                    .await
                    .map_err(sink_error)?;
                dropped.push(generation);
            }
        }
        dropped.sort_unstable();
        Ok(RebuildReport {
            projection: name,
            from: live,
            to,
            resumed,
            read: progress.read,
            checkpoint: self.runner.checkpoint,
            dropped,
            elapsed: started.elapsed(),
        })
    }

    /// Steps until the log has nothing new, reporting after each batch.
    async fn catch_up(
        &mut self,
        progress: &mut RebuildProgress,
        started: Instant,
    ) -> Result<(), RebuildError> {
        loop {
            match self.runner.step().await? {
                Step::Idle => return Ok(()),
                Step::Committed { read, .. } => {
                    progress.read += read as u64;
                    progress.elapsed = started.elapsed();
                    if let Some(hook) = &mut self.on_progress {
                        hook(progress);
                    }
                }
            }
        }
    }
}

/// The letters this rebuild recorded and went past; unless accepted, any
/// is [`RebuildError::Incomplete`].
async fn replay_letters(
    letters: &dyn es_core::DeadLetters,
    accept: bool,
    name: &str,
    generation: u64,
) -> Result<Vec<es_core::DeadLetter>, RebuildError> {
    let skipped: Vec<es_core::DeadLetter> = letters
        .list(name)
        .await
        .map_err(RunnerError::from)?
        .into_iter()
        .filter(|l| l.replay)
        .collect();
    if !skipped.is_empty() && !accept {
        return Err(RebuildError::Incomplete {
            projection: name.to_owned(),
            generation,
            count: skipped.len(),
        });
    }
    Ok(skipped)
}
