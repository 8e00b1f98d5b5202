//! An account domain and a balance projection for the runner tests.

use std::sync::Arc;

use es_core::{
    Aggregate, AppendRequest, Crypto, EventId, EventStore, ExpectedVersion, MasterKey,
    MasterKeyring, MemoryStore, Metadata, NewEvent, Personal, Repository, StreamId, SubjectId,
};
use es_projections::{Change, KvBatch, MemoryKv, Projection, ProjectionError};

#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub(crate) enum AccountEvent {
    Opened {
        #[event(subject)]
        owner: SubjectId,
        #[event(personal)]
        name: Personal<String>,
    },
    Deposited {
        amount: i64,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Open(SubjectId, String),
    Deposit(i64),
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub(crate) struct Never;

#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "account")]
pub(crate) struct Account;

impl Aggregate for Account {
    type Command = Command;
    type Event = AccountEvent;
    type Error = Never;

    fn handle(&self, command: Command) -> Result<Vec<AccountEvent>, Never> {
        Ok(vec![match command {
            Command::Open(owner, name) => AccountEvent::Opened {
                name: Personal::new(owner.clone(), name),
                owner,
            },
            Command::Deposit(amount) => AccountEvent::Deposited { amount },
        }])
    }

    fn apply(&mut self, _: &AccountEvent) {}
}

/// Balances and owner names, by account stream.
pub(crate) struct Balances;

impl Projection for Balances {
    type Event = AccountEvent;
    type Sink = MemoryKv;

    fn name(&self) -> &str {
        "balances"
    }

    fn stream_prefix(&self) -> Option<&str> {
        Some("account-")
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        match change {
            Change::Event {
                event: AccountEvent::Opened { owner, name },
                meta,
            } => {
                let key = format!("{}:owner", meta.stream_id);
                writes
                    .set(&key, name.display_or("<shredded>"))
                    .tag(owner.as_str(), key);
            }
            Change::Event {
                event: AccountEvent::Deposited { amount },
                meta,
            } => {
                if *amount == 999 {
                    return Err(ProjectionError::new("unlucky amount"));
                }
                writes.incr_by(format!("{}:balance", meta.stream_id), *amount);
            }
            Change::Forgotten { subject, .. } => {
                writes.purge(subject.as_str());
            }
        }
        Ok(())
    }
}

pub(crate) fn crypto() -> Arc<Crypto> {
    Arc::new(Crypto::new(MasterKeyring::new(
        MasterKey::generate("runner").unwrap(),
    )))
}

pub(crate) fn repo(store: &MemoryStore, crypto: &Arc<Crypto>) -> Repository<Account, MemoryStore> {
    Repository::new(store.clone()).with_crypto(Arc::clone(crypto))
}

/// Opens `accounts` accounts and makes `deposits` deposits into each; returns
/// the expected model.
pub(crate) async fn workload(
    repo: &Repository<Account, MemoryStore>,
    accounts: usize,
    deposits: i64,
) -> std::collections::BTreeMap<String, String> {
    let mut expected = std::collections::BTreeMap::new();
    for a in 0..accounts {
        let id = format!("a{a}");
        let owner = SubjectId::new(format!("owner-{a}")).unwrap();
        repo.execute(&id, Command::Open(owner, format!("Owner {a}")))
            .await
            .unwrap();
        let mut total = 0;
        for d in 1..=deposits {
            let amount = d * 10 + i64::try_from(a).unwrap();
            repo.execute(&id, Command::Deposit(amount)).await.unwrap();
            total += amount;
        }
        expected.insert(format!("account-{id}:owner"), format!("Owner {a}"));
        expected.insert(format!("account-{id}:balance"), total.to_string());
    }
    expected
}

/// Appends an event of a known type whose payload does not decode.
pub(crate) async fn poison(store: &MemoryStore, account: &str) {
    store
        .append(AppendRequest::new(
            StreamId::new(format!("account-{account}")).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent {
                event_id: EventId::new(),
                event_type: "Deposited".into(),
                schema_version: 1,
                payload: vec![0xFF; 3],
                metadata: Metadata::now(),
            }],
        ))
        .await
        .unwrap();
}
