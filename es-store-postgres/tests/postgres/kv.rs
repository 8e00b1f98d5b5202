//! The key-value sink conformance suite on `PgKv`, a fresh database per test,
//! with its generations suite and a commit racing a switch.

use std::time::Duration;

use es_core::{Checkpoint, CommitId, Generations, KvBatch, Position, Sink, SinkError};
use es_store_postgres::PgKv;
use es_store_postgres::testing::fresh_store;

async fn fresh_sink() -> PgKv {
    PgKv::new(fresh_store().await, "conformance")
}

es_core::kv_sink_conformance_tests!(fresh_sink);

es_core::dead_letter_conformance_tests!(fresh_store);

mod generations {
    use es_core::{KvBatch, Sink};
    use es_store_postgres::PgKv;
    use es_store_postgres::testing::fresh_store;

    /// A namespace with LIKE's wildcards, beside namespaces that a LIKE
    /// pattern or a loose parse would take for its generations.
    async fn fresh_sink() -> PgKv {
        let store = fresh_store().await;
        for neighbour in ["confZZx", "conf%_x/g", "conf%_x/g+"] {
            PgKv::new(store.clone(), neighbour)
                .commit("p", KvBatch::default(), None, super::at(1))
                .await
                .expect("a neighbour's commit");
        }
        PgKv::new(store, "conf%_x")
    }

    es_core::generations_conformance_tests!(fresh_sink);
}

fn at(n: u64) -> Checkpoint {
    Checkpoint::new(CommitId::new(n), Position::new(n))
}

/// A commit that reaches the live-generation row while a switch holds it waits
/// for the switch, then is refused as superseded: it wrote nothing to the
/// generation the switch left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_blocked_behind_a_switch_is_superseded() {
    let store = fresh_store().await;
    let runner = PgKv::new(store.clone(), "race");
    assert_eq!(runner.checkpoint("p").await.expect("checkpoint"), None);
    runner
        .commit("p", KvBatch::default(), None, at(1))
        .await
        .expect("commit 1");
    runner
        .at_generation(2)
        .commit("p", KvBatch::default(), None, at(1))
        .await
        .expect("commit 2");

    // The switch, by hand: the row locked, then moved, in one transaction.
    let mut switch = store.pool().begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO es_kv_generations (namespace, live) VALUES ('race', 1) ON CONFLICT DO NOTHING",
    )
    .execute(&mut *switch)
    .await
    .expect("ensure");
    let live: i64 = sqlx::query_scalar(
        "SELECT live FROM es_kv_generations WHERE namespace = 'race' FOR UPDATE",
    )
    .fetch_one(&mut *switch)
    .await
    .expect("lock");
    assert_eq!(live, 1);

    let mut stale = KvBatch::default();
    stale.set("stale", "x");
    let commit = tokio::spawn({
        let runner = runner.clone();
        async move { runner.commit("p", stale, Some(at(1)), at(2)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!commit.is_finished(), "the commit waits for the switch");

    sqlx::query("UPDATE es_kv_generations SET live = 2 WHERE namespace = 'race'")
        .execute(&mut *switch)
        .await
        .expect("switch");
    switch.commit().await.expect("commit switch");

    let refused = tokio::time::timeout(Duration::from_secs(10), commit)
        .await
        .expect("the commit goes on after the switch")
        .expect("task");
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
    let old = runner.at_generation(1);
    assert_eq!(old.checkpoint("p").await.expect("checkpoint"), Some(at(1)));
    assert_eq!(
        es_core::KvSink::get(&old, "stale").await.expect("get"),
        None
    );
}
