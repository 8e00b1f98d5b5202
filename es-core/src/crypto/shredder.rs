//! [`Crypto`]: keys for an encode or decode, forgetting, rotation.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cipher::{self, KeyBytes};
use super::key_store::{ForgetOutcome, KeyState, KeyStore, StoredKey};
use super::keys::MasterKeyring;
use super::scope::{self, Keyring, Mode, RecordId, ScopeKey};
use crate::{
    AppendRequest, Bincode, Codec, Error, ExpectedVersion, Metadata, NewEvent, StreamId, SubjectId,
};

/// Events the framework itself writes.
///
/// They are encoded with [`Bincode`] whatever the application's codec, and their
/// type names start with `$`, which application events cannot use by accident.
#[derive(Debug, Clone, PartialEq, Eq, crate::Event)]
pub enum SystemEvent {
    /// A subject's key was destroyed: projections purge what they hold about it.
    #[event(name = "$SubjectForgotten")]
    SubjectForgotten {
        /// The forgotten subject.
        subject: SubjectId,
    },
}

impl SystemEvent {
    /// The stream a subject's system events go to.
    pub fn subject_stream(subject: &SubjectId) -> Result<StreamId, Error> {
        StreamId::new(format!("$subject-{}", subject.as_str()))
    }

    /// Decodes a recorded event if it is a system event (its type starts with
    /// `$`); `Ok(None)` for application events.
    pub fn decode_recorded(event: &crate::RecordedEvent) -> Result<Option<Self>, Error> {
        if !event.event_type.starts_with('$') {
            return Ok(None);
        }
        event.decode(&Bincode).map(Some)
    }
}

/// What writing personal data for a forgotten subject does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForgottenSubjects {
    /// Refuse with [`Error::SubjectForgotten`] (the default): a forgotten subject
    /// stays forgotten.
    #[default]
    Reject,
    /// Give the subject a new key (a higher key version). Data written before the
    /// forget stays shredded; new data is readable until the next forget.
    Readmit,
}

enum CachedKey {
    Active { key: KeyBytes, version: u32 },
    Forgotten,
}

/// Encrypts and decrypts personal data, and forgets subjects.
///
/// Holds the master keys and a short-lived cache of unwrapped data keys (wiped on
/// eviction). The cache only saves round trips: forgetting is made correct by
/// destroying the stored key, and a key cached by another process is dropped
/// within the cache's time to live.
pub struct Crypto {
    masters: MasterKeyring,
    cache: Mutex<HashMap<SubjectId, (Instant, CachedKey)>>,
    ttl: Duration,
    forgotten: ForgottenSubjects,
    /// Counts forgets and evictions: whatever holds opened personal data
    /// (a repository's state cache) drops it when this moves.
    epoch: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("master_key", &self.masters.current().id())
            .field("ttl", &self.ttl)
            .field("forgotten", &self.forgotten)
            .finish_non_exhaustive()
    }
}

/// How long an unwrapped data key is cached by default.
const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// How many keys a rotation re-wraps per round trip.
const ROTATION_PAGE: usize = 256;

