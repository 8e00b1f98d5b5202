//! Transfers between accounts: the `Transfer` aggregate records each step, and
//! the [`TransferSaga`] process manager drives them: debit the source, credit
//! the target, and refund the source when the credit is refused.
//!
//! ```text
//! Requested ──debit ok──► Debited ──credit ok──► Credited        (completed)
//!     │                      │
//!     └─debit refused─► DebitRefused (refused)
//!                            └─credit refused─► CreditRefused ──refund──► Refunded (compensated)
//! ```
//!
//! Every command the saga sends carries an idempotency key derived from the
//! event it answers ([`Reaction::key`]), so a redelivery after a crash moves
//! no money twice; and before acting on a step it checks that the transfer
//! still waits for that step, so a step decided once is never decided again.

use std::sync::Arc;

use es_core::{Aggregate, CommandError, CommandOptions, IdempotencyKey, Repository, Storage};
use es_projections::{ProcessManager, Reaction, ReactionError};
use serde::{Deserialize, Serialize};

use crate::account::{Account, AccountCommand, AccountError};
use crate::ids::{AccountId, TransferId};
use crate::money::Cents;

/// What happens to a transfer.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub enum TransferEvent {
    /// A transfer was asked for.
    #[event(name = "TransferRequested")]
    Requested {
        /// The account debited.
        from: AccountId,
        /// The account credited.
        to: AccountId,
        /// The amount.
        amount: Cents,
    },
    /// The source was debited.
    #[event(name = "TransferDebited")]
    Debited,
    /// The source refused the debit: the transfer is refused, nothing moved.
    #[event(name = "TransferDebitRefused")]
    DebitRefused {
        /// Why (the stable kind of the account's error).
        reason: String,
    },
    /// The target was credited: the transfer is complete.
    #[event(name = "TransferCredited")]
    Credited,
    /// The target refused the credit: the source is to be refunded.
    #[event(name = "TransferCreditRefused")]
    CreditRefused {
        /// Why (the stable kind of the account's error).
        reason: String,
    },
    /// The source got its money back: the transfer is compensated.
    #[event(name = "TransferRefunded")]
    Refunded,
}

/// What a transfer can be asked to do: the request, and the saga's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferCommand {
    /// Ask for a transfer.
    Request {
        /// The account debited.
        from: AccountId,
        /// The account credited.
        to: AccountId,
        /// The amount.
        amount: Cents,
    },
    /// Record the debit.
    RecordDebit,
    /// Record the refused debit.
    RefuseDebit {
        /// Why.
        reason: String,
    },
    /// Record the credit.
    RecordCredit,
    /// Record the refused credit.
    RefuseCredit {
        /// Why.
        reason: String,
    },
    /// Record the refund.
    RecordRefund,
}

/// Why a transfer refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The source and the target are the same account.
    #[error("a transfer needs two different accounts")]
    SameAccount,
    /// A zero amount.
    #[error("the amount must be positive")]
    NotPositive,
    /// The transfer exists.
    #[error("the transfer already exists")]
    AlreadyExists,
    /// A step recorded in the wrong state: it was decided already.
    #[error("the transfer is not waiting for this step")]
    OutOfOrder,
}

/// Where a transfer stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferStatus {
    /// Never asked for.
    #[default]
    Missing,
    /// Waiting for the debit.
    Requested,
    /// Debited, waiting for the credit.
    Debited,
    /// Done: the money moved.
    Completed,
    /// The debit was refused; nothing moved.
    Refused {
        /// Why.
        reason: String,
    },
    /// The credit was refused; waiting for the refund.
    Refunding {
        /// Why.
        reason: String,
    },
    /// The source was refunded; nothing moved in the end.
    Compensated {
        /// Why the credit was refused.
        reason: String,
    },
}

impl TransferStatus {
    /// Whether the transfer is over (completed, refused or compensated).
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Refused { .. } | Self::Compensated { .. }
        )
    }

    /// A stable one-word name: `requested`, `debited`, `completed`, `refused`,
    /// `refunding`, `compensated` (or `missing`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Requested => "requested",
            Self::Debited => "debited",
            Self::Completed => "completed",
            Self::Refused { .. } => "refused",
            Self::Refunding { .. } => "refunding",
            Self::Compensated { .. } => "compensated",
        }
    }

    /// Why it did not complete, if it did not.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Refused { reason }
            | Self::Refunding { reason }
            | Self::Compensated { reason } => Some(reason),
            _ => None,
        }
    }
}

