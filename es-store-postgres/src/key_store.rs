//! [`KeyStore`] on PostgreSQL: wrapped data keys and tombstones in
//! `es_subject_keys`.

use es_core::{AppendRequest, Error, ForgetOutcome, KeyState, KeyStore, StoredKey, SubjectId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::PgStore;
use crate::appender::take_mark;
use crate::error::{corrupt, store_error};
use crate::event_store::Settled;
use crate::group::{self, Member, Outcome};

const LOAD: &str = include_str!("key_store/sql/load.sql");
const LOAD_ONE: &str = include_str!("key_store/sql/load_one.sql");
const CREATE: &str = include_str!("key_store/sql/create.sql");
const CREATE_MANY: &str = include_str!("key_store/sql/create_many.sql");
const FORGET: &str = include_str!("key_store/sql/forget.sql");
const TO_REWRAP: &str = include_str!("key_store/sql/to_rewrap.sql");
const REWRAP: &str = include_str!("key_store/sql/rewrap.sql");

/// How often a forget is retried when its system event lost the transaction-id
/// order race on its stream (see `es_streams.last_xid`).
const FORGET_RETRIES: u32 = 8;

fn stored_key(row: &PgRow) -> Result<StoredKey, Error> {
    let get = |e| store_error("reading a subject key", e);
    let subject: String = row.try_get("subject_id").map_err(get)?;
    let version: i32 = row.try_get("key_version").map_err(get)?;
    let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key").map_err(get)?;
    let master: Option<String> = row.try_get("master_key_id").map_err(get)?;
    let forgotten_at: Option<chrono::DateTime<chrono::Utc>> =
        row.try_get("forgotten_at").map_err(get)?;
    let state = match (wrapped, master, forgotten_at) {
        (_, _, Some(at)) => KeyState::Forgotten { at },
        (Some(wrapped), Some(master_key_id), None) => KeyState::Active {
            wrapped,
            master_key_id,
        },
        _ => {
            return Err(corrupt(
                "reading a subject key",
                "neither a key nor a tombstone",
            ));
        }
    };
    Ok(StoredKey {
        subject: SubjectId::new(subject)?,
        key_version: u32::try_from(version)
            .map_err(|_| corrupt("reading a subject key", "negative key version"))?,
        state,
    })
}

fn version(v: u32) -> Result<i32, Error> {
    i32::try_from(v).map_err(|_| corrupt("writing a subject key", "key version too large"))
}

impl KeyStore for PgStore {
    async fn load_keys(&self, subjects: &[SubjectId]) -> Result<Vec<StoredKey>, Error> {
        let ids: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
        let rows = sqlx::query(LOAD)
            .bind(ids)
            .fetch_all(self.pool())
            .await
            .map_err(|e| store_error("loading subject keys", e))?;
        rows.iter().map(stored_key).collect()
    }

    async fn create(&self, key: StoredKey, replace_forgotten: bool) -> Result<StoredKey, Error> {
        let KeyState::Active {
            wrapped,
            master_key_id,
        } = &key.state
        else {
            return Err(corrupt(
                "creating a subject key",
                "a tombstone is not a key",
            ));
        };
        let created = sqlx::query(CREATE)
            .bind(key.subject.as_str())
            .bind(wrapped)
            .bind(master_key_id)
            .bind(version(key.key_version)?)
            .bind(replace_forgotten)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| store_error("creating a subject key", e))?;
        if let Some(row) = created {
            return stored_key(&row);
        }
        // Someone else's key (or a tombstone) is there: use it.
        let row = sqlx::query(LOAD_ONE)
            .bind(key.subject.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(|e| store_error("loading a subject key", e))?;
        stored_key(&row)
    }

    async fn create_many(
        &self,
        keys: Vec<StoredKey>,
        replace_forgotten: bool,
    ) -> Result<Vec<StoredKey>, Error> {
        let (mut subjects, mut wrapped, mut masters, mut versions) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for key in &keys {
            let KeyState::Active {
                wrapped: w,
                master_key_id,
            } = &key.state
            else {
                return Err(corrupt(
                    "creating a subject key",
                    "a tombstone is not a key",
                ));
            };
            subjects.push(key.subject.as_str().to_owned());
            wrapped.push(w.clone());
            masters.push(master_key_id.clone());
            versions.push(version(key.key_version)?);
        }
        let rows = sqlx::query(CREATE_MANY)
            .bind(&subjects)
            .bind(wrapped)
            .bind(masters)
            .bind(versions)
            .bind(replace_forgotten)
            .fetch_all(self.pool())
            .await
            .map_err(|e| store_error("creating subject keys", e))?;
        let mut stored = rows.iter().map(stored_key).collect::<Result<Vec<_>, _>>()?;
        if stored.len() < keys.len() {
            // Some subjects had a key (or a tombstone) already: use those.
            let created: std::collections::HashSet<_> =
                stored.iter().map(|k| k.subject.clone()).collect();
            let others: Vec<SubjectId> = keys
                .into_iter()
                .map(|k| k.subject)
                .filter(|s| !created.contains(s))
                .collect();
            stored.extend(self.load_keys(&others).await?);
        }
        Ok(stored)
    }

    async fn forget(
        &self,
        subject: &SubjectId,
        event: AppendRequest,
    ) -> Result<ForgetOutcome, Error> {
        let failed = |e| store_error("forgetting a subject", e);
        let member = Member::of(event)?;
        for _ in 0..FORGET_RETRIES {
            let mut tx = self.pool().begin().await.map_err(failed)?;
            // The transaction appends its system event: it is marked as an
            // appender first, before the key's destruction draws its id.
            if !take_mark(&mut tx).await.map_err(failed)? {
                return Err(corrupt(
                    "forgetting a subject",
                    "a new transaction was refused the appender mark",
                ));
            }
            let destroyed = sqlx::query(FORGET)
                .bind(subject.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(failed)?;
            if destroyed.is_none() {
                tx.rollback().await.map_err(failed)?;
                return Ok(ForgetOutcome::AlreadyForgotten);
            }
            let outcome = group::run_one(&mut *tx, &member).await?;
            let answer = match outcome {
                Outcome::Appended(result) => {
                    tx.commit().await.map_err(failed)?;
                    self.appended_events();
                    return Ok(ForgetOutcome::Forgotten(result));
                }
                Outcome::Deduplicated { .. } => {
                    // The forget event was written before (a retry): the key
                    // goes now, the event stays the first one.
                    let Settled::Done(result) = self.settle(&member.request, outcome).await? else {
                        return Err(corrupt(
                            "forgetting a subject",
                            "deduplicated without result",
                        ));
                    };
                    tx.commit().await.map_err(failed)?;
                    return Ok(ForgetOutcome::Forgotten(result));
                }
                other => {
                    // The expectation failed, the order race was lost or the
                    // key was used before: undo the key destruction with the
                    // transaction, and try again or report.
                    tx.rollback().await.map_err(failed)?;
                    self.settle(&member.request, other).await?
                }
            };
            if let Settled::Done(result) = answer {
                // A concurrent forget with the same key wrote it first.
                return Ok(ForgetOutcome::Forgotten(result));
            }
        }
        Err(Error::unavailable(
            "forgetting a subject",
            "the system event kept losing the order race on its stream",
        ))
    }

    async fn keys_to_rewrap(
        &self,
        master_key_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredKey>, Error> {
        let rows = sqlx::query(TO_REWRAP)
            .bind(master_key_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await
            .map_err(|e| store_error("listing keys to re-wrap", e))?;
        rows.iter().map(stored_key).collect()
    }

    async fn rewrap(
        &self,
        old: &StoredKey,
        wrapped: Vec<u8>,
        master_key_id: &str,
    ) -> Result<bool, Error> {
        let KeyState::Active {
            wrapped: old_wrapped,
            master_key_id: old_master,
        } = &old.state
        else {
            return Ok(false);
        };
        let done = sqlx::query(REWRAP)
            .bind(old.subject.as_str())
            .bind(version(old.key_version)?)
            .bind(old_master)
            .bind(old_wrapped)
            .bind(wrapped)
            .bind(master_key_id)
            .execute(self.pool())
            .await
            .map_err(|e| store_error("re-wrapping a subject key", e))?;
        Ok(done.rows_affected() == 1)
    }
}

impl PgStore {
    /// Evicts forgotten subjects from `crypto`'s key cache as other processes
    /// forget them, until the returned task is aborted. A lost connection is
    /// re-established; while it is down, the cache's time to live bounds how long
    /// a forgotten key stays usable here.
    pub fn watch_forgotten(
        &self,
        crypto: std::sync::Arc<es_core::Crypto>,
    ) -> tokio::task::JoinHandle<()> {
        let pool = self.pool().clone();
        tokio::spawn(async move {
            loop {
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for forgotten subjects; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if let Err(error) = listener.listen("es_forgotten").await {
                    tracing::warn!(%error, "cannot listen for forgotten subjects; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                while let Ok(Some(notification)) = listener.try_recv().await {
                    if let Ok(subject) = SubjectId::new(notification.payload()) {
                        crypto.evict(&subject);
                    }
                }
            }
        })
    }

    /// The maintenance step after forgetting subjects: rewrites the key table so
    /// that destroyed keys leave no dead row versions behind (PostgreSQL keeps
    /// an updated row's old version until vacuum, and plain `VACUUM` only marks
    /// it reusable). Takes a brief exclusive lock on the small key table.
    pub async fn purge_forgotten_keys(&self) -> Result<(), Error> {
        sqlx::query("VACUUM (FULL) es_subject_keys")
            .execute(self.pool())
            .await
            .map_err(|e| store_error("purging destroyed keys", e))?;
        Ok(())
    }
}
