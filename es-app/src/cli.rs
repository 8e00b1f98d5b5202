//! The operations CLI kit: subcommands that an application flattens into its
//! own clap parser, run against the [`Store`](crate::Store) its
//! [`Config`] selects.
//!
//! ```no_run
//! use clap::Parser;
//! use es_app::Config;
//! use es_app::cli::{Command, Kit, Output};
//!
//! #[derive(Parser)]
//! struct App {
//!     #[command(flatten)]
//!     config: Config,
//!     #[command(flatten)]
//!     output: Output,
//!     #[command(subcommand)]
//!     command: AppCommand,
//! }
//!
//! #[derive(clap::Subcommand)]
//! enum AppCommand {
//!     /// Serve the HTTP API.
//!     Serve,
//!     #[command(flatten)]
//!     Ops(Command),
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let app = App::parse();
//!     match app.command {
//!         AppCommand::Serve => std::process::ExitCode::SUCCESS,
//!         AppCommand::Ops(command) => {
//!             // Register the application's events and aggregates, then run.
//!             Kit::new().run(&app.config, &app.output, &command).await
//!         }
//!     }
//! }
//! ```
//!
//! The subcommand tree:
//!
//! ```text
//! migrate                                   apply the store's migrations
//! streams list [--limit N] [--after ID]     streams with version and last recorded time
//! streams show <stream> [--after V] [--limit N]
//!                                           events with metadata, personal data opened
//! forget <subject>                          destroy a subject's data key
//! keys rotate                               re-wrap data keys under the current master key
//! snapshots take <stream>                   snapshot a registered aggregate now
//! snapshots prune                           delete snapshots no registered aggregate can load
//! projections list                          each projection's sink, generation, checkpoint, lag
//! projections status [NAME] [--watch]       lag in events and seconds, runner and rebuild
//!                                           holding it, dead letters, the PostgreSQL horizon
//! projections rebuild NAME|--all [--restart]
//!                                           zero-downtime rebuild, with progress
//! projections reset NAME                    rebuild from scratch (drops a rebuild in progress)
//! projections dead-letters list|retry|skip NAME [EVENT]
//! ```
//!
//! Every command prints text, or with `--json` one JSON document on stdout.
//! A failure exits with a non-zero code ([`ErrorKind::exit_code`]) and one
//! line: `error: <message>` on stderr, or with `--json`
//! `{"error": "<kind>", "message": "<message>"}` on stdout.

mod commands;
mod failure;
mod kit;
pub mod out;
mod projections;

use std::process::ExitCode;

pub use failure::{CliError, ErrorKind};
pub use kit::{Inspect, Kit, Report, personal};
pub use projections::{DeadLettersCommand, ProjectionsCommand, shutdown_signal};

use crate::Config;

/// The output format, a global `--json` flag: flatten it into the
/// application's parser beside [`Config`].
///
/// ```
/// use clap::Parser;
///
/// #[derive(Parser)]
/// struct App {
///     #[command(flatten)]
///     output: es_app::cli::Output,
/// }
///
/// assert!(App::try_parse_from(["app", "--json"]).unwrap().output.json);
/// ```
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Output {
    /// Print one JSON document on stdout (errors too), for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The operations subcommands. Flatten them into the application's own
/// subcommand enum with `#[command(flatten)]`, and run them with
/// [`Kit::run`].
///
/// ```
/// use clap::Parser;
/// use es_app::cli::{Command, StreamsCommand};
///
/// #[derive(Parser)]
/// struct App {
///     #[command(subcommand)]
///     command: Command,
/// }
///
/// let app = App::try_parse_from(["app", "streams", "list", "--limit", "10"]).unwrap();
/// assert!(matches!(app.command, Command::Streams(StreamsCommand::List { limit: 10, .. })));
/// ```
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Apply the store's migrations (safe to repeat).
    Migrate,
    /// Inspect streams.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Forget a data subject: destroy its data key, so that its personal data
    /// reads as shredded everywhere.
    Forget {
        /// The subject's id.
        subject: String,
        /// Record the tombstone even if no key is stored for the subject (no
        /// data can be written for it afterwards).
        #[arg(long)]
        force: bool,
    },
    /// Master key operations.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Snapshots of the registered aggregates.
    #[command(subcommand)]
    Snapshots(SnapshotsCommand),
    /// The projections the application registered with the kit.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
}

/// `streams …`
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum StreamsCommand {
    /// List streams in the byte order of their ids, with version and the time
    /// of their last event.
    List {
        /// At most this many streams.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Start after this stream id (the last one of the previous page).
        #[arg(long)]
        after: Option<String>,
    },
    /// Show a stream's events with their metadata; personal data is opened
    /// with the master key, or shown as `<shredded>`.
    Show {
        /// The stream id.
        stream: String,
        /// Start after this version.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// `keys …`
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum KeysCommand {
    /// Re-wrap every data key under the current master key (the first of
    /// ES_MASTER_KEY); the previous keys must still be configured after it.
    Rotate,
}

/// `snapshots …`
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum SnapshotsCommand {
    /// Snapshot a stream's aggregate now, whatever its policy says.
    Take {
        /// The stream id, `<aggregate type>-<id>`.
        stream: String,
    },
    /// Delete the snapshots that the registered aggregates can no longer load
    /// (another schema version, or snapshots disabled).
    Prune,
}

impl Kit {
    /// Runs `command` against the store `config` selects and prints the
    /// result (text, or JSON with `--json`); returns the process's exit
    /// code. See [`execute`](Self::execute) to get the result instead.
    pub async fn run(&self, config: &Config, output: &Output, command: &Command) -> ExitCode {
        match self.execute_as(config, command, output.json).await {
            Ok(report) => {
                for notice in &report.notices {
                    eprintln!("{notice}");
                }
                if output.json {
                    crate::outln!("{}", report.json);
                } else {
                    crate::outln!("{}", report.text.trim_end());
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                if output.json {
                    crate::outln!("{}", error.to_json());
                } else {
                    if let Some(partial) = error.partial() {
                        crate::outln!("{}", partial.text.trim_end());
                    }
                    eprintln!("error: {}", error.message());
                }
                ExitCode::from(error.kind().exit_code())
            }
        }
    }
}
