//! [`Bank`]: the application service. Every command goes through the
//! repository, then the read models and the transfer saga catch up in this
//! process (under their runner locks, so several processes share the work),
//! so what a command returns is already visible to the next query.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use es_app::projections::{Context, Projections, ProjectionsError};
use es_app::{Config, Kv, Store};
use es_core::{
    BoxFuture, Checkpoint, CommandOptions, Crypto, EventStore, ForgetOutcome, IdempotencyKey,
    KvSink, Repository, StreamVersion,
};
use es_projections::{Reactions, Reactor, RunnerError, SearchIndex};
use serde::Serialize;
use serde_json::{Value, json};

use crate::account::{Account, AccountCommand, AccountEvent};
use crate::error::Error;
use crate::ids::{AccountId, OwnerId, TransferId};
use crate::money::Cents;
use crate::read_models::{self, AccountSearch, Balances, SHREDDED, keys};
use crate::transfer::{Transfer, TransferCommand, TransferSaga, TransferStatus, transfer_id_for};

/// The search index's directory under the data directory.
const SEARCH_DIR: &str = "search/accounts";
/// How long a command waits for the read models and the saga to settle when
/// another process holds their runners.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// An account as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountView {
    /// The account id.
    pub account: String,
    /// The balance in cents.
    pub balance: u64,
    /// `open` or `closed`.
    pub status: String,
    /// The owner's id.
    pub owner_id: String,
    /// The owner's name, or `<shredded>`.
    pub owner_name: String,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// The account id.
    pub account: String,
    /// The owner's name, or `<shredded>`.
    pub owner_name: String,
    /// The relevance.
    pub score: f32,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferOutcome {
    /// The transfer's id.
    pub transfer: String,
    /// `completed` (the others are errors).
    pub status: &'static str,
    /// The account debited.
    pub from: String,
    /// The account credited.
    pub to: String,
    /// The amount in cents.
    pub amount: u64,
    /// Whether this was a retry of a transfer already made with the same key.
    pub deduplicated: bool,
}

/// What a write command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The account.
    pub account: String,
    /// Its stream version after the command.
    pub version: u64,
    /// Whether this was a retry that wrote nothing.
    pub deduplicated: bool,
    /// The balance after the command (from the read model).
    pub balance: u64,
}

/// The application's read models and saga, registered for the runners and the
/// operations CLI kit.
///
/// # Errors
///
/// When the key-value model, the search index or the master key cannot be
/// opened.
pub fn read_models<'a>(
    config: &'a Config,
    store: &'a Store,
) -> BoxFuture<'a, Result<Projections, es_app::Error>> {
    Box::pin(async move {
        let keys = config.master_keyring()?;
        let crypto = Arc::new(Crypto::new(keys.keyring));
        Ok(build_registry(config, store, &crypto).await?.0)
    })
}

async fn build_registry(
    config: &Config,
    store: &Store,
    crypto: &Arc<Crypto>,
) -> Result<(Projections, Kv, SearchIndex), es_app::Error> {
    let balances = Kv::open(config, store, "balances").await?;
    let saga_checkpoints = Kv::open(config, store, "transfer-saga").await?;
    let search = open_search(config).await?;
    let saga = TransferSaga::new(
        Repository::new(store.clone()).with_crypto(Arc::clone(crypto)),
        Repository::new(store.clone()).with_crypto(Arc::clone(crypto)),
    );
    let reactor = Reactor::new(Arc::clone(&saga), saga_checkpoints);
    let registry = Projections::new()
        .register(|| Balances, balances.clone(), "key-value")
        .register(|| AccountSearch, search.clone(), "tantivy")
        .register(
            move || Reactions::new(Arc::clone(&saga)),
            reactor,
            "process manager",
        );
    Ok((registry, balances, search))
}

async fn open_search(config: &Config) -> Result<SearchIndex, es_app::Error> {
    SearchIndex::open(
        config.data_dir().join(SEARCH_DIR),
        read_models::SEARCH_FIELDS,
    )
    .await
    .map_err(es_app::Error::Kv)
}

/// The bank: repositories, read models and the saga on the configured store.
pub struct Bank {
    accounts: Repository<Account, Store>,
    transfers: Repository<Transfer, Store>,
    balances: Kv,
    search: SearchIndex,
    registry: Projections,
    cx: Context,
    data_dir: PathBuf,
}

