//! A complete in-memory event and snapshot store, for tests and prototypes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::IdempotentRecord;
use crate::{
    AppendRequest, AppendResult, Checkpoint, CommitId, Error, EventStore, ForgetOutcome,
    IdempotencyKey, KeyState, KeyStore, Position, RecordedEvent, Snapshot, SnapshotStore,
    StoredKey, StreamId, StreamSummary, StreamVersion, SubjectId,
};

/// An in-memory [`EventStore`] and [`SnapshotStore`].
///
/// Cloning gives another handle to the same store. Every append takes one lock,
/// so the global log is in commit order by construction.
///
/// ```
/// use es_core::{AppendRequest, Checkpoint, EventStore, ExpectedVersion, MemoryStore, Metadata,
///               NewEvent, StreamId, EventId};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let stream = StreamId::new("account-1").unwrap();
/// let event = NewEvent {
///     event_id: EventId::new(),
///     event_type: "Opened".into(),
///     schema_version: 1,
///     payload: vec![1, 2, 3],
///     metadata: Metadata::now(),
/// };
/// let result = store
///     .append(AppendRequest::new(stream.clone(), ExpectedVersion::NoStream, vec![event]))
///     .await
///     .unwrap();
/// assert_eq!(result.version.get(), 1);
/// let all = store.read_all(Checkpoint::START, 100).await.unwrap();
/// assert_eq!(all.len(), 1);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// The global log in commit order; an event's index is its position - 1.
    log: Vec<RecordedEvent>,
    /// Per stream, the indexes into `log` of its events, in version order.
    streams: HashMap<StreamId, Vec<usize>>,
    idempotency: HashMap<(StreamId, IdempotencyKey), IdempotentRecord>,
    snapshots: HashMap<StreamId, Snapshot>,
    keys: HashMap<SubjectId, StoredKey>,
    /// Increases with every append: the commit id of the next batch.
    next_commit: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied append: every
        // mutation below happens after all checks, without await points.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    fn append(&mut self, request: AppendRequest) -> Result<AppendResult, Error> {
        if request.events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let inner = self;
        if let Some(idem) = &request.idempotency {
            let key = (request.stream.clone(), idem.key.clone());
            if let Some(record) = inner.idempotency.get(&key) {
                if record.fingerprint != idem.fingerprint {
                    return Err(Error::IdempotencyKeyReused {
                        stream: request.stream,
                        key: idem.key.clone(),
                    });
                }
                return Ok(record.result.clone());
            }
        }
        let actual = StreamVersion::new(
            inner
                .streams
                .get(&request.stream)
                .map_or(0, |events| events.len() as u64),
        );
        if !request.expected.accepts(actual) {
            return Err(Error::Conflict {
                stream: request.stream,
                expected: request.expected,
                actual,
            });
        }
        inner.next_commit += 1;
        let commit = CommitId::new(inner.next_commit);
        let mut version = actual;
        let mut positions = Vec::with_capacity(request.events.len());
        let mut indexes = Vec::with_capacity(request.events.len());
        for event in request.events {
            version = version.next();
            let index = inner.log.len();
            let position = Position::new(index as u64 + 1);
            positions.push(position);
            indexes.push(index);
            inner.log.push(RecordedEvent {
                stream_id: request.stream.clone(),
                version,
                position,
                commit,
                event_id: event.event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
            });
        }
        inner
            .streams
            .entry(request.stream.clone())
            .or_default()
            .extend(indexes);
        let last = *positions.last().unwrap_or(&Position::START);
        let result = AppendResult {
            version,
            positions,
            checkpoint: Checkpoint::new(commit, last),
            deduplicated: false,
        };
        if let Some(idem) = request.idempotency {
            let mut stored = result.clone();
            stored.deduplicated = true;
            inner.idempotency.insert(
                (request.stream, idem.key),
                IdempotentRecord {
                    fingerprint: idem.fingerprint,
                    result: stored,
                },
            );
        }
        Ok(result)
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryStore")
            .field("events", &inner.log.len())
            .field("streams", &inner.streams.len())
            .finish()
    }
}

