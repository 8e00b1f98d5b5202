//! The key-value sink conformance suite: one public async function per
//! behaviour of [`Sink`](crate::Sink) + [`KvSink`], run against every key-value sink
//! (in memory, Redis, SQL) through
//! [`kv_sink_conformance_tests!`](crate::kv_sink_conformance_tests).

use std::collections::BTreeMap;

use crate::{Checkpoint, CommitId, Generations, KvBatch, KvSink, Position, SinkError, Switch};

/// Turns the suite into `#[tokio::test]` functions for a sink factory: a path to
/// an `async fn() -> S` returning an empty sink.
#[macro_export]
macro_rules! kv_sink_conformance_tests {
    ($factory:path) => {
        $crate::kv_sink_conformance_tests!(@each $factory;
            writes_and_checkpoint_commit_together,
            commit_is_a_compare_and_set_on_the_checkpoint,
            a_failing_batch_writes_nothing,
            ops_apply_in_order,
            purge_removes_every_tagged_key,
            application_keys_never_reach_the_sinks_own_records,
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
            scan_pages_a_prefix_in_byte_order,
            scan_never_shows_deleted_or_purged_keys,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let sink = $factory().await;
                $crate::testing::kv_conformance::$name(sink).await;
            }
        )*
    };
}

/// The checkpoint `(n, n)`: a test's shorthand for "the n-th batch".
pub fn at(n: u64) -> Checkpoint {
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

/// A commit applies its writes and moves the checkpoint.
pub async fn writes_and_checkpoint_commit_together<S: KvSink>(sink: S) {
    assert_eq!(sink.checkpoint("p").await.expect("checkpoint"), None);
    let mut batch = KvBatch::default();
    batch.set("a", "1").set("b", "ünïcødé ✓").incr_by("n", 5);
    sink.commit("p", batch, None, at(1)).await.expect("commit");
    assert_eq!(sink.checkpoint("p").await.expect("checkpoint"), Some(at(1)));
    assert_eq!(
        entries(&sink).await,
        map(&[("a", "1"), ("b", "ünïcødé ✓"), ("n", "5")])
    );
    assert_eq!(sink.get("a").await.expect("get").as_deref(), Some("1"));
    assert_eq!(sink.get("missing").await.expect("get"), None);
    // An empty batch moves the checkpoint alone.
    sink.commit("p", KvBatch::default(), Some(at(1)), at(2))
        .await
        .expect("empty commit");
    assert_eq!(sink.checkpoint("p").await.expect("checkpoint"), Some(at(2)));
}

/// A commit whose expected checkpoint is stale is `Fenced` and writes nothing.
pub async fn commit_is_a_compare_and_set_on_the_checkpoint<S: KvSink>(sink: S) {
    let mut batch = KvBatch::default();
    batch.set("a", "1");
    sink.commit("p", batch, None, at(1)).await.expect("commit");
    for stale in [None, Some(at(0)), Some(at(7))] {
        let mut batch = KvBatch::default();
        batch.set("a", "stale").incr_by("n", 1);
        let result = sink.commit("p", batch, stale, at(9)).await;
        assert!(
            matches!(result, Err(SinkError::Fenced { .. })),
            "expected {stale:?}: {result:?}"
        );
    }
    assert_eq!(entries(&sink).await, map(&[("a", "1")]));
    assert_eq!(sink.checkpoint("p").await.expect("checkpoint"), Some(at(1)));
}

/// A batch that cannot apply (an increment of a non-integer) writes nothing
/// and leaves the checkpoint.
pub async fn a_failing_batch_writes_nothing<S: KvSink>(sink: S) {
    let mut batch = KvBatch::default();
    batch.set("text", "not a number");
    sink.commit("p", batch, None, at(1)).await.expect("commit");
    let mut batch = KvBatch::default();
    batch.set("a", "1").incr_by("text", 1).set("b", "2");
    let result = sink.commit("p", batch, Some(at(1)), at(2)).await;
    assert!(
        matches!(result, Err(SinkError::Failed { .. })),
        "{result:?}"
    );
    assert_eq!(entries(&sink).await, map(&[("text", "not a number")]));
    assert_eq!(sink.checkpoint("p").await.expect("checkpoint"), Some(at(1)));
}

/// Operations apply in batch order.
pub async fn ops_apply_in_order<S: KvSink>(sink: S) {
    let mut batch = KvBatch::default();
    batch
        .set("k", "first")
        .delete("k")
        .set("k", "second")
        .incr_by("n", 2)
        .incr_by("n", -5)
        .set("gone", "x")
        .delete("gone");
    sink.commit("p", batch, None, at(1)).await.expect("commit");
    assert_eq!(entries(&sink).await, map(&[("k", "second"), ("n", "-3")]));
}

/// Purging a subject deletes every key tagged with it, only those, and the
/// tags themselves (a later purge deletes nothing new).
pub async fn purge_removes_every_tagged_key<S: KvSink>(sink: S) {
    let mut batch = KvBatch::default();
    batch
        .set("owner:1", "Ada")
        .tag("s1", "owner:1")
        .set("email:1", "ada@example.org")
        .tag("s1", "email:1")
        .set("owner:2", "Bob")
        .tag("s2", "owner:2")
        .set("balance:1", "10");
    sink.commit("p", batch, None, at(1)).await.expect("commit");
    let mut batch = KvBatch::default();
    batch.purge("s1");
    sink.commit("p", batch, Some(at(1)), at(2))
        .await
        .expect("purge");
    assert_eq!(
        entries(&sink).await,
        map(&[("balance:1", "10"), ("owner:2", "Bob")])
    );
    // A key written again after the purge is not deleted by a second purge.
    let mut batch = KvBatch::default();
    batch.set("owner:1", "new owner").purge("s1");
    sink.commit("p", batch, Some(at(2)), at(3))
        .await
        .expect("purge again");
    assert_eq!(
        sink.get("owner:1").await.expect("get").as_deref(),
        Some("new owner")
    );
}

/// Keys that look like a sink's own records (tag sets, checkpoints, the
/// live-generation pointer, generation prefixes, glob characters).
const LOOKALIKES: &[&str] = &[
    "",
    "__tags:",
    "__checkpoint:",
    "v:",
    "t:",
    "c:",
    "g1:",
    "g2:c:",
    "live",
    "/g1",
    ":",
    "*",
    "?[",
];

/// Arbitrary application keys and subjects, however they look, are the
/// application's: whatever is written under them, the sink's own records
/// (checkpoints, tags, generations) are untouched, every key reads back what
/// a plain map holds, and a purge deletes exactly the keys tagged. A property
/// test: 48 generated cases, deterministic.
pub async fn application_keys_never_reach_the_sinks_own_records<S: KvSink>(sink: S) {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    let key = (
        proptest::sample::select(LOOKALIKES),
        "[a-z0-9_:./*?{}\\[\\]ü-]{1,16}",
    )
        .prop_map(|(head, tail)| format!("{head}{tail}"));
    let case = (
        proptest::collection::vec(key.clone(), 1..8),
        key.clone(),
        proptest::sample::select(&["p", "c:p", "__checkpoint:p", "t:p"][..]),
    );
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut model: BTreeMap<String, String> = BTreeMap::new();
    let mut checkpoints: BTreeMap<&str, Checkpoint> = BTreeMap::new();
    for n in 1..=48u64 {
        let (keys, subject, projection) = case
            .new_tree(&mut runner)
            .expect("a generated case")
            .current();
        // One subject per case, so that tag sets never span cases.
        let subject = format!("{subject}#{n}");
        let expected = checkpoints.get(projection).copied();
        let before = model.clone();
        let mut batch = KvBatch::default();
        for (i, key) in keys.iter().enumerate() {
            batch
                .set(key.clone(), format!("{n}.{i}"))
                .tag(subject.clone(), key.clone());
            model.insert(key.clone(), format!("{n}.{i}"));
        }
        // A value under the subject's own name, beside its tag set.
        batch.incr_by(subject.clone(), 1);
        let counted = model
            .get(&subject)
            .map_or(Some(0), |v| v.parse::<i64>().ok())
            .map(|v| v + 1);
        let Some(counted) = counted else {
            // Not an integer: the batch fails as a whole, nothing written.
            let result = sink.commit(projection, batch, expected, at(n)).await;
            assert!(
                matches!(result, Err(SinkError::Failed { .. })),
                "{result:?}"
            );
            assert_eq!(
                entries(&sink).await,
                before,
                "case {n}: a failed batch wrote"
            );
            model = before;
            continue;
        };
        model.insert(subject.clone(), counted.to_string());
        sink.commit(projection, batch, expected, at(n))
            .await
            .unwrap_or_else(|e| panic!("case {n} ({keys:?}, {subject:?}): {e}"));
        checkpoints.insert(projection, at(n));
        for (name, checkpoint) in &checkpoints {
            assert_eq!(
                sink.checkpoint(name).await.expect("checkpoint"),
                Some(*checkpoint),
                "case {n}: the checkpoint of {name:?} moved ({keys:?}, {subject:?})"
            );
        }
        for key in &keys {
            assert_eq!(
                sink.get(key).await.expect("get"),
                model.get(key).cloned(),
                "case {n}: {key:?}"
            );
        }
        assert_eq!(entries(&sink).await, model, "case {n}");
        // Every third case purges the subject: exactly its tagged keys go.
        if n % 3 == 0 {
            let mut batch = KvBatch::default();
            batch.purge(subject.clone());
            let expected = checkpoints.get(projection).copied();
            sink.commit(projection, batch, expected, at(n * 1000))
                .await
                .expect("purge");
            checkpoints.insert(projection, at(n * 1000));
            for key in &keys {
                model.remove(key);
            }
            assert_eq!(entries(&sink).await, model, "case {n}: after the purge");
        }
    }
}

fn built(build: impl FnOnce(&mut KvBatch)) -> KvBatch {
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

/// A small deterministic generator (xorshift), so that a seed replays a run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, range: std::ops::Range<usize>) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let span = (range.end - range.start).max(1) as u64;
        range.start + usize::try_from(self.0 % span).unwrap_or(0)
    }
}

