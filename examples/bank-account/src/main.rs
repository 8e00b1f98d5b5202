//! `bank-account`: the example application's command line and HTTP server.
//! See `bank-account --help`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use bank_account::{
    AccountId, Bank, Cents, Error, OwnerId, http, parse_amount, parse_cents, parse_key,
};
use clap::{Parser, Subcommand};
use es_app::Config;
use es_app::cli::{Kit, Output};
use serde_json::{Value, json};

/// The es framework's example: bank accounts with transfers, read models and
/// crypto-shredding, on the embedded default or PostgreSQL and Redis.
#[derive(Parser)]
#[command(
    name = "bank-account",
    about = "The es framework's example: bank accounts with transfers, read models and crypto-shredding",
    version
)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    output: Output,
    /// How long a command waits for the read models to show its write before
    /// it returns anyway (with a warning: the write is done).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_wait)]
    wait: f64,
    #[command(subcommand)]
    command: Command,
}

fn parse_wait(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && (0.0..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err("a number of seconds from 0 to 3600".to_owned()),
    }
}

/// The commands as `--help` lists them.
const HELP_GROUPS: &[(&str, &[&str])] = &[
    (
        "Accounts",
        &[
            "open", "deposit", "withdraw", "transfer", "close", "balance", "history", "search",
            "forget",
        ],
    ),
    ("Servers and demo", &["serve", "tokens", "demo"]),
    (
        "Operations",
        &[
            "migrate",
            "projections",
            "streams",
            "keys",
            "snapshots",
            "help",
        ],
    ),
];

