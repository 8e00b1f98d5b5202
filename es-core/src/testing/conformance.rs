//! The store conformance suite: one public async function per behaviour of the
//! [`EventStore`] and [`SnapshotStore`](crate::SnapshotStore) contracts.
//!
//! Every backend runs the whole suite through
//! [`store_conformance_tests!`](crate::store_conformance_tests), given a factory that returns a fresh, empty
//! store:
//!
//! ```
//! // In a test file of the backend's crate:
//! async fn fresh_store() -> es_core::MemoryStore {
//!     es_core::MemoryStore::new()
//! }
//!
//! es_core::store_conformance_tests!(fresh_store);
//! # fn main() {}
//! ```
//!
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a
//! dev-dependency. Backends never copy these tests; a behaviour every store must
//! have is added here, once.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use uuid::Uuid;

use crate::{
    AppendRequest, Bincode, Checkpoint, Crypto, Error, EventId, EventStore, ExpectedVersion,
    ForgetOutcome, Idempotency, IdempotencyKey, KeyState, MasterKey, MasterKeyring, Metadata,
    NewEvent, Personal, RecordedEvent, Snapshot, Storage, StoredKey, StreamId, StreamVersion,
    SubjectId, SystemEvent,
};

/// Turns the suite into `#[tokio::test]` functions for a store factory.
///
/// The argument is a path to an `async fn() -> S` returning a fresh, empty store.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!(@each $factory;
            append_to_a_new_stream_starts_at_version_one,
            append_batch_gets_contiguous_versions_and_increasing_positions,
            expected_any_appends_whatever_the_version,
            expected_no_stream_conflicts_once_the_stream_exists,
            expected_stream_exists_conflicts_on_an_empty_stream,
            expected_exact_version_appends_only_at_that_version,
            conflict_reports_the_actual_version_and_writes_nothing,
            concurrent_appends_at_one_version_have_exactly_one_winner,
            empty_append_is_rejected,
            read_stream_pages_from_a_version,
            unknown_stream_reads_empty_at_version_zero,
            recorded_events_keep_every_field,
            read_all_returns_every_event_once_in_global_order,
            read_all_resumes_after_a_checkpoint,
            count_after_is_the_lag_of_a_checkpoint,
            idempotent_repeat_returns_the_first_result_and_writes_nothing,
            idempotency_key_reused_for_another_request_is_a_typed_error,
            idempotency_keys_are_scoped_to_their_stream,
            failed_idempotent_append_records_no_key,
            snapshot_round_trips,
            older_snapshot_does_not_replace_a_newer_one,
            snapshot_of_another_schema_is_not_served,
            snapshots_are_kept_per_stream,
            list_streams_pages_in_the_byte_order_of_ids,
            prune_snapshots_deletes_only_what_cannot_be_loaded,
            key_creation_is_first_writer_wins,
            keys_load_only_for_known_subjects,
            forget_destroys_the_key_and_appends_its_event_atomically,
            a_forgotten_subject_is_readmitted_only_with_a_higher_version,
            rewrap_is_compare_and_set,
            personal_data_is_shredded_after_forget,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $factory().await;
                $crate::testing::conformance::$name(store).await;
            }
        )*
    };
}

fn stream(name: &str) -> StreamId {
    StreamId::new(format!("conformance-{name}")).expect("valid stream id")
}

/// Now, at the microsecond precision every backend can store.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("current time")
}

fn event(event_type: &str, payload: &[u8]) -> NewEvent {
    NewEvent {
        event_id: EventId::new(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: payload.to_vec(),
        metadata: Metadata {
            recorded_at: now(),
            ..Metadata::now()
        },
    }
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            event(
                "Numbered",
                &u32::try_from(i).unwrap_or(u32::MAX).to_le_bytes(),
            )
        })
        .collect()
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).expect("valid key")
}

async fn append<S: EventStore>(
    store: &S,
    stream: &StreamId,
    expected: ExpectedVersion,
    n: usize,
) -> Result<crate::AppendResult, Error> {
    store
        .append(AppendRequest::new(stream.clone(), expected, events(n)))
        .await
}

#[track_caller]
fn assert_conflict(result: Result<crate::AppendResult, Error>, want_actual: u64) {
    match result {
        Err(Error::Conflict { actual, .. }) => assert_eq!(
            actual,
            StreamVersion::new(want_actual),
            "the conflict must report the stream's actual version"
        ),
        other => panic!("expected a version conflict, got {other:?}"),
    }
}