/// Set, delete, increment, tag and purge, each committed and read back.
pub async fn each_op_round_trips<S: KvSink>(sink: S) {
    let sink = &sink;
    assert_eq!(sink.checkpoint("p").await.unwrap(), None);
    sink.commit(
        "p",
        built(|b| {
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
        built(|b| {
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
        built(|b| {
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
        built(|b| {
            b.set("owner", "Ada").tag("s", "owner");
        }),
        Some(at(3)),
        at(4),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        built(|b| {
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
pub async fn a_stale_expected_checkpoint_is_fenced_and_writes_nothing<S: KvSink>(sink: S) {
    let sink = &sink;
    assert_fenced(
        &sink
            .commit(
                "p",
                built(|b| {
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
        built(|b| {
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
                built(|b| {
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
pub async fn fencing_is_checked_before_the_batch<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
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
                built(|b| {
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
pub async fn a_batch_whose_increment_hits_a_non_integer_writes_nothing<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
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
            built(|b| {
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
        built(|b| {
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
            built(|b| {
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
pub async fn increment_reads_what_the_batch_wrote_before_it<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
            b.set("x", "abc").set("y", "10").set("z", "7").tag("s", "z");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        built(|b| {
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
pub async fn increment_parses_what_i64_parses<S: KvSink>(sink: S) {
    let sink = &sink;
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
            built(|b| {
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
                built(|b| {
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
pub async fn increment_stops_at_the_i64_limits<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
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
                built(|b| {
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
pub async fn purge_removes_the_tagged_keys_only<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
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
        built(|b| {
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
        built(|b| {
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
pub async fn purge_sees_the_tags_of_its_own_batch<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
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
        built(|b| {
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
pub async fn delete_keeps_the_tag<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "p",
        built(|b| {
            b.set("k", "v").tag("s", "k").delete("k");
        }),
        None,
        at(1),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        built(|b| {
            b.set("k", "v2");
        }),
        Some(at(1)),
        at(2),
    )
    .await
    .unwrap();
    sink.commit(
        "p",
        built(|b| {
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
pub async fn checkpoints_are_per_projection<S: KvSink>(sink: S) {
    let sink = &sink;
    sink.commit(
        "a",
        built(|b| {
            b.set("from-a", "1");
        }),
        None,
        at(3),
    )
    .await
    .unwrap();
    sink.commit(
        "b",
        built(|b| {
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

/// Every page [`KvSink::scan`] can return, against [`kv_page`](crate::kv_page)
/// of the whole model: prefixes, `after` inside, before and past them, limits.
async fn assert_scans_agree<S: KvSink>(sink: &S, context: &str) {
    let all = entries(sink).await;
    let mut probes: Vec<String> = all.keys().cloned().collect();
    probes.extend(["", "m", "m:", "m:1", "zz", "\u{10ffff}"].map(str::to_owned));
    for prefix in ["", "m", "m:", "m:1", "m:é", "n:", "zz"] {
        for after in std::iter::once(None).chain(probes.iter().map(|p| Some(p.as_str()))) {
            for limit in [0, 1, 2, 1000] {
                let page = sink.scan(prefix, after, limit).await.expect("scan");
                assert_eq!(
                    page,
                    crate::kv_page(&all, prefix, after, limit),
                    "{context}: scan({prefix:?}, {after:?}, {limit})"
                );
            }
        }
    }
}

/// `scan` pages through the keys that start with a prefix, in the bytes'
/// order (`Z` before `a`, `m:10` before `m:2`, `é` after ASCII), starting
/// after `after`, at most `limit` at a time.
pub async fn scan_pages_a_prefix_in_byte_order<S: KvSink>(sink: S) {
    let mut first = KvBatch::default();
    for key in [
        "m:2", "m:10", "m:1", "m:é", "m:Z", "m:a", "m", "m:", "n:1", "a", "mz",
    ] {
        first.set(key, format!("value of {key}"));
    }
    first.incr_by("m:count", 3);
    sink.commit("p", first, None, at(1)).await.expect("commit");
    let page = sink.scan("m:", None, 3).await.expect("scan");
    let keys: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["m:", "m:1", "m:10"]);
    assert_eq!(page[1].1, "value of m:1");
    let next = sink.scan("m:", Some("m:10"), 100).await.expect("scan");
    let keys: Vec<&str> = next.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["m:2", "m:Z", "m:a", "m:count", "m:é"]);
    assert_eq!(next[3].1, "3");
    assert!(
        sink.scan("m:", Some("m:é"), 100)
            .await
            .expect("scan")
            .is_empty()
    );
    assert!(sink.scan("q", None, 100).await.expect("scan").is_empty());
    assert_eq!(sink.scan("", None, 100).await.expect("scan").len(), 12);
    assert_scans_agree(&sink, "after one batch").await;
}

/// A key deleted, or purged with its subject, leaves every page, and a key
/// written again comes back.
pub async fn scan_never_shows_deleted_or_purged_keys<S: KvSink>(sink: S) {
    let mut first = KvBatch::default();
    first
        .set("m:1", "one")
        .set("m:2", "two")
        .set("m:3", "three")
        .tag("s", "m:2")
        .tag("s", "m:3");
    sink.commit("p", first, None, at(1)).await.expect("commit");
    let mut second = KvBatch::default();
    second.delete("m:1").purge("s").set("m:4", "four");
    sink.commit("p", second, Some(at(1)), at(2))
        .await
        .expect("commit");
    assert_eq!(
        sink.scan("m:", None, 10).await.expect("scan"),
        [("m:4".to_owned(), "four".to_owned())]
    );
    let mut third = KvBatch::default();
    third.set("m:1", "again");
    sink.commit("p", third, Some(at(2)), at(3))
        .await
        .expect("commit");
    let keys: Vec<String> = sink
        .scan("m:", None, 10)
        .await
        .expect("scan")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["m:1", "m:4"]);
    assert_scans_agree(&sink, "after deletes and a purge").await;
}

/// Commits the same random batches (and stale ones) to `a` and `b`: after each,
/// both give the same result kind, model and checkpoint. Run against the
/// in-memory reference (`es_projections::MemoryKv`) by every backend.
pub async fn random_batches_agree<A: KvSink, B: KvSink>(a: A, b: B, seed: u64) {
    let mut rng = Rng(seed.max(1));
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
        for _ in 0..rng.below(0..8) {
            let key = keys[rng.below(0..keys.len())];
            let subject = subjects[rng.below(0..subjects.len())];
            match rng.below(0..10) {
                0..=1 => batch.set(key, values[rng.below(0..values.len())]),
                2 => batch.delete(key),
                3..=6 => batch.incr_by(key, deltas[rng.below(0..deltas.len())]),
                7..=8 => batch.tag(subject, key),
                _ => batch.purge(subject),
            };
        }
        let expected = if rng.below(0..10) == 0 {
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
        if round % 30 == 0 {
            for prefix in ["", "k", "k1", "x"] {
                let after = keys[rng.below(0..keys.len())];
                for (after, limit) in [(None, 100), (Some(after), 2)] {
                    assert_eq!(
                        a.scan(prefix, after, limit).await.expect("scan"),
                        b.scan(prefix, after, limit).await.expect("scan"),
                        "round {round}: scan({prefix:?}, {after:?}, {limit})"
                    );
                }
            }
        }
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

/// Turns the generations suite into `#[tokio::test]` functions for a factory of
/// empty key-value sinks with [`Generations`](crate::Generations).
#[macro_export]
macro_rules! generations_conformance_tests {
    ($factory:path) => {
        $crate::generations_conformance_tests!(@each $factory;
            generation_one_is_live_until_a_switch,
            a_new_generation_is_invisible_until_the_switch,
            a_commit_to_a_superseded_generation_is_refused,
            switch_is_a_compare_and_set_that_never_goes_back,
            drop_generation_removes_it_and_refuses_the_live_one,
            scan_reads_the_generation_a_handle_reads,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let sink = $factory().await;
                $crate::testing::kv_conformance::$name(sink).await;
            }
        )*
    };
}

fn batch(pairs: &[(&str, &str)]) -> KvBatch {
    let mut batch = KvBatch::default();
    for (k, v) in pairs {
        batch.set(*k, *v);
    }
    batch
}

/// Generation 1 is live before any switch, and listed once committed to.
pub async fn generation_one_is_live_until_a_switch<S: KvSink + Generations>(sink: S) {
    assert_eq!(sink.live_generation().await.expect("live"), 1);
    assert_eq!(
        sink.generations().await.expect("generations"),
        Vec::<u64>::new()
    );
    sink.commit("p", batch(&[("a", "1")]), None, at(1))
        .await
        .expect("commit");
    assert_eq!(sink.generations().await.expect("generations"), vec![1]);
    assert_eq!(
        sink.at_generation(1)
            .get("a")
            .await
            .expect("get")
            .as_deref(),
        Some("1")
    );
}

/// Writes to a pinned new generation stay invisible to readers of the live
/// one until the switch, which shows all of them at once.
pub async fn a_new_generation_is_invisible_until_the_switch<S: KvSink + Generations>(sink: S) {
    sink.commit("p", batch(&[("a", "old")]), None, at(3))
        .await
        .expect("commit live");
    let next = sink.at_generation(2);
    assert_eq!(next.checkpoint("p").await.expect("checkpoint"), None);
    next.commit("p", batch(&[("a", "new"), ("b", "new")]), None, at(3))
        .await
        .expect("commit next");
    assert_eq!(sink.get("a").await.expect("get").as_deref(), Some("old"));
    assert_eq!(sink.get("b").await.expect("get"), None);
    assert_eq!(entries(&sink).await, map(&[("a", "old")]));
    assert_eq!(sink.generations().await.expect("generations"), vec![1, 2]);
    assert_eq!(
        sink.switch_generation("p", 1, 2).await.expect("switch"),
        Switch::Done
    );
    assert_eq!(sink.live_generation().await.expect("live"), 2);
    assert_eq!(entries(&sink).await, map(&[("a", "new"), ("b", "new")]));
    assert_eq!(sink.get("b").await.expect("get").as_deref(), Some("new"));
    // The old generation is still there, pinned, until dropped.
    assert_eq!(
        sink.at_generation(1)
            .get("a")
            .await
            .expect("get")
            .as_deref(),
        Some("old")
    );
}

/// A handle bound to generation 1 cannot commit once 2 is live: the commit is
/// `Superseded` and writes nothing; reading the checkpoint again binds it to 2.
pub async fn a_commit_to_a_superseded_generation_is_refused<S: KvSink + Generations>(sink: S) {
    let runner = sink.clone();
    assert_eq!(runner.checkpoint("p").await.expect("checkpoint"), None);
    runner
        .commit("p", batch(&[("a", "1")]), None, at(1))
        .await
        .expect("commit 1");
    let next = sink.at_generation(2);
    next.commit("p", batch(&[("a", "1")]), None, at(2))
        .await
        .expect("commit 2");
    assert_eq!(
        sink.switch_generation("p", 1, 2).await.expect("switch"),
        Switch::Done
    );
    let refused = runner
        .commit("p", batch(&[("stale", "x")]), Some(at(1)), at(3))
        .await;
    assert!(
        matches!(
            refused,
            Err(SinkError::Superseded {
                generation: 1,
                live: 2,
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        sink.at_generation(1)
            .checkpoint("p")
            .await
            .expect("checkpoint"),
        Some(at(1))
    );
    assert_eq!(sink.at_generation(1).get("stale").await.expect("get"), None);
    // A pinned handle on the old generation is refused too.
    let pinned = sink
        .at_generation(1)
        .commit("p", batch(&[("stale", "x")]), Some(at(1)), at(3))
        .await;
    assert!(
        matches!(pinned, Err(SinkError::Superseded { .. })),
        "{pinned:?}"
    );
    // Reloading binds the runner to the live generation.
    assert_eq!(
        runner.checkpoint("p").await.expect("checkpoint"),
        Some(at(2))
    );
    runner
        .commit("p", batch(&[("c", "3")]), Some(at(2)), at(3))
        .await
        .expect("commit after reload");
    assert_eq!(sink.get("c").await.expect("get").as_deref(), Some("3"));
}

/// A switch from a generation that is not live is `Fenced`; one to a generation
/// whose checkpoint is behind the live one changes nothing.
pub async fn switch_is_a_compare_and_set_that_never_goes_back<S: KvSink + Generations>(sink: S) {
    sink.commit("p", batch(&[("a", "1")]), None, at(5))
        .await
        .expect("commit live");
    let next = sink.at_generation(2);
    next.commit("p", batch(&[("a", "1")]), None, at(3))
        .await
        .expect("commit next");
    let fenced = sink.switch_generation("p", 7, 2).await;
    assert!(
        matches!(fenced, Err(SinkError::Fenced { .. })),
        "{fenced:?}"
    );
    assert_eq!(
        sink.switch_generation("p", 1, 2).await.expect("switch"),
        Switch::Behind {
            live: Some(at(5)),
            next: Some(at(3)),
        }
    );
    assert_eq!(sink.live_generation().await.expect("live"), 1);
    next.commit("p", KvBatch::default(), Some(at(3)), at(5))
        .await
        .expect("catch up");
    assert_eq!(
        sink.switch_generation("p", 1, 2).await.expect("switch"),
        Switch::Done
    );
    let again = sink.switch_generation("p", 1, 2).await;
    assert!(matches!(again, Err(SinkError::Fenced { .. })), "{again:?}");
}

/// Dropping a generation removes its values, tags and checkpoints; the live
/// generation cannot be dropped.
pub async fn drop_generation_removes_it_and_refuses_the_live_one<S: KvSink + Generations>(sink: S) {
    let mut first = batch(&[("a", "1")]);
    first.tag("owner-1", "a");
    sink.commit("p", first, None, at(1)).await.expect("commit");
    let live = sink.drop_generation(1).await;
    assert!(matches!(live, Err(SinkError::Failed { .. })), "{live:?}");
    sink.at_generation(2)
        .commit("p", batch(&[("a", "2")]), None, at(1))
        .await
        .expect("commit next");
    sink.switch_generation("p", 1, 2).await.expect("switch");
    sink.drop_generation(1).await.expect("drop");
    assert_eq!(sink.generations().await.expect("generations"), vec![2]);
    let old = sink.at_generation(1);
    assert_eq!(old.checkpoint("p").await.ok().flatten(), None);
    assert!(old.entries().await.map(|e| e.is_empty()).unwrap_or(true));
    assert_eq!(entries(&sink).await, map(&[("a", "2")]));
    // A purge in generation 2 does not see generation 1's tags (gone anyway).
    let mut purge = KvBatch::default();
    purge.purge("owner-1");
    sink.commit("p", purge, Some(at(1)), at(2))
        .await
        .expect("purge");
    assert_eq!(entries(&sink).await, map(&[("a", "2")]));
}

/// A following handle's `scan` reads the live generation, before and after
/// a switch; a pinned handle's reads its own.
pub async fn scan_reads_the_generation_a_handle_reads<S: KvSink + Generations>(sink: S) {
    sink.commit("p", batch(&[("k:a", "old"), ("k:b", "old")]), None, at(3))
        .await
        .expect("commit live");
    let next = sink.at_generation(2);
    next.commit("p", batch(&[("k:c", "new")]), None, at(3))
        .await
        .expect("commit next");
    let keys = |page: Vec<(String, String)>| page.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(
        keys(sink.scan("k:", None, 10).await.expect("scan")),
        ["k:a", "k:b"]
    );
    assert_eq!(
        keys(next.scan("k:", None, 10).await.expect("scan")),
        ["k:c"]
    );
    assert_eq!(
        sink.switch_generation("p", 1, 2).await.expect("switch"),
        Switch::Done
    );
    assert_eq!(
        keys(sink.scan("k:", None, 10).await.expect("scan")),
        ["k:c"]
    );
    assert_eq!(
        keys(
            sink.at_generation(1)
                .scan("k:", None, 10)
                .await
                .expect("scan")
        ),
        ["k:a", "k:b"]
    );
}

/// Turns the dead-letter suite into `#[tokio::test]` functions for a factory of
/// empty dead-letter stores.
#[macro_export]
macro_rules! dead_letter_conformance_tests {
    ($factory:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dead_letters_record_list_and_remove() {
            let store = $factory().await;
            $crate::testing::kv_conformance::dead_letters_record_list_and_remove(&store).await;
        }
    };
}

/// Dead letters are kept per projection in order, once per event, and removed
/// on request.
pub async fn dead_letters_record_list_and_remove<D: crate::DeadLetters + ?Sized>(store: &D) {
    let letter = |projection: &str, n: u64| crate::DeadLetter {
        projection: projection.to_owned(),
        checkpoint: at(n),
        event_id: crate::EventId::new(),
        stream_id: crate::StreamId::new(format!("account-{n}")).expect("stream"),
        event_type: "Deposited".to_owned(),
        error: format!("event Deposited v1 could not be decoded ({n})"),
        recorded_at: chrono::DateTime::from_timestamp_micros(
            1_700_000_000_000_000 + i64::try_from(n).unwrap_or(0),
        )
        .expect("time"),
        replay: false,
    };
    let (a, b, c) = (letter("p", 1), letter("p", 2), letter("q", 3));
    for l in [&a, &b, &c, &a] {
        store.record(l.clone()).await.expect("record");
    }
    assert_eq!(
        store.list("p").await.expect("list"),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(store.list("q").await.expect("list"), vec![c]);
    assert!(store.remove("p", a.event_id).await.expect("remove"));
    assert!(!store.remove("p", a.event_id).await.expect("remove again"));
    assert_eq!(store.list("p").await.expect("list"), vec![b.clone()]);

    // A rebuild's letter is a replay's until the live runner records the
    // event too (or an accepted switch records it again, not replaying).
    let replayed = crate::DeadLetter {
        replay: true,
        ..letter("p", 4)
    };
    store
        .record(replayed.clone())
        .await
        .expect("record a replay's");
    store.record(replayed.clone()).await.expect("again");
    assert_eq!(
        store.list("p").await.expect("list"),
        vec![b.clone(), replayed.clone()]
    );
    store
        .record(crate::DeadLetter {
            replay: false,
            error: "another error".into(),
            ..replayed.clone()
        })
        .await
        .expect("record live");
    assert_eq!(
        store.list("p").await.expect("list"),
        vec![
            b,
            crate::DeadLetter {
                replay: false,
                ..replayed
            }
        ]
    );
}
