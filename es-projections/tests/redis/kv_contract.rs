//! What every key-value sink does, one async function per behaviour, generic
//! over any [`KvSink`] (a `Sink<Batch = KvBatch>` that reads back): run on
//! `MemoryKv`, the reference, and on `RedisKv`, so that the two provably
//! agree. [`random_batches_agree`] compares them on random batches.

use std::collections::BTreeMap;

use es_core::{Checkpoint, CommitId, KvBatch, KvSink, Position, SinkError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One `#[tokio::test]` per behaviour for a factory: a path to an
/// `async fn() -> impl KvSink` returning an empty sink.
#[macro_export]
macro_rules! kv_contract_tests {
    ($factory:path) => {
        $crate::kv_contract_tests!(@each $factory;
            each_op_round_trips,
            a_stale_expected_checkpoint_is_fenced_and_writes_nothing,
            fencing_is_checked_before_the_batch,
            a_batch_whose_increment_hits_a_non_integer_writes_nothing,
            increment_reads_what_the_batch_wrote_before_it,
            increment_parses_what_i64_parses,
            increment_stops_at_the_i64_limits,
            purge_removes_the_tagged_keys_only,
            purge_sees_the_tags_of_its_own_batch,
            delete_keeps_the_tag,
            checkpoints_are_per_projection,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let sink = $factory().await;
                $crate::kv_contract::$name(&sink).await;
                $crate::kv_contract::Cleanup::cleanup(&sink).await;
            }
        )*
    };
}

/// Removes what a test wrote (a no-op in memory), after it passed.
pub(crate) trait Cleanup {
    async fn cleanup(&self);
}

impl Cleanup for es_projections::MemoryKv {
    async fn cleanup(&self) {}
}

impl Cleanup for es_projections::RedisKv {
    async fn cleanup(&self) {
        self.drop_all().await.expect("drop_all");
    }
}

pub(crate) fn at(n: u64) -> Checkpoint {
    Checkpoint::new(CommitId::new(n), Position::new(n))
}

