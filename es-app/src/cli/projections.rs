//! `projections …`: list, status, rebuild, reset and dead letters of the
//! projections the application registered ([`Projections`]).

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::time::Duration;

use es_core::EventId;
use es_projections::{RebuildProgress, RebuildReport};
use serde_json::{Value, json};

use super::kit::Report;
use super::{CliError, ErrorKind};
use crate::projections::{
    Context, ProjectionStatus, Projections, ProjectionsError, RebuildMode, Retried,
};
use es_store_postgres::Horizon;

impl ProjectionsCommand {
    /// Whether it decodes events (and so opens personal data): the master key
    /// is checked first.
    pub(crate) fn opens_personal_data(&self) -> bool {
        matches!(
            self,
            Self::Rebuild { .. } | Self::Reset { .. } | Self::Run { .. }
        )
    }
}

/// `projections …`
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum ProjectionsCommand {
    /// Every registered projection: its sink, live generation, checkpoint and
    /// lag.
    List,
    /// Lag in events and seconds, the runner and rebuild holding each
    /// projection, dead letters, and (PostgreSQL) what holds the read horizon
    /// back.
    Status {
        /// One projection (all when omitted).
        name: Option<String>,
        /// Print again every `--interval` seconds until interrupted.
        #[arg(long)]
        watch: bool,
        /// Seconds between two prints with `--watch`.
        #[arg(long, default_value_t = 2, requires = "watch")]
        interval: u64,
    },
    /// Rebuild without downtime: a new generation built from the start of the
    /// log beside the live one, switched to atomically when caught up. A
    /// rebuild that stopped is resumed.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["name", "all"])))]
    #[command(
        after_help = "Examples:\n  projections rebuild balances\n  projections rebuild --all\n  projections rebuild balances --restart"
    )]
    Rebuild {
        /// The projection (or --all).
        name: Option<String>,
        /// Every registered projection, one after the other.
        #[arg(long)]
        all: bool,
        /// Drop a rebuild in progress and start from the beginning.
        #[arg(long)]
        restart: bool,
        /// Switch to the new generation even if events failed during the
        /// rebuild and were skipped (a projection whose policy is to skip):
        /// without it, such a rebuild stops before the switch.
        #[arg(long)]
        accept_dead_letters: bool,
    },
    /// Throw the model away and build it again from the start of the log:
    /// a rebuild that drops any rebuild in progress. Readers keep the old
    /// model until the new one is complete.
    Reset {
        /// The projection.
        name: String,
        /// As for `rebuild`.
        #[arg(long)]
        accept_dead_letters: bool,
    },
    /// Events a projection could not decode or apply.
    #[command(subcommand)]
    DeadLetters(DeadLettersCommand),
    /// Run the projections' runners until interrupted (SIGINT or SIGTERM),
    /// finishing the batch in hand: a worker with no HTTP. Several workers
    /// may run; one runner per projection is active, the others stand by and
    /// take over when it dies.
    Run {
        /// The projections to run (all when omitted).
        names: Vec<String>,
    },
}

/// `projections dead-letters …`
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum DeadLettersCommand {
    /// The dead letters of a projection, oldest first.
    List {
        /// The projection.
        name: String,
    },
    /// Apply a dead-lettered event again: a projection halted before it
    /// applies it when its runner next runs (after the fix is deployed).
    Retry {
        /// The projection.
        name: String,
        /// The event's id.
        event_id: String,
    },
    /// Move a halted projection past a dead-lettered event, never applying it
    /// (rebuilds skip it too; the letter stays as the record). Its runner must
    /// be stopped.
    Skip {
        /// The projection.
        name: String,
        /// The event's id.
        event_id: String,
    },
}

