//! The projections an application registers, and what operators do with them:
//! status, zero-downtime rebuilds, dead letters. The CLI's `projections`
//! commands are thin wrappers over [`Projections`].

mod local;
mod run;
mod wait;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use es_core::{
    BoxFuture, Checkpoint, Crypto, DeadLetter, EventId, EventStore, Generations, Sink, SinkError,
};
use es_projections::{
    FailurePolicy, Progress, Projection, RebuildError, RebuildProgress, RebuildReport, Runner,
    RunnerError, RunnerOptions, Step,
};
use serde::Serialize;

pub use local::{Halt, RunnerState};
pub use wait::{Lag, LagReason, Visibility};

use crate::Store;

/// What the operations run against: the store, the crypto that opens personal
/// data (without it, events with personal data go to the dead letters), and
/// the dead letters.
#[derive(Clone)]
pub struct Context {
    /// The event store.
    pub store: Store,
    /// Opens personal data.
    pub crypto: Option<Arc<Crypto>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("store", &self.store.backend())
            .field("crypto", &self.crypto.is_some())
            .finish()
    }
}

/// Why a projection operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionsError {
    /// No projection of that name is registered.
    #[error("no projection of that name ({} characters) is registered (known: {known})", name.chars().count())]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },
    /// The projection's runner (or another rebuild) holds its lock.
    #[error("projection `{name}` is busy: {what} holds its lock; stop it or wait")]
    Busy {
        /// The projection.
        name: String,
        /// What holds it.
        what: &'static str,
    },
    /// No dead letter with that event id.
    #[error("projection `{name}` has no dead letter for event {event_id}")]
    NoDeadLetter {
        /// The projection.
        name: String,
        /// The event.
        event_id: EventId,
    },
    /// The rebuild failed; the live generation is untouched.
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    /// A runner failed.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The read model failed.
    #[error("the read model of projection `{name}` failed")]
    Sink {
        /// The projection.
        name: String,
        /// Its error.
        #[source]
        source: SinkError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] es_core::Error),
    /// Wiring failed (locks, configuration).
    #[error(transparent)]
    App(#[from] crate::Error),
}

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectionStatus {
    /// The projection.
    pub name: String,
    /// The kind of sink (`redis`, `sqlite`, `tantivy`, …).
    pub sink: String,
    /// The generation readers see.
    pub generation: u64,
    /// Every generation holding a checkpoint (more than the live one while a
    /// rebuild runs or after one was abandoned).
    pub generations: Vec<u64>,
    /// The live generation's checkpoint (`commit:position`).
    pub checkpoint: Option<String>,
    /// Events in the log after the checkpoint.
    pub lag_events: u64,
    /// How long the oldest of them has been waiting, in seconds.
    pub lag_seconds: f64,
    /// Whether a runner holds the projection's lock (in any process).
    pub runner_active: bool,
    /// Whether a rebuild holds its rebuild lock.
    pub rebuilding: bool,
    /// Dead letters recorded.
    pub dead_letters: usize,
    /// Where and why the projection halted, when it did: it reads nothing
    /// past that event until an operator retries or skips it.
    pub halted: Option<Halt>,
    /// Whether it is a read model a rebuild can replay (`false`: a process
    /// manager, whose reactions a replay cannot repeat).
    pub rebuildable: bool,
}

/// What [`Projections::retry`] did with a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retried {
    /// The projection stopped before the event: its runner applies it when it
    /// next runs.
    OnNextRun,
    /// The projection went past the event (skip-and-record): only a rebuild
    /// applies it now.
    NeedsRebuild,
}

type Hook = Box<dyn FnMut(&RebuildProgress) + Send>;

/// How [`Projections::rebuild_with`] rebuilds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildMode {
    /// Drop a rebuild in progress and start over instead of resuming it.
    pub restart: bool,
    /// Switch even when events failed during the rebuild and were skipped
    /// ([`Rebuild::accept_dead_letters`](es_projections::Rebuild::accept_dead_letters)).
    pub accept_dead_letters: bool,
}

