//! An account domain with a personal owner name, and a projection that indexes
//! the owner names for search.

use std::sync::Arc;

use es_core::{
    Aggregate, Crypto, MasterKey, MasterKeyring, MemoryStore, Personal, Repository, SubjectId,
};
use es_projections::{Change, Projection, ProjectionError, SearchBatch, SearchIndex};

#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub(crate) enum AccountEvent {
    Opened {
        #[event(subject)]
        owner: SubjectId,
        #[event(personal)]
        name: Personal<String>,
    },
    Renamed {
        #[event(subject)]
        owner: SubjectId,
        #[event(personal)]
        name: Personal<String>,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Command {
    Open(SubjectId, String),
    Rename(SubjectId, String),
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
            Command::Rename(owner, name) => AccountEvent::Renamed {
                name: Personal::new(owner.clone(), name),
                owner,
            },
        }])
    }

    fn apply(&mut self, _: &AccountEvent) {}
}

/// Owner names by account, for search.
pub(crate) struct OwnerSearch;

impl Projection for OwnerSearch {
    type Event = AccountEvent;
    type Sink = SearchIndex;

    fn name(&self) -> &str {
        "owner-search"
    }

    fn stream_prefix(&self) -> Option<&str> {
        Some("account-")
    }

    fn apply(
        &self,
        change: Change<'_, AccountEvent>,
        writes: &mut SearchBatch,
    ) -> Result<(), ProjectionError> {
        match change {
            Change::Event {
                event: AccountEvent::Opened { owner, name } | AccountEvent::Renamed { owner, name },
                meta,
            } => {
                let account = meta.stream_id.to_string();
                writes.upsert(
                    account.clone(),
                    [owner.as_str()],
                    [
                        ("owner_name", name.display_or("<shredded>")),
                        ("account", account),
                    ],
                );
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
        MasterKey::generate("search").unwrap(),
    )))
}

pub(crate) fn repo(store: &MemoryStore, crypto: &Arc<Crypto>) -> Repository<Account, MemoryStore> {
    Repository::new(store.clone()).with_crypto(Arc::clone(crypto))
}
