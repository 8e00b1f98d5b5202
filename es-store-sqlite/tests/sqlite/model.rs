//! The store against the reference model: random sequences of appends, with
//! every expected-version mode and idempotency keys, give the same results on
//! SQLite as on es-core's `MemoryStore`, and the same log.

use es_core::{
    AppendRequest, AppendResult, Checkpoint, Error, EventStore, ExpectedVersion, Idempotency,
    IdempotencyKey, MemoryStore, RecordedEvent, StreamId, StreamVersion,
};
use proptest::prelude::*;

use crate::support::{events_with, stream};

#[derive(Debug, Clone)]
struct Op {
    stream: usize,
    expected: ExpectedVersion,
    count: usize,
    /// (key, fingerprint byte)
    key: Option<(u8, u8)>,
}

fn expected() -> impl Strategy<Value = ExpectedVersion> {
    prop_oneof![
        Just(ExpectedVersion::Any),
        Just(ExpectedVersion::NoStream),
        Just(ExpectedVersion::StreamExists),
        (0..8u64).prop_map(|v| ExpectedVersion::Exact(StreamVersion::new(v))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..3usize,
        expected(),
        1..4usize,
        proptest::option::of((0..3u8, 0..2u8)),
    )
        .prop_map(|(stream, expected, count, key)| Op {
            stream,
            expected,
            count,
            key,
        })
}

/// What an append did, without the commit id (each store numbers commits its
/// own way; only which events share one must agree).
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Appended {
        version: StreamVersion,
        positions: Vec<es_core::Position>,
        last: es_core::Position,
        deduplicated: bool,
    },
    Conflict(StreamVersion),
    KeyReused,
}

fn outcome(result: Result<AppendResult, Error>) -> Outcome {
    match result {
        Ok(r) => Outcome::Appended {
            version: r.version,
            positions: r.positions,
            last: r.checkpoint.position,
            deduplicated: r.deduplicated,
        },
        Err(Error::Conflict { actual, .. }) => Outcome::Conflict(actual),
        Err(Error::IdempotencyKeyReused { .. }) => Outcome::KeyReused,
        Err(other) => panic!("unexpected store error: {other:?}"),
    }
}

/// An event as both stores must agree on it, and the commit it shares with
/// the event before it.
fn comparable(log: &[RecordedEvent]) -> Vec<(RecordedEvent, bool)> {
    log.iter()
        .enumerate()
        .map(|(i, e)| {
            let same_commit_as_previous = i > 0 && log[i - 1].commit == e.commit;
            let mut e = e.clone();
            e.commit = es_core::CommitId::new(0);
            (e, same_commit_as_previous)
        })
        .collect()
}

async fn run(ops: Vec<Op>) {
    let sqlite = es_store_sqlite::testing::fresh_store().await;
    let memory = MemoryStore::new();
    let streams: Vec<StreamId> = (0..3).map(|i| stream(&format!("model-{i}"))).collect();
    for (n, op) in ops.iter().enumerate() {
        let events = events_with((0..op.count).map(|j| format!("{n}/{j}").into_bytes()));
        let mut request = AppendRequest::new(streams[op.stream].clone(), op.expected, events);
        if let Some((key, fingerprint)) = op.key {
            request = request.idempotent(Idempotency {
                key: IdempotencyKey::new(format!("key-{key}")).expect("key"),
                fingerprint: [fingerprint; 32],
            });
        }
        let want = outcome(memory.append(request.clone()).await);
        let got = outcome(sqlite.append(request).await);
        assert_eq!(got, want, "operation {n}: {op:?}");
    }

    let want = memory
        .read_all(Checkpoint::START, usize::MAX)
        .await
        .expect("log");
    let got = sqlite
        .read_all(Checkpoint::START, usize::MAX)
        .await
        .expect("log");
    assert_eq!(comparable(&got), comparable(&want), "the global logs agree");
    for s in &streams {
        assert_eq!(
            sqlite.stream_version(s).await.expect("version"),
            memory.stream_version(s).await.expect("version")
        );
        for key in 0..3 {
            let key = IdempotencyKey::new(format!("key-{key}")).expect("key");
            let got = sqlite.idempotent_result(s, &key).await.expect("record");
            let want = memory.idempotent_result(s, &key).await.expect("record");
            assert_eq!(
                got.map(|r| (r.fingerprint, r.result.version, r.result.positions)),
                want.map(|r| (r.fingerprint, r.result.version, r.result.positions)),
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_store_agrees_with_the_reference_model(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(run(ops));
    }
}