/// Waits until the global log shows at least `count` events: a store may hold
/// committed events back until older transactions (of any client of the server)
/// finish, so visibility can lag an append by a little.
async fn wait_for_log<S: EventStore>(store: &S, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let visible = store
            .read_all(Checkpoint::START, count)
            .await
            .expect("read_all")
            .len();
        if visible >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {visible} of {count} appended events became visible in the global log within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Runs `read` until `done` holds of what it returns (at most 30 s), and
/// returns that. A store may show the newest appends a moment late, never
/// early (PostgreSQL's read horizon waits out, for an instant, any
/// transaction of the cluster that might still append), so a test waits for
/// what it expects instead of asserting the first read.
async fn eventually<T, F, Fut>(what: &str, mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// The global log's length from the first read that shows at least `count`
/// events (a store may show the newest appends a moment late, never early):
/// what a test compares when it checks that nothing more was written.
async fn settled_log_len<S: EventStore>(store: &S, count: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let visible = read_everything(store, 100).await.len();
        if visible >= count {
            return visible;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {visible} of {count} appended events became visible in the global log within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

async fn read_everything<S: EventStore>(store: &S, page: usize) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Checkpoint::START;
    loop {
        let batch = store.read_all(after, page).await.expect("read_all");
        assert!(batch.len() <= page, "read_all returned more than its limit");
        let Some(last) = batch.last() else { break };
        after = last.checkpoint();
        all.extend(batch);
    }
    all
}

/// The first append to a stream gets version 1 and a position.
pub async fn append_to_a_new_stream_starts_at_version_one<S: Storage>(store: S) {
    let s = stream("new");
    let result = append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("append");
    assert_eq!(result.version, StreamVersion::new(1));
    assert_eq!(result.positions.len(), 1);
    assert!(!result.deduplicated);
    assert_eq!(result.checkpoint.position, result.positions[0]);
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(1)
    );
}

/// A batch is appended as contiguous versions with increasing positions.
pub async fn append_batch_gets_contiguous_versions_and_increasing_positions<S: Storage>(store: S) {
    let s = stream("batch");
    append(&store, &s, ExpectedVersion::NoStream, 2)
        .await
        .expect("first batch");
    let result = append(&store, &s, ExpectedVersion::Exact(StreamVersion::new(2)), 5)
        .await
        .expect("second batch");
    assert_eq!(result.version, StreamVersion::new(7));
    assert_eq!(result.first_version(), StreamVersion::new(3));
    assert_eq!(result.positions.len(), 5);
    assert!(result.positions.windows(2).all(|w| w[0] < w[1]));
    let read = store
        .read_stream(&s, StreamVersion::INITIAL, 100)
        .await
        .expect("read");
    let versions: Vec<u64> = read.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=7).collect::<Vec<_>>());
    let batch_commits: Vec<_> = read[2..].iter().map(|e| e.commit).collect();
    assert!(
        batch_commits.windows(2).all(|w| w[0] == w[1]),
        "one batch is one commit"
    );
}

/// `Any` appends to new and existing streams.
pub async fn expected_any_appends_whatever_the_version<S: Storage>(store: S) {
    let s = stream("any");
    append(&store, &s, ExpectedVersion::Any, 1)
        .await
        .expect("any on new stream");
    let result = append(&store, &s, ExpectedVersion::Any, 2)
        .await
        .expect("any on existing stream");
    assert_eq!(result.version, StreamVersion::new(3));
}

/// `NoStream` succeeds once and then conflicts.
pub async fn expected_no_stream_conflicts_once_the_stream_exists<S: Storage>(store: S) {
    let s = stream("nostream");
    append(&store, &s, ExpectedVersion::NoStream, 2)
        .await
        .expect("first");
    assert_conflict(append(&store, &s, ExpectedVersion::NoStream, 1).await, 2);
}

/// `StreamExists` conflicts on a stream with no events.
pub async fn expected_stream_exists_conflicts_on_an_empty_stream<S: Storage>(store: S) {
    let s = stream("exists");
    assert_conflict(
        append(&store, &s, ExpectedVersion::StreamExists, 1).await,
        0,
    );
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("create");
    let result = append(&store, &s, ExpectedVersion::StreamExists, 1)
        .await
        .expect("exists");
    assert_eq!(result.version, StreamVersion::new(2));
}

/// `Exact(n)` appends only at version n, including `Exact(0)` on a new stream.
pub async fn expected_exact_version_appends_only_at_that_version<S: Storage>(store: S) {
    let s = stream("exact");
    append(
        &store,
        &s,
        ExpectedVersion::Exact(StreamVersion::INITIAL),
        1,
    )
    .await
    .expect("exact 0 on a new stream");
    assert_conflict(
        append(&store, &s, ExpectedVersion::Exact(StreamVersion::new(2)), 1).await,
        1,
    );
    assert_conflict(
        append(
            &store,
            &s,
            ExpectedVersion::Exact(StreamVersion::INITIAL),
            1,
        )
        .await,
        1,
    );
    let result = append(&store, &s, ExpectedVersion::Exact(StreamVersion::new(1)), 1)
        .await
        .expect("exact 1");
    assert_eq!(result.version, StreamVersion::new(2));
}

