//! [`Projections::run_all`]: the runners of a process, each following the log
//! for as long as the process lives, one active per projection across
//! processes, the others standing by.

use std::sync::Arc;
use std::time::Duration;

use es_projections::RunnerError;
use tokio::sync::watch;

use super::local::{Halt, Local, RunnerState};
use super::{Context, Projections, ProjectionsError, Registered};

/// How often a standby tries the lock of a projection another process runs.
const STANDBY_RETRY: Duration = Duration::from_millis(250);
/// How often a halted projection checks whether an operator retried or
/// skipped its poison event.
const HALT_CHECK: Duration = Duration::from_secs(1);
/// The longest pause after a runner failure, before trying again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Projections {
    /// Runs every registered projection until `shutdown` resolves: the
    /// continuous runners of a server or a worker (`projections run`).
    ///
    /// Each projection gets a supervisor that takes its runner lock (waiting
    /// as a standby while another process holds it, and taking over when
    /// that process dies), runs the runner woken by the store's
    /// notifications, and never gives up: a fenced runner takes the lock
    /// again, a failed one is retried after a backoff, a halted one (a poison
    /// event, in the dead letters) waits until an operator retries or skips
    /// the event. [`runners`](Self::runners) shows where each stands, and
    /// commands of this process that wait for their writes
    /// ([`wait_for`](Self::wait_for)) watch the runners here in memory. On
    /// shutdown each runner finishes the batch in hand, lets go of its sink's
    /// writer and its lock.
    ///
    /// ```
    /// # use es_app::projections::{Context, Projections};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let store = es_app::Store::connect(&es_app::Config::embedded(dir.path())).await?;
    /// # store.migrate().await?;
    /// let cx = Context { store, crypto: None };
    /// let projections = Projections::new();
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let running = tokio::spawn({
    ///     let projections = projections.clone();
    ///     async move { projections.run_all(&cx, async { let _ = stopped.await; }).await }
    /// });
    /// stop.send(()).ok();
    /// running.await??;
    /// # Ok(()) }
    /// ```
    pub async fn run_all(
        &self,
        cx: &Context,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ProjectionsError> {
        self.run_some(cx, &self.names(), shutdown).await
    }

    /// [`run_all`](Self::run_all) for the projections named.
    pub async fn run_some(
        &self,
        cx: &Context,
        names: &[String],
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ProjectionsError> {
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            entries.push(Arc::clone(self.find(name)?));
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        for entry in entries {
            let (cx, local, stopped) = (cx.clone(), Arc::clone(&self.local), stopped.clone());
            tasks.spawn(async move { supervise(entry, cx, local, stopped).await });
        }
        shutdown.await;
        let _ = stop.send(true);
        while let Some(joined) = tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a projection supervisor panicked");
            }
        }
        Ok(())
    }
}

/// Resolves once `stop` says so.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Sleeps `pause`; `true` when stopped meanwhile.
async fn pause_or_stop(pause: Duration, stop: &watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(pause) => *stop.borrow(),
        () = stopped(stop.clone()) => true,
    }
}

async fn supervise(
    entry: Arc<dyn Registered>,
    cx: Context,
    local: Arc<Local>,
    stop: watch::Receiver<bool>,
) {
    let name = entry.name();
    let mut failures: u32 = 0;
    local.set(&name, RunnerState::Standby, None);
    while !*stop.borrow() {
        let lock = tokio::select! {
            lock = cx.store.lock_projection(&name, STANDBY_RETRY) => lock,
            () = stopped(stop.clone()) => break,
        };
        let lock = match lock {
            Ok(lock) => lock,
            Err(error) => {
                failures += 1;
                let error = crate::report(&error);
                tracing::warn!(projection = %name, %error, "cannot take the runner lock; retrying");
                local.set(&name, RunnerState::Failed { error }, None);
                if pause_or_stop(backoff(failures), &stop).await {
                    break;
                }
                continue;
            }
        };
        tracing::info!(projection = %name, "runner active");
        let ran = entry
            .run(
                &cx,
                Box::pin(stopped(stop.clone())),
                Box::new(|progress| local.set(&name, RunnerState::Active, Some(progress))),
            )
            .await;
        entry.release().await;
        if let Err(error) = lock.release().await {
            tracing::warn!(projection = %name, error = %crate::report(&error), "releasing the runner lock failed");
        }
        match ran {
            Ok(()) => break,
            Err(ProjectionsError::Runner(RunnerError::Fenced { .. })) => {
                tracing::info!(projection = %name, "another runner moved the checkpoint; taking the lock again");
                local.set(&name, RunnerState::Standby, None);
            }
            Err(ProjectionsError::Runner(RunnerError::Halted {
                event_id,
                event_type,
                error,
                ..
            })) => {
                let halt = match entry.halt(&cx).await {
                    Ok(Some(halt)) => halt,
                    _ => Halt {
                        event_id,
                        event_type,
                        stream_id: String::new(),
                        checkpoint: String::new(),
                        error,
                    },
                };
                tracing::error!(projection = %name, event_id = %halt.event_id, "projection halted at a poison event");
                local.set(&name, RunnerState::Halted(halt.clone()), None);
                // Until an operator retries (removes the letter) or skips (the
                // checkpoint moves past it): nothing to do before.
                loop {
                    if pause_or_stop(HALT_CHECK, &stop).await {
                        break;
                    }
                    match entry.halt(&cx).await {
                        Ok(Some(still)) if still.event_id == halt.event_id => {}
                        _ => break,
                    }
                }
                failures = 0;
            }
            Err(error) => {
                failures += 1;
                let error = crate::report(&error);
                tracing::error!(projection = %name, %error, failures, "runner failed; retrying after a pause");
                local.set(&name, RunnerState::Failed { error }, None);
                if pause_or_stop(backoff(failures), &stop).await {
                    break;
                }
            }
        }
    }
    local.set(&name, RunnerState::Stopped, None);
}

/// 250 ms, doubling per consecutive failure, at most [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(7);
    (Duration::from_millis(250) * 2u32.pow(exponent)).min(MAX_BACKOFF)
}