impl From<ProjectionsError> for CliError {
    fn from(error: ProjectionsError) -> Self {
        let kind = match &error {
            ProjectionsError::Unknown { .. } | ProjectionsError::NoDeadLetter { .. } => {
                ErrorKind::NotFound
            }
            ProjectionsError::Busy { .. } => ErrorKind::Unavailable,
            ProjectionsError::Store(inner) if inner.is_unavailable() => ErrorKind::Unavailable,
            ProjectionsError::Sink {
                source: es_core::SinkError::Unavailable { .. },
                ..
            } => ErrorKind::Unavailable,
            ProjectionsError::App(_) => {
                let ProjectionsError::App(inner) = error else {
                    unreachable!("matched above")
                };
                return Self::from(inner);
            }
            _ => ErrorKind::Store,
        };
        Self::new(kind, crate::report(&error))
    }
}

fn event_id(text: &str) -> Result<EventId, CliError> {
    uuid::Uuid::parse_str(text)
        .map(EventId::from_uuid)
        .map_err(|_| {
            CliError::new(
                ErrorKind::InvalidArgument,
                format!(
                    "not an event id (a UUID): {} characters",
                    text.chars().count()
                ),
            )
        })
}

fn status_json(status: &ProjectionStatus) -> Value {
    serde_json::to_value(status).unwrap_or(Value::Null)
}

fn lag_text(status: &ProjectionStatus, held: Option<&Horizon>) -> String {
    if let Some(halt) = &status.halted {
        return format!(
            "halted at event {} ({}, {} at {}): {}",
            halt.event_id, halt.event_type, halt.stream_id, halt.checkpoint, halt.error
        );
    }
    let behind = match status.lag_events {
        0 => None,
        1 => Some(format!("1 event behind ({:.1} s)", status.lag_seconds)),
        n => Some(format!("{n} events behind ({:.1} s)", status.lag_seconds)),
    };
    match (behind, held.filter(|h| h.is_held())) {
        (behind, Some(horizon)) => {
            let waiting = match horizon.waiting_events {
                1 => "1 committed event waits".to_owned(),
                n => format!("{n} committed events wait"),
            };
            let blocker = horizon.holders.first().map_or_else(String::new, |h| {
                format!(
                    " (pid {}, {}, open {:.1} s)",
                    h.pid,
                    h.application_name
                        .as_deref()
                        .filter(|a| !a.is_empty())
                        .unwrap_or("no application name"),
                    h.transaction_age_secs
                )
            });
            let behind = behind.map_or_else(String::new, |b| format!("{b}; "));
            format!("{behind}held back: {waiting} behind an open appending transaction{blocker}")
        }
        (Some(behind), None) => behind,
        (None, None) => "up to date".to_owned(),
    }
}

/// What holds the read horizon back (PostgreSQL), when it is held.
async fn horizon(cx: &Context) -> Result<Option<Horizon>, CliError> {
    match cx.store.as_postgres() {
        Some(pg) => Ok(Some(pg.horizon().await.map_err(crate::Error::from)?)),
        None => Ok(None),
    }
}

pub(super) async fn list(projections: &Projections, cx: &Context) -> Result<Report, CliError> {
    let statuses = projections.statuses(cx).await?;
    let horizon = horizon(cx).await?;
    let mut text = String::new();
    if statuses.is_empty() {
        text.push_str("no projections registered\n");
    }
    if !statuses.is_empty() {
        text = crate::cli::out::table(
            &["projection", "sink", "generation", "checkpoint", "lag"],
            &[2],
            statuses
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.sink.to_string(),
                        s.generation.to_string(),
                        s.checkpoint.clone().unwrap_or_else(|| "none".into()),
                        lag_text(s, horizon.as_ref()),
                    ]
                })
                .collect(),
        );
    }
    Ok(Report::new(
        text,
        Value::Array(statuses.iter().map(status_json).collect()),
    ))
}