/// A conflict names the stream, the expectation and the actual version, and
/// writes nothing anywhere.
pub async fn conflict_reports_the_actual_version_and_writes_nothing<S: Storage>(store: S) {
    let s = stream("conflict");
    append(&store, &s, ExpectedVersion::NoStream, 3)
        .await
        .expect("seed");
    let before = settled_log_len(&store, 3).await;
    assert_eq!(before, 3);
    match append(&store, &s, ExpectedVersion::Exact(StreamVersion::new(1)), 4).await {
        Err(Error::Conflict {
            stream: got,
            expected,
            actual,
        }) => {
            assert_eq!(got, s);
            assert_eq!(expected, ExpectedVersion::Exact(StreamVersion::new(1)));
            assert_eq!(actual, StreamVersion::new(3));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(settled_log_len(&store, before).await, before);
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(3)
    );
}

/// Sixteen appends racing at one expected version: exactly one wins, the others
/// get `Conflict`, and the stream holds only the winner's events.
pub async fn concurrent_appends_at_one_version_have_exactly_one_winner<S: Storage>(store: S) {
    let s = stream("race");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("seed");
    for round in 1..=3u64 {
        let expected = ExpectedVersion::Exact(StreamVersion::new(1 + (round - 1) * 2));
        let attempts = (0..16).map(|_| {
            let store = store.clone();
            let s = s.clone();
            async move { append(&store, &s, expected, 2).await }
        });
        let results = join_all(attempts).await;
        let winners = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Conflict { .. })))
            .count();
        assert_eq!(winners, 1, "round {round}: exactly one append must win");
        assert_eq!(conflicts, 15, "round {round}: every loser gets a conflict");
    }
    let read = store
        .read_stream(&s, StreamVersion::INITIAL, 100)
        .await
        .expect("read");
    let versions: Vec<u64> = read.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=7).collect::<Vec<_>>());
}

/// An append with no events is refused.
pub async fn empty_append_is_rejected<S: Storage>(store: S) {
    let s = stream("empty");
    let result = store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::Any,
            Vec::new(),
        ))
        .await;
    assert!(matches!(result, Err(Error::EmptyAppend)), "{result:?}");
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::INITIAL
    );
}

/// Stream reads start after a version and honour the limit.
pub async fn read_stream_pages_from_a_version<S: Storage>(store: S) {
    let s = stream("pages");
    append(&store, &s, ExpectedVersion::NoStream, 10)
        .await
        .expect("seed");
    append(&store, &stream("other"), ExpectedVersion::NoStream, 3)
        .await
        .expect("other stream");
    let page = store
        .read_stream(&s, StreamVersion::new(4), 3)
        .await
        .expect("read");
    let versions: Vec<u64> = page.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, vec![5, 6, 7]);
    assert!(page.iter().all(|e| e.stream_id == s));
    let tail = store
        .read_stream(&s, StreamVersion::new(8), 100)
        .await
        .expect("tail");
    assert_eq!(tail.len(), 2);
    let past_end = store
        .read_stream(&s, StreamVersion::new(10), 100)
        .await
        .expect("past end");
    assert!(past_end.is_empty());
}

/// A stream never written reads empty and has version 0.
pub async fn unknown_stream_reads_empty_at_version_zero<S: Storage>(store: S) {
    let s = stream("never-written");
    assert!(
        store
            .read_stream(&s, StreamVersion::INITIAL, 10)
            .await
            .expect("read")
            .is_empty()
    );
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::INITIAL
    );
}

/// Every field of an event comes back as written, from both reads.
pub async fn recorded_events_keep_every_field<S: Storage>(store: S) {
    let s = stream("fields-ünïcødé-'\";--");
    let mut headers = BTreeMap::new();
    headers.insert("tenant".to_owned(), "acme".to_owned());
    headers.insert("ünïcødé".to_owned(), "✓".to_owned());
    let written = vec![
        NewEvent {
            event_id: EventId::new(),
            event_type: "Opened".into(),
            schema_version: 3,
            payload: vec![0, 159, 146, 150, 255],
            metadata: Metadata {
                correlation_id: Some(Uuid::now_v7()),
                causation_id: Some(Uuid::now_v7()),
                recorded_at: now(),
                idempotency_key: Some(key("intent-1")),
                headers,
            },
        },
        NewEvent {
            payload: Vec::new(),
            ..event("Empty", b"")
        },
    ];
    append_request(&store, &s, written.clone()).await;
    wait_for_log(&store, 2).await;
    let from_stream = store
        .read_stream(&s, StreamVersion::INITIAL, 10)
        .await
        .expect("read stream");
    let from_log: Vec<_> = eventually(
        "both records in the global log",
        || async {
            read_everything(&store, 10)
                .await
                .into_iter()
                .filter(|e| e.stream_id == s)
                .collect::<Vec<_>>()
        },
        |records| records.len() >= 2,
    )
    .await;
    assert_eq!(from_stream, from_log, "both reads return the same records");
    assert_eq!(from_stream.len(), 2);
    for (read, wrote) in from_stream.iter().zip(&written) {
        assert_eq!(read.stream_id, s);
        assert_eq!(read.event_id, wrote.event_id);
        assert_eq!(read.event_type, wrote.event_type);
        assert_eq!(read.schema_version, wrote.schema_version);
        assert_eq!(read.payload, wrote.payload);
        assert_eq!(read.metadata, wrote.metadata);
    }
}