/// One registered projection, its types erased.
trait Registered: Send + Sync {
    fn name(&self) -> String;
    fn rebuildable(&self) -> bool;
    fn status<'a>(
        &'a self,
        cx: &'a Context,
    ) -> BoxFuture<'a, Result<ProjectionStatus, ProjectionsError>>;
    fn rebuild<'a>(
        &'a self,
        cx: &'a Context,
        mode: RebuildMode,
        hook: Hook,
    ) -> BoxFuture<'a, Result<RebuildReport, ProjectionsError>>;
    fn checkpoint<'a>(&'a self) -> BoxFuture<'a, Result<Option<Checkpoint>, ProjectionsError>>;
    fn skip_to<'a>(
        &'a self,
        from: Option<Checkpoint>,
        to: Checkpoint,
    ) -> BoxFuture<'a, Result<(), ProjectionsError>>;
    /// Runs the runner until `shutdown`; `started` gets its progress handle.
    fn run<'a>(
        &'a self,
        cx: &'a Context,
        shutdown: BoxFuture<'a, ()>,
        started: Box<dyn FnOnce(Progress) + Send + 'a>,
    ) -> BoxFuture<'a, Result<(), ProjectionsError>>;
    /// A runner to drive step by step (the caller holds the lock).
    fn driver(&self, cx: &Context) -> Box<dyn Drive>;
    /// Lets go of the sink's exclusive resources (after the lock is let go).
    fn release(&self) -> BoxFuture<'_, ()>;
    /// The poison event the projection is halted at, if any (from the dead
    /// letters: what every process sees).
    fn halt<'a>(&'a self, cx: &'a Context)
    -> BoxFuture<'a, Result<Option<Halt>, ProjectionsError>>;
}

/// A runner driven by its caller, one batch at a time.
trait Drive: Send {
    fn step(&mut self) -> BoxFuture<'_, Result<Step, RunnerError>>;
    fn checkpoint(&self) -> Option<Checkpoint>;
}

impl<P> Drive for Runner<P, Store>
where
    P: Projection,
    P::Sink: Generations + Clone + 'static,
{
    fn step(&mut self) -> BoxFuture<'_, Result<Step, RunnerError>> {
        Box::pin(Runner::step(self))
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        Runner::checkpoint(self)
    }
}

struct Entry<P: Projection> {
    make: Box<dyn Fn() -> P + Send + Sync>,
    sink: P::Sink,
    kind: String,
    options: RunnerOptions,
}

impl<P> Entry<P>
where
    P: Projection,
    P::Sink: Generations + Clone + 'static,
{
    fn runner(&self, cx: &Context) -> Runner<P, Store> {
        let runner = Runner::new(
            (self.make)(),
            self.sink.clone(),
            cx.store.clone(),
            cx.store.dead_letters(),
        )
        .with_options(self.options.clone());
        match &cx.crypto {
            Some(crypto) => runner.with_crypto(Arc::clone(crypto)),
            None => runner,
        }
    }

    fn sink_error(&self, source: SinkError) -> ProjectionsError {
        ProjectionsError::Sink {
            name: self.name(),
            source,
        }
    }
}

