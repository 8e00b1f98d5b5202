//! Helpers shared by the SQLite tests.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use es_core::{
    AppendRequest, AppendResult, Checkpoint, Error, EventId, EventStore, ExpectedVersion, Metadata,
    NewEvent, RecordedEvent, StreamId, StreamVersion,
};
use es_store_sqlite::SqliteStore;

pub(crate) fn stream(name: &str) -> StreamId {
    StreamId::new(name).expect("valid stream id")
}

/// Now, at microsecond precision.
pub(crate) fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("current time")
}

/// Events whose payloads are the given byte strings.
pub(crate) fn events_with(payloads: impl IntoIterator<Item = Vec<u8>>) -> Vec<NewEvent> {
    payloads
        .into_iter()
        .map(|payload| NewEvent {
            event_id: EventId::new(),
            event_type: "Marked".into(),
            schema_version: 1,
            payload,
            metadata: Metadata {
                // Microseconds, the precision every store keeps.
                recorded_at: now(),
                ..Metadata::now()
            },
        })
        .collect()
}

pub(crate) async fn append(
    store: &SqliteStore,
    s: &StreamId,
    expected: ExpectedVersion,
    n: usize,
) -> Result<AppendResult, Error> {
    let payloads = (0..n).map(|i| u64::try_from(i).unwrap_or(0).to_le_bytes().to_vec());
    store
        .append(AppendRequest::new(
            s.clone(),
            expected,
            events_with(payloads),
        ))
        .await
}

/// The whole global log, read in pages.
pub(crate) async fn read_everything(store: &SqliteStore) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let page = store.read_all(after, 500).await.expect("read_all");
        let Some(last) = page.last() else { break };
        after = last.checkpoint();
        all.extend(page);
    }
    all
}

/// `PRAGMA integrity_check`: `["ok"]` for a sound file.
pub(crate) async fn integrity_check(store: &SqliteStore) -> Vec<String> {
    sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(store.pool())
        .await
        .expect("integrity_check")
}

/// Asserts what every store file must satisfy: a sound file, a global log with
/// gap-free positions in checkpoint order, and every stream's versions gap-free
/// from 1, in the log as in `read_stream` and `stream_version`. Returns the log.
pub(crate) async fn assert_consistent(store: &SqliteStore) -> Vec<RecordedEvent> {
    assert_eq!(integrity_check(store).await, vec!["ok".to_owned()]);
    let foreign_keys: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
        .fetch_all(store.pool())
        .await
        .expect("foreign_key_check");
    assert!(foreign_keys.is_empty(), "rows without their stream");
    let log = read_everything(store).await;
    for (i, event) in log.iter().enumerate() {
        assert_eq!(
            event.position.get(),
            u64::try_from(i).expect("index") + 1,
            "positions are gap-free"
        );
    }
    assert!(
        log.windows(2)
            .all(|w| w[0].checkpoint() < w[1].checkpoint()),
        "checkpoints increase with positions"
    );
    let mut versions: HashMap<&StreamId, u64> = HashMap::new();
    for event in &log {
        let last = versions.entry(&event.stream_id).or_insert(0);
        assert_eq!(
            event.version.get(),
            *last + 1,
            "stream {} has a gap or is out of order",
            event.stream_id
        );
        *last = event.version.get();
    }
    for (s, last) in versions {
        assert_eq!(
            store.stream_version(s).await.expect("version"),
            StreamVersion::new(last),
            "stream {s}: the stream row agrees with its events"
        );
        let read = store
            .read_stream(s, StreamVersion::INITIAL, usize::MAX)
            .await
            .expect("read_stream");
        assert_eq!(
            u64::try_from(read.len()).expect("length"),
            last,
            "stream {s}"
        );
    }
    log
}