async fn append_request<S: EventStore>(store: &S, s: &StreamId, events: Vec<NewEvent>) {
    store
        .append(AppendRequest::new(s.clone(), ExpectedVersion::Any, events))
        .await
        .expect("append");
}

/// The global log holds every event exactly once, in checkpoint order, with each
/// stream's events in version order, whatever the page size.
pub async fn read_all_returns_every_event_once_in_global_order<S: Storage>(store: S) {
    let streams: Vec<StreamId> = (0..5).map(|i| stream(&format!("log-{i}"))).collect();
    let mut appended = 0;
    for round in 0..4 {
        for (i, s) in streams.iter().enumerate() {
            let n = 1 + (i + round) % 3;
            append(&store, s, ExpectedVersion::Any, n)
                .await
                .expect("append");
            appended += n;
        }
    }
    wait_for_log(&store, appended).await;
    for page in [1, 7, 1000] {
        let all = eventually(
            "every event in the global log",
            || read_everything(&store, page),
            |all| all.len() >= appended,
        )
        .await;
        assert_eq!(all.len(), appended, "page size {page}: every event once");
        assert!(
            all.windows(2)
                .all(|w| w[0].checkpoint() < w[1].checkpoint()),
            "page size {page}: strictly increasing checkpoints"
        );
        let mut seen: HashMap<&StreamId, u64> = HashMap::new();
        for e in &all {
            let last = seen.entry(&e.stream_id).or_insert(0);
            assert_eq!(e.version.get(), *last + 1, "per-stream order, no gap");
            *last = e.version.get();
        }
    }
}

/// Reading after a checkpoint returns exactly the events after it, including
/// ones appended later.
pub async fn read_all_resumes_after_a_checkpoint<S: Storage>(store: S) {
    let s = stream("resume");
    append(&store, &s, ExpectedVersion::NoStream, 4)
        .await
        .expect("seed");
    wait_for_log(&store, 4).await;
    let first = eventually(
        "the first page",
        || async { store.read_all(Checkpoint::START, 2).await.expect("read") },
        |page| page.len() >= 2,
    )
    .await;
    assert_eq!(first.len(), 2);
    let checkpoint = first[1].checkpoint();
    let parsed: Checkpoint = checkpoint.to_string().parse().expect("parse");
    assert_eq!(parsed, checkpoint);
    let rest = eventually(
        "the rest",
        || async { store.read_all(parsed, 100).await.expect("rest") },
        |rest| rest.len() >= 2,
    )
    .await;
    assert_eq!(
        rest.iter().map(|e| e.version.get()).collect::<Vec<_>>(),
        vec![3, 4]
    );
    let head = rest[1].checkpoint();
    assert!(store.read_all(head, 100).await.expect("head").is_empty());
    append(&store, &s, ExpectedVersion::Any, 1)
        .await
        .expect("later");
    wait_for_log(&store, 5).await;
    let later = eventually(
        "the later event",
        || async { store.read_all(head, 100).await.expect("later read") },
        |later| !later.is_empty(),
    )
    .await;
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].version, StreamVersion::new(5));
}

fn idempotency(k: &str, fingerprint: u8) -> Idempotency {
    Idempotency {
        key: key(k),
        fingerprint: [fingerprint; 32],
    }
}

/// A repeat of an idempotent append returns the first result, marked
/// deduplicated, and writes nothing, whatever its expected version.
pub async fn idempotent_repeat_returns_the_first_result_and_writes_nothing<S: Storage>(store: S) {
    let s = stream("idem");
    let request = AppendRequest::new(s.clone(), ExpectedVersion::NoStream, events(2))
        .idempotent(idempotency("deposit-1", 7));
    let first = store.append(request.clone()).await.expect("first");
    assert!(!first.deduplicated);
    append(&store, &s, ExpectedVersion::Any, 1)
        .await
        .expect("unrelated append");
    let again = store.append(request).await.expect("repeat");
    assert!(again.deduplicated);
    assert_eq!(again.version, first.version);
    assert_eq!(again.positions, first.positions);
    assert_eq!(again.checkpoint, first.checkpoint);
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(3)
    );
    let record = store
        .idempotent_result(&s, &key("deposit-1"))
        .await
        .expect("lookup")
        .expect("recorded");
    assert_eq!(record.fingerprint, [7; 32]);
    assert_eq!(record.result.positions, first.positions);
    assert!(
        store
            .idempotent_result(&s, &key("never-used"))
            .await
            .expect("lookup")
            .is_none()
    );
}