async fn status_once(
    projections: &Projections,
    cx: &Context,
    name: Option<&str>,
) -> Result<Report, CliError> {
    let statuses = match name {
        Some(name) => vec![projections.status(cx, name).await?],
        None => projections.statuses(cx).await?,
    };
    let horizon = horizon(cx).await?;
    let mut text = String::new();
    for s in &statuses {
        let _ = writeln!(text, "{} ({}, generation {})", s.name, s.sink, s.generation);
        let _ = writeln!(text, "  lag:          {}", lag_text(s, horizon.as_ref()));
        let _ = writeln!(
            text,
            "  checkpoint:   {}",
            s.checkpoint.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            text,
            "  runner:       {}",
            match (s.runner_active, s.halted.is_some()) {
                (true, _) => "running (its lock is held)",
                (false, true) => "halted (no runner holds its lock)",
                (false, false) => "not running",
            }
        );
        if s.rebuilding || s.generations.len() > 1 {
            let _ = writeln!(
                text,
                "  rebuild:      {} (generations {:?})",
                if s.rebuilding {
                    "in progress"
                } else {
                    "stopped part way; `projections rebuild` resumes it"
                },
                s.generations
            );
        }
        let _ = writeln!(text, "  dead letters: {}", s.dead_letters);
    }
    let mut horizon_json = Value::Null;
    if let Some(horizon) = &horizon {
        if horizon.is_held() {
            let _ = writeln!(
                text,
                "read horizon held back: {} behind open appending transactions",
                match horizon.waiting_events {
                    1 => "1 committed event waits".to_owned(),
                    n => format!("{n} committed events wait"),
                }
            );
            for holder in &horizon.holders {
                let _ = writeln!(
                    text,
                    "  pid {} ({}, {}), open {:.1} s: {}",
                    holder.pid,
                    holder.state.as_deref().unwrap_or("?"),
                    holder
                        .application_name
                        .as_deref()
                        .filter(|a| !a.is_empty())
                        .unwrap_or("no application name"),
                    holder.transaction_age_secs,
                    holder.query.as_deref().unwrap_or("")
                );
            }
        }
        horizon_json = json!({
            "held_back": horizon.is_held(),
            "waiting_events": horizon.waiting_events,
            "holders": horizon.holders.iter().map(|h| json!({
                "pid": h.pid,
                "state": h.state,
                "transaction_age_secs": h.transaction_age_secs,
                "query": h.query,
                "application_name": h.application_name,
            })).collect::<Vec<_>>(),
        });
    }
    Ok(Report::new(
        text,
        json!({
            "projections": statuses.iter().map(status_json).collect::<Vec<_>>(),
            "horizon": horizon_json,
        }),
    ))
}

pub(super) async fn status(
    projections: &Projections,
    cx: &Context,
    name: Option<&str>,
    watch: Option<(Duration, bool)>,
) -> Result<Report, CliError> {
    let Some((interval, json)) = watch else {
        return status_once(projections, cx, name).await;
    };
    loop {
        let report = status_once(projections, cx, name).await?;
        if json {
            crate::outln!("{}", report.json);
        } else {
            crate::outln!("{}\n", report.text.trim_end());
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(report),
        }
    }
}

/// Progress on stderr: a bar with events/s and the ETA on a terminal, a log
/// line every few seconds otherwise.
fn progress_printer(name: &str) -> impl FnMut(&RebuildProgress) + Send + 'static {
    let terminal = std::io::stderr().is_terminal();
    let bar = terminal.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} events, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(name.to_owned());
        bar
    });
    let mut last_line = std::time::Instant::now();
    let name = name.to_owned();
    move |p: &RebuildProgress| {
        if let Some(bar) = &bar {
            bar.set_length(p.target.max(p.read));
            bar.set_position(p.read);
        } else if last_line.elapsed() >= Duration::from_secs(2) || p.read >= p.target {
            last_line = std::time::Instant::now();
            eprintln!(
                "rebuild {name}: generation {}, {}/{} events, {:.0} events/s, eta {}",
                p.generation,
                p.read,
                p.target,
                p.rate(),
                p.eta().map_or_else(
                    || "?".to_owned(),
                    |eta| format!("{:.0} s", eta.as_secs_f64())
                )
            );
        }
    }
}

