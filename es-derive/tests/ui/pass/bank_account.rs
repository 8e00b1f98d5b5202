//! A bank-account domain as a user writes it: es-core is the only import the
//! derives need. The generated code triggers no warning, even under strict lints.

#![deny(
    warnings,
    unused_qualifications,
    unused_results,
    missing_debug_implementations
)]

use es_core::{Aggregate, AggregateType, Bincode, Event, Json, PersonalField};

/// Version 1 of `Deposited`, before references existed.
#[derive(serde::Serialize, serde::Deserialize)]
struct DepositedV1 {
    amount: u32,
}

impl From<DepositedV1> for AccountEvent {
    fn from(old: DepositedV1) -> Self {
        AccountEvent::Deposited {
            amount: u64::from(old.amount),
            reference: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Event)]
pub enum AccountEvent {
    /// The account was opened.
    Opened {
        /// The owner: the subject of the personal fields.
        #[event(subject)]
        owner_id: String,
        /// The owner's name.
        #[event(personal)]
        owner_name: String,
        /// The owner's email, renamed in the payload.
        #[event(personal(subject = owner_id))]
        #[serde(rename = "mail")]
        email: String,
    },
    #[event(version = 2, upcast(1 = DepositedV1))]
    Deposited {
        amount: u64,
        reference: String,
    },
    Withdrawn(u64),
    Transferred(u64, String),
    #[event(name = "AccountClosed")]
    Closed,
    /// No longer emitted, still decoded.
    #[deprecated = "no longer emitted"]
    Frozen {
        since: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the account is not open")]
    NotOpen,
}

#[derive(Debug)]
pub enum AccountCommand {
    Open {
        owner_id: String,
        owner_name: String,
    },
    Deposit(u64),
}

#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, es_core::Aggregate)]
#[aggregate(name = "account", snapshot_every = 100)]
pub struct Account {
    open: bool,
    balance: u64,
}

impl Aggregate for Account {
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        match command {
            AccountCommand::Open {
                owner_id,
                owner_name,
            } => Ok(vec![AccountEvent::Opened {
                email: format!("{owner_id}@example.invalid"),
                owner_id,
                owner_name,
            }]),
            AccountCommand::Deposit(_) if !self.open => Err(AccountError::NotOpen),
            AccountCommand::Deposit(amount) => Ok(vec![AccountEvent::Deposited {
                amount,
                reference: String::new(),
            }]),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { amount, .. } => self.balance += amount,
            AccountEvent::Withdrawn(amount) | AccountEvent::Transferred(amount, _) => {
                self.balance -= amount;
            }
            AccountEvent::Closed => self.open = false,
            #[allow(deprecated)]
            AccountEvent::Frozen { .. } => {}
        }
    }
}

fn main() {
    assert_eq!(AccountEvent::TYPES.len(), 6);
    assert_eq!(
        AccountEvent::TYPES[0].personal,
        &[
            PersonalField {
                field: "owner_name",
                subject: "owner_id"
            },
            PersonalField {
                field: "email",
                subject: "owner_id"
            },
        ]
    );
    assert_eq!(AccountEvent::Closed.event_type(), "AccountClosed");
    assert_eq!(Account::TYPE_NAME, "account");

    let mut account = Account::default();
    let opened = account
        .handle(AccountCommand::Open {
            owner_id: "u-1".into(),
            owner_name: "Ada".into(),
        })
        .unwrap();
    for event in &opened {
        account.apply(event);
        let json = event.encode(&Json).unwrap();
        assert!(String::from_utf8(json).unwrap().contains("\"mail\""));
        let bytes = event.encode(&Bincode).unwrap();
        let back =
            AccountEvent::decode(&Bincode, event.event_type(), event.schema_version(), &bytes);
        assert_eq!(&back.unwrap(), event);
    }
    let snapshot = account.encode_snapshot(&Bincode).unwrap().unwrap();
    assert_eq!(
        Account::decode_snapshot(&Bincode, &snapshot).unwrap(),
        Some(account)
    );
}
