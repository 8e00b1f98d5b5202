//! An application binary embedding the operations CLI kit: a small account
//! domain registered with the kit, plus the application's own `seed`
//! command. The CLI tests run this binary against PostgreSQL and the embedded
//! SQLite default.
//!
//! ```sh
//! cargo run -p es-app --example ops -- seed acc-1 owner-1 "Ada Lovelace" --deposits 2
//! cargo run -p es-app --example ops -- streams list
//! cargo run -p es-app --example ops -- streams show account-acc-1 --json
//! cargo run -p es-app --example ops -- forget owner-1
//! cargo run -p es-app --example ops -- catch-up
//! cargo run -p es-app --example ops -- projections status
//! cargo run -p es-app --example ops -- projections rebuild balances
//! ```

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use es_app::cli::{Command, Inspect, Kit, Output, personal};
use es_app::projections::{Context, Projections};
use es_app::{Config, Kv, Store};
use es_core::{Aggregate, BoxFuture, Crypto, KvBatch, KvSink, Personal, Repository, SubjectId};
use es_projections::{Change, Projection, ProjectionError, SearchBatch, SearchIndex};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What happens to an account.
#[derive(Debug, Clone, es_core::Event)]
enum AccountEvent {
    /// Opened for an owner, whose name is personal data.
    Opened {
        #[event(subject)]
        owner_id: SubjectId,
        #[event(personal)]
        owner_name: Personal<String>,
    },
    /// Money in, in cents.
    Deposited { amount: u64 },
}

impl Inspect for AccountEvent {
    fn inspect(&self) -> serde_json::Value {
        match self {
            Self::Opened {
                owner_id,
                owner_name,
            } => json!({ "owner_id": owner_id, "owner_name": personal(owner_name) }),
            Self::Deposited { amount } => json!({ "amount": amount }),
        }
    }
}

/// What an account can be asked to do.
#[derive(Debug, Clone)]
enum AccountCommand {
    Open { owner_id: SubjectId, name: String },
    Deposit { amount: u64 },
}

/// Why an account refuses.
#[derive(Debug, thiserror::Error)]
enum AccountError {
    #[error("the account already exists")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
}

/// An account's state; snapshots of schema version 2.
#[derive(Debug, Default, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "account", snapshot_every = 100, snapshot_version = 2)]
struct Account {
    open: bool,
    balance: u64,
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open { .. } if self.open => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner_id, name } => Ok(vec![AccountEvent::Opened {
                owner_name: Personal::new(owner_id.clone(), name),
                owner_id,
            }]),
            AccountCommand::Deposit { .. } if !self.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
        }
    }
}

/// A ledger without snapshots: `snapshots take` refuses it.
#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "ledger")]
struct Ledger;

impl Aggregate for Ledger {
    type Command = ();
    type Event = LedgerEvent;
    type Error = std::convert::Infallible;

    fn handle(&self, (): ()) -> Result<Vec<LedgerEvent>, Self::Error> {
        Ok(vec![LedgerEvent::Noted])
    }

    fn apply(&mut self, _: &LedgerEvent) {}
}

/// What happens to a ledger.
#[derive(Debug, Clone, es_core::Event)]
enum LedgerEvent {
    Noted,
}

impl Inspect for LedgerEvent {
    fn inspect(&self) -> serde_json::Value {
        json!({})
    }
}

/// Owner names and balances by account, in the key-value model. A deposit of
/// 999 cents is refused: a poison event for the dead-letter commands.
struct Balances;

impl Projection for Balances {
    type Event = AccountEvent;
    type Sink = Kv;

    fn name(&self) -> &str {
        "balances"
    }

    fn stream_prefix(&self) -> Option<&str> {
        Some("account-")
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        match change {
            Change::Event {
                event:
                    AccountEvent::Opened {
                        owner_id,
                        owner_name,
                    },
                meta,
            } => {
                let key = format!("{}:owner", meta.stream_id);
                writes
                    .set(&key, owner_name.display_or("<shredded>"))
                    .tag(owner_id.as_str(), key);
            }
            Change::Event {
                event: AccountEvent::Deposited { amount },
                meta,
            } => {
                if *amount == 999 {
                    return Err(ProjectionError::new("deposits of 999 are refused"));
                }
                let amount = i64::try_from(*amount)
                    .map_err(|_| ProjectionError::new("the amount does not fit"))?;
                writes.incr_by(format!("{}:balance", meta.stream_id), amount);
            }
            Change::Forgotten { subject, .. } => {
                writes.purge(subject.as_str());
            }
        }
        Ok(())
    }
}

/// Accounts by owner name, for search.
struct Owners;

impl Projection for Owners {
    type Event = AccountEvent;
    type Sink = SearchIndex;

