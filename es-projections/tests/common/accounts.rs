//! The account domain shared by the runner tests on every key-value sink: an
//! aggregate whose `Opened` event carries the owner's name as personal data,
//! and the `Balances` projection.

use std::marker::PhantomData;
use std::sync::Arc;

use es_core::{
    Aggregate, Crypto, MasterKey, MasterKeyring, MemoryStore, Personal, Repository, Sink, SubjectId,
};
use es_projections::{Change, KvBatch, Projection, ProjectionError};

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

/// Owner names (tagged with the owner, so that forgetting purges them) and
/// balances (with `IncrBy`, so that an event applied twice would show), by
/// account stream, into any key-value sink. A deposit of 999 is refused by the
/// handler: a poison event for the dead-letter tests.
pub(crate) struct Balances<S>(PhantomData<fn() -> S>);

impl<S> Default for Balances<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<S: Sink<Batch = KvBatch> + 'static> Projection for Balances<S> {
    type Event = AccountEvent;
    type Sink = S;

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
        MasterKey::generate("accounts").unwrap(),
    )))
}

pub(crate) fn repo(store: &MemoryStore, crypto: &Arc<Crypto>) -> Repository<Account, MemoryStore> {
    Repository::new(store.clone()).with_crypto(Arc::clone(crypto))
}