fn report_json(report: &RebuildReport) -> Value {
    json!({
        "projection": report.projection,
        "from": report.from,
        "to": report.to,
        "resumed": report.resumed,
        "events": report.read,
        "checkpoint": report.checkpoint.map(|c| c.to_string()),
        "dropped": report.dropped,
        "seconds": report.elapsed.as_secs_f64(),
    })
}

fn report_text(report: &RebuildReport) -> String {
    let rate = report.read as f64 / report.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{}: generation {} is live (was {}){}; {} events in {:.1} s ({:.0} events/s)\n",
        report.projection,
        report.to,
        report.from,
        if report.resumed {
            ", resumed an interrupted rebuild"
        } else {
            ""
        },
        report.read,
        report.elapsed.as_secs_f64(),
        rate
    )
}

pub(super) async fn rebuild(
    projections: &Projections,
    cx: &Context,
    names: Vec<String>,
    mode: RebuildMode,
) -> Result<Report, CliError> {
    let (mut text, mut all) = (String::new(), Vec::new());
    for name in names {
        let report = projections
            .rebuild_with(cx, &name, mode, progress_printer(&name))
            .await?;
        text.push_str(&report_text(&report));
        all.push(report_json(&report));
    }
    let json = if all.len() == 1 {
        all.remove(0)
    } else {
        Value::Array(all)
    };
    Ok(Report::new(text, json))
}

/// `projections rebuild --all`: every read model, one after the other, each
/// reported whatever became of the others; process managers are skipped
/// with the reason. Fails (after the report) when any rebuild failed.
pub(super) async fn rebuild_all(
    projections: &Projections,
    cx: &Context,
    mode: RebuildMode,
) -> Result<Report, CliError> {
    let (mut text, mut rebuilt, mut skipped, mut failed) =
        (String::new(), Vec::new(), Vec::new(), Vec::new());
    let mut first_failure: Option<CliError> = None;
    for name in projections.names() {
        if !projections.rebuildable(&name)? {
            let reason = "a process manager: a replay cannot repeat its reactions";
            let _ = writeln!(text, "{name}: skipped ({reason})");
            skipped.push(json!({ "projection": name, "reason": reason }));
            continue;
        }
        match projections
            .rebuild_with(cx, &name, mode, progress_printer(&name))
            .await
        {
            Ok(report) => {
                text.push_str(&report_text(&report));
                rebuilt.push(report_json(&report));
            }
            Err(error) => {
                let error = CliError::from(error);
                let _ = writeln!(text, "{name}: failed: {}", error.message());
                failed.push(json!({ "projection": name, "error": error.to_json() }));
                first_failure.get_or_insert(error);
            }
        }
    }
    let json = json!({ "rebuilt": rebuilt, "skipped": skipped, "failed": failed });
    match first_failure {
        None => Ok(Report::new(text, json)),
        Some(error) => Err(error.with_report(Report::new(text, json))),
    }
}

/// `projections run`: the runners until SIGINT or SIGTERM.
pub(super) async fn run(
    projections: &Projections,
    cx: &Context,
    names: &[String],
) -> Result<Report, CliError> {
    let names = if names.is_empty() {
        projections.names()
    } else {
        names.to_vec()
    };
    for name in &names {
        // Unknown names fail before anything runs.
        projections.rebuildable(name)?;
    }
    eprintln!(
        "running {} ({}); one runner per projection is active across processes, the others stand by; \
         SIGINT or SIGTERM stops after the batch in hand",
        match names.len() {
            1 => "1 projection".to_owned(),
            n => format!("{n} projections"),
        },
        names.join(", ")
    );
    projections.run_some(cx, &names, shutdown_signal()).await?;
    Ok(Report::new(
        "stopped\n".to_owned(),
        json!({ "stopped": true, "projections": names }),
    ))
}