    fn name(&self) -> &str {
        "owners"
    }

    fn stream_prefix(&self) -> Option<&str> {
        Some("account-")
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut SearchBatch,
    ) -> Result<(), ProjectionError> {
        match change {
            Change::Event {
                event:
                    AccountEvent::Opened {
                        owner_id,
                        owner_name,
                    },
                meta,
            } => {
                writes.upsert(
                    meta.stream_id.to_string(),
                    [owner_id.as_str()],
                    [("owner_name", owner_name.display_or("<shredded>"))],
                );
            }
            Change::Event { .. } => {}
            Change::Forgotten { subject, .. } => {
                writes.purge(subject.as_str());
            }
        }
        Ok(())
    }
}

/// The application's projections, on the sinks the configuration selects.
fn projections<'a>(
    config: &'a Config,
    store: &'a Store,
) -> BoxFuture<'a, Result<Projections, es_app::Error>> {
    Box::pin(async move {
        let balances = Kv::open(config, store, "balances").await?;
        let owners = es_app::open_search(config, "owners", &["owner_name"]).await?;
        Ok(Projections::new()
            .register(|| Balances, balances, "key-value")
            .register(|| Owners, owners, "tantivy"))
    })
}

#[derive(Parser)]
#[command(name = "ops", about = "An application with the es operations CLI kit")]
struct App {
    #[command(flatten)]
    config: Config,
    #[command(flatten)]
    output: Output,
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(clap::Subcommand)]
enum AppCommand {
    /// Open an account and make deposits (the application's own command).
    Seed {
        /// The account id.
        account: String,
        /// The owner's subject id.
        owner: String,
        /// The owner's name (personal data).
        name: String,
        /// How many deposits to make.
        #[arg(long, default_value_t = 0)]
        deposits: u32,
        /// The amount of each deposit, in cents.
        #[arg(long, default_value_t = 100)]
        amount: u64,
    },
    /// Run every projection until it has read the whole log.
    CatchUp,
    /// A value of the balances model (`account-<id>:balance`, `…:owner`).
    Get {
        /// The key.
        key: String,
    },
    /// Note something in a ledger (an aggregate without snapshots).
    Note {
        /// The ledger id.
        ledger: String,
    },
    #[command(flatten)]
    Ops(Command),
}

fn kit() -> Kit {
    Kit::new()
        .aggregate::<Account>()
        .aggregate::<Ledger>()
        .projections(projections)
}

async fn catch_up(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(config).await?;
    store.migrate().await?;
    let keys = config.master_keyring()?;
    let registry = projections(config, &store).await?;
    let cx = Context {
        store,
        crypto: Some(Arc::new(Crypto::new(keys.keyring))),
    };
    for (name, read) in registry.catch_up(&cx).await? {
        println!("{name}: read {read} events");
    }
    Ok(())
}

async fn get(config: &Config, key: &str) -> anyhow::Result<()> {
    let store = Store::connect(config).await?;
    let balances = Kv::open(config, &store, "balances").await?;
    match balances.get(key).await? {
        Some(value) => println!("{value}"),
        None => anyhow::bail!("no value at {key}"),
    }
    Ok(())
}

async fn seed(
    config: &Config,
    account: &str,
    owner: &str,
    name: String,
    deposits: u32,
    amount: u64,
) -> anyhow::Result<()> {
    let store = Store::connect(config).await?;
    store.migrate().await?;
    let keys = config.master_keyring()?;
    if let Some(notice) = keys.notice() {
        eprintln!("{notice}");
    }
    let repo =
        Repository::<Account, Store>::new(store).with_crypto(Arc::new(Crypto::new(keys.keyring)));
    let owner_id = SubjectId::new(owner)?;
    repo.execute(account, AccountCommand::Open { owner_id, name })
        .await?;
    for _ in 0..deposits {
        repo.execute(account, AccountCommand::Deposit { amount })
            .await?;
    }
    println!("seeded account {account}");
    Ok(())
}

async fn note(config: &Config, ledger: &str) -> anyhow::Result<()> {
    let store = Store::connect(config).await?;
    store.migrate().await?;
    Repository::<Ledger, Store>::new(store)
        .execute(ledger, ())
        .await?;
    println!("noted in ledger {ledger}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let app: App = es_app::cli::out::parse();
    let done = match app.command {
        AppCommand::Ops(command) => return kit().run(&app.config, &app.output, &command).await,
        AppCommand::Seed {
            account,
            owner,
            name,
            deposits,
            amount,
        } => seed(&app.config, &account, &owner, name, deposits, amount).await,
        AppCommand::CatchUp => catch_up(&app.config).await,
        AppCommand::Get { key } => get(&app.config, &key).await,
        AppCommand::Note { ledger } => note(&app.config, &ledger).await,
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