impl EventStore for MemoryStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult, Error> {
        let mut inner = self.lock();
        inner.append(request)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let inner = self.lock();
        let Some(indexes) = inner.streams.get(stream) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(after.get()).unwrap_or(usize::MAX);
        Ok(indexes
            .iter()
            .skip(skip)
            .take(limit)
            .map(|&i| inner.log[i].clone())
            .collect())
    }

    async fn read_all(&self, after: Checkpoint, limit: usize) -> Result<Vec<RecordedEvent>, Error> {
        let inner = self.lock();
        // Positions are assigned in commit order here, so the log is already in
        // checkpoint order and position - 1 is the index.
        let start = inner
            .log
            .partition_point(|event| event.checkpoint() <= after);
        Ok(inner.log[start..].iter().take(limit).cloned().collect())
    }

    async fn count_after(&self, after: Checkpoint) -> Result<u64, Error> {
        let inner = self.lock();
        let start = inner
            .log
            .partition_point(|event| event.checkpoint() <= after);
        Ok((inner.log.len() - start) as u64)
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<StreamVersion, Error> {
        let inner = self.lock();
        Ok(StreamVersion::new(
            inner.streams.get(stream).map_or(0, |e| e.len() as u64),
        ))
    }

    async fn idempotent_result(
        &self,
        stream: &StreamId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotentRecord>, Error> {
        let inner = self.lock();
        Ok(inner
            .idempotency
            .get(&(stream.clone(), key.clone()))
            .cloned())
    }

    async fn list_streams(
        &self,
        after: Option<&StreamId>,
        limit: usize,
    ) -> Result<Vec<StreamSummary>, Error> {
        let inner = self.lock();
        let mut ids: Vec<&StreamId> = inner
            .streams
            .keys()
            .filter(|id| after.is_none_or(|after| id.as_str() > after.as_str()))
            .collect();
        ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(ids
            .into_iter()
            .take(limit)
            .filter_map(|id| {
                let last = &inner.log[*inner.streams[id].last()?];
                Some(StreamSummary {
                    stream_id: id.clone(),
                    version: last.version,
                    last_recorded_at: last.metadata.recorded_at,
                })
            })
            .collect())
    }
}

impl SnapshotStore for MemoryStore {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        let mut inner = self.lock();
        let replace = inner.snapshots.get(&snapshot.stream_id).is_none_or(|old| {
            snapshot.version > old.version || snapshot.schema_version != old.schema_version
        });
        if replace {
            inner.snapshots.insert(snapshot.stream_id.clone(), snapshot);
        }
        Ok(())
    }

    async fn load_snapshot(
        &self,
        stream: &StreamId,
        schema_version: u32,
    ) -> Result<Option<Snapshot>, Error> {
        let inner = self.lock();
        Ok(inner
            .snapshots
            .get(stream)
            .filter(|s| s.schema_version == schema_version)
            .cloned())
    }

    async fn prune_snapshots(&self, stream_prefix: &str, keep: Option<u32>) -> Result<u64, Error> {
        let mut inner = self.lock();
        let before = inner.snapshots.len();
        inner.snapshots.retain(|stream, snapshot| {
            !stream.as_str().starts_with(stream_prefix) || Some(snapshot.schema_version) == keep
        });
        Ok((before - inner.snapshots.len()) as u64)
    }
}

impl KeyStore for MemoryStore {
    async fn load_keys(&self, subjects: &[SubjectId]) -> Result<Vec<StoredKey>, Error> {
        let inner = self.lock();
        Ok(subjects
            .iter()
            .filter_map(|s| inner.keys.get(s).cloned())
            .collect())
    }

    async fn create(&self, key: StoredKey, replace_forgotten: bool) -> Result<StoredKey, Error> {
        let mut inner = self.lock();
        let stored = match inner.keys.get(&key.subject) {
            Some(existing) => match existing.state {
                KeyState::Forgotten { .. }
                    if replace_forgotten && key.key_version > existing.key_version =>
                {
                    key
                }
                _ => return Ok(existing.clone()),
            },
            None => key,
        };
        inner.keys.insert(stored.subject.clone(), stored.clone());
        Ok(stored)
    }

    async fn forget(
        &self,
        subject: &SubjectId,
        event: AppendRequest,
    ) -> Result<ForgetOutcome, Error> {
        let mut inner = self.lock();
        let key_version = match inner.keys.get(subject) {
            Some(StoredKey {
                state: KeyState::Forgotten { .. },
                ..
            }) => return Ok(ForgetOutcome::AlreadyForgotten),
            Some(key) => key.key_version,
            None => 1,
        };
        // The append is checked before anything changes, so a failed append
        // leaves the key in place: both happen or neither.
        let appended = inner.append(event)?;
        inner.keys.insert(
            subject.clone(),
            StoredKey {
                subject: subject.clone(),
                key_version,
                state: KeyState::Forgotten {
                    at: chrono::Utc::now(),
                },
            },
        );
        Ok(ForgetOutcome::Forgotten(appended))
    }

    async fn keys_to_rewrap(
        &self,
        master_key_id: &str,
        limit: usize,
    ) -> Result<Vec<StoredKey>, Error> {
        let inner = self.lock();
        Ok(inner
            .keys
            .values()
            .filter(|k| {
                matches!(&k.state, KeyState::Active { master_key_id: id, .. } if id != master_key_id)
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn rewrap(
        &self,
        old: &StoredKey,
        wrapped: Vec<u8>,
        master_key_id: &str,
    ) -> Result<bool, Error> {
        let mut inner = self.lock();
        match inner.keys.get_mut(&old.subject) {
            Some(current) if current == old => {
                current.state = KeyState::Active {
                    wrapped,
                    master_key_id: master_key_id.to_owned(),
                };
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