/// Resolves on SIGINT or SIGTERM: what a long-running command (`projections
/// run`, an application's server) stops on.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(super) async fn dead_letters(
    projections: &Projections,
    cx: &Context,
    command: &DeadLettersCommand,
) -> Result<Report, CliError> {
    match command {
        DeadLettersCommand::List { name } => {
            let letters = projections.dead_letters(cx, name).await?;
            let text = if letters.is_empty() {
                format!("{name}: no dead letters\n")
            } else {
                crate::cli::out::table(
                    &[
                        "recorded",
                        "event",
                        "stream",
                        "checkpoint",
                        "type",
                        "state",
                        "error",
                    ],
                    &[],
                    letters
                        .iter()
                        .map(|(l, passed)| {
                            vec![
                                crate::cli::out::timestamp(&l.recorded_at),
                                l.event_id.to_string(),
                                l.stream_id.as_str().to_owned(),
                                l.checkpoint.to_string(),
                                l.event_type.clone(),
                                if *passed { "skipped" } else { "halted here" }.to_owned(),
                                l.error.clone(),
                            ]
                        })
                        .collect(),
                )
            };
            let json = letters
                .iter()
                .map(|(l, passed)| {
                    json!({
                        "skipped": passed,
                        "projection": l.projection,
                        "event_id": l.event_id.to_string(),
                        "stream_id": l.stream_id.as_str(),
                        "event_type": l.event_type,
                        "checkpoint": l.checkpoint.to_string(),
                        "error": l.error,
                        "recorded_at": crate::cli::out::timestamp(&l.recorded_at),
                    })
                })
                .collect();
            Ok(Report::new(text, Value::Array(json)))
        }
        DeadLettersCommand::Retry { name, event_id: id } => {
            let id = event_id(id)?;
            let retried = projections.retry(cx, name, id).await?;
            let text = match retried {
                Retried::OnNextRun => format!(
                    "{name}: event {id} is no longer a dead letter; the runner applies it when it next runs\n"
                ),
                Retried::NeedsRebuild => format!(
                    "{name}: event {id} is no longer a dead letter; the projection is past it, \
                     so `projections rebuild {name}` applies it\n"
                ),
            };
            Ok(Report::new(
                text,
                json!({ "projection": name, "event_id": id.to_string(), "retried": retried }),
            ))
        }
        DeadLettersCommand::Skip { name, event_id: id } => {
            let id = event_id(id)?;
            projections.skip(cx, name, id).await?;
            Ok(Report::new(
                format!(
                    "{name}: skipped event {id}; the runner goes on after it, and rebuilds skip it too\n"
                ),
                json!({ "projection": name, "event_id": id.to_string(), "skipped": true }),
            ))
        }
    }
}

/// Runs a `projections …` command.
pub(super) async fn execute(
    projections: &Projections,
    cx: &Context,
    command: &ProjectionsCommand,
    json: bool,
) -> Result<Report, CliError> {
    match command {
        ProjectionsCommand::List => list(projections, cx).await,
        ProjectionsCommand::Status {
            name,
            watch,
            interval,
        } => {
            let watch = watch.then(|| (Duration::from_secs((*interval).max(1)), json));
            status(projections, cx, name.as_deref(), watch).await
        }
        ProjectionsCommand::Rebuild {
            name,
            all,
            restart,
            accept_dead_letters,
        } => {
            let mode = RebuildMode {
                restart: *restart,
                accept_dead_letters: *accept_dead_letters,
            };
            if *all {
                rebuild_all(projections, cx, mode).await
            } else {
                rebuild(projections, cx, name.iter().cloned().collect(), mode).await
            }
        }
        ProjectionsCommand::Reset {
            name,
            accept_dead_letters,
        } => {
            let mode = RebuildMode {
                restart: true,
                accept_dead_letters: *accept_dead_letters,
            };
            rebuild(projections, cx, vec![name.clone()], mode).await
        }
        ProjectionsCommand::DeadLetters(command) => dead_letters(projections, cx, command).await,
        ProjectionsCommand::Run { names } => run(projections, cx, names).await,
    }
}
