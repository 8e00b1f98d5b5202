//! [`KeyStore`] on SQLite: wrapped data keys and tombstones in
//! `es_subject_keys`. Forgetting a subject destroys its key and appends the
//! system event in one write transaction.

use chrono::{DateTime, Utc};
use es_core::{AppendRequest, Error, ForgetOutcome, KeyState, KeyStore, StoredKey, SubjectId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::SqliteStore;
use crate::error::{corrupt, store_error};
use crate::event_store::{Outcome, PreparedAppend};

const CREATE: &str = include_str!("key_store/sql/create.sql");
const FORGET: &str = include_str!("key_store/sql/forget.sql");
const LOAD: &str = include_str!("key_store/sql/load.sql");
const LOAD_ONE: &str = include_str!("key_store/sql/load_one.sql");
const REWRAP: &str = include_str!("key_store/sql/rewrap.sql");
const TO_REWRAP: &str = include_str!("key_store/sql/to_rewrap.sql");

fn stored_key(row: &SqliteRow) -> Result<StoredKey, Error> {
    let get = |e| store_error("reading a subject key", e);
    let subject: String = row.try_get("subject_id").map_err(get)?;
    let version: i64 = row.try_get("key_version").map_err(get)?;
    let wrapped: Option<Vec<u8>> = row.try_get("wrapped_key").map_err(get)?;
    let master: Option<String> = row.try_get("master_key_id").map_err(get)?;
    let forgotten_at: Option<String> = row.try_get("forgotten_at").map_err(get)?;
    let state = match (wrapped, master, forgotten_at) {
        (_, _, Some(at)) => KeyState::Forgotten {
            at: DateTime::parse_from_rfc3339(&at)
                .map_err(|e| corrupt("reading a subject key's forgotten_at", e))?
                .with_timezone(&Utc),
        },
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
            .map_err(|_| corrupt("reading a subject key", "key version out of range"))?,
        state,
    })
}

/// Creates `key` unless its subject has one (or a tombstone that stays), on a
/// write transaction's connection; returns the stored key.
async fn create_in(
    conn: &mut SqliteConnection,
    key: &StoredKey,
    replace_forgotten: bool,
) -> Result<StoredKey, Error> {
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
        .bind(i64::from(key.key_version))
        .bind(replace_forgotten)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| store_error("creating a subject key", e))?;
    let row = match created {
        Some(row) => row,
        // Someone else's key (or a tombstone) is there: use it.
        None => sqlx::query(LOAD_ONE)
            .bind(key.subject.as_str())
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| store_error("loading a subject key", e))?,
    };
    stored_key(&row)
}

impl KeyStore for SqliteStore {
    async fn load_keys(&self, subjects: &[SubjectId]) -> Result<Vec<StoredKey>, Error> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = subjects.iter().map(SubjectId::as_str).collect();
        let ids = serde_json::to_string(&ids).map_err(|e| corrupt("loading subject keys", e))?;
        let rows = sqlx::query(LOAD)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error("loading subject keys", e))?;
        rows.iter().map(stored_key).collect()
    }

    async fn create(&self, key: StoredKey, replace_forgotten: bool) -> Result<StoredKey, Error> {
        let mut write = self.begin_write("creating a subject key").await?;
        match create_in(&mut write.tx, &key, replace_forgotten).await {
            Ok(stored) => {
                write.commit("creating a subject key").await?;
                Ok(stored)
            }
            Err(error) => {
                write.abandon().await;
                Err(error)
            }
        }
    }

    async fn create_many(
        &self,
        keys: Vec<StoredKey>,
        replace_forgotten: bool,
    ) -> Result<Vec<StoredKey>, Error> {
        let mut write = self.begin_write("creating subject keys").await?;
        let mut stored = Vec::with_capacity(keys.len());
        for key in &keys {
            match create_in(&mut write.tx, key, replace_forgotten).await {
                Ok(key) => stored.push(key),
                Err(error) => {
                    write.abandon().await;
                    return Err(error);
                }
            }
        }
        write.commit("creating subject keys").await?;
        Ok(stored)
    }

    async fn forget(
        &self,
        subject: &SubjectId,
        event: AppendRequest,
    ) -> Result<ForgetOutcome, Error> {
        let append = PreparedAppend::new(event)?;
        let mut write = self.begin_write("forgetting a subject").await?;
        let destroyed = sqlx::query(FORGET)
            .bind(subject.as_str())
            .fetch_optional(&mut *write.tx)
            .await;
        match destroyed {
            Ok(Some(_)) => {}
            Ok(None) => {
                write.rollback("forgetting a subject").await?;
                return Ok(ForgetOutcome::AlreadyForgotten);
            }
            Err(error) => {
                write.abandon().await;
                return Err(store_error("forgetting a subject", error));
            }
        }
        // The key destruction and the event commit together, or neither does.
        match append.run(&mut write.tx).await {
            Ok(Outcome::Written(result) | Outcome::Repeated(result)) => {
                write.commit("forgetting a subject").await?;
                // The key's old page images leave the write-ahead log too.
                self.scrub().await;
                Ok(ForgetOutcome::Forgotten(result))
            }
            Err(error) => {
                write.abandon().await;
                Err(error)
            }
        }
    }

    async fn keys_to_rewrap(
        &self,
        master_key_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredKey>, Error> {
        let rows = sqlx::query(TO_REWRAP)
            .bind(master_key_id)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
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
        let _writer = self.writer.lock().await;
        let done = sqlx::query(REWRAP)
            .bind(old.subject.as_str())
            .bind(i64::from(old.key_version))
            .bind(old_master)
            .bind(old_wrapped)
            .bind(wrapped)
            .bind(master_key_id)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error("re-wrapping a subject key", e))?;
        Ok(done.rows_affected() == 1)
    }
}