impl<P> Registered for Entry<P>
where
    P: Projection,
    P::Sink: Generations + Clone + 'static,
{
    fn name(&self) -> String {
        (self.make)().name().to_owned()
    }

    fn rebuildable(&self) -> bool {
        self.sink.rebuildable()
    }

    fn status<'a>(
        &'a self,
        cx: &'a Context,
    ) -> BoxFuture<'a, Result<ProjectionStatus, ProjectionsError>> {
        Box::pin(async move {
            let name = self.name();
            let generation = self
                .sink
                .live_generation()
                .await
                .map_err(|e| self.sink_error(e))?;
            let generations = self
                .sink
                .generations()
                .await
                .map_err(|e| self.sink_error(e))?;
            let checkpoint = self.checkpoint().await?;
            let from = checkpoint.unwrap_or(Checkpoint::START);
            let lag_events = cx.store.count_after(from).await?;
            let lag_seconds = match cx.store.read_all(from, 1).await?.first() {
                Some(oldest) => {
                    (Utc::now() - oldest.metadata.recorded_at)
                        .num_milliseconds()
                        .max(0) as f64
                        / 1000.0
                }
                None => 0.0,
            };
            let runner_active = held(&cx.store, &name).await?;
            let rebuilding = held(&cx.store, &rebuild_lock(&name)).await?;
            let dead_letters = cx.store.dead_letters().list(&name).await?.len();
            let halted = self.halt(cx).await?;
            Ok(ProjectionStatus {
                name,
                sink: self.kind.clone(),
                generation,
                generations,
                checkpoint: checkpoint.map(|c| c.to_string()),
                lag_events,
                lag_seconds,
                runner_active,
                rebuilding,
                dead_letters,
                halted,
                rebuildable: self.sink.rebuildable(),
            })
        })
    }

    fn rebuild<'a>(
        &'a self,
        cx: &'a Context,
        mode: RebuildMode,
        hook: Hook,
    ) -> BoxFuture<'a, Result<RebuildReport, ProjectionsError>> {
        Box::pin(async move {
            let name = self.name();
            let Some(lock) = cx.store.try_lock_projection(&rebuild_lock(&name)).await? else {
                return Err(ProjectionsError::Busy {
                    name,
                    what: "another rebuild",
                });
            };
            let report = self
                .runner(cx)
                .rebuild()
                .restart(mode.restart)
                .accept_dead_letters(mode.accept_dead_letters)
                .on_progress(hook)
                .run()
                .await;
            lock.release().await?;
            Ok(report?)
        })
    }

    fn checkpoint<'a>(&'a self) -> BoxFuture<'a, Result<Option<Checkpoint>, ProjectionsError>> {
        Box::pin(async move {
            self.sink
                .checkpoint(&self.name())
                .await
                .map_err(|e| self.sink_error(e))
        })
    }

    fn skip_to<'a>(
        &'a self,
        from: Option<Checkpoint>,
        to: Checkpoint,
    ) -> BoxFuture<'a, Result<(), ProjectionsError>> {
        Box::pin(async move {
            let sink = self.sink.clone();
            // Binds the handle to the live generation.
            sink.checkpoint(&self.name())
                .await
                .map_err(|e| self.sink_error(e))?;
            sink.commit(&self.name(), Default::default(), from, to)
                .await
                .map_err(|e| self.sink_error(e))
        })
    }

    fn run<'a>(
        &'a self,
        cx: &'a Context,
        shutdown: BoxFuture<'a, ()>,
        started: Box<dyn FnOnce(Progress) + Send + 'a>,
    ) -> BoxFuture<'a, Result<(), ProjectionsError>> {
        Box::pin(async move {
            let wakeups = cx.store.wakeups(Duration::from_millis(500));
            let runner = self.runner(cx);
            started(runner.progress());
            runner.run(wakeups, shutdown).await?;
            Ok(())
        })
    }

    fn driver(&self, cx: &Context) -> Box<dyn Drive> {
        Box::new(self.runner(cx))
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.sink.release())
    }

    fn halt<'a>(
        &'a self,
        cx: &'a Context,
    ) -> BoxFuture<'a, Result<Option<Halt>, ProjectionsError>> {
        Box::pin(async move {
            if self.options.failure_policy != FailurePolicy::Halt {
                return Ok(None);
            }
            let letters = cx.store.dead_letters().list(&self.name()).await?;
            if letters.is_empty() {
                return Ok(None);
            }
            let checkpoint = self.checkpoint().await?;
            Ok(letters
                .into_iter()
                .filter(|l| checkpoint.is_none_or(|c| l.checkpoint > c))
                .min_by_key(|l| l.checkpoint)
                .map(|l| Halt {
                    event_id: l.event_id,
                    event_type: l.event_type,
                    stream_id: l.stream_id.as_str().to_owned(),
                    checkpoint: l.checkpoint.to_string(),
                    error: l.error,
                }))
        })
    }
}

/// The name of a projection's rebuild lock (one rebuild at a time).
fn rebuild_lock(name: &str) -> String {
    format!("{name}.rebuild")
}

/// Whether another holder has the lock `name`.
async fn held(store: &Store, name: &str) -> Result<bool, ProjectionsError> {
    Ok(match store.try_lock_projection(name).await? {
        Some(guard) => {
            guard.release().await?;
            false
        }
        None => true,
    })
}

/// The projections an application registers, by name, with their sinks:
/// what the CLI kit's `projections` commands operate on.
///
/// ```
/// use es_app::projections::{Context, Projections};
/// use es_core::Event;
/// use es_projections::{Change, KvBatch, MemoryKv, Projection, ProjectionError};
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
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
/// store.migrate().await?;
/// let projections = Projections::new().register(|| Ticks, MemoryKv::new(), "memory");
/// let cx = Context { store, crypto: None };
/// let status = projections.status(&cx, "ticks").await?;
/// assert_eq!((status.generation, status.lag_events), (1, 0));
/// let report = projections.rebuild(&cx, "ticks", false, |_| {}).await?;
/// assert_eq!(report.to, 2);
/// # Ok(()) }
/// ```
#[derive(Default, Clone)]
pub struct Projections {
    entries: Vec<Arc<dyn Registered>>,
    /// The runners this process supervises ([`run_all`](Self::run_all)).
    local: Arc<local::Local>,
}