/// The same key with another fingerprint is `IdempotencyKeyReused`, and writes
/// nothing.
pub async fn idempotency_key_reused_for_another_request_is_a_typed_error<S: Storage>(store: S) {
    let s = stream("idem-reuse");
    store
        .append(
            AppendRequest::new(s.clone(), ExpectedVersion::Any, events(1))
                .idempotent(idempotency("k", 1)),
        )
        .await
        .expect("first");
    let result = store
        .append(
            AppendRequest::new(s.clone(), ExpectedVersion::Any, events(1))
                .idempotent(idempotency("k", 2)),
        )
        .await;
    assert!(
        matches!(result, Err(Error::IdempotencyKeyReused { .. })),
        "{result:?}"
    );
    assert_eq!(
        store.stream_version(&s).await.expect("version"),
        StreamVersion::new(1)
    );
}

/// One key on two streams is two intents.
pub async fn idempotency_keys_are_scoped_to_their_stream<S: Storage>(store: S) {
    for name in ["scope-a", "scope-b"] {
        let result = store
            .append(
                AppendRequest::new(stream(name), ExpectedVersion::Any, events(1))
                    .idempotent(idempotency("shared", 3)),
            )
            .await
            .expect("append");
        assert!(!result.deduplicated, "{name}");
    }
}

/// An idempotent append that conflicts records nothing: the retry at the right
/// version writes.
pub async fn failed_idempotent_append_records_no_key<S: Storage>(store: S) {
    let s = stream("idem-conflict");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("seed");
    let stale = store
        .append(
            AppendRequest::new(s.clone(), ExpectedVersion::NoStream, events(1))
                .idempotent(idempotency("retry-me", 4)),
        )
        .await;
    assert_conflict(stale, 1);
    let retried = store
        .append(
            AppendRequest::new(
                s.clone(),
                ExpectedVersion::Exact(StreamVersion::new(1)),
                events(1),
            )
            .idempotent(idempotency("retry-me", 4)),
        )
        .await
        .expect("retry");
    assert!(!retried.deduplicated);
    assert_eq!(retried.version, StreamVersion::new(2));
}

fn snapshot(s: &StreamId, version: u64, schema_version: u32, payload: &[u8]) -> Snapshot {
    Snapshot {
        stream_id: s.clone(),
        version: StreamVersion::new(version),
        schema_version,
        payload: payload.to_vec(),
        taken_at: now(),
    }
}

/// A saved snapshot loads back unchanged.
pub async fn snapshot_round_trips<S: Storage>(store: S) {
    let s = stream("snap");
    assert!(store.load_snapshot(&s, 1).await.expect("load").is_none());
    let saved = snapshot(&s, 10, 1, &[1, 2, 3, 0, 255]);
    store.save_snapshot(saved.clone()).await.expect("save");
    assert_eq!(store.load_snapshot(&s, 1).await.expect("load"), Some(saved));
    let newer = snapshot(&s, 20, 1, b"newer");
    store.save_snapshot(newer.clone()).await.expect("save");
    assert_eq!(store.load_snapshot(&s, 1).await.expect("load"), Some(newer));
}

/// A snapshot of a lower version does not replace a newer one.
pub async fn older_snapshot_does_not_replace_a_newer_one<S: Storage>(store: S) {
    let s = stream("snap-order");
    let newer = snapshot(&s, 20, 1, b"newer");
    store.save_snapshot(newer.clone()).await.expect("save");
    store
        .save_snapshot(snapshot(&s, 10, 1, b"older"))
        .await
        .expect("save older");
    assert_eq!(store.load_snapshot(&s, 1).await.expect("load"), Some(newer));
}

/// Loading asks for a schema version; a snapshot of another is never returned,
/// and a snapshot of a new schema replaces one of an old schema.
pub async fn snapshot_of_another_schema_is_not_served<S: Storage>(store: S) {
    let s = stream("snap-schema");
    store
        .save_snapshot(snapshot(&s, 20, 1, b"v1 shape"))
        .await
        .expect("save");
    assert!(store.load_snapshot(&s, 2).await.expect("load").is_none());
    let v2 = snapshot(&s, 5, 2, b"v2 shape");
    store.save_snapshot(v2.clone()).await.expect("save v2");
    assert_eq!(store.load_snapshot(&s, 2).await.expect("load"), Some(v2));
    assert!(store.load_snapshot(&s, 1).await.expect("load").is_none());
}