impl std::fmt::Debug for Bank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bank")
            .field("backend", &self.cx.store.backend())
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Bank {
    /// Connects to the configured store (migrating it), opens the read models
    /// and returns the bank, with the notice to show once if a development
    /// master key was just created.
    ///
    /// # Errors
    ///
    /// A bad configuration, an unreachable store, an unusable master key.
    pub async fn open(config: &Config) -> Result<(Self, Option<String>), Error> {
        let store = Store::connect(config).await?;
        store.migrate().await?;
        let keys = config.master_keyring()?;
        let notice = keys.notice();
        let crypto = Arc::new(Crypto::new(keys.keyring));
        crypto.check(&store).await?;
        // The queries read through the registry's own handles: one writer and
        // one reader per index in this process.
        let (registry, balances, search) = build_registry(config, &store, &crypto).await?;
        let bank = Self {
            accounts: Repository::new(store.clone()).with_crypto(Arc::clone(&crypto)),
            transfers: Repository::new(store.clone()).with_crypto(Arc::clone(&crypto)),
            balances,
            search,
            registry,
            cx: Context {
                store,
                crypto: Some(crypto),
            },
            data_dir: config.data_dir().to_owned(),
        };
        Ok((bank, notice))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.cx.store
    }

    /// The registered read models and saga.
    pub fn registry(&self) -> &Projections {
        &self.registry
    }

    /// Runs the read models and the saga until they have read the log as far
    /// as this process's last write (`target`), or, without one, as far as it
    /// goes now; each under its runner lock, so that concurrent processes
    /// share the work (whoever holds a lock brings that model forward for
    /// everyone).
    ///
    /// # Errors
    ///
    /// A store or read model failure, a saga that halted, or no progress to
    /// `target` within 30 seconds.
    pub async fn settle(&self, target: Option<Checkpoint>) -> Result<(), Error> {
        let settle = async {
            loop {
                let read = match self.registry.catch_up(&self.cx).await {
                    Ok(read) => read,
                    // This process's runner lost its lock (its connection
                    // died) and another runner moved on: the stale one was
                    // fenced without writing. Take the lock again.
                    Err(ProjectionsError::Runner(RunnerError::Fenced { .. })) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                };
                let reached = match target {
                    // Without a target: until a pass finds nothing new.
                    None => read.iter().all(|(_, n)| *n == 0),
                    // A write of ours may not be readable yet (an older
                    // transaction of another process still open holds the
                    // read horizon): go round until every model is past it.
                    Some(target) => {
                        let mut reached = true;
                        for name in self.registry.names() {
                            if self
                                .registry
                                .checkpoint(&name)
                                .await?
                                .is_none_or(|c| c < target)
                            {
                                reached = false;
                            }
                        }
                        reached
                    }
                };
                if reached {
                    return Ok::<(), Error>(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(SETTLE_TIMEOUT, settle)
            .await
            .map_err(|_| {
                Error::Unavailable(
                    "the read models did not catch up within 30 s: a runner is stuck or halted \
                     (see `projections status`)"
                        .into(),
                )
            })?
    }

    fn options(key: Option<IdempotencyKey>) -> CommandOptions {
        CommandOptions {
            idempotency_key: key,
            ..CommandOptions::default()
        }
    }

    async fn account_command(
        &self,
        account: &AccountId,
        command: AccountCommand,
        key: Option<IdempotencyKey>,
    ) -> Result<Receipt, Error> {
        let done = self
            .accounts
            .execute_with(account.as_str(), command, Self::options(key))
            .await?;
        self.settle(done.checkpoint).await?;
        let view = self.account(account).await?;
        Ok(Receipt {
            account: account.to_string(),
            version: done.version.get(),
            deduplicated: done.deduplicated,
            balance: view.balance,
        })
    }

    /// Opens an account.
    ///
    /// # Errors
    ///
    /// `already_exists`, or an infrastructure failure.
    pub async fn open_account(
        &self,
        account: &AccountId,
        owner: &OwnerId,
        owner_name: String,
        email: Option<String>,
        initial: Cents,
    ) -> Result<Receipt, Error> {
        if owner_name.trim().is_empty() {
            return Err(Error::InvalidInput("the owner name is empty".into()));
        }
        if owner_name.len() > 200 || email.as_ref().is_some_and(|e| e.len() > 200) {
            return Err(Error::InvalidInput(
                "the owner name and email are at most 200 bytes".into(),
            ));
        }
        if email.as_ref().is_some_and(|e| !e.contains('@')) {
            return Err(Error::InvalidInput("the email has no '@'".into()));
        }
        let command = AccountCommand::Open {
            owner_id: owner.subject(),
            owner_name,
            email,
            initial,
        };
        self.account_command(account, command, None).await
    }

    /// Deposits a positive amount.
    ///
    /// # Errors
    ///
    /// `not_found`, `account_closed`, `balance_too_large`, `conflict` (a key
    /// reused for another request), or an infrastructure failure.
    pub async fn deposit(
        &self,
        account: &AccountId,
        amount: Cents,
        key: Option<IdempotencyKey>,
    ) -> Result<Receipt, Error> {
        self.account_command(account, AccountCommand::Deposit { amount }, key)
            .await
    }

    /// Withdraws a positive amount.
    ///
    /// # Errors
    ///
    /// `insufficient_funds`, `not_found`, `account_closed`, `conflict`, or an
    /// infrastructure failure.
    pub async fn withdraw(
        &self,
        account: &AccountId,
        amount: Cents,
        key: Option<IdempotencyKey>,
    ) -> Result<Receipt, Error> {
        self.account_command(account, AccountCommand::Withdraw { amount }, key)
            .await
    }

    /// Closes an account at a zero balance.
    ///
    /// # Errors
    ///
    /// `non_zero_balance`, `not_found`, `account_closed`, or an
    /// infrastructure failure.
    pub async fn close(&self, account: &AccountId) -> Result<Receipt, Error> {
        self.account_command(account, AccountCommand::Close, None)
            .await
    }

    /// Transfers money and returns once the transfer settled: completed, or
    /// an error saying it was refused (nothing moved) or compensated (the
    /// source refunded).
    ///
    /// # Errors
    ///
    /// `transfer_refused`, `transfer_compensated`, `same_account`,
    /// `conflict` (a key reused for another transfer), `transfer_pending`,
    /// or an infrastructure failure.
    pub async fn transfer(
        &self,
        from: &AccountId,
        to: &AccountId,
        amount: Cents,
        key: Option<IdempotencyKey>,
    ) -> Result<TransferOutcome, Error> {
        let id = match &key {
            Some(key) => transfer_id_for(key),
            None => TransferId::new(format!("t-{}", uuid::Uuid::now_v7().simple()))?,
        };
        let done = self
            .transfers
            .execute_with(
                id.as_str(),
                TransferCommand::Request {
                    from: from.clone(),
                    to: to.clone(),
                    amount,
                },
                Self::options(key),
            )
            .await?;
        // Each step of the saga appends the next event: settle until the
        // transfer is over (or the saga stops making progress).
        let mut target = done.checkpoint;
        let deadline = tokio::time::Instant::now() + SETTLE_TIMEOUT;
        let transfer = loop {
            self.settle(target).await?;
            let loaded = self.transfers.load(id.as_str()).await?;
            if loaded.state.status.is_settled() || tokio::time::Instant::now() > deadline {
                break loaded.state;
            }
            let head = self
                .cx
                .store
                .read_stream(
                    &Repository::<Transfer, Store>::stream_id(id.as_str())?,
                    StreamVersion::INITIAL,
                    100,
                )
                .await?;
            target = head
                .last()
                .map(es_core::RecordedEvent::checkpoint)
                .or(target);
        };
        match transfer.status {
            TransferStatus::Completed => Ok(TransferOutcome {
                transfer: id.to_string(),
                status: "completed",
                from: from.to_string(),
                to: to.to_string(),
                amount: amount.get(),
                deduplicated: done.deduplicated,
            }),
            status if status.is_settled() => Err(Error::TransferNotCompleted {
                transfer: id.to_string(),
                status,
            }),
            status => Err(Error::TransferPending {
                transfer: id.to_string(),
                status: status.name(),
            }),
        }
    }

    /// An account from the balances read model, after it has caught up with
    /// this process's writes.
    ///
    /// # Errors
    ///
    /// `not_found`, or an infrastructure failure.
    pub async fn account(&self, account: &AccountId) -> Result<AccountView, Error> {
        let id = account.as_str();
        let Some(status) = self.balances.get(&keys::status(id)).await? else {
            return Err(Error::NotFound("the account does not exist".into()));
        };
        let balance = self
            .balances
            .get(&keys::balance(id))
            .await?
            .unwrap_or_default();
        let balance = balance
            .parse::<u64>()
            .map_err(|_| Error::Internal("the read model holds a malformed balance".into()))?;
        let owner_id = self
            .balances
            .get(&keys::owner_id(id))
            .await?
            .unwrap_or_default();
        let owner_name = self
            .balances
            .get(&keys::owner_name(id))
            .await?
            .unwrap_or_else(|| SHREDDED.to_owned());
        Ok(AccountView {
            account: id.to_owned(),
            balance,
            status,
            owner_id,
            owner_name,
        })
    }

    /// [`account`](Self::account) after the read models caught up.
    ///
    /// # Errors
    ///
    /// As [`account`](Self::account) and [`settle`](Self::settle).
    pub async fn balance(&self, account: &AccountId) -> Result<AccountView, Error> {
        self.settle(None).await?;
        self.account(account).await
    }

    /// An account's events, with their metadata, personal data opened or
    /// `<shredded>`.
    ///
    /// # Errors
    ///
    /// `not_found`, or an infrastructure failure.
    pub async fn history(&self, account: &AccountId) -> Result<Vec<Value>, Error> {
        let stream = Repository::<Account, Store>::stream_id(account.as_str())?;
        let mut out = Vec::new();
        let mut from = StreamVersion::INITIAL;
        loop {
            let records = self.cx.store.read_stream(&stream, from, 500).await?;
            let Some(last) = records.last() else { break };
            from = last.version;
            let events = self.accounts.decode_events(&records).await?;
            for (record, event) in records.iter().zip(events) {
                out.push(json!({
                    "version": record.version.get(),
                    "position": record.position.get(),
                    "event_id": record.event_id.to_string(),
                    "type": record.event_type,
                    "schema_version": record.schema_version,
                    "recorded_at": record.metadata.recorded_at.to_rfc3339(),
                    "idempotency_key": record.metadata.idempotency_key.as_ref().map(|k| k.as_str()),
                    "causation_id": record.metadata.causation_id.map(|c| c.to_string()),
                    "data": describe(&event),
                }));
            }
        }
        if out.is_empty() {
            return Err(Error::NotFound("the account does not exist".into()));
        }
        Ok(out)
    }

    /// Searches accounts by owner name (fuzzy and prefix) and by account id.
    ///
    /// # Errors
    ///
    /// An infrastructure failure.
    pub async fn search(&self, query: &str) -> Result<Vec<SearchResult>, Error> {
        if query.trim().is_empty() {
            return Err(Error::InvalidInput("the search query is empty".into()));
        }
        if query.len() > 200 {
            return Err(Error::InvalidInput(
                "the search query is at most 200 bytes".into(),
            ));
        }
        self.settle(None).await?;
        let hits = self.search.search(query, 20).await?;
        let mut results: Vec<SearchResult> = Vec::new();
        for hit in hits {
            let Some(account) = hit
                .id
                .strip_prefix("owner:")
                .or_else(|| hit.id.strip_prefix("account:"))
            else {
                continue;
            };
            if results.iter().any(|r| r.account == account) {
                continue;
            }
            let owner_name = match self.search.get(&read_models::owner_doc(account)).await? {
                Some(fields) => fields
                    .into_iter()
                    .find(|(name, _)| name == "owner_name")
                    .map_or_else(|| SHREDDED.to_owned(), |(_, text)| text),
                None => SHREDDED.to_owned(),
            };
            results.push(SearchResult {
                account: account.to_owned(),
                owner_name,
                score: hit.score,
            });
        }
        // Best first; equal scores by account id, so that the same index
        // answers the same way whatever its segment layout (a rebuilt index
        // merges differently).
        results.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.account.cmp(&b.account))
        });
        Ok(results)
    }

    /// Forgets an owner: destroys their data key, then returns once every read
    /// model has purged them (Redis keys deleted, the search index's segments
    /// merged and old files collected, the embedded file's write-ahead log
    /// truncated over securely deleted rows).
    ///
    /// # Errors
    ///
    /// An infrastructure failure.
    pub async fn forget(&self, owner: &OwnerId) -> Result<bool, Error> {
        let crypto = self
            .cx
            .crypto
            .as_ref()
            .ok_or_else(|| Error::Config("no master key".into()))?;
        let outcome = crypto.forget(&self.cx.store, &owner.subject()).await?;
        let target = match &outcome {
            ForgetOutcome::Forgotten(result) => Some(result.checkpoint),
            ForgetOutcome::AlreadyForgotten => None,
        };
        self.settle(target).await?;
        if let Store::Sqlite(sqlite) = &self.cx.store {
            sqlite
                .truncate_wal()
                .await
                .map_err(|e| Error::Internal(es_app::report(&e)))?;
        }
        Ok(matches!(outcome, ForgetOutcome::Forgotten(_)))
    }
}

/// An account event as JSON, personal data opened or `<shredded>`.
pub fn describe(event: &AccountEvent) -> Value {
    match event {
        AccountEvent::Opened {
            owner_id,
            owner_name,
            email,
        } => json!({
            "owner_id": owner_id.as_str(),
            "owner_name": owner_name.display_or(SHREDDED),
            "email": email.as_ref().map(|e| e.display_or(SHREDDED)),
        }),
        AccountEvent::Deposited { amount }
        | AccountEvent::Withdrawn { amount }
        | AccountEvent::Refunded { amount } => json!({ "amount": amount.get() }),
        AccountEvent::Closed => json!({}),
    }
}

impl es_app::cli::Inspect for AccountEvent {
    fn inspect(&self) -> Value {
        describe(self)
    }
}

impl es_app::cli::Inspect for crate::transfer::TransferEvent {
    fn inspect(&self) -> Value {
        use crate::transfer::TransferEvent as T;
        match self {
            T::Requested { from, to, amount } => {
                json!({ "from": from.as_str(), "to": to.as_str(), "amount": amount.get() })
            }
            T::DebitRefused { reason } | T::CreditRefused { reason } => json!({ "reason": reason }),
            T::Debited | T::Credited | T::Refunded => json!({}),
        }
    }
}
