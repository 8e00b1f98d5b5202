//! The `Account` aggregate: open, deposit, withdraw, close, and the refunds a
//! failed transfer sends back.

use es_core::{Aggregate, Event, Personal, SubjectId};
use serde::{Deserialize, Serialize};

use crate::money::Cents;

/// What happens to an account.
#[derive(Debug, Clone, PartialEq, Eq, Event)]
pub enum AccountEvent {
    /// The account was opened for an owner.
    Opened {
        /// The owner: the data subject of the personal fields.
        #[event(subject)]
        owner_id: SubjectId,
        /// The owner's name: personal data, shredded when the owner is forgotten.
        #[event(personal)]
        owner_name: Personal<String>,
        /// The owner's email, when given: personal data too.
        #[event(personal)]
        email: Option<Personal<String>>,
    },
    /// Money came in.
    Deposited {
        /// The amount, positive.
        amount: Cents,
    },
    /// Money went out.
    Withdrawn {
        /// The amount, positive.
        amount: Cents,
    },
    /// Money of a failed transfer came back (accepted even once closed: the
    /// bank holds it for the owner rather than lose it).
    Refunded {
        /// The amount, positive.
        amount: Cents,
    },
    /// The account was closed at a zero balance.
    Closed,
}

/// What an account can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountCommand {
    /// Open the account, with an optional first deposit.
    Open {
        /// The owner's id.
        owner_id: SubjectId,
        /// The owner's name.
        owner_name: String,
        /// The owner's email.
        email: Option<String>,
        /// A first deposit (zero: none).
        initial: Cents,
    },
    /// Deposit money.
    Deposit {
        /// The amount.
        amount: Cents,
    },
    /// Withdraw money.
    Withdraw {
        /// The amount.
        amount: Cents,
    },
    /// Take back the money of a failed transfer.
    Refund {
        /// The amount.
        amount: Cents,
    },
    /// Close the account.
    Close,
}

/// Why an account refuses a command: business rules, never infrastructure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Opening an account that exists (or existed).
    #[error("the account already exists")]
    AlreadyExists,
    /// Acting on an account that was never opened.
    #[error("the account does not exist")]
    NotFound,
    /// Acting on a closed account.
    #[error("the account is closed")]
    Closed,
    /// A withdrawal above the balance.
    #[error("insufficient funds: the balance is {balance}, the withdrawal {amount}")]
    InsufficientFunds {
        /// The balance.
        balance: Cents,
        /// The amount asked for.
        amount: Cents,
    },
    /// A deposit that would take the balance past [`Cents::MAX`].
    #[error("the balance would exceed {}", Cents::MAX)]
    BalanceTooLarge,
    /// Closing with money left.
    #[error("the balance must be zero to close the account (it is {balance})")]
    NonZeroBalance {
        /// The balance.
        balance: Cents,
    },
}

/// Where an account stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Never opened.
    #[default]
    Missing,
    /// Open.
    Open,
    /// Closed.
    Closed,
}

/// An account's state.
///
/// ```
/// use bank_account::{Account, AccountCommand, AccountError, AccountEvent, Cents};
/// use es_core::testing::given;
///
/// let cents = |n| Cents::new(n).unwrap();
/// given::<Account>([])
///     .when(AccountCommand::Withdraw { amount: cents(1) })
///     .then_error(AccountError::NotFound);
/// let opened = AccountEvent::Opened {
///     owner_id: es_core::SubjectId::new("u-1").unwrap(),
///     owner_name: es_core::Personal::new(es_core::SubjectId::new("u-1").unwrap(), "Ada".into()),
///     email: None,
/// };
/// given::<Account>([opened, AccountEvent::Deposited { amount: cents(500) }])
///     .when(AccountCommand::Withdraw { amount: cents(600) })
///     .then_error(AccountError::InsufficientFunds { balance: cents(500), amount: cents(600) });
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "account", snapshot_every = 100)]
pub struct Account {
    /// Where it stands.
    pub status: Status,
    /// The balance.
    pub balance: Cents,
}

impl Account {
    fn credit(&self, amount: Cents) -> Result<Cents, AccountError> {
        self.balance
            .checked_add(amount)
            .ok_or(AccountError::BalanceTooLarge)
    }
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        match (self.status, command) {
            (
                Status::Missing,
                C::Open {
                    owner_id,
                    owner_name,
                    email,
                    initial,
                },
            ) => {
                let mut events = vec![AccountEvent::Opened {
                    owner_name: Personal::new(owner_id.clone(), owner_name),
                    email: email.map(|email| Personal::new(owner_id.clone(), email)),
                    owner_id,
                }];
                if !initial.is_zero() {
                    events.push(AccountEvent::Deposited { amount: initial });
                }
                Ok(events)
            }
            (_, C::Open { .. }) => Err(AccountError::AlreadyExists),
            (Status::Missing, _) => Err(AccountError::NotFound),
            // Refunds are taken even by a closed account: the money is the
            // owner's, and a transfer must never lose it.
            (_, C::Refund { amount }) => {
                self.credit(amount)?;
                Ok(vec![AccountEvent::Refunded { amount }])
            }
            (Status::Closed, _) => Err(AccountError::Closed),
            (Status::Open, C::Deposit { amount }) => {
                self.credit(amount)?;
                Ok(vec![AccountEvent::Deposited { amount }])
            }
            (Status::Open, C::Withdraw { amount }) if amount > self.balance => {
                Err(AccountError::InsufficientFunds {
                    balance: self.balance,
                    amount,
                })
            }
            (Status::Open, C::Withdraw { amount }) => Ok(vec![AccountEvent::Withdrawn { amount }]),
            (Status::Open, C::Close) if !self.balance.is_zero() => {
                Err(AccountError::NonZeroBalance {
                    balance: self.balance,
                })
            }
            (Status::Open, C::Close) => Ok(vec![AccountEvent::Closed]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.status = Status::Open,
            AccountEvent::Deposited { amount } | AccountEvent::Refunded { amount } => {
                // `handle` refused anything that would overflow; saturating
                // keeps `apply` infallible on a store written by other code.
                self.balance = self.balance.saturating_add(*amount);
            }
            AccountEvent::Withdrawn { amount } => {
                self.balance = self.balance.saturating_sub(*amount);
            }
            AccountEvent::Closed => self.status = Status::Closed,
        }
    }
}