/// Each stream has its own snapshot.
pub async fn snapshots_are_kept_per_stream<S: Storage>(store: S) {
    let a = stream("snap-a");
    let b = stream("snap-b");
    store
        .save_snapshot(snapshot(&a, 3, 1, b"a"))
        .await
        .expect("save a");
    store
        .save_snapshot(snapshot(&b, 1, 1, b"b"))
        .await
        .expect("save b");
    assert_eq!(
        store
            .load_snapshot(&a, 1)
            .await
            .expect("a")
            .map(|s| s.payload),
        Some(b"a".to_vec())
    );
    assert_eq!(
        store
            .load_snapshot(&b, 1)
            .await
            .expect("b")
            .map(|s| s.payload),
        Some(b"b".to_vec())
    );
}

/// Streams are listed in the byte order of their ids, with their version and
/// the time of their last event, and page with `after`.
pub async fn list_streams_pages_in_the_byte_order_of_ids<S: Storage>(store: S) {
    assert!(store.list_streams(None, 10).await.expect("list").is_empty());
    // Byte order: uppercase before lowercase, `-` before letters, non-ASCII
    // last; a collation-aware order would differ on each.
    let names = [
        ("list-b", 2),
        ("list-a", 1),
        ("list-B", 1),
        ("list-é", 3),
        ("list--z", 1),
    ];
    for (name, n) in names {
        append(&store, &stream(name), ExpectedVersion::NoStream, n)
            .await
            .expect("append");
    }
    append(&store, &stream("list-b"), ExpectedVersion::Any, 1)
        .await
        .expect("append again");
    let mut want: Vec<(String, u64)> = names
        .iter()
        .map(|(name, n)| {
            (
                stream(name).into_string(),
                if *name == "list-b" { 3 } else { *n as u64 },
            )
        })
        .collect();
    want.sort();

    let all = store.list_streams(None, 10).await.expect("list");
    let got: Vec<(String, u64)> = all
        .iter()
        .map(|s| (s.stream_id.as_str().to_owned(), s.version.get()))
        .collect();
    assert_eq!(
        got, want,
        "every stream once, in byte order, with its version"
    );
    for summary in &all {
        let events = store
            .read_stream(&summary.stream_id, StreamVersion::INITIAL, 10)
            .await
            .expect("read");
        let last = events.last().expect("a listed stream has events");
        assert_eq!(summary.last_recorded_at, last.metadata.recorded_at);
    }

    let mut paged = Vec::new();
    let mut after: Option<StreamId> = None;
    loop {
        let page = store.list_streams(after.as_ref(), 2).await.expect("page");
        assert!(page.len() <= 2, "a page holds at most its limit");
        let Some(last) = page.last() else { break };
        after = Some(last.stream_id.clone());
        paged.extend(page);
    }
    assert_eq!(paged, all, "paging with `after` gives the same list");
    assert!(
        store
            .list_streams(None, 0)
            .await
            .expect("limit 0")
            .is_empty()
    );
}

/// Pruning deletes the snapshots under a prefix whose schema is not the one
/// kept (all of them without one), and nothing else; the prefix is a plain
/// prefix, not a pattern.
pub async fn prune_snapshots_deletes_only_what_cannot_be_loaded<S: Storage>(store: S) {
    let old = stream("prune-1");
    let current = stream("prune-2");
    let other = stream("other-1");
    for (s, schema) in [(&old, 1), (&current, 2), (&other, 1)] {
        store
            .save_snapshot(snapshot(s, 5, schema, b"state"))
            .await
            .expect("save");
    }
    let prefix = stream("prune-").into_string();
    assert_eq!(
        store
            .prune_snapshots(&stream("pr%").into_string(), None)
            .await
            .expect("prune"),
        0,
        "`%` is no wildcard"
    );
    assert_eq!(
        store
            .prune_snapshots(&prefix, Some(2))
            .await
            .expect("prune"),
        1
    );
    assert!(store.load_snapshot(&old, 1).await.expect("load").is_none());
    assert!(
        store
            .load_snapshot(&current, 2)
            .await
            .expect("load")
            .is_some()
    );
    assert!(
        store
            .load_snapshot(&other, 1)
            .await
            .expect("load")
            .is_some()
    );
    assert_eq!(
        store
            .prune_snapshots(&prefix, Some(2))
            .await
            .expect("again"),
        0
    );

    let other_prefix = stream("other-").into_string();
    assert_eq!(
        store
            .prune_snapshots(&other_prefix, None)
            .await
            .expect("all"),
        1
    );
    assert!(
        store
            .load_snapshot(&other, 1)
            .await
            .expect("load")
            .is_none()
    );
    assert!(
        store
            .load_snapshot(&current, 2)
            .await
            .expect("load")
            .is_some()
    );
}

fn subject(id: &str) -> SubjectId {
    SubjectId::new(format!("conformance-{id}")).expect("valid subject id")
}