/// A transfer's state.
///
/// ```
/// use bank_account::{AccountId, Cents, Transfer, TransferCommand, TransferError};
/// use es_core::testing::given;
///
/// let acc = |id: &str| AccountId::new(id).unwrap();
/// given::<Transfer>([])
///     .when(TransferCommand::Request { from: acc("a"), to: acc("a"), amount: Cents::new(1).unwrap() })
///     .then_error(TransferError::SameAccount);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "transfer")]
pub struct Transfer {
    /// Where it stands.
    pub status: TransferStatus,
    /// The account debited.
    pub from: Option<AccountId>,
    /// The account credited.
    pub to: Option<AccountId>,
    /// The amount.
    pub amount: Cents,
}

impl Aggregate for Transfer {
    type Command = TransferCommand;
    type Event = TransferEvent;
    type Error = TransferError;

    fn handle(&self, command: TransferCommand) -> Result<Vec<TransferEvent>, TransferError> {
        use TransferCommand as C;
        use TransferStatus as S;
        match (&self.status, command) {
            (S::Missing, C::Request { from, to, amount }) => {
                if from == to {
                    Err(TransferError::SameAccount)
                } else if amount.is_zero() {
                    Err(TransferError::NotPositive)
                } else {
                    Ok(vec![TransferEvent::Requested { from, to, amount }])
                }
            }
            (_, C::Request { .. }) => Err(TransferError::AlreadyExists),
            (S::Requested, C::RecordDebit) => Ok(vec![TransferEvent::Debited]),
            (S::Requested, C::RefuseDebit { reason }) => {
                Ok(vec![TransferEvent::DebitRefused { reason }])
            }
            (S::Debited, C::RecordCredit) => Ok(vec![TransferEvent::Credited]),
            (S::Debited, C::RefuseCredit { reason }) => {
                Ok(vec![TransferEvent::CreditRefused { reason }])
            }
            (S::Refunding { .. }, C::RecordRefund) => Ok(vec![TransferEvent::Refunded]),
            _ => Err(TransferError::OutOfOrder),
        }
    }

    fn apply(&mut self, event: &TransferEvent) {
        use TransferStatus as S;
        self.status = match (std::mem::take(&mut self.status), event) {
            (_, TransferEvent::Requested { from, to, amount }) => {
                self.from = Some(from.clone());
                self.to = Some(to.clone());
                self.amount = *amount;
                S::Requested
            }
            (_, TransferEvent::Debited) => S::Debited,
            (_, TransferEvent::DebitRefused { reason }) => S::Refused {
                reason: reason.clone(),
            },
            (_, TransferEvent::Credited) => S::Completed,
            (_, TransferEvent::CreditRefused { reason }) => S::Refunding {
                reason: reason.clone(),
            },
            (S::Refunding { reason } | S::Compensated { reason }, TransferEvent::Refunded) => {
                S::Compensated { reason }
            }
            (_, TransferEvent::Refunded) => S::Compensated {
                reason: String::new(),
            },
        };
    }
}

/// The stable kind of an account's refusal, stored as a transfer's reason.
pub fn refusal_kind(error: &AccountError) -> &'static str {
    match error {
        AccountError::InsufficientFunds { .. } => "insufficient_funds",
        AccountError::NotFound => "account_not_found",
        AccountError::Closed => "account_closed",
        AccountError::BalanceTooLarge => "balance_too_large",
        AccountError::AlreadyExists => "already_exists",
        AccountError::NonZeroBalance { .. } => "non_zero_balance",
    }
}

/// The transfer saga: a [`ProcessManager`] over the transfers' streams.
pub struct TransferSaga<S> {
    accounts: Repository<Account, S>,
    transfers: Repository<Transfer, S>,
}

impl<S> std::fmt::Debug for TransferSaga<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferSaga").finish_non_exhaustive()
    }
}

