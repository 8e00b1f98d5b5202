//! The read models: balances in the key-value model (Redis, or the embedded
//! one), and account search in tantivy.

use es_app::Kv;
use es_projections::{Change, KvBatch, Projection, ProjectionError, SearchBatch, SearchIndex};

use crate::account::AccountEvent;

/// The placeholder shown for personal data whose owner was forgotten.
pub const SHREDDED: &str = "<shredded>";

/// The account id of an account stream (`account-<id>`).
fn account_of(stream: &str) -> Result<&str, ProjectionError> {
    stream
        .strip_prefix("account-")
        .ok_or_else(|| ProjectionError::new("an account event outside an account stream"))
}

/// Keys of the balances model for one account.
pub mod keys {
    /// `<account>:status`: `open` or `closed`.
    pub fn status(account: &str) -> String {
        format!("{account}:status")
    }
    /// `<account>:balance`: cents.
    pub fn balance(account: &str) -> String {
        format!("{account}:balance")
    }
    /// `<account>:owner_id`.
    pub fn owner_id(account: &str) -> String {
        format!("{account}:owner_id")
    }
    /// `<account>:owner_name`: personal, purged when the owner is forgotten.
    pub fn owner_name(account: &str) -> String {
        format!("{account}:owner_name")
    }
    /// `<account>:email`: personal, purged when the owner is forgotten.
    pub fn email(account: &str) -> String {
        format!("{account}:email")
    }
}

/// Balances, status and owner of every account, in the key-value model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Balances;

impl Projection for Balances {
    type Event = AccountEvent;
    type Sink = Kv;

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
        let (event, meta) = match change {
            Change::Event { event, meta } => (event, meta),
            Change::Forgotten { subject, .. } => {
                writes.purge(subject.as_str());
                return Ok(());
            }
        };
        let account = account_of(meta.stream_id.as_str())?;
        match event {
            AccountEvent::Opened {
                owner_id,
                owner_name,
                email,
            } => {
                writes
                    .set(keys::status(account), "open")
                    .set(keys::balance(account), "0")
                    .set(keys::owner_id(account), owner_id.as_str());
                // Personal data enters the model only when it could be
                // opened, and tagged, so that forgetting the owner purges it.
                if let Some(name) = owner_name.value() {
                    let key = keys::owner_name(account);
                    writes.set(&key, name.as_str()).tag(owner_id.as_str(), key);
                }
                if let Some(email) = email.as_ref().and_then(|e| e.value()) {
                    let key = keys::email(account);
                    writes.set(&key, email.as_str()).tag(owner_id.as_str(), key);
                }
            }
            AccountEvent::Deposited { amount } | AccountEvent::Refunded { amount } => {
                writes.incr_by(keys::balance(account), amount.signed());
            }
            AccountEvent::Withdrawn { amount } => {
                writes.incr_by(keys::balance(account), -amount.signed());
            }
            AccountEvent::Closed => {
                writes.set(keys::status(account), "closed");
            }
        }
        Ok(())
    }
}

/// Search documents: `owner:<account>` holds the owner's name (tagged with the
/// owner, purged when forgotten); `account:<account>` holds the account id,
/// so an account stays findable by id once its owner is forgotten.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountSearch;

/// The text fields of the search index.
pub const SEARCH_FIELDS: &[&str] = &["owner_name", "account"];

/// The search document of an account's owner.
pub(crate) fn owner_doc(account: &str) -> String {
    format!("owner:{account}")
}

/// The search document of an account's id.
pub(crate) fn account_doc(account: &str) -> String {
    format!("account:{account}")
}

impl Projection for AccountSearch {
    type Event = AccountEvent;
    type Sink = SearchIndex;

    fn name(&self) -> &str {
        "account-search"
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
                event:
                    AccountEvent::Opened {
                        owner_id,
                        owner_name,
                        ..
                    },
                meta,
            } => {
                let account = account_of(meta.stream_id.as_str())?;
                writes.upsert_untagged(account_doc(account), [("account", account)]);
                if let Some(name) = owner_name.value() {
                    writes.upsert(
                        owner_doc(account),
                        [owner_id.as_str()],
                        [("owner_name", name.as_str())],
                    );
                }
            }
            Change::Event { .. } => {}
            Change::Forgotten { subject, .. } => {
                writes.purge(subject.as_str());
            }
        }
        Ok(())
    }
}
