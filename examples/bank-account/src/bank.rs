//! [`Bank`]: the application service. Every command goes through the
//! repository and returns once it is written; it then waits, for a bounded
//! time, until the read models show it (read-your-writes, whoever runs the
//! projections: `serve`, a `projections run` worker, or this process when
//! nobody does), and says whether they do. A write is never reported as
//! failed because a read model lags.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use es_app::projections::{Context, Halt, Lag, LagReason, Projections, Visibility};
use es_app::{Config, Kv, Store};
use es_core::{
    BoxFuture, Checkpoint, CommandOptions, Crypto, EventStore, ForgetOutcome, IdempotencyKey,
    KeyStore, KvSink, Repository, StreamVersion,
};
use es_projections::{Reactions, Reactor, SearchIndex};
use serde::Serialize;
use serde_json::{Value, json};

use crate::account::{Account, AccountCommand, AccountEvent};
use crate::error::Error;
use crate::ids::{AccountId, OwnerId, TransferId};
use crate::money::Cents;
use crate::read_models::{self, AccountSearch, Balances, SHREDDED, keys};
use crate::transfer::{Transfer, TransferCommand, TransferSaga, TransferStatus, transfer_id_for};

/// The search index's directory under the data directory.
const SEARCH_INDEX: &str = "accounts";
/// How long a command waits, by default, for the read models (and a
/// transfer for its saga) to show it before it returns anyway, saying they
/// lag.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(2);
/// How long a forget waits for every read model to purge the owner before it
/// returns (saying which have not yet).
const FORGET_WAIT: Duration = Duration::from_secs(30);
/// The read models' names.
const BALANCES: &str = "balances";
const SEARCH: &str = "account-search";

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
    /// `completed`, or `pending` when the saga had not settled it within the
    /// wait (it goes on; refused and compensated transfers are errors).
    pub status: &'static str,
    /// The account debited.
    pub from: String,
    /// The account credited.
    pub to: String,
    /// The amount in cents.
    pub amount: u64,
    /// Whether this was a retry of a transfer already made with the same key.
    pub deduplicated: bool,
    /// Whether the read models showed the transfer when this returned.
    pub visible: bool,
    /// The read models that did not, and why (empty when visible).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lagging: Vec<Lag>,
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
    /// The balance now: from the read model when it shows the command, from
    /// the account's own events otherwise; `None` (JSON `null`) when neither
    /// could be read after the write (the write is done all the same).
    pub balance: Option<u64>,
    /// Whether the read models showed the command when this returned.
    pub visible: bool,
    /// The read models that did not, and why (empty when visible).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lagging: Vec<Lag>,
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
    es_app::open_search(config, SEARCH_INDEX, read_models::SEARCH_FIELDS).await
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
    /// How long a command waits for the read models to show it.
    wait: Duration,
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
        Self::open_bounded(config, None).await
    }

    /// [`open`](Self::open), with every PostgreSQL statement bounded by
    /// `statement_timeout` (the server's request budget).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_bounded(
        config: &Config,
        statement_timeout: Option<Duration>,
    ) -> Result<(Self, Option<String>), Error> {
        let store = Store::connect_bounded(config, statement_timeout).await?;
        store.migrate().await?;
        // Refuses a lost development key while the store holds keys it
        // wrapped, instead of making a new one.
        let keys = config.master_keyring_for(&store).await?;
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
            wait: DEFAULT_WAIT,
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

    /// How long commands wait for the read models to show them
    /// ([`DEFAULT_WAIT`] unless set).
    #[must_use]
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Runs every read model and the saga in this process until `shutdown`
    /// resolves: what `serve` does beside the HTTP API. One runner per
    /// projection is active across processes; the others stand by.
    ///
    /// # Errors
    ///
    /// Never in practice: runners are retried, not given up.
    pub async fn run_projections(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), Error> {
        self.registry.run_all(&self.cx, shutdown).await?;
        Ok(())
    }

    /// Waits (at most the bank's wait) until every read model and the saga
    /// have passed `target`.
    async fn visible(&self, target: Option<Checkpoint>) -> Visibility {
        match target {
            Some(target) => self.registry.wait_for(&self.cx, target, self.wait).await,
            None => Visibility {
                lagging: Vec::new(),
            },
        }
    }

    /// Before a read of `name`: catches it up if nobody runs it; a halted
    /// model is the error `read_model_halted`.
    async fn fresh(&self, name: &str) -> Result<(), Error> {
        let seen = self.registry.refresh(&self.cx, &[name], self.wait).await?;
        for lag in seen.lagging {
            match lag.reason {
                LagReason::Halted(halt) => return Err(halted(&lag.projection, &halt)),
                reason => {
                    tracing::warn!(projection = %lag.projection, ?reason, "the read model could not be caught up; reading it as it is");
                }
            }
        }
        Ok(())
    }

    /// The projections that are halted, with where and why.
    ///
    /// # Errors
    ///
    /// The store or a read model failed.
    pub async fn halted(&self) -> Result<Vec<(String, Halt)>, Error> {
        Ok(self.registry.halted(&self.cx).await?)
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
        // Written: from here on, nothing may report a failure.
        let seen = self.visible(done.checkpoint).await;
        let balance = match self.balance_of(account, seen.visible()).await {
            Ok(balance) => balance,
            Err(error) => {
                tracing::warn!(error = %error, "the balance after a written command cannot be read");
                None
            }
        };
        Ok(Receipt {
            account: account.to_string(),
            version: done.version.get(),
            deduplicated: done.deduplicated,
            balance,
            visible: seen.visible(),
            lagging: seen.lagging,
        })
    }

    /// The balance now: from the read model when it shows the command
    /// (`visible`), else from the account's events.
    async fn balance_of(&self, account: &AccountId, visible: bool) -> Result<Option<u64>, Error> {
        if visible && let Ok(view) = self.account(account).await {
            return Ok(Some(view.balance));
        }
        let loaded = self.accounts.load(account.as_str()).await?;
        Ok(Some(loaded.state.balance.get()))
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

    /// Transfers money: requests the transfer, then waits (within the
    /// bank's wait) for the saga to settle it. Completed, or `pending` when
    /// the saga had not settled it by then (it goes on; never an error); a
    /// transfer refused (nothing moved) or compensated (the source refunded)
    /// is an error.
    ///
    /// # Errors
    ///
    /// `transfer_refused`, `transfer_compensated`, `same_account`,
    /// `conflict` (a key reused for another transfer), or an infrastructure
    /// failure before the request was written.
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
        // Written. Each step of the saga appends the next event: wait until
        // the transfer is over, or the wait is.
        let mut target = done.checkpoint;
        let deadline = tokio::time::Instant::now() + self.wait;
        let (transfer, seen) = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let seen = match target {
                Some(target) => self.registry.wait_for(&self.cx, target, left).await,
                None => Visibility {
                    lagging: Vec::new(),
                },
            };
            let loaded = match self.transfers.load(id.as_str()).await {
                Ok(loaded) => loaded.state,
                Err(error) => {
                    tracing::warn!(%error, "a written transfer cannot be read back");
                    break (None, seen);
                }
            };
            let halted = seen
                .lagging
                .iter()
                .any(|l| matches!(l.reason, LagReason::Halted(_)));
            let head = match Repository::<Transfer, Store>::stream_id(id.as_str()) {
                Ok(stream) => self
                    .cx
                    .store
                    .read_stream(&stream, StreamVersion::INITIAL, 100)
                    .await
                    .ok()
                    .and_then(|events| events.last().map(es_core::RecordedEvent::checkpoint)),
                Err(_) => None,
            };
            if loaded.status.is_settled() {
                // The saga's last step (the credit or the refund) comes
                // before the transfer's own last event in the log: visible
                // once the read models have passed that.
                let seen = match head {
                    Some(head) if Some(head) > target => {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        self.registry.wait_for(&self.cx, head, left).await
                    }
                    _ => seen,
                };
                break (Some(loaded), seen);
            }
            if halted || tokio::time::Instant::now() >= deadline {
                break (Some(loaded), seen);
            }
            if head.is_some() && head == target && seen.visible() {
                // Nothing new yet: the saga's next step is on its way.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            target = head.or(target);
        };
        let pending = |seen: Visibility| TransferOutcome {
            transfer: id.to_string(),
            status: "pending",
            from: from.to_string(),
            to: to.to_string(),
            amount: amount.get(),
            deduplicated: done.deduplicated,
            visible: false,
            lagging: seen.lagging,
        };
        let Some(transfer) = transfer else {
            return Ok(pending(seen));
        };
        match transfer.status {
            TransferStatus::Completed => Ok(TransferOutcome {
                transfer: id.to_string(),
                status: "completed",
                from: from.to_string(),
                to: to.to_string(),
                amount: amount.get(),
                deduplicated: done.deduplicated,
                visible: seen.visible(),
                lagging: seen.lagging,
            }),
            status if status.is_settled() => Err(Error::TransferNotCompleted {
                transfer: id.to_string(),
                status,
            }),
            _ => Ok(pending(seen)),
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

    /// [`account`](Self::account), after catching the balances up if no
    /// runner follows them.
    ///
    /// # Errors
    ///
    /// As [`account`](Self::account), and `read_model_halted` when the
    /// balances are halted at a poison event.
    pub async fn balance(&self, account: &AccountId) -> Result<AccountView, Error> {
        self.fresh(BALANCES).await?;
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
            // One undecodable event (corrupt, of an unknown type or schema
            // version) is shown as such; it does not hide the others.
            let events = match self.accounts.decode_events(&records).await {
                Ok(events) => events.into_iter().map(Ok).collect(),
                Err(_) => {
                    let mut one_by_one = Vec::with_capacity(records.len());
                    for record in &records {
                        one_by_one.push(
                            self.accounts
                                .decode_events(std::slice::from_ref(record))
                                .await
                                .and_then(|mut e| e.pop().ok_or(es_core::Error::EmptyAppend)),
                        );
                    }
                    one_by_one
                }
            };
            for (record, event) in records.iter().zip(events) {
                let mut shown = json!({
                    "version": record.version.get(),
                    "position": record.position.get(),
                    "event_id": record.event_id.to_string(),
                    "event_type": record.event_type,
                    "schema_version": record.schema_version,
                    "recorded_at": es_app::cli::out::timestamp(&record.metadata.recorded_at),
                });
                match event {
                    Ok(event) => {
                        shown["idempotency_key"] =
                            json!(record.metadata.idempotency_key.as_ref().map(|k| k.as_str()));
                        shown["causation_id"] =
                            json!(record.metadata.causation_id.map(|c| c.to_string()));
                        shown["data"] = describe(&event);
                    }
                    Err(error) => {
                        let error = Error::from(error);
                        shown["error"] =
                            json!({ "error": error.kind(), "message": error.to_string() });
                    }
                }
                out.push(shown);
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
        self.fresh(SEARCH).await?;
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

    /// Forgets an owner: destroys their data key, then waits until every
    /// read model has purged them (Redis keys deleted, the search index's
    /// segments merged and old files collected), and truncates the embedded
    /// file's write-ahead log over the securely deleted rows. Returns whether
    /// the owner was forgotten now (`false`: already), and the read models
    /// that had not purged them within 30 s (their runners purge them when
    /// they get there; the write-ahead log is truncated again by the next
    /// forget).
    ///
    /// # Errors
    ///
    /// An infrastructure failure before the key was destroyed.
    pub async fn forget(&self, owner: &OwnerId, force: bool) -> Result<(bool, Visibility), Error> {
        let crypto = self
            .cx
            .crypto
            .as_ref()
            .ok_or_else(|| Error::Config("no master key".into()))?;
        // An id with no key at all (a typo, say) has nothing to shred; its
        // tombstone would block the id for good. Only on request.
        if !force
            && self
                .cx
                .store
                .load_keys(&[owner.subject()])
                .await?
                .is_empty()
        {
            return Err(Error::NotFound(
                "no key is stored for that owner: none of their data is here, so nothing was \
                 shredded (check the id; `--force` records the tombstone anyway, and no data can \
                 be written for that id again)"
                    .into(),
            ));
        }
        let outcome = crypto.forget(&self.cx.store, &owner.subject()).await?;
        let seen = match &outcome {
            ForgetOutcome::Forgotten(result) => {
                self.registry
                    .wait_for(&self.cx, result.checkpoint, self.wait.max(FORGET_WAIT))
                    .await
            }
            ForgetOutcome::AlreadyForgotten => Visibility {
                lagging: Vec::new(),
            },
        };
        if let Store::Sqlite(sqlite) = &self.cx.store
            && let Err(error) = sqlite.truncate_wal().await
        {
            tracing::warn!(error = %es_app::report(&error), "the write-ahead log could not be truncated after a forget");
        }
        Ok((matches!(outcome, ForgetOutcome::Forgotten(_)), seen))
    }
}

/// The error of a read whose read model is halted.
fn halted(projection: &str, halt: &Halt) -> Error {
    Error::ReadModelHalted(format!(
        "the read model `{projection}` is halted at event {} ({}): see `projections status` and `projections dead-letters list {projection}`",
        halt.event_id, halt.event_type
    ))
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