impl Crypto {
    /// Crypto with these master keys, a 5-second key cache, and forgotten
    /// subjects rejected.
    pub fn new(masters: MasterKeyring) -> Self {
        Self {
            masters,
            cache: Mutex::new(HashMap::new()),
            ttl: DEFAULT_TTL,
            forgotten: ForgottenSubjects::Reject,
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// How many times a subject was forgotten or evicted through this
    /// `Crypto`: a cache of opened personal data is valid only while this
    /// stays the same.
    ///
    /// ```
    /// use es_core::{Crypto, MasterKey, MasterKeyring, SubjectId};
    ///
    /// let crypto = Crypto::new(MasterKeyring::new(MasterKey::generate("k").unwrap()));
    /// let before = crypto.forget_epoch();
    /// crypto.evict(&SubjectId::new("u-1").unwrap());
    /// assert!(crypto.forget_epoch() > before);
    /// ```
    pub fn forget_epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sets how long unwrapped keys are cached (zero disables the cache).
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets what writing personal data for a forgotten subject does.
    #[must_use]
    pub fn with_forgotten_subjects(mut self, policy: ForgottenSubjects) -> Self {
        self.forgotten = policy;
        self
    }

    /// The master keys.
    pub fn master_keys(&self) -> &MasterKeyring {
        &self.masters
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<SubjectId, (Instant, CachedKey)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unwrap_stored(&self, stored: &StoredKey) -> Result<ScopeKey, Error> {
        match &stored.state {
            KeyState::Forgotten { .. } => Ok(ScopeKey::Forgotten),
            KeyState::Active {
                wrapped,
                master_key_id,
            } => {
                let master =
                    self.masters
                        .get(master_key_id)
                        .ok_or_else(|| Error::UnknownMasterKey {
                            master_key_id: master_key_id.clone(),
                        })?;
                Ok(ScopeKey::Active {
                    key: master.unwrap_key(wrapped, &stored.subject, stored.key_version)?,
                    version: stored.key_version,
                })
            }
        }
    }

    /// The keys of `subjects`; for writing, missing keys are created (and
    /// forgotten subjects re-admitted when the policy says so).
    pub(crate) async fn keyring<K: KeyStore>(
        &self,
        keys: &K,
        subjects: &BTreeSet<SubjectId>,
        write: bool,
    ) -> Result<Keyring, Error> {
        let mut ring = Keyring::default();
        let mut missing = Vec::new();
        {
            let now = Instant::now();
            let mut cache = self.cache();
            for subject in subjects {
                // A forgotten subject about to be written is looked up again: the
                // policy may re-admit it.
                let readmitting = write && self.forgotten == ForgottenSubjects::Readmit;
                match cache.get(subject) {
                    Some((_, CachedKey::Forgotten)) if readmitting => {
                        cache.remove(subject);
                        missing.push(subject.clone());
                    }
                    Some((at, cached)) if now.duration_since(*at) < self.ttl => {
                        let key = match cached {
                            CachedKey::Active { key, version } => ScopeKey::Active {
                                key: key.clone(),
                                version: *version,
                            },
                            CachedKey::Forgotten => ScopeKey::Forgotten,
                        };
                        ring.keys.insert(subject.clone(), key);
                    }
                    Some(_) => {
                        cache.remove(subject);
                        missing.push(subject.clone());
                    }
                    None => missing.push(subject.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(ring);
        }
        let stored = keys.load_keys(&missing).await?;
        let mut found: HashMap<SubjectId, StoredKey> = stored
            .into_iter()
            .map(|key| (key.subject.clone(), key))
            .collect();
        let mut resolved = Vec::with_capacity(missing.len());
        let mut to_create = Vec::new();
        for subject in missing {
            match found.remove(&subject) {
                Some(stored) if !write => resolved.push(stored),
                None if !write => {}
                Some(
                    stored @ StoredKey {
                        state: KeyState::Active { .. },
                        ..
                    },
                ) => {
                    resolved.push(stored);
                }
                Some(StoredKey {
                    state: KeyState::Forgotten { .. },
                    key_version,
                    ..
                }) if self.forgotten == ForgottenSubjects::Readmit => {
                    to_create.push(self.new_key(&subject, key_version + 1));
                }
                Some(tombstone) => resolved.push(tombstone),
                None => to_create.push(self.new_key(&subject, 1)),
            }
        }
        if !to_create.is_empty() {
            // First writer wins: the stored keys may be other processes'.
            let readmit = self.forgotten == ForgottenSubjects::Readmit;
            resolved.extend(keys.create_many(to_create, readmit).await?);
        }
        for stored in resolved {
            let key = self.unwrap_stored(&stored)?;
            let cached = match &key {
                ScopeKey::Active { key, version } => CachedKey::Active {
                    key: key.clone(),
                    version: *version,
                },
                ScopeKey::Forgotten => CachedKey::Forgotten,
            };
            if !self.ttl.is_zero() {
                self.cache()
                    .insert(stored.subject.clone(), (Instant::now(), cached));
            }
            ring.keys.insert(stored.subject, key);
        }
        Ok(ring)
    }

    /// A fresh data key for `subject`, wrapped under the current master key.
    fn new_key(&self, subject: &SubjectId, key_version: u32) -> StoredKey {
        let data_key = cipher::random_key();
        let master = self.masters.current();
        StoredKey {
            subject: subject.clone(),
            key_version,
            state: KeyState::Active {
                wrapped: master.wrap(&data_key, subject, key_version),
                master_key_id: master.id().to_owned(),
            },
        }
    }

    /// Drops a subject's cached key, so the next use reads the key store. Call it
    /// when another process forgot the subject (the PostgreSQL store announces
    /// forgets on a channel: see `PgStore::watch_forgotten`).
    pub fn evict(&self, subject: &SubjectId) {
        self.cache().remove(subject);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Forgets a subject: destroys its data key (a tombstone with the time stays)
    /// and appends [`SystemEvent::SubjectForgotten`] to its `$subject-…` stream
    /// in the same transaction. Forgetting twice writes nothing the second time.
    pub async fn forget<K: KeyStore>(
        &self,
        keys: &K,
        subject: &SubjectId,
    ) -> Result<ForgetOutcome, Error> {
        let event = SystemEvent::SubjectForgotten {
            subject: subject.clone(),
        };
        let request = AppendRequest::new(
            SystemEvent::subject_stream(subject)?,
            ExpectedVersion::Any,
            vec![NewEvent::encode(&event, &Bincode, Metadata::now())?],
        );
        let outcome = keys.forget(subject, request).await;
        self.evict(subject);
        outcome
    }

    /// Re-wraps every data key not wrapped by the current master key; events are
    /// untouched. Returns how many keys were re-wrapped.
    pub async fn rotate<K: KeyStore>(&self, keys: &K) -> Result<u64, Error> {
        let current = self.masters.current();
        let mut rewrapped = 0;
        loop {
            let page = keys.keys_to_rewrap(current.id(), ROTATION_PAGE).await?;
            if page.is_empty() {
                break;
            }
            let mut progressed = false;
            for stored in page {
                let ScopeKey::Active { key, version } = self.unwrap_stored(&stored)? else {
                    continue;
                };
                let wrapped = current.wrap(&key, &stored.subject, version);
                if keys.rewrap(&stored, wrapped, current.id()).await? {
                    rewrapped += 1;
                    progressed = true;
                }
            }
            if !progressed {
                // Everything in the page changed under us (a concurrent rotation
                // or forget); the next page reflects that.
                tokio::task::yield_now().await;
            }
        }
        self.cache().clear();
        Ok(rewrapped)
    }

    /// Start-up check: unwraps one stored key, so that a wrong master key is a
    /// clear error now rather than garbage later.
    pub async fn check<K: KeyStore>(&self, keys: &K) -> Result<(), Error> {
        // Every active key is wrapped by a master other than this impossible
        // id (a master key's id never holds `:`; a NUL would do too, but
        // PostgreSQL refuses it in text).
        let sample = keys.keys_to_rewrap(":", 1).await?;
        for stored in &sample {
            self.unwrap_stored(stored)?;
        }
        Ok(())
    }

    /// Seals one personal value (or any serde value containing them) bound to
    /// `record`, encoded with [`Bincode`].
    pub async fn seal_value<K: KeyStore, T: Serialize>(
        &self,
        keys: &K,
        record: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, Error> {
        let mut out = seal_all(
            Some(self),
            keys,
            std::slice::from_ref(value),
            |_| record.to_vec(),
            |v| {
                Bincode.encode(v).map_err(|source| Error::Codec {
                    what: "a personal value".into(),
                    op: "encoded",
                    codec: Bincode::NAME,
                    source,
                })
            },
        )
        .await?;
        out.pop().ok_or(Error::EmptyAppend)
    }

    /// Opens what [`seal_value`](Self::seal_value) sealed.
    pub async fn open_value<K: KeyStore, T: DeserializeOwned>(
        &self,
        keys: &K,
        record: &[u8],
        bytes: &[u8],
    ) -> Result<T, Error> {
        let mut out = open_all(
            Some(self),
            keys,
            &[bytes],
            |_| record.to_vec(),
            |b| {
                Bincode.decode(b).map_err(|source| Error::Codec {
                    what: "a personal value".into(),
                    op: "decoded",
                    codec: Bincode::NAME,
                    source,
                })
            },
        )
        .await?;
        out.pop().ok_or(Error::EmptyAppend)
    }
}

/// Encodes `items` with their personal values sealed: one pass that also finds
/// the subjects; items with personal data are encoded again once their keys are
/// fetched (in one round trip for the whole batch).
pub(crate) async fn seal_all<K: KeyStore, T, R>(
    crypto: Option<&Crypto>,
    keys: &K,
    items: &[T],
    record: impl Fn(&T) -> RecordId,
    encode: impl Fn(&T) -> Result<R, Error>,
) -> Result<Vec<R>, Error> {
    run_all(crypto, keys, items, record, encode, true).await
}

/// Decodes `items`, opening personal values (or marking them shredded).
pub(crate) async fn open_all<K: KeyStore, T, R>(
    crypto: Option<&Crypto>,
    keys: &K,
    items: &[T],
    record: impl Fn(&T) -> RecordId,
    decode: impl Fn(&T) -> Result<R, Error>,
) -> Result<Vec<R>, Error> {
    run_all(crypto, keys, items, record, decode, false).await
}

async fn run_all<K: KeyStore, T, R>(
    crypto: Option<&Crypto>,
    keys: &K,
    items: &[T],
    record: impl Fn(&T) -> RecordId,
    run: impl Fn(&T) -> Result<R, Error>,
    write: bool,
) -> Result<Vec<R>, Error> {
    let mut outputs = Vec::with_capacity(items.len());
    let mut subjects = BTreeSet::new();
    for item in items {
        let (result, scope) = scope::run(Mode::Collect, record(item), || run(item));
        if scope.subjects.is_empty() {
            outputs.push(Some(result?));
        } else {
            subjects.extend(scope.subjects);
            outputs.push(None);
        }
    }
    if subjects.is_empty() {
        return Ok(outputs.into_iter().flatten().collect());
    }
    let crypto = crypto.ok_or(Error::CryptoNotConfigured)?;
    let keyring = Arc::new(crypto.keyring(keys, &subjects, write).await?);
    items
        .iter()
        .zip(outputs)
        .map(|(item, done)| match done {
            Some(done) => Ok(done),
            None => {
                let (result, scope) =
                    scope::run(Mode::Keys(Arc::clone(&keyring)), record(item), || run(item));
                result.map_err(|error| scope.failure.unwrap_or(error))
            }
        })
        .collect()
}

/// Decodes recorded events into `E`, opening personal data with `crypto` (or
/// marking it shredded once its subject is forgotten). Without `crypto`, events
/// holding personal data are refused with [`Error::CryptoNotConfigured`].
///
/// This is what the repository and the projection runners use; keys are fetched
/// once for the whole batch.
pub async fn decode_events<E: crate::Event, C: Codec, K: KeyStore>(
    crypto: Option<&Crypto>,
    keys: &K,
    codec: &C,
    recorded: &[crate::RecordedEvent],
) -> Result<Vec<E>, Error> {
    open_all(
        crypto,
        keys,
        recorded,
        |r| r.event_id.as_uuid().as_bytes().to_vec(),
        |r| r.decode(codec),
    )
    .await
}

/// Encodes events for appending, under the given ids, sealing personal data
/// with `crypto` (keys are created on first use, in one round trip per batch).
pub async fn encode_events<E: crate::Event, C: Codec, K: KeyStore>(
    crypto: Option<&Crypto>,
    keys: &K,
    codec: &C,
    events: &[(crate::EventId, &E)],
) -> Result<Vec<Vec<u8>>, Error> {
    seal_all(
        crypto,
        keys,
        events,
        |(id, _)| id.as_uuid().as_bytes().to_vec(),
        |(_, event)| event.encode(codec),
    )
    .await
}