async fn entries<S: KvSink>(sink: &S) -> BTreeMap<String, String> {
    sink.entries().await.expect("entries")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn batch(build: impl FnOnce(&mut KvBatch)) -> KvBatch {
    let mut batch = KvBatch::default();
    build(&mut batch);
    batch
}

#[track_caller]
fn assert_failed(result: &Result<(), SinkError>) {
    assert!(
        matches!(result, Err(SinkError::Failed { .. })),
        "{result:?}"
    );
}

#[track_caller]
fn assert_fenced(result: &Result<(), SinkError>) {
    assert!(
        matches!(result, Err(SinkError::Fenced { .. })),
        "{result:?}"
    );
}

/// Set, delete, increment, tag and purge, each committed and read back.
pub(crate) async fn each_op_round_trips<S: KvSink>(sink: &S) {
    assert_eq!(sink.checkpoint("p").await.unwrap(), None);
    sink.commit(
        "p",
        batch(|b| {
            b.set("a", "1").set("b", "ünïcødé ✓").set("e", "");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    assert_eq!(
        entries(sink).await,
        map(&[("a", "1"), ("b", "ünïcødé ✓"), ("e", "")])
    );
    assert_eq!(sink.get("b").await.unwrap().as_deref(), Some("ünïcødé ✓"));
    assert_eq!(sink.get("missing").await.unwrap(), None);
    assert_eq!(sink.checkpoint("p").await.unwrap(), Some(at(1)));

    sink.commit(
        "p",
        batch(|b| {
            b.delete("a").delete("never-set");
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(sink.get("a").await.unwrap(), None);

    sink.commit(
        "p",
        batch(|b| {
            b.incr_by("n", 5).incr_by("n", -8);
        }),
        Some(at(2)),
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(sink.get("n").await.unwrap().as_deref(), Some("-3"));

    sink.commit(
        "p",
        batch(|b| {
            b.set("owner", "Ada").tag("s", "owner");
        }),
        Some(at(3)),
        at(4),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        batch(|b| {
            b.purge("s").purge("unknown");
        }),
        Some(at(4)),
        at(5),
    )
    .await
    .unwrap();
    assert_eq!(sink.get("owner").await.unwrap(), None);

    // An empty batch moves the checkpoint alone.
    sink.commit("p", KvBatch::default(), Some(at(5)), at(6))
        .await
        .unwrap();
    assert_eq!(
        entries(sink).await,
        map(&[("b", "ünïcødé ✓"), ("e", ""), ("n", "-3")])
    );
    assert_eq!(sink.checkpoint("p").await.unwrap(), Some(at(6)));
}

/// A commit is a compare-and-set: a stale or absent expected checkpoint is
/// `Fenced`, and nothing of its batch is written.
pub(crate) async fn a_stale_expected_checkpoint_is_fenced_and_writes_nothing<S: KvSink>(sink: &S) {
    assert_fenced(
        &sink
            .commit(
                "p",
                batch(|b| {
                    b.set("a", "x");
                }),
                Some(at(1)),
                at(2),
            )
            .await,
    );
    assert_eq!(sink.checkpoint("p").await.unwrap(), None);
    sink.commit(
        "p",
        batch(|b| {
            b.set("a", "1").set("t", "keep").tag("s", "t");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    for stale in [None, Some(at(0)), Some(at(2))] {
        let result = sink
            .commit(
                "p",
                batch(|b| {
                    b.set("a", "stale").incr_by("n", 1).purge("s");
                }),
                stale,
                at(9),
            )
            .await;
        assert_fenced(&result);
    }
    assert_eq!(entries(sink).await, map(&[("a", "1"), ("t", "keep")]));
    assert_eq!(sink.checkpoint("p").await.unwrap(), Some(at(1)));
}

/// A stale runner is fenced even when its batch would fail.
pub(crate) async fn fencing_is_checked_before_the_batch<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.set("text", "abc");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    assert_fenced(
        &sink
            .commit(
                "p",
                batch(|b| {
                    b.incr_by("text", 1);
                }),
                None,
                at(2),
            )
            .await,
    );
}

/// An increment of a non-integer fails the whole batch: nothing before or
/// after it is written (values, tags, purges) and the checkpoint stays.
pub(crate) async fn a_batch_whose_increment_hits_a_non_integer_writes_nothing<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.set("text", "not a number")
                .set("owner", "Ada")
                .tag("s", "owner");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    let before = entries(sink).await;
    let result = sink
        .commit(
            "p",
            batch(|b| {
                b.set("a", "1")
                    .delete("owner")
                    .purge("s")
                    .tag("s2", "a")
                    .incr_by("n", 4)
                    .incr_by("text", 1)
                    .set("b", "2");
            }),
            Some(at(1)),
            at(2),
        )
        .await;
    assert_failed(&result);
    assert_eq!(entries(sink).await, before);
    assert_eq!(sink.checkpoint("p").await.unwrap(), Some(at(1)));
    // The failed batch's tag was not recorded: purging `s2` leaves `a` alone.
    sink.commit(
        "p",
        batch(|b| {
            b.set("a", "later").purge("s2");
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(sink.get("a").await.unwrap().as_deref(), Some("later"));
    // A non-integer written earlier in the same batch fails it too.
    let result = sink
        .commit(
            "p",
            batch(|b| {
                b.set("x", "1.5").incr_by("x", 1);
            }),
            Some(at(2)),
            at(3),
        )
        .await;
    assert_failed(&result);
    assert_eq!(sink.get("x").await.unwrap(), None);
    assert_eq!(sink.checkpoint("p").await.unwrap(), Some(at(2)));
}

/// An increment reads the value as the batch left it: set, deleted or purged
/// before it in the same batch.
pub(crate) async fn increment_reads_what_the_batch_wrote_before_it<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.set("x", "abc").set("y", "10").set("z", "7").tag("s", "z");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        batch(|b| {
            b.set("x", "4")
                .incr_by("x", 3)
                .delete("y")
                .incr_by("y", 2)
                .purge("s")
                .incr_by("z", 5)
                .incr_by("w", 1)
                .incr_by("w", 1);
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(
        entries(sink).await,
        map(&[("w", "2"), ("x", "7"), ("y", "2"), ("z", "5")])
    );
}

/// Increment accepts what `str::parse::<i64>` accepts (a sign, leading zeros)
/// and writes the canonical form; anything else is not an integer.
pub(crate) async fn increment_parses_what_i64_parses<S: KvSink>(sink: &S) {
    let accepted = [
        ("+5", "5"),
        ("007", "7"),
        ("-0", "0"),
        ("000", "0"),
        ("-007", "-7"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("00000000000000000000000000042", "42"),
    ];
    let mut next = 1;
    for (stored, _) in accepted {
        sink.commit(
            "p",
            batch(|b| {
                b.set(stored, stored).incr_by(stored, 0);
            }),
            (next > 1).then(|| at(next - 1)),
            at(next),
        )
        .await
        .unwrap_or_else(|e| panic!("{stored:?}: {e}"));
        next += 1;
    }
    for (stored, canonical) in accepted {
        assert_eq!(
            sink.get(stored).await.unwrap().as_deref(),
            Some(canonical),
            "{stored:?}"
        );
    }
    for refused in [
        "",
        "+",
        "-",
        " 5",
        "5 ",
        "1e3",
        "1.0",
        "0x10",
        "١",
        "9223372036854775808",
        "--1",
        "+-1",
    ] {
        let result = sink
            .commit(
                "p",
                batch(|b| {
                    b.set("bad", refused).incr_by("bad", 1);
                }),
                Some(at(next - 1)),
                at(next),
            )
            .await;
        assert!(
            matches!(result, Err(SinkError::Failed { .. })),
            "{refused:?}: {result:?}"
        );
    }
    assert_eq!(sink.get("bad").await.unwrap(), None);
}

/// Increments reach `i64::MIN` and `i64::MAX` exactly, and fail past them.
pub(crate) async fn increment_stops_at_the_i64_limits<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.incr_by("max", i64::MAX - 1)
                .incr_by("max", 1)
                .incr_by("min", i64::MIN)
                .incr_by("mixed", i64::MAX)
                .incr_by("mixed", i64::MIN)
                .incr_by("big", 4_999_999_999_999)
                .incr_by("big", -5_000_000_000_001)
                .incr_by("carry", 999_999_999)
                .incr_by("carry", 1)
                .incr_by("borrow", -1_000_000_000)
                .incr_by("borrow", 1);
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    assert_eq!(
        entries(sink).await,
        map(&[
            ("big", "-2"),
            ("borrow", "-999999999"),
            ("carry", "1000000000"),
            ("max", &i64::MAX.to_string()),
            ("min", &i64::MIN.to_string()),
            ("mixed", "-1"),
        ])
    );
    for (key, delta) in [("max", 1), ("min", -1), ("mixed", i64::MIN)] {
        let result = sink
            .commit(
                "p",
                batch(|b| {
                    b.incr_by(key, delta);
                }),
                Some(at(1)),
                at(2),
            )
            .await;
        assert_failed(&result);
    }
    assert_eq!(sink.checkpoint("p").await.unwrap(), Some(at(1)));
}

/// A purge deletes the keys tagged with its subject, and only those.
pub(crate) async fn purge_removes_the_tagged_keys_only<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.set("owner:1", "Ada")
                .tag("s1", "owner:1")
                .set("email:1", "ada@example.org")
                .tag("s1", "email:1")
                .tag("s1", "never-written")
                .set("owner:2", "Bob")
                .tag("s2", "owner:2")
                .set("balance:1", "10");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        batch(|b| {
            b.purge("s1");
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(
        entries(sink).await,
        map(&[("balance:1", "10"), ("owner:2", "Bob")])
    );
    // The tags went with the keys: a key written again untagged stays.
    sink.commit(
        "p",
        batch(|b| {
            b.set("owner:1", "new").purge("s1");
        }),
        Some(at(2)),
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(sink.get("owner:1").await.unwrap().as_deref(), Some("new"));
}

/// A purge deletes keys tagged earlier in its batch; tags after it start over.
pub(crate) async fn purge_sees_the_tags_of_its_own_batch<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.set("k1", "a")
                .tag("s", "k1")
                .purge("s")
                .set("k2", "b")
                .tag("s", "k2")
                .set("k1", "again");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    assert_eq!(entries(sink).await, map(&[("k1", "again"), ("k2", "b")]));
    sink.commit(
        "p",
        batch(|b| {
            b.purge("s");
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    assert_eq!(entries(sink).await, map(&[("k1", "again")]));
}

/// Deleting a key keeps its tag: writing it again and purging deletes it.
pub(crate) async fn delete_keeps_the_tag<S: KvSink>(sink: &S) {
    sink.commit(
        "p",
        batch(|b| {
            b.set("k", "v").tag("s", "k").delete("k");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        batch(|b| {
            b.set("k", "v2");
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        batch(|b| {
            b.purge("s");
        }),
        Some(at(2)),
        at(3),
    )
    .await
    .unwrap();
    assert_eq!(sink.get("k").await.unwrap(), None);
}

/// Each projection has its own checkpoint.
pub(crate) async fn checkpoints_are_per_projection<S: KvSink>(sink: &S) {
    sink.commit(
        "a",
        batch(|b| {
            b.set("from-a", "1");
        }),
        None,
        at(3),
    )
    .await
    .unwrap();
    sink.commit(
        "b",
        batch(|b| {
            b.set("from-b", "1");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    assert_fenced(
        &sink
            .commit("a", KvBatch::default(), Some(at(1)), at(4))
            .await,
    );
    sink.commit("a", KvBatch::default(), Some(at(3)), at(4))
        .await
        .unwrap();
    assert_eq!(sink.checkpoint("a").await.unwrap(), Some(at(4)));
    assert_eq!(sink.checkpoint("b").await.unwrap(), Some(at(1)));
    assert_eq!(sink.checkpoint("c").await.unwrap(), None);
}

/// Commits the same random batches (and stale ones) to `a` and `b`: after each,
/// both give the same result kind, model and checkpoint.
pub(crate) async fn random_batches_agree<A: KvSink, B: KvSink>(a: A, b: B, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let keys = ["k0", "k1", "k2", "k3", "k4", "k5"];
    let subjects = ["s0", "s1", "s2"];
    let values = [
        "0",
        "1",
        "-1",
        "+3",
        "007",
        "text",
        "",
        "9223372036854775806",
        "-9223372036854775807",
        "99999999999999999999",
    ];
    let deltas = [0, 1, -1, 2, 1_000_000_000, -999_999_999, i64::MAX, i64::MIN];
    let mut checkpoint: Option<Checkpoint> = None;
    for round in 0..300_u64 {
        let mut batch = KvBatch::default();
        for _ in 0..rng.random_range(0..8) {
            let key = keys[rng.random_range(0..keys.len())];
            let subject = subjects[rng.random_range(0..subjects.len())];
            match rng.random_range(0..10) {
                0..=1 => batch.set(key, values[rng.random_range(0..values.len())]),
                2 => batch.delete(key),
                3..=6 => batch.incr_by(key, deltas[rng.random_range(0..deltas.len())]),
                7..=8 => batch.tag(subject, key),
                _ => batch.purge(subject),
            };
        }
        let expected = if rng.random_range(0..10) == 0 {
            Some(at(round + 1000)) // stale
        } else {
            checkpoint
        };
        let next = at(round + 1);
        let (ra, rb) = (
            a.commit("p", batch.clone(), expected, next).await,
            b.commit("p", batch.clone(), expected, next).await,
        );
        assert_eq!(
            kind(&ra),
            kind(&rb),
            "round {round}: {batch:?}: {ra:?} / {rb:?}"
        );
        if ra.is_ok() {
            checkpoint = Some(next);
        }
        assert_eq!(
            entries(&a).await,
            entries(&b).await,
            "round {round}: {batch:?}"
        );
        assert_eq!(
            a.checkpoint("p").await.unwrap(),
            b.checkpoint("p").await.unwrap()
        );
    }
}

fn kind(result: &Result<(), SinkError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(SinkError::Fenced { .. }) => "fenced",
        Err(SinkError::Failed { .. }) => "failed",
        Err(SinkError::Unavailable { .. }) => "unavailable",
        Err(_) => "other",
    }
}
