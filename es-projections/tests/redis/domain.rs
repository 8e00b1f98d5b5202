//! An account domain and a balance projection into Redis.

use std::collections::BTreeMap;
use std::sync::Arc;

use es_core::{
    Aggregate, Crypto, MasterKey, MasterKeyring, MemoryStore, Personal, Repository, SubjectId,
};
use es_projections::{Change, KvBatch, Projection, ProjectionError, RedisKv};

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

/// Owner names (tagged with the owner) and balances (with `IncrBy`, so that an
/// event applied twice would show), by account stream.
pub(crate) struct Balances;

impl Projection for Balances {
    type Event = AccountEvent;
    type Sink = RedisKv;

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
        MasterKey::generate("redis-tests").unwrap(),
    )))
}

pub(crate) fn repo(store: &MemoryStore, crypto: &Arc<Crypto>) -> Repository<Account, MemoryStore> {
    Repository::new(store.clone()).with_crypto(Arc::clone(crypto))
}

/// The model after opening account `a` for owner `name` and depositing
/// `amounts` into it, added to `expected`.
pub(crate) fn expect_account(
    expected: &mut BTreeMap<String, String>,
    account: &str,
    name: &str,
    amounts: &[i64],
) {
    expected.insert(format!("account-{account}:owner"), name.to_owned());
    if !amounts.is_empty() {
        expected.insert(
            format!("account-{account}:balance"),
            amounts.iter().sum::<i64>().to_string(),
        );
    }
}
