//! A bank-account domain as a user writes it: es-core is the only import the
//! derives need. The generated code triggers no warning, even under strict lints.
//! Personal data round-trips sealed, through the framework's encryption scope.

#![deny(
    warnings,
    unused_qualifications,
    unused_results,
    missing_debug_implementations
)]

use es_core::{
    Aggregate, AggregateType, Bincode, Crypto, Event, EventId, Json, MasterKey, MasterKeyring,
    MemoryStore, Personal, PersonalField, RecordedEvent, SubjectId,
};

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
        owner_id: SubjectId,
        /// The owner's name.
        #[event(personal)]
        owner_name: Personal<String>,
        /// The owner's email, renamed in the payload.
        #[event(personal(subject = owner_id))]
        #[serde(rename = "mail")]
        email: Personal<String>,
        /// Other names, if any.
        #[event(personal)]
        aliases: Vec<Personal<String>>,
        /// A phone number, if given.
        #[event(personal)]
        phone: Option<Personal<String>>,
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
        owner_id: SubjectId,
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
                email: Personal::new(owner_id.clone(), format!("{owner_id}@example.invalid")),
                owner_name: Personal::new(owner_id.clone(), owner_name),
                aliases: Vec::new(),
                phone: None,
                owner_id,
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
            PersonalField {
                field: "aliases",
                subject: "owner_id"
            },
            PersonalField {
                field: "phone",
                subject: "owner_id"
            },
        ]
    );
    assert_eq!(AccountEvent::Closed.event_type(), "AccountClosed");
    assert_eq!(Account::TYPE_NAME, "account");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let crypto = Crypto::new(MasterKeyring::new(MasterKey::generate("ui").unwrap()));
    let keys = MemoryStore::new();

    let mut account = Account::default();
    let opened = account
        .handle(AccountCommand::Open {
            owner_id: SubjectId::new("u-1").unwrap(),
            owner_name: "Ada".into(),
        })
        .unwrap();
    for event in &opened {
        account.apply(event);
        // Personal data is never encoded in the clear.
        assert!(event.encode(&Json).is_err());
        let id = EventId::new();
        let payload = runtime
            .block_on(es_core::encode_events(
                Some(&crypto),
                &keys,
                &Json,
                &[(id, event)],
            ))
            .unwrap()
            .remove(0);
        let json = String::from_utf8(payload.clone()).unwrap();
        assert!(json.contains("\"mail\"") && !json.contains("example.invalid"));
        let recorded = RecordedEvent {
            stream_id: es_core::StreamId::new("account-1").unwrap(),
            version: es_core::StreamVersion::new(1),
            position: es_core::Position::new(1),
            commit: es_core::CommitId::new(1),
            event_id: id,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload,
            metadata: es_core::Metadata::now(),
        };
        let back: Vec<AccountEvent> = runtime
            .block_on(es_core::decode_events(
                Some(&crypto),
                &keys,
                &Json,
                &[recorded],
            ))
            .unwrap();
        assert_eq!(back, [event.clone()]);
    }

    // Events without personal data encode directly.
    let deposited = account.handle(AccountCommand::Deposit(5)).unwrap();
    for event in &deposited {
        account.apply(event);
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