#[derive(Subcommand)]
enum Command {
    /// Open an account.
    #[command(
        after_help = "Examples:\n  bank-account open --account acc-1 --owner-id ada --owner-name 'Ada Lovelace' --initial 100.00\n  bank-account --json open --account acc-2 --owner-id alan --owner-name 'Alan Turing' --email alan@example.org"
    )]
    Open {
        /// The account id (letters, digits, '-', '_', '.').
        #[arg(long)]
        account: String,
        /// The owner's id.
        #[arg(long)]
        owner_id: String,
        /// The owner's name (personal data).
        #[arg(long)]
        owner_name: String,
        /// The owner's email (personal data).
        #[arg(long)]
        email: Option<String>,
        /// A first deposit, as printed (`25.00`).
        #[arg(long, default_value = "0.00", allow_hyphen_values = true)]
        initial: String,
    },
    /// Deposit money.
    #[command(
        after_help = "Examples:\n  bank-account deposit --account acc-1 --amount 25.00\n  bank-account deposit --account acc-1 --amount 25.00 --idempotency-key dep-2026-12-04-1   # safe to retry"
    )]
    Deposit {
        /// The account id.
        #[arg(long)]
        account: String,
        /// The amount, as printed (`25.00`).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// One key per intent: a retry with it does nothing twice.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Withdraw money (never below zero).
    Withdraw {
        /// The account id.
        #[arg(long)]
        account: String,
        /// The amount, as printed (`25.00`).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// One key per intent.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Transfer money; waits (up to --wait) for the saga to settle it, else
    /// says it is pending.
    #[command(
        after_help = "Examples:\n  bank-account transfer --from acc-1 --to acc-2 --amount 10.00 --idempotency-key rent-december\n  bank-account --wait 10 transfer --from acc-1 --to acc-2 --amount 10.00"
    )]
    Transfer {
        /// The account debited.
        #[arg(long)]
        from: String,
        /// The account credited.
        #[arg(long)]
        to: String,
        /// The amount, as printed (`25.00`).
        #[arg(long, allow_hyphen_values = true)]
        amount: String,
        /// One key per intent.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// Close an account (at a zero balance).
    Close {
        /// The account id.
        #[arg(long)]
        account: String,
    },
    /// An account's balance, from the read model (after this process's writes).
    Balance {
        /// The account id.
        #[arg(long)]
        account: String,
    },
    /// An account's events, personal data opened or `<shredded>`.
    History {
        /// The account id.
        #[arg(long)]
        account: String,
    },
    /// Search accounts by owner name (fuzzy, prefix) or account id.
    Search {
        /// The query.
        query: String,
    },
    /// Forget an owner: their name and email become unreadable everywhere.
    Forget {
        /// The owner's id.
        #[arg(long)]
        owner_id: String,
        /// Record the tombstone even if no key is stored for the id (no data
        /// can be written for it afterwards).
        #[arg(long)]
        force: bool,
    },
    /// A scripted tour of all of the above.
    Demo,
    /// Serve the HTTP API.
    Serve {
        /// The address to listen on. Without a tokens file, only a loopback
        /// address is allowed.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// The bearer tokens (a file of hashed tokens, see `tokens new`):
        /// every route but /health then needs one with its role.
        #[arg(long, env = "BANK_TOKENS_FILE", hide_env_values = true)]
        tokens_file: Option<std::path::PathBuf>,
        /// Seconds a request may take, store included (503 `timeout` after).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        request_timeout: u64,
        /// Seconds a client has to send a request's headers (and may stay
        /// idle between requests).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
        header_timeout: u64,
        /// Open connections at most.
        #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        max_connections: u64,
        /// Requests in flight at most (503 `overloaded` beyond).
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        max_in_flight: u64,
    },
    /// Bearer tokens for `serve`.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Apply the store's migrations (safe to repeat).
    Migrate,
    /// The read models and the transfer saga.
    #[command(subcommand)]
    Projections(es_app::cli::ProjectionsCommand),
    /// Inspect streams.
    #[command(subcommand)]
    Streams(es_app::cli::StreamsCommand),
    /// Master key operations.
    #[command(subcommand)]
    Keys(es_app::cli::KeysCommand),
    /// Snapshots.
    #[command(subcommand)]
    Snapshots(es_app::cli::SnapshotsCommand),
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Make a new token: prints the token (give it to its user) and its line
    /// for the tokens file (which holds only its hash).
    New {
        /// Its roles.
        #[arg(long, value_enum, required = true, num_args = 1..)]
        role: Vec<RoleArg>,
        /// A label for the line (who or what uses it).
        #[arg(long, default_value = "")]
        label: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    /// Accounts: open, deposit, withdraw, transfer, read, history, search.
    Teller,
    /// Forget owners, read the metrics.
    Operator,
}

fn kit() -> Kit {
    Kit::new()
        .aggregate::<bank_account::Account>()
        .aggregate::<bank_account::Transfer>()
        .projections(bank_account::read_models)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = es_app::cli::out::parse_grouped(HELP_GROUPS);
    // Logs on stderr, `RUST_LOG` choosing what. By default the processes
    // that run for long (`serve`, `projections run`) log warnings, the
    // operator's feed; a one-shot command logs only the repair of a data
    // file that was open to others (nothing else reports it), since what it
    // has to say is its answer, its one `error:` line or its warning. The
    // framework's logs carry kinds, ids and lengths, never personal data or
    // keys: the secrets test runs a whole workload at `trace` and checks.
    let long_running = matches!(
        cli.command,
        Command::Serve { .. } | Command::Projections(es_app::cli::ProjectionsCommand::Run { .. })
    );
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if long_running {
            "warn"
        } else {
            "off,es_files=warn"
        })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let ops = match &cli.command {
        Command::Migrate => Some(es_app::cli::Command::Migrate),
        Command::Projections(c) => Some(es_app::cli::Command::Projections(c.clone())),
        Command::Streams(c) => Some(es_app::cli::Command::Streams(c.clone())),
        Command::Keys(c) => Some(es_app::cli::Command::Keys(c.clone())),
        Command::Snapshots(c) => Some(es_app::cli::Command::Snapshots(c.clone())),
        _ => None,
    };
    if let Some(ops) = ops {
        return kit().run(&cli.config, &cli.output, &ops).await;
    }
    match run(&cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if cli.output.json {
                es_app::outln!("{}", error.to_json());
            } else {
                eprintln!("error: {error}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

async fn open_bank(cli: &Cli) -> Result<Bank, Error> {
    if matches!(
        cli.command,
        Command::Balance { .. } | Command::History { .. } | Command::Search { .. }
    ) {
        // A read creates nothing: a mistyped --data-dir is said as such.
        cli.config.require_existing_store()?;
    }
    let (bank, notice) = Bank::open(&cli.config).await?;
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    Ok(bank.with_wait(Duration::from_secs_f64(cli.wait)))
}

/// A receipt's balance for people: `unknown` when it could not be read
/// after the write.
fn shown(balance: Option<u64>) -> String {
    balance
        .and_then(|b| Cents::new(b).ok())
        .map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

/// The one warning line of a command that was written but is not yet shown
/// by every read model.
fn warn_lagging(lagging: &[es_app::projections::Lag]) {
    if lagging.is_empty() {
        return;
    }
    let seen = es_app::projections::Visibility {
        lagging: lagging.to_vec(),
    };
    eprintln!(
        "warning: written, but not yet shown by every read model ({}); see `projections status`",
        seen.describe()
    );
}

fn print(json: bool, value: &Value, text: impl FnOnce() -> String) {
    if json {
        es_app::outln!("{value}");
    } else {
        es_app::outln!("{}", text());
    }
}

fn to_json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

async fn run(cli: &Cli) -> Result<(), Error> {
    let json = cli.output.json;
    match &cli.command {
        Command::Open {
            account,
            owner_id,
            owner_name,
            email,
            initial,
        } => {
            let account = AccountId::new(account.as_str())?;
            let owner = OwnerId::new(owner_id.as_str())?;
            let initial = parse_cents(initial)?;
            let bank = open_bank(cli).await?;
            let receipt = bank
                .open_account(&account, &owner, owner_name.clone(), email.clone(), initial)
                .await?;
            print(json, &to_json(&receipt), || {
                format!(
                    "opened account {account} with a balance of {}",
                    shown(receipt.balance)
                )
            });
            warn_lagging(&receipt.lagging);
        }
        Command::Deposit {
            account,
            amount,
            idempotency_key,
        }
        | Command::Withdraw {
            account,
            amount,
            idempotency_key,
        } => {
            let deposit = matches!(cli.command, Command::Deposit { .. });
            let account = AccountId::new(account.as_str())?;
            let amount = parse_amount(amount)?;
            let key = idempotency_key.as_deref().map(parse_key).transpose()?;
            let bank = open_bank(cli).await?;
            let receipt = if deposit {
                bank.deposit(&account, amount, key).await?
            } else {
                bank.withdraw(&account, amount, key).await?
            };
            print(json, &to_json(&receipt), || {
                let verb = if deposit { "deposited" } else { "withdrew" };
                let again = if receipt.deduplicated {
                    " (a retry: already done, nothing written)"
                } else {
                    ""
                };
                format!(
                    "{verb} {amount} on {account}{again}; balance {}",
                    shown(receipt.balance)
                )
            });
            warn_lagging(&receipt.lagging);
        }
        Command::Transfer {
            from,
            to,
            amount,
            idempotency_key,
        } => {
            let from = AccountId::new(from.as_str())?;
            let to = AccountId::new(to.as_str())?;
            let amount = parse_amount(amount)?;
            let key = idempotency_key.as_deref().map(parse_key).transpose()?;
            let bank = open_bank(cli).await?;
            let outcome = bank.transfer(&from, &to, amount, key).await?;
            print(json, &to_json(&outcome), || {
                if outcome.status == "completed" {
                    format!(
                        "transfer {} completed: {amount} from {from} to {to}",
                        outcome.transfer
                    )
                } else {
                    format!(
                        "transfer {} of {amount} from {from} to {to} is requested and {}: \
                         the saga settles it",
                        outcome.transfer, outcome.status
                    )
                }
            });
            warn_lagging(&outcome.lagging);
        }
        Command::Close { account } => {
            let account = AccountId::new(account.as_str())?;
            let bank = open_bank(cli).await?;
            let receipt = bank.close(&account).await?;
            print(json, &to_json(&receipt), || {
                format!("closed account {account}")
            });
            warn_lagging(&receipt.lagging);
        }
        Command::Balance { account } => {
            let account = AccountId::new(account.as_str())?;
            let bank = open_bank(cli).await?;
            let view = bank.balance(&account).await?;
            print(json, &to_json(&view), || {
                format!(
                    "{}: {} ({}), owner {}",
                    view.account,
                    Cents::new(view.balance).unwrap_or_default(),
                    view.status,
                    view.owner_name
                )
            });
        }
        Command::History { account } => {
            let account = AccountId::new(account.as_str())?;
            let bank = open_bank(cli).await?;
            let events = bank.history(&account).await?;
            print(
                json,
                &json!({ "account": account.as_str(), "events": events }),
                || {
                    events
                        .iter()
                        .map(|e| {
                            format!(
                                "#{} {} at {}  {}",
                                e["version"],
                                e["event_type"].as_str().unwrap_or_default(),
                                e["recorded_at"].as_str().unwrap_or_default(),
                                match e.get("error") {
                                    Some(error) => format!(
                                        "cannot be read ({}): {}",
                                        error["error"].as_str().unwrap_or_default(),
                                        error["message"].as_str().unwrap_or_default()
                                    ),
                                    None => e["data"].to_string(),
                                }
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        Command::Search { query } => {
            let bank = open_bank(cli).await?;
            let results = bank.search(query).await?;
            print(json, &to_json(&results), || {
                if results.is_empty() {
                    "no account matches".to_owned()
                } else {
                    es_app::cli::out::table(
                        &["account", "owner"],
                        &[],
                        results
                            .iter()
                            .map(|r| vec![r.account.to_string(), r.owner_name.clone()])
                            .collect(),
                    )
                    .trim_end()
                    .to_owned()
                }
            });
        }
        Command::Forget { owner_id, force } => {
            let owner = OwnerId::new(owner_id.as_str())?;
            let bank = open_bank(cli).await?;
            let (forgotten, seen) = bank.forget(&owner, *force).await?;
            print(
                json,
                &{
                    let mut out = json!({
                        "owner_id": owner.as_str(),
                        "forgotten": true,
                        "already_forgotten": !forgotten,
                        "visible": seen.visible(),
                    });
                    if !seen.visible() {
                        out["lagging"] = to_json(&seen.lagging);
                    }
                    out
                },
                || {
                    if forgotten {
                        format!(
                            "forgot owner {owner}: their name and email are shredded everywhere"
                        )
                    } else {
                        format!("owner {owner} was already forgotten")
                    }
                },
            );
            warn_lagging(&seen.lagging);
        }
        Command::Demo => demo(cli).await?,
        Command::Serve {
            addr,
            tokens_file,
            request_timeout,
            header_timeout,
            max_connections,
            max_in_flight,
        } => {
            let limits = bank_account::server::Limits {
                header_read: Duration::from_secs(*header_timeout),
                request: Duration::from_secs(*request_timeout),
                max_connections: usize::try_from(*max_connections).unwrap_or(usize::MAX),
                max_in_flight: usize::try_from(*max_in_flight).unwrap_or(usize::MAX),
            };
            serve(cli, *addr, tokens_file.as_deref(), limits).await?;
        }
        Command::Tokens(TokensCommand::New { role, label }) => {
            use bank_account::server::{Role, Tokens};
            let mut roles: Vec<Role> = role
                .iter()
                .map(|r| match r {
                    RoleArg::Teller => Role::Teller,
                    RoleArg::Operator => Role::Operator,
                })
                .collect();
            roles.sort();
            roles.dedup();
            let token = Tokens::generate();
            let line = Tokens::line(&token, &roles, label);
            print(json, &json!({ "token": token, "line": line }), || {
                format!(
                    "token: {token}\nadd this line to the tokens file (it holds only the hash):\n{line}"
                )
            });
        }
        Command::Migrate
        | Command::Projections(_)
        | Command::Streams(_)
        | Command::Keys(_)
        | Command::Snapshots(_) => unreachable!("run by the kit"),
    }
    Ok(())
}

async fn serve(
    cli: &Cli,
    addr: SocketAddr,
    tokens_file: Option<&std::path::Path>,
    limits: bank_account::server::Limits,
) -> Result<(), Error> {
    let tokens = match tokens_file {
        Some(path) => bank_account::server::Tokens::load(path)?,
        None => bank_account::server::Tokens::none(),
    };
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(Error::Config(format!(
            "refusing to serve {addr} without authentication: give --tokens-file (see `tokens new`), \
             or listen on a loopback address"
        )));
    }
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Error::Internal(format!("cannot install the metrics recorder: {e}")))?;
    let (bank, notice) = Bank::open_bounded(&cli.config, Some(limits.request)).await?;
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    let bank = Arc::new(bank.with_wait(Duration::from_secs_f64(cli.wait)));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Internal(e.to_string()))?;
    // One signal stops both: the server stops accepting and finishes its
    // requests, the runners finish the batch in hand.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        es_app::cli::shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    // The read models and the saga follow the log in this process, woken by
    // the store's notifications (standing by while another process runs
    // them).
    let runners = {
        let bank = Arc::clone(&bank);
        let stopped = until_stopped(stopped.clone());
        tokio::spawn(async move { bank.run_projections(stopped).await })
    };
    if tokens.is_empty() {
        eprintln!(
            "no tokens configured (--tokens-file): the API is open to anyone who can reach {local}, \
             so it listens on loopback only"
        );
    }
    eprintln!("listening on http://{local}");
    let app = bank_account::server::limited(
        http::router_with(Arc::clone(&bank), Some(metrics), tokens),
        limits,
    );
    let served = bank_account::server::serve(listener, app, limits, until_stopped(stopped))
        .await
        .map_err(|e| Error::Internal(format!("the server failed: {e}")));
    match runners.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("warning: the runners stopped: {error}"),
        Err(error) => eprintln!("warning: the runners stopped: {error}"),
    }
    served
}

async fn demo(cli: &Cli) -> Result<(), Error> {
    // Each step a line of text, or under `--json` one string of the
    // document's `steps`, printed at the end.
    let mut steps: Vec<String> = Vec::new();
    macro_rules! say {
        ($($arg:tt)*) => {
            if cli.output.json {
                steps.push(format!($($arg)*));
            } else {
                es_app::outln!($($arg)*);
            }
        };
    }
    let config = &cli.config;
    let bank = open_bank(cli).await?;
    let run = &uuid::Uuid::now_v7().simple().to_string()[20..];
    let id = |name: &str| AccountId::new(format!("{name}-{run}"));
    let (alice, bob) = (id("alice")?, id("bob")?);
    let ada = OwnerId::new(format!("ada-{run}"))?;
    let alan = OwnerId::new(format!("alan-{run}"))?;
    let cents = |n| Cents::amount(n);
    say!(
        "== the es bank-account demo ({:?} store, data in {})",
        bank.store().backend(),
        config.data_dir().display()
    );

    bank.open_account(
        &alice,
        &ada,
        "Ada Lovelace".into(),
        Some("ada@example.org".into()),
        cents(10_000)?,
    )
    .await?;
    say!(
        "opened {alice} for Ada Lovelace with 100.00 (her name and email are sealed with her own key)"
    );
    bank.open_account(&bob, &alan, "Alan Turing".into(), None, Cents::ZERO)
        .await?;
    say!("opened {bob} for Alan Turing");

    let key = parse_key(&format!("demo-deposit-{run}"))?;
    for attempt in 1..=2 {
        let receipt = bank
            .deposit(&alice, cents(2_500)?, Some(key.clone()))
            .await?;
        say!(
            "deposit 25.00 on {alice} (attempt {attempt}, same idempotency key): balance {}, retry: {}",
            shown(receipt.balance),
            receipt.deduplicated
        );
    }
    match bank.withdraw(&bob, cents(1)?, None).await {
        Err(error) => say!(
            "withdraw 0.01 from {bob} refused: {error} [{}]",
            error.kind()
        ),
        Ok(_) => return Err(Error::Internal("the overdraft was not refused".into())),
    }
    let transfer = bank.transfer(&alice, &bob, cents(4_000)?, None).await?;
    say!(
        "transfer {} of 40.00 from {alice} to {bob}: {}",
        transfer.transfer,
        transfer.status
    );
    match bank.transfer(&bob, &alice, cents(1_000_000)?, None).await {
        Err(error) => say!("transfer of 10000.00 from {bob}: {error}"),
        Ok(_) => {
            return Err(Error::Internal(
                "the transfer without funds completed".into(),
            ));
        }
    }
    let closed = id("closed")?;
    bank.open_account(&closed, &alan, "Alan Turing".into(), None, Cents::ZERO)
        .await?;
    bank.close(&closed).await?;
    match bank.transfer(&alice, &closed, cents(500)?, None).await {
        Err(error) => say!("transfer of 5.00 to the closed account {closed}: {error}"),
        Ok(_) => {
            return Err(Error::Internal(
                "the transfer to a closed account completed".into(),
            ));
        }
    }
    for account in [&alice, &bob] {
        let view = bank.balance(account).await?;
        say!(
            "balance of {account}: {} (owner {})",
            Cents::new(view.balance)?,
            view.owner_name
        );
    }
    let hits = bank.search("lovelase").await?;
    say!(
        "search \"lovelase\" (fuzzy): {}",
        hits.iter()
            .map(|h| format!("{} {}", h.account, h.owner_name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let (_, seen) = bank.forget(&ada, false).await?;
    warn_lagging(&seen.lagging);
    say!("forgot Ada (owner {ada}): her data key is destroyed and every read model purged");
    let hits = bank.search("lovelace").await?;
    say!("search \"lovelace\" now: {} result(s)", hits.len());
    let hits = bank.search(alice.as_str()).await?;
    say!(
        "search by account id {alice}: {}",
        hits.iter()
            .map(|h| format!("{} {}", h.account, h.owner_name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let history = bank.history(&alice).await?;
    if let Some(opened) = history.first() {
        say!("the opening event of {alice} now reads: {}", opened["data"]);
    }
    let view = bank.balance(&alice).await?;
    say!(
        "{alice} is still usable: balance {}, owner {}",
        Cents::new(view.balance)?,
        view.owner_name
    );
    say!("== done; try `bank-account projections status` or `bank-account serve`");
    if cli.output.json {
        es_app::outln!("{}", json!({ "steps": steps }));
    }
    Ok(())
}