impl std::fmt::Debug for Projections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.name()))
            .finish()
    }
}

impl Projections {
    /// No projections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a projection: `make` builds it (for each runner), `sink` is a
    /// handle on its read model following the live generation, `kind` names
    /// the sink for operators (`redis`, `sqlite`, `tantivy`).
    #[must_use]
    pub fn register<P, F>(self, make: F, sink: P::Sink, kind: &str) -> Self
    where
        P: Projection,
        P::Sink: Generations + Clone + 'static,
        F: Fn() -> P + Send + Sync + 'static,
    {
        self.register_with(make, sink, kind, RunnerOptions::default())
    }

    /// [`register`](Self::register), with the runners' options.
    #[must_use]
    pub fn register_with<P, F>(
        mut self,
        make: F,
        sink: P::Sink,
        kind: &str,
        options: RunnerOptions,
    ) -> Self
    where
        P: Projection,
        P::Sink: Generations + Clone + 'static,
        F: Fn() -> P + Send + Sync + 'static,
    {
        self.entries.push(Arc::new(Entry {
            make: Box::new(make),
            sink,
            kind: kind.to_owned(),
            options,
        }));
        self
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.name()).collect()
    }

    /// Whether `name` is a read model a rebuild can replay (`false`: a
    /// process manager, whose reactions a replay cannot repeat).
    pub fn rebuildable(&self, name: &str) -> Result<bool, ProjectionsError> {
        Ok(self.find(name)?.rebuildable())
    }

    fn find(&self, name: &str) -> Result<&Arc<dyn Registered>, ProjectionsError> {
        self.entries
            .iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| ProjectionsError::Unknown {
                name: name.to_owned(),
                known: self.names().join(", "),
            })
    }

    /// The checkpoint `name` committed in its live generation (`None`: none
    /// yet): compare it with a command's checkpoint to read your own writes.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, ProjectionsError> {
        self.find(name)?.checkpoint().await
    }

    /// Where `name` stands.
    pub async fn status(
        &self,
        cx: &Context,
        name: &str,
    ) -> Result<ProjectionStatus, ProjectionsError> {
        self.find(name)?.status(cx).await
    }

    /// Where every projection stands.
    pub async fn statuses(&self, cx: &Context) -> Result<Vec<ProjectionStatus>, ProjectionsError> {
        let mut all = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            all.push(entry.status(cx).await?);
        }
        Ok(all)
    }

    /// Rebuilds `name` without downtime ([`es_projections::Rebuild`]),
    /// resuming a rebuild that stopped unless `restart`; one rebuild per
    /// projection at a time (its rebuild lock). `progress` is called after
    /// every batch.
    pub async fn rebuild(
        &self,
        cx: &Context,
        name: &str,
        restart: bool,
        progress: impl FnMut(&RebuildProgress) + Send + 'static,
    ) -> Result<RebuildReport, ProjectionsError> {
        let mode = RebuildMode {
            restart,
            accept_dead_letters: false,
        };
        self.rebuild_with(cx, name, mode, progress).await
    }

    /// [`rebuild`](Self::rebuild), with every choice of [`RebuildMode`].
    pub async fn rebuild_with(
        &self,
        cx: &Context,
        name: &str,
        mode: RebuildMode,
        progress: impl FnMut(&RebuildProgress) + Send + 'static,
    ) -> Result<RebuildReport, ProjectionsError> {
        self.find(name)?.rebuild(cx, mode, Box::new(progress)).await
    }

    /// The dead letters of `name`, oldest first, each with whether the
    /// projection went past it (skipped) or is halted before it.
    pub async fn dead_letters(
        &self,
        cx: &Context,
        name: &str,
    ) -> Result<Vec<(DeadLetter, bool)>, ProjectionsError> {
        let checkpoint = self.find(name)?.checkpoint().await?;
        Ok(cx
            .store
            .dead_letters()
            .list(name)
            .await?
            .into_iter()
            .map(|letter| {
                let passed = checkpoint.is_some_and(|c| letter.checkpoint <= c);
                (letter, passed)
            })
            .collect())
    }

    /// Retries a dead letter: removes it, so that a projection halted before
    /// the event applies it when its runner next runs (after the fix is
    /// deployed). A projection that skipped the event applies it only in a
    /// rebuild: says so.
    pub async fn retry(
        &self,
        cx: &Context,
        name: &str,
        event_id: EventId,
    ) -> Result<Retried, ProjectionsError> {
        let entry = self.find(name)?;
        let letter = self.letter(cx, name, event_id).await?;
        let checkpoint = entry.checkpoint().await?;
        cx.store.dead_letters().remove(name, event_id).await?;
        Ok(if checkpoint.is_some_and(|c| c >= letter.checkpoint) {
            Retried::NeedsRebuild
        } else {
            Retried::OnNextRun
        })
    }

    /// Skips a dead letter: a projection halted before the event moves its
    /// checkpoint past it, never applying it. The letter stays, behind the
    /// checkpoint, as the record of the decision: rebuilds skip it too. Its
    /// runner must be stopped (its lock is taken for the move).
    pub async fn skip(
        &self,
        cx: &Context,
        name: &str,
        event_id: EventId,
    ) -> Result<(), ProjectionsError> {
        let entry = self.find(name)?;
        let letter = self.letter(cx, name, event_id).await?;
        let Some(lock) = cx.store.try_lock_projection(name).await? else {
            return Err(ProjectionsError::Busy {
                name: name.to_owned(),
                what: "a running runner",
            });
        };
        let moved = async {
            let checkpoint = entry.checkpoint().await?;
            if checkpoint.is_none_or(|c| c < letter.checkpoint) {
                entry.skip_to(checkpoint, letter.checkpoint).await?;
            }
            Ok::<(), ProjectionsError>(())
        }
        .await;
        lock.release().await?;
        moved
    }

    async fn letter(
        &self,
        cx: &Context,
        name: &str,
        event_id: EventId,
    ) -> Result<DeadLetter, ProjectionsError> {
        cx.store
            .dead_letters()
            .list(name)
            .await?
            .into_iter()
            .find(|l| l.event_id == event_id)
            .ok_or(ProjectionsError::NoDeadLetter {
                name: name.to_owned(),
                event_id,
            })
    }

    /// Catches up every projection that no runner is running, one after the
    /// other, each under its runner lock; a projection whose lock another
    /// runner holds is left to it (it is following the log). Never waits for
    /// a lock. Returns the events each projection read here.
    pub async fn catch_up(&self, cx: &Context) -> Result<Vec<(String, u64)>, ProjectionsError> {
        let mut read = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            let name = entry.name();
            let Some(lock) = cx.store.try_lock_projection(&name).await? else {
                read.push((name, 0));
                continue;
            };
            let mut driver = entry.driver(cx);
            let mut events = 0;
            let caught = loop {
                match driver.step().await {
                    Ok(Step::Committed { read, .. }) => events += read as u64,
                    Ok(Step::Idle) => break Ok(()),
                    Err(error) => break Err(error),
                }
            };
            drop(driver);
            entry.release().await;
            lock.release().await?;
            caught?;
            read.push((name, events));
        }
        Ok(read)
    }

    /// Runs `name`'s runner until `shutdown` resolves, holding its lock (it
    /// waits for the lock while another process runs it). Returns the
    /// runner's error if it stops (a halt, a fence); [`run_all`](Self::run_all)
    /// supervises runners that never give up.
    pub async fn run(
        &self,
        cx: &Context,
        name: &str,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ProjectionsError> {
        let entry = self.find(name)?;
        tokio::pin!(shutdown);
        let lock = tokio::select! {
            lock = cx.store.lock_projection(name, Duration::from_millis(500)) => lock?,
            () = &mut shutdown => return Ok(()),
        };
        let ran = entry.run(cx, Box::pin(shutdown), Box::new(|_| {})).await;
        entry.release().await;
        lock.release().await?;
        ran
    }

    /// Where the runners this process supervises stand
    /// ([`run_all`](Self::run_all)), by name; empty when it runs none.
    pub fn runners(&self) -> Vec<(String, RunnerState)> {
        self.local.states()
    }

    /// The projections halted at a poison event, with where and why, as every
    /// process sees them (from the dead letters).
    pub async fn halted(&self, cx: &Context) -> Result<Vec<(String, Halt)>, ProjectionsError> {
        let mut halted = Vec::new();
        for entry in &self.entries {
            if let Some(halt) = entry.halt(cx).await? {
                halted.push((entry.name(), halt));
            }
        }
        Ok(halted)
    }

    /// Whether `name` is halted ([`halted`](Self::halted)), for the reads
    /// that depend on it.
    pub async fn halt(&self, cx: &Context, name: &str) -> Result<Option<Halt>, ProjectionsError> {
        self.find(name)?.halt(cx).await
    }
}
