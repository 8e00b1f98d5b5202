//! Torture: racing writers on one stream, writers on many streams while a reader
//! tails the log, commits forced out of position order, and a property test of
//! random interleavings.

use std::time::Duration;

use es_core::{Error, EventStore, ExpectedVersion, StreamVersion};
use es_store_postgres::testing::fresh_store;
use futures::future::join_all;
use proptest::prelude::*;

use rand::{Rng, SeedableRng};

use crate::support::{
    Tail, append, append_by_hand, bystander, create_bystanders_table, held_append, stream,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_writers_at_one_version_one_winner_per_round() {
    let store = fresh_store().await;
    let s = stream("hot");
    let rounds = 25u64;
    for round in 0..rounds {
        let expected = ExpectedVersion::Exact(StreamVersion::new(round * 3));
        let attempts = (0..16).map(|_| {
            let store = store.clone();
            let s = s.clone();
            tokio::spawn(async move { append(&store, &s, expected, 3).await })
        });
        let results: Vec<_> = join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.expect("task"))
            .collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "round {round}");
        for r in &results {
            match r {
                Ok(done) => assert_eq!(done.version, StreamVersion::new(round * 3 + 3)),
                Err(Error::Conflict { actual, .. }) => {
                    assert_eq!(*actual, StreamVersion::new(round * 3 + 3), "round {round}");
                }
                Err(other) => panic!("round {round}: a loser got {other:?}, not a conflict"),
            }
        }
    }
    let events = store
        .read_stream(&s, StreamVersion::INITIAL, 10_000)
        .await
        .expect("read");
    let versions: Vec<u64> = events.iter().map(|e| e.version.get()).collect();
    assert_eq!(versions, (1..=rounds * 3).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_reader_sees_every_event_once_despite_out_of_order_commits() {
    let store = fresh_store().await;
    let writers = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let s = stream(&format!("writer-{w}"));
            for _ in 0..40 {
                append(&store, &s, ExpectedVersion::Any, 1 + w % 3)
                    .await
                    .expect("append");
            }
            40 * (1 + w % 3)
        })
    });
    // Transactions that draw their positions early and commit late, while the
    // writers above commit around them.
    let holders = (0..6).map(|h| {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..3u64 {
                held_append(
                    &store,
                    &stream(&format!("held-{h}")),
                    Duration::from_millis(40 + 15 * ((h + round) % 4)),
                )
                .await;
            }
            3
        })
    });
    // Transactions that append nothing but hold a transaction id, and commit
    // or roll back at random: readers pass them, and must still not pass an
    // appender.
    let seed: u64 = rand::random();
    create_bystanders_table(&store).await;
    let bystanders = (0..4u64).map(|b| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ b);
            for _ in 0..30 {
                bystander(
                    &store,
                    rng.random_bool(0.5),
                    Duration::from_millis(rng.random_range(0..30)),
                    rng.random_bool(0.5),
                )
                .await;
            }
        })
    });
    let mut tail = Tail::new();
    let reader = async {
        // Read while everything is in flight.
        for _ in 0..400 {
            tail.poll(&store, 7).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let (written, held, passed, ()) = tokio::join!(
        join_all(writers),
        join_all(holders),
        join_all(bystanders),
        reader
    );
    for task in passed {
        task.expect("bystander");
    }
    let total: usize = written
        .into_iter()
        .map(|r| r.expect("writer"))
        .sum::<usize>()
        + held.into_iter().map(|r| r.expect("holder")).sum::<usize>();
    tail.until(&store, total, 7).await;
    assert_eq!(tail.seen.len(), total, "nothing extra (seed {seed})");
    tail.assert_exactly_once_in_stream_order();
    assert!(
        tail.late_arrivals > 0,
        "the test must force commits out of position order to mean anything"
    );
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u8,
        events: usize,
    },
    Held {
        stream: u8,
        hold_ms: u64,
    },
    Bystander {
        writes_a_table: bool,
        hold_ms: u64,
        commit: bool,
    },
    Read {
        batch: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 1usize..5).prop_map(|(stream, events)| Op::Append { stream, events }),
        2 => (4u8..6, 1u64..25).prop_map(|(stream, hold_ms)| Op::Held { stream, hold_ms }),
        2 => (any::<bool>(), 1u64..25, any::<bool>()).prop_map(|(writes_a_table, hold_ms, commit)| {
            Op::Bystander { writes_a_table, hold_ms, commit }
        }),
        3 => (1usize..6).prop_map(|batch| Op::Read { batch }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Random interleavings of appends, late-committing appends, transactions
    /// that append nothing and commit or roll back, and reads: the reader never
    /// skips an event and never sees one twice.
    #[test]
    fn random_interleavings_never_skip(ops in prop::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let store = fresh_store().await;
            create_bystanders_table(&store).await;
            let mut tail = Tail::new();
            let mut in_flight = Vec::new();
            let mut total = 0;
            for op in ops {
                match op {
                    Op::Append { stream: s, events } => {
                        let store = store.clone();
                        total += events;
                        in_flight.push(tokio::spawn(async move {
                            append(&store, &stream(&format!("p-{s}")), ExpectedVersion::Any, events)
                                .await
                                .expect("append");
                        }));
                    }
                    Op::Held { stream: s, hold_ms } => {
                        let store = store.clone();
                        total += 1;
                        in_flight.push(tokio::spawn(async move {
                            held_append(&store, &stream(&format!("p-{s}")), Duration::from_millis(hold_ms)).await;
                        }));
                    }
                    Op::Bystander { writes_a_table, hold_ms, commit } => {
                        let store = store.clone();
                        in_flight.push(tokio::spawn(async move {
                            bystander(&store, writes_a_table, Duration::from_millis(hold_ms), commit).await;
                        }));
                    }
                    Op::Read { batch } => {
                        tail.poll(&store, batch).await;
                    }
                }
            }
            for task in in_flight {
                task.await.expect("task");
            }
            tail.until(&store, total, 3).await;
            prop_assert_eq!(tail.seen.len(), total);
            tail.assert_exactly_once_in_stream_order();
            Ok(())
        })?;
    }
}

/// The global order is the numeric order of transaction ids, not the order of
/// their text: a reader must get transaction 10 after 9, or it would skip it.
#[tokio::test]
async fn transaction_ids_order_numerically_across_digit_boundaries() {
    let store = fresh_store().await;
    for (xid, version) in [("10", 1), ("9", 2), ("100", 3), ("99", 4)] {
        append_by_hand(
            &store,
            sqlx::query(
                "INSERT INTO es_events (transaction_id, stream_id, version, event_id, event_type,
                                        schema_version, payload, recorded_at)
                 VALUES ($1::text::xid8, 'digits', $2, gen_random_uuid(), 'X', 1, '\\x00', now())",
            )
            .bind(xid)
            .bind(i64::from(version)),
        )
        .await;
    }
    let mut tail = Tail::new();
    tail.until(&store, 4, 1).await;
    let order: Vec<u64> = tail.seen.iter().map(|e| e.commit.get()).collect();
    assert_eq!(order, vec![9, 10, 99, 100]);
}