fn active(subject: &SubjectId, version: u32, wrapped: &[u8], master: &str) -> StoredKey {
    StoredKey {
        subject: subject.clone(),
        key_version: version,
        state: KeyState::Active {
            wrapped: wrapped.to_vec(),
            master_key_id: master.to_owned(),
        },
    }
}

fn forget_event(subject: &SubjectId, expected: ExpectedVersion) -> AppendRequest {
    AppendRequest::new(
        SystemEvent::subject_stream(subject).expect("stream"),
        expected,
        vec![
            NewEvent::encode(
                &SystemEvent::SubjectForgotten {
                    subject: subject.clone(),
                },
                &Bincode,
                Metadata::now(),
            )
            .expect("encode"),
        ],
    )
}

/// Two creations of one subject's key: the first is kept and returned to both.
pub async fn key_creation_is_first_writer_wins<S: Storage>(store: S) {
    let s = subject("first-writer");
    let first = store
        .create(active(&s, 1, b"first", "m1"), false)
        .await
        .expect("create");
    assert_eq!(first, active(&s, 1, b"first", "m1"));
    let second = store
        .create(active(&s, 1, b"second", "m1"), false)
        .await
        .expect("create again");
    assert_eq!(second, first, "the first key is kept");
    let racing = join_all((0..8).map(|i| {
        let store = store.clone();
        let s = subject("race");
        async move {
            store
                .create(active(&s, 1, format!("k{i}").as_bytes(), "m1"), false)
                .await
                .expect("create")
        }
    }))
    .await;
    assert!(
        racing.windows(2).all(|w| w[0] == w[1]),
        "every racer gets the same key"
    );

    // In a batch: new subjects are created, existing ones returned as stored.
    let fresh = subject("batch-new");
    let mut batch = store
        .create_many(
            vec![
                active(&fresh, 1, b"new", "m1"),
                active(&s, 1, b"ignored", "m1"),
            ],
            false,
        )
        .await
        .expect("create many");
    batch.sort_by(|a, b| a.subject.cmp(&b.subject));
    let mut expected = vec![active(&fresh, 1, b"new", "m1"), first];
    expected.sort_by(|a, b| a.subject.cmp(&b.subject));
    assert_eq!(batch, expected);
}

/// Loading returns the stored keys of known subjects only.
pub async fn keys_load_only_for_known_subjects<S: Storage>(store: S) {
    let (a, b) = (subject("load-a"), subject("load-b"));
    store
        .create(active(&a, 1, b"a", "m1"), false)
        .await
        .expect("create");
    let loaded = store
        .load_keys(&[a.clone(), b.clone()])
        .await
        .expect("load");
    assert_eq!(loaded, vec![active(&a, 1, b"a", "m1")]);
    assert!(store.load_keys(&[]).await.expect("load none").is_empty());
}

/// Forget leaves a tombstone and appends its event in one transaction; a second
/// forget writes nothing; a forget whose event cannot be appended destroys
/// nothing.
pub async fn forget_destroys_the_key_and_appends_its_event_atomically<S: Storage>(store: S) {
    let s = subject("forget");
    store
        .create(active(&s, 1, b"key", "m1"), false)
        .await
        .expect("create");

    let failing = store
        .forget(&s, forget_event(&s, ExpectedVersion::StreamExists))
        .await;
    assert!(
        matches!(failing, Err(Error::Conflict { .. })),
        "{failing:?}"
    );
    assert_eq!(
        store
            .load_keys(std::slice::from_ref(&s))
            .await
            .expect("load"),
        vec![active(&s, 1, b"key", "m1")],
        "a failed forget destroys nothing"
    );

    let outcome = store
        .forget(&s, forget_event(&s, ExpectedVersion::Any))
        .await
        .expect("forget");
    assert!(
        matches!(outcome, ForgetOutcome::Forgotten(_)),
        "{outcome:?}"
    );
    let stored = store
        .load_keys(std::slice::from_ref(&s))
        .await
        .expect("load");
    assert!(
        matches!(
            stored.as_slice(),
            [StoredKey {
                state: KeyState::Forgotten { .. },
                key_version: 1,
                ..
            }]
        ),
        "{stored:?}"
    );
    let stream = SystemEvent::subject_stream(&s).expect("stream");
    assert_eq!(
        store.stream_version(&stream).await.expect("version"),
        StreamVersion::new(1)
    );

    let again = store
        .forget(&s, forget_event(&s, ExpectedVersion::Any))
        .await
        .expect("forget again");
    assert_eq!(again, ForgetOutcome::AlreadyForgotten);
    assert_eq!(
        store.stream_version(&stream).await.expect("version"),
        StreamVersion::new(1),
        "no second event"
    );

    // A subject never seen is forgotten too: later writes for it are refused.
    let never = subject("never-seen");
    store
        .forget(&never, forget_event(&never, ExpectedVersion::Any))
        .await
        .expect("forget unknown");
    assert!(matches!(
        store
            .load_keys(std::slice::from_ref(&never))
            .await
            .expect("load")
            .as_slice(),
        [StoredKey {
            state: KeyState::Forgotten { .. },
            ..
        }]
    ));
}

