//! Aggregates: the consistency boundary that decides on commands and evolves by
//! events.

use crate::{Codec, Error, Event};

/// The derived half of an aggregate: its stable name and snapshot policy.
///
/// Implement it with [`#[derive(Aggregate)]`](derive@crate::Aggregate):
///
/// ```
/// use es_core::{Aggregate, AggregateType};
/// # use es_core::Event;
/// # #[derive(Debug, Clone, Event)] enum E { Happened }
/// # #[derive(Debug, thiserror::Error)] #[error("no")] struct No;
///
/// #[derive(Default, serde::Serialize, serde::Deserialize, Aggregate)]
/// #[aggregate(name = "counter", snapshot_every = 50, snapshot_version = 2)]
/// struct Counter {
///     n: u64,
/// }
/// # impl Aggregate for Counter {
/// #     type Command = (); type Event = E; type Error = No;
/// #     fn handle(&self, _: ()) -> Result<Vec<E>, No> { Ok(vec![E::Happened]) }
/// #     fn apply(&mut self, _: &E) { self.n += 1 }
/// # }
///
/// assert_eq!(Counter::TYPE_NAME, "counter");
/// assert_eq!(Counter::SNAPSHOT_EVERY, Some(50));
/// assert_eq!(Counter::SNAPSHOT_VERSION, 2);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate type",
    note = "add `#[derive(es_core::Aggregate)]` to the aggregate's state type"
)]
pub trait AggregateType: Sized {
    /// The stable name of the aggregate type: the prefix of its stream ids.
    const TYPE_NAME: &'static str;

    /// Take a snapshot every this many events; `None` disables snapshots.
    const SNAPSHOT_EVERY: Option<u64>;

    /// The schema version of the snapshot encoding. Raise it whenever the state's
    /// shape changes: snapshots of another version are ignored, never mis-decoded.
    const SNAPSHOT_VERSION: u32;

    /// Encodes the state for a snapshot; `Ok(None)` when snapshots are disabled.
    fn encode_snapshot<C: Codec>(&self, codec: &C) -> Result<Option<Vec<u8>>, Error>;

    /// Decodes a snapshot written by [`encode_snapshot`](Self::encode_snapshot)
    /// at [`SNAPSHOT_VERSION`](Self::SNAPSHOT_VERSION); `Ok(None)` when snapshots
    /// are disabled.
    fn decode_snapshot<C: Codec>(codec: &C, bytes: &[u8]) -> Result<Option<Self>, Error>;
}

/// An aggregate: decides on commands (`handle`) and evolves by events (`apply`).
///
/// Both are synchronous and pure, so domain tests need no runtime and replaying
/// the same events always yields the same state. Everything else (the name,
/// snapshots) comes from [`#[derive(Aggregate)]`](derive@crate::Aggregate).
///
/// ```
/// use es_core::{Aggregate, Event};
///
/// #[derive(Debug, Clone, PartialEq, Event)]
/// enum AccountEvent {
///     Deposited { amount: u64 },
///     Withdrawn { amount: u64 },
/// }
///
/// enum AccountCommand {
///     Deposit(u64),
///     Withdraw(u64),
/// }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// enum AccountError {
///     #[error("amount must be positive")]
///     ZeroAmount,
///     #[error("insufficient funds")]
///     InsufficientFunds,
/// }
///
/// #[derive(Default, Aggregate)]
/// #[aggregate(name = "account")]
/// struct Account {
///     balance: u64,
/// }
///
/// impl Aggregate for Account {
///     type Command = AccountCommand;
///     type Event = AccountEvent;
///     type Error = AccountError;
///
///     fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
///         match command {
///             AccountCommand::Deposit(0) | AccountCommand::Withdraw(0) => Err(AccountError::ZeroAmount),
///             AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited { amount }]),
///             AccountCommand::Withdraw(amount) if amount > self.balance => {
///                 Err(AccountError::InsufficientFunds)
///             }
///             AccountCommand::Withdraw(amount) => Ok(vec![AccountEvent::Withdrawn { amount }]),
///         }
///     }
///
///     fn apply(&mut self, event: &AccountEvent) {
///         match event {
///             AccountEvent::Deposited { amount } => self.balance += amount,
///             AccountEvent::Withdrawn { amount } => self.balance -= amount,
///         }
///     }
/// }
///
/// let mut account = Account::default();
/// for event in account.handle(AccountCommand::Deposit(500)).unwrap() {
///     account.apply(&event);
/// }
/// assert_eq!(account.balance, 500);
/// assert_eq!(account.handle(AccountCommand::Withdraw(501)), Err(AccountError::InsufficientFunds));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aggregate",
    note = "implement `es_core::Aggregate` (handle and apply) and derive `es_core::Aggregate`"
)]
pub trait Aggregate: AggregateType + Default + Send + Sync + 'static {
    /// What the aggregate is asked to do.
    type Command: Send + 'static;
    /// What the aggregate records.
    type Event: Event;
    /// Why the aggregate refuses a command (a business rule, not infrastructure).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides which events a command produces, or refuses it. Pure: no IO.
    fn handle(&self, command: Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Evolves the state by one event. Cannot fail: the event already happened.
    fn apply(&mut self, event: &Self::Event);
}
