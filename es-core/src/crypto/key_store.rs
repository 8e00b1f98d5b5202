//! The [`KeyStore`] contract: where wrapped data keys live.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::{AppendRequest, AppendResult, Error, SubjectId};

/// A subject's key as stored: wrapped under a master key, or a tombstone.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The data subject.
    pub subject: SubjectId,
    /// Increases when a forgotten subject is re-admitted with a new key.
    pub key_version: u32,
    /// The wrapped key or the tombstone.
    pub state: KeyState,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            KeyState::Active { master_key_id, .. } => format!("Active(wrapped by {master_key_id})"),
            KeyState::Forgotten { at } => format!("Forgotten({at})"),
        };
        write!(
            f,
            "StoredKey({}, v{}, {state})",
            self.subject, self.key_version
        )
    }
}

/// A stored key's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The data key, wrapped.
    Active {
        /// `nonce || AES-256-GCM(data key)` under the master key.
        wrapped: Vec<u8>,
        /// Which master key wrapped it.
        master_key_id: String,
    },
    /// The key was destroyed: the subject was forgotten.
    Forgotten {
        /// When.
        at: DateTime<Utc>,
    },
}

/// What [`KeyStore::forget`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForgetOutcome {
    /// The key was destroyed and the system event appended.
    Forgotten(AppendResult),
    /// The subject was already forgotten; nothing was written.
    AlreadyForgotten,
}

/// Stores wrapped data keys, one per subject, and their tombstones.
///
/// Implementations guarantee: [`create`](Self::create) is first-writer-wins (two
/// processes creating a subject's key concurrently end up using the same one);
/// [`forget`](Self::forget) destroys the wrapped key, keeps a tombstone with the
/// time and appends the system event in one transaction.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a key store",
    note = "use `es_core::MemoryStore`, or a store from `es-store-postgres` or `es-store-sqlite`"
)]
pub trait KeyStore: Send + Sync {
    /// The stored keys of these subjects; subjects never seen are absent.
    fn load_keys(
        &self,
        subjects: &[SubjectId],
    ) -> impl Future<Output = Result<Vec<StoredKey>, Error>> + Send;

    /// Stores `key` (an active key) for its subject unless one is stored already,
    /// and returns the stored one. With `replace_forgotten`, a tombstone of a
    /// lower key version is replaced (a forgotten subject re-admitted).
    fn create(
        &self,
        key: StoredKey,
        replace_forgotten: bool,
    ) -> impl Future<Output = Result<StoredKey, Error>> + Send;

    /// [`create`](Self::create) for several subjects at once (distinct, in
    /// order), returning the stored keys in any order. Backends override it to
    /// use one round trip.
    fn create_many(
        &self,
        keys: Vec<StoredKey>,
        replace_forgotten: bool,
    ) -> impl Future<Output = Result<Vec<StoredKey>, Error>> + Send {
        async move {
            let mut stored = Vec::with_capacity(keys.len());
            for key in keys {
                stored.push(self.create(key, replace_forgotten).await?);
            }
            Ok(stored)
        }
    }

    /// Destroys the subject's key (a tombstone stays, with the time) and appends
    /// `event` in the same transaction.
    fn forget(
        &self,
        subject: &SubjectId,
        event: AppendRequest,
    ) -> impl Future<Output = Result<ForgetOutcome, Error>> + Send;

    /// Up to `limit` active keys wrapped by a master key other than
    /// `master_key_id`: what a rotation still has to re-wrap.
    fn keys_to_rewrap(
        &self,
        master_key_id: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredKey>, Error>> + Send;

    /// Replaces the wrapping of an active key, if it is still `old` (compare and
    /// set); returns whether it did.
    fn rewrap(
        &self,
        old: &StoredKey,
        wrapped: Vec<u8>,
        master_key_id: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}
