//! The workloads' domain: deposits to accounts, with and without snapshots,
//! with and without personal data.

use es_core::{
    Aggregate, Bincode, Crypto, Event, EventId, EventStore, KeyStore, Metadata, NewEvent, Personal,
    SubjectId, encode_events,
};
use serde::{Deserialize, Serialize};

/// What happens to an account.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub(crate) enum AccountEvent {
    /// Money in.
    Deposited { amount: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub(crate) struct Never;

/// An account without snapshots: a load replays every event.
#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "account")]
pub(crate) struct Account {
    pub(crate) balance: i64,
}

/// The same account with a snapshot every 100 events.
#[derive(Debug, Default, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "saccount", snapshot_every = 100)]
pub(crate) struct SnapAccount {
    pub(crate) balance: i64,
}

macro_rules! deposits {
    ($t:ty) => {
        impl Aggregate for $t {
            type Command = i64;
            type Event = AccountEvent;
            type Error = Never;

            fn handle(&self, amount: i64) -> Result<Vec<AccountEvent>, Never> {
                Ok(vec![AccountEvent::Deposited { amount }])
            }

            fn apply(&mut self, event: &AccountEvent) {
                let AccountEvent::Deposited { amount } = event;
                self.balance += amount;
            }
        }
    };
}
deposits!(Account);
deposits!(SnapAccount);

/// A note about an account holder: with the text as personal data, or the
/// same fields in clear.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub(crate) enum NoteEvent {
    /// The text is sealed with the holder's key.
    Sealed {
        #[event(subject)]
        holder: SubjectId,
        #[event(personal)]
        text: Personal<String>,
        amount: i64,
    },
    /// The same, in clear.
    Clear {
        holder: String,
        text: String,
        amount: i64,
    },
}

/// `count` deposits, encoded as the repository encodes them.
pub(crate) fn deposits(count: usize) -> Vec<NewEvent> {
    (0..count)
        .map(|i| {
            let event = AccountEvent::Deposited {
                amount: i64::try_from(i % 1_000).unwrap_or(0) + 1,
            };
            NewEvent {
                event_id: EventId::new(),
                event_type: event.event_type().to_owned(),
                schema_version: event.schema_version(),
                payload: event.encode(&Bincode).expect("encode"),
                metadata: Metadata::now(),
            }
        })
        .collect()
}

/// `count` notes of `holder`, sealed through `crypto` or in clear.
pub(crate) async fn notes<S: EventStore + KeyStore>(
    store: &S,
    crypto: Option<&Crypto>,
    holder: &str,
    count: usize,
) -> Vec<NewEvent> {
    let subject = SubjectId::new(holder).expect("subject");
    let events: Vec<NoteEvent> = (0..count)
        .map(|i| {
            let text = format!("note {i} about the holder's account, a line of ordinary length");
            let amount = i64::try_from(i).unwrap_or(0);
            if crypto.is_some() {
                NoteEvent::Sealed {
                    holder: subject.clone(),
                    text: Personal::new(subject.clone(), text),
                    amount,
                }
            } else {
                NoteEvent::Clear {
                    holder: holder.to_owned(),
                    text,
                    amount,
                }
            }
        })
        .collect();
    let ids: Vec<(EventId, &NoteEvent)> = events.iter().map(|e| (EventId::new(), e)).collect();
    let payloads = encode_events(crypto, store, &Bincode, &ids)
        .await
        .expect("encode");
    ids.iter()
        .zip(payloads)
        .map(|((event_id, event), payload)| NewEvent {
            event_id: *event_id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload,
            metadata: Metadata::now(),
        })
        .collect()
}

/// The headline workload's account: opened once, then deposited to.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub(crate) enum LedgerEvent {
    /// The account exists.
    Opened,
    /// Money in.
    Credited { amount: i64 },
}

/// What the headline workload asks of an account.
#[derive(Debug, Clone)]
pub(crate) enum LedgerCommand {
    Open,
    Deposit(i64),
    /// `n` deposits of 1 in one command (the long stream of scenario (d)).
    DepositMany(usize),
}

/// Why an account refused a command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LedgerError {
    #[error("the account is open already")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
}

/// An account of the headline workload, without snapshots.
#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "acct")]
pub(crate) struct Ledger {
    pub(crate) open: bool,
    pub(crate) balance: i64,
}

/// The same account with a snapshot every 100 events.
#[derive(Debug, Default, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "sacct", snapshot_every = 100)]
pub(crate) struct SnapLedger {
    pub(crate) open: bool,
    pub(crate) balance: i64,
}

macro_rules! ledger {
    ($t:ty) => {
        impl Aggregate for $t {
            type Command = LedgerCommand;
            type Event = LedgerEvent;
            type Error = LedgerError;

            fn handle(&self, command: LedgerCommand) -> Result<Vec<LedgerEvent>, LedgerError> {
                match command {
                    LedgerCommand::Open if self.open => Err(LedgerError::AlreadyOpen),
                    LedgerCommand::Open => Ok(vec![LedgerEvent::Opened]),
                    _ if !self.open => Err(LedgerError::NotOpen),
                    LedgerCommand::Deposit(amount) => Ok(vec![LedgerEvent::Credited { amount }]),
                    LedgerCommand::DepositMany(n) => {
                        Ok(vec![LedgerEvent::Credited { amount: 1 }; n])
                    }
                }
            }

            fn apply(&mut self, event: &LedgerEvent) {
                match event {
                    LedgerEvent::Opened => self.open = true,
                    LedgerEvent::Credited { amount } => self.balance += amount,
                }
            }
        }

        impl Balance for $t {
            fn balance(&self) -> i64 {
                self.balance
            }
        }
    };
}
ledger!(Ledger);
ledger!(SnapLedger);

/// What the headline workload checks after a run.
pub(crate) trait Balance {
    fn balance(&self) -> i64;
}
