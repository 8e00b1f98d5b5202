//! The bank-account example: an `Account` aggregate written with the derives.
//!
//! This is the first cut; the full application (CLI, HTTP, projections,
//! transfers, forgetting owners) grows here as the framework does.

use es_core::{Aggregate, Event, Personal, SubjectId};
use serde::{Deserialize, Serialize};

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
    },
    /// Money came in, in cents.
    Deposited {
        /// Cents, positive.
        amount: u64,
    },
    /// Money went out, in cents.
    Withdrawn {
        /// Cents, positive.
        amount: u64,
    },
    /// The account was closed at a zero balance.
    Closed,
}

/// What an account can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountCommand {
    /// Open the account.
    Open {
        /// The owner's id.
        owner_id: SubjectId,
        /// The owner's name.
        owner_name: String,
    },
    /// Deposit cents.
    Deposit {
        /// Cents.
        amount: u64,
    },
    /// Withdraw cents.
    Withdraw {
        /// Cents.
        amount: u64,
    },
    /// Close the account.
    Close,
}

/// Why an account refuses a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// Opening an account that exists.
    #[error("the account already exists")]
    AlreadyOpen,
    /// Acting on an account that is not open.
    #[error("the account is not open")]
    NotOpen,
    /// A zero amount.
    #[error("amounts must be positive")]
    NonPositiveAmount,
    /// A withdrawal above the balance.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// Closing with money left.
    #[error("the balance must be zero to close the account")]
    NonZeroBalance,
}

/// An account's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "account", snapshot_every = 100)]
pub struct Account {
    /// Whether it is open.
    pub open: bool,
    /// Whether it was closed.
    pub closed: bool,
    /// The balance in cents.
    pub balance: u64,
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        match command {
            C::Open { .. } if self.open || self.closed => Err(AccountError::AlreadyOpen),
            C::Open {
                owner_id,
                owner_name,
            } => Ok(vec![AccountEvent::Opened {
                owner_name: Personal::new(owner_id.clone(), owner_name),
                owner_id,
            }]),
            _ if !self.open => Err(AccountError::NotOpen),
            C::Deposit { amount: 0 } | C::Withdraw { amount: 0 } => {
                Err(AccountError::NonPositiveAmount)
            }
            C::Deposit { amount } => Ok(vec![AccountEvent::Deposited { amount }]),
            C::Withdraw { amount } if amount > self.balance => Err(AccountError::InsufficientFunds),
            C::Withdraw { amount } => Ok(vec![AccountEvent::Withdrawn { amount }]),
            C::Close if self.balance != 0 => Err(AccountError::NonZeroBalance),
            C::Close => Ok(vec![AccountEvent::Closed]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Closed => {
                self.open = false;
                self.closed = true;
            }
        }
    }
}