impl<S> TransferSaga<S>
where
    S: Storage,
{
    /// The saga, sending commands through these repositories.
    pub fn new(accounts: Repository<Account, S>, transfers: Repository<Transfer, S>) -> Arc<Self> {
        Arc::new(Self {
            accounts,
            transfers,
        })
    }

    /// Sends `command` to `account`, keyed; `Ok(Err(kind))` when the account
    /// refuses it.
    async fn account(
        &self,
        account: &AccountId,
        command: AccountCommand,
        key: IdempotencyKey,
        reaction: &Reaction,
    ) -> Result<Result<(), &'static str>, ReactionError> {
        match self
            .accounts
            .execute_with(account.as_str(), command, options(key, reaction))
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(CommandError::Rejected(error)) => Ok(Err(refusal_kind(&error))),
            Err(CommandError::Store(error)) => Err(ReactionError::from_store(&error)),
        }
    }

    /// Records a step on the transfer, keyed; a step decided already is done.
    async fn record(
        &self,
        transfer: &str,
        command: TransferCommand,
        key: IdempotencyKey,
        reaction: &Reaction,
    ) -> Result<(), ReactionError> {
        match self
            .transfers
            .execute_with(transfer, command, options(key, reaction))
            .await
        {
            Ok(_) | Err(CommandError::Rejected(TransferError::OutOfOrder)) => Ok(()),
            Err(CommandError::Rejected(error)) => Err(ReactionError::Failed(error.to_string())),
            Err(CommandError::Store(error)) => Err(ReactionError::from_store(&error)),
        }
    }
}

/// Keyed options, with the triggering event as the cause.
fn options(key: IdempotencyKey, reaction: &Reaction) -> CommandOptions {
    let meta = reaction.meta();
    CommandOptions {
        idempotency_key: Some(key),
        causation_id: Some(*meta.event_id.as_uuid()),
        correlation_id: meta.metadata.correlation_id,
        ..CommandOptions::default()
    }
}

impl<S> ProcessManager for TransferSaga<S>
where
    S: Storage,
{
    type Event = TransferEvent;

    fn name(&self) -> &str {
        "transfer-saga"
    }

    fn stream_prefix(&self) -> Option<&str> {
        Some("transfer-")
    }

    async fn react(&self, event: &TransferEvent, reaction: &Reaction) -> Result<(), ReactionError> {
        let stream = reaction.meta().stream_id.as_str();
        let Some(id) = stream.strip_prefix("transfer-") else {
            return Ok(());
        };
        let transfer = self
            .transfers
            .load(id)
            .await
            .map_err(|e| ReactionError::from_store(&e))?
            .state;
        let (Some(from), Some(to)) = (&transfer.from, &transfer.to) else {
            return Ok(());
        };
        let amount = transfer.amount;
        match (event, &transfer.status) {
            (TransferEvent::Requested { .. }, TransferStatus::Requested) => {
                let debit = AccountCommand::Withdraw { amount };
                let step = match self
                    .account(from, debit, reaction.key("debit"), reaction)
                    .await?
                {
                    Ok(()) => TransferCommand::RecordDebit,
                    Err(reason) => TransferCommand::RefuseDebit {
                        reason: reason.to_owned(),
                    },
                };
                self.record(id, step, reaction.key("debited"), reaction)
                    .await
            }
            (TransferEvent::Debited, TransferStatus::Debited) => {
                let credit = AccountCommand::Deposit { amount };
                let step = match self
                    .account(to, credit, reaction.key("credit"), reaction)
                    .await?
                {
                    Ok(()) => TransferCommand::RecordCredit,
                    Err(reason) => TransferCommand::RefuseCredit {
                        reason: reason.to_owned(),
                    },
                };
                self.record(id, step, reaction.key("credited"), reaction)
                    .await
            }
            (TransferEvent::CreditRefused { .. }, TransferStatus::Refunding { .. }) => {
                let refund = AccountCommand::Refund { amount };
                match self
                    .account(from, refund, reaction.key("refund"), reaction)
                    .await?
                {
                    Ok(()) => {
                        self.record(
                            id,
                            TransferCommand::RecordRefund,
                            reaction.key("refunded"),
                            reaction,
                        )
                        .await
                    }
                    // Only a balance past the maximum refuses a refund: halt,
                    // with the money accounted for in the transfer, for an
                    // operator to settle.
                    Err(reason) => Err(ReactionError::Failed(format!(
                        "the refund of transfer {id} was refused: {reason}"
                    ))),
                }
            }
            // A step already decided (a redelivery), or an event with nothing to do.
            _ => Ok(()),
        }
    }
}

/// A transfer id for an idempotency key: the same key always names the same
/// transfer, so a retried request finds the first one.
pub fn transfer_id_for(key: &IdempotencyKey) -> TransferId {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_str().as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    TransferId::new(format!("t-{hex}"))
        .unwrap_or_else(|_| unreachable!("hex digits make a valid transfer id"))
}