/// A tombstone is replaced only on request and by a higher key version.
pub async fn a_forgotten_subject_is_readmitted_only_with_a_higher_version<S: Storage>(store: S) {
    let s = subject("readmit");
    store
        .create(active(&s, 1, b"v1", "m1"), false)
        .await
        .expect("create");
    store
        .forget(&s, forget_event(&s, ExpectedVersion::Any))
        .await
        .expect("forget");
    let kept = store
        .create(active(&s, 2, b"v2", "m1"), false)
        .await
        .expect("create without readmission");
    assert!(matches!(kept.state, KeyState::Forgotten { .. }), "{kept:?}");
    let same_version = store
        .create(active(&s, 1, b"v1 again", "m1"), true)
        .await
        .expect("create same version");
    assert!(matches!(same_version.state, KeyState::Forgotten { .. }));
    let readmitted = store
        .create(active(&s, 2, b"v2", "m1"), true)
        .await
        .expect("readmit");
    assert_eq!(readmitted, active(&s, 2, b"v2", "m1"));
}

/// Re-wrapping replaces a key only if it is still the one read.
pub async fn rewrap_is_compare_and_set<S: Storage>(store: S) {
    let s = subject("rewrap");
    let old = store
        .create(active(&s, 1, b"old", "m1"), false)
        .await
        .expect("create");
    let to_do = store.keys_to_rewrap("m2", 10).await.expect("list");
    assert_eq!(to_do, vec![old.clone()]);
    assert!(
        store
            .keys_to_rewrap("m1", 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .rewrap(&old, b"new".to_vec(), "m2")
            .await
            .expect("rewrap")
    );
    assert!(
        !store
            .rewrap(&old, b"newer".to_vec(), "m3")
            .await
            .expect("stale rewrap"),
        "a stale key is not replaced"
    );
    assert_eq!(
        store
            .load_keys(std::slice::from_ref(&s))
            .await
            .expect("load"),
        vec![active(&s, 1, b"new", "m2")]
    );
    assert!(
        store
            .keys_to_rewrap("m2", 10)
            .await
            .expect("list")
            .is_empty()
    );
}

/// End to end through the store: sealed data opens until its subject is
/// forgotten, then reads as shredded; another subject's data is untouched.
pub async fn personal_data_is_shredded_after_forget<S: Storage>(store: S) {
    let crypto = Crypto::new(MasterKeyring::new(
        MasterKey::generate("conformance").expect("key"),
    ));
    let (ada, bob) = (subject("ada"), subject("bob"));
    let value = (
        Personal::new(ada.clone(), "Ada".to_owned()),
        Personal::new(bob.clone(), "Bob".to_owned()),
    );
    let sealed = crypto
        .seal_value(&store, b"record", &value)
        .await
        .expect("seal");
    let (a, b): (Personal<String>, Personal<String>) = crypto
        .open_value(&store, b"record", &sealed)
        .await
        .expect("open");
    assert_eq!(
        (a.value().map(String::as_str), b.value().map(String::as_str)),
        (Some("Ada"), Some("Bob"))
    );
    crypto.forget(&store, &ada).await.expect("forget");
    let (a, b): (Personal<String>, Personal<String>) = crypto
        .open_value(&store, b"record", &sealed)
        .await
        .expect("open after forget");
    assert!(a.is_shredded());
    assert_eq!(b.value().map(String::as_str), Some("Bob"));
}

/// `count_after` counts the events a subscriber at a checkpoint has yet to read.
pub async fn count_after_is_the_lag_of_a_checkpoint<S: Storage>(store: S) {
    assert_eq!(
        store.count_after(Checkpoint::START).await.expect("count"),
        0
    );
    append(&store, &stream("lag-a"), ExpectedVersion::Any, 3)
        .await
        .expect("append");
    append(&store, &stream("lag-b"), ExpectedVersion::Any, 4)
        .await
        .expect("append");
    wait_for_log(&store, 7).await;
    let count = |after: Checkpoint| {
        let store = &store;
        async move { store.count_after(after).await.expect("count") }
    };
    assert_eq!(
        eventually("the count", || count(Checkpoint::START), |n| *n >= 7).await,
        7
    );
    let all = eventually(
        "the log",
        || read_everything(&store, 100),
        |all| all.len() >= 7,
    )
    .await;
    assert_eq!(
        eventually("the lag", || count(all[2].checkpoint()), |n| *n >= 4).await,
        4
    );
    assert_eq!(
        store.count_after(all[6].checkpoint()).await.expect("count"),
        0
    );
}
