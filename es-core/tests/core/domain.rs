//! A small bank account written with the derives: nothing hand-written beyond
//! `handle` and `apply`.

use es_core::{Aggregate, Event, Personal, SubjectId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Event)]
pub(crate) enum AccountEvent {
    Opened {
        #[event(subject)]
        owner_id: SubjectId,
        #[event(personal)]
        owner_name: Personal<String>,
    },
    #[event(version = 2, upcast(1 = DepositedV1))]
    Deposited {
        amount: u64,
        reference: String,
    },
    Withdrawn {
        amount: u64,
    },
    #[event(name = "AccountClosed")]
    Closed,
}

/// Version 1 of `Deposited`: no reference, amount in a `u32`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DepositedV1 {
    pub(crate) amount: u32,
}

impl From<DepositedV1> for AccountEvent {
    fn from(old: DepositedV1) -> Self {
        AccountEvent::Deposited {
            amount: u64::from(old.amount),
            reference: "unknown".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AccountCommand {
    Open {
        owner_id: SubjectId,
        owner_name: String,
    },
    Deposit {
        amount: u64,
    },
    Withdraw {
        amount: u64,
    },
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("amounts must be positive")]
    NonPositiveAmount,
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("the balance must be zero to close")]
    NonZeroBalance,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, Aggregate)]
#[aggregate(name = "account", snapshot_every = 5, snapshot_version = 1)]
pub(crate) struct Account {
    pub open: bool,
    pub closed: bool,
    pub balance: u64,
    pub events_applied: u64,
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
            C::Deposit { amount } => Ok(vec![AccountEvent::Deposited {
                amount,
                reference: String::new(),
            }]),
            C::Withdraw { amount } if amount > self.balance => Err(AccountError::InsufficientFunds),
            C::Withdraw { amount } => Ok(vec![AccountEvent::Withdrawn { amount }]),
            C::Close if self.balance != 0 => Err(AccountError::NonZeroBalance),
            C::Close => Ok(vec![AccountEvent::Closed]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        self.events_applied += 1;
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount, .. } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Closed => {
                self.open = false;
                self.closed = true;
            }
        }
    }
}

pub(crate) fn open(owner: &str) -> AccountCommand {
    AccountCommand::Open {
        owner_id: SubjectId::new(format!("owner-{owner}")).unwrap(),
        owner_name: owner.to_owned(),
    }
}
