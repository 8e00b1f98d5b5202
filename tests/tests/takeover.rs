//! Two runners for one projection across "processes" (tasks with their own
//! connections): only the lock holder applies; when it dies, the other takes
//! over from the committed checkpoint without applying anything twice.

use std::sync::Arc;
use std::time::Duration;

use es_core::{Aggregate, Checkpoint, DeadLetters, EventStore, KvBatch, KvSink, Repository};
use es_projections::{Change, Projection, ProjectionError, Runner, RunnerOptions, Step};
use es_store_postgres::testing::fresh_store;
use es_store_postgres::{PgKv, PgStore};

#[derive(Debug, Clone, PartialEq, es_core::Event)]
enum CounterEvent {
    Added { n: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "counter")]
struct Counter;

impl Aggregate for Counter {
    type Command = i64;
    type Event = CounterEvent;
    type Error = Never;
    fn handle(&self, n: i64) -> Result<Vec<CounterEvent>, Never> {
        Ok(vec![CounterEvent::Added { n }])
    }
    fn apply(&mut self, _: &CounterEvent) {}
}

/// Sums every counter: a duplicate application would show in the total.
struct Totals;

impl Projection for Totals {
    type Event = CounterEvent;
    type Sink = PgKv;

    fn name(&self) -> &str {
        "totals"
    }

    fn apply(
        &self,
        change: Change<'_, CounterEvent>,
        writes: &mut KvBatch,
    ) -> Result<(), ProjectionError> {
        if let Change::Event {
            event: CounterEvent::Added { n },
            meta,
        } = change
        {
            writes.incr_by("total", *n);
            writes.incr_by(format!("{}", meta.stream_id), *n);
            writes.incr_by("events", 1);
        }
        Ok(())
    }
}

fn runner(store: &PgStore) -> Runner<Totals, PgStore> {
    let letters: Arc<dyn DeadLetters> = Arc::new(store.clone());
    Runner::new(
        Totals,
        PgKv::new(store.clone(), "totals"),
        store.clone(),
        letters,
    )
    .with_options(RunnerOptions {
        batch_size: 5,
        ..RunnerOptions::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_runner_takes_over_without_a_duplicate() {
    let store = fresh_store().await;
    let repo = Repository::<Counter, PgStore>::new(store.clone());
    let mut expected_total = 0;
    for i in 1..=60i64 {
        repo.execute(&format!("c{}", i % 4), i).await.unwrap();
        expected_total += i;
    }

    // Runner A: holds the lock, applies a few batches, then "dies" mid-run.
    let mut lock_a = store
        .try_lock_projection("totals")
        .await
        .unwrap()
        .expect("free");
    let mut a = runner(&store);
    for _ in 0..3 {
        assert!(matches!(a.step().await.unwrap(), Step::Committed { .. }));
    }
    let committed_by_a = a.checkpoint().expect("a committed");

    // Runner B waits for the lock.
    let b = {
        let store = store.clone();
        tokio::spawn(async move {
            let lock = store
                .lock_projection("totals", Duration::from_millis(20))
                .await
                .unwrap();
            let mut b = runner(&store);
            while b.step().await.unwrap() != Step::Idle {}
            (lock, b.checkpoint())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!b.is_finished(), "B must not run while A holds the lock");

    // A's process dies: its lock connection is killed.
    let pid = lock_a.backend_pid().await.unwrap();
    sqlx_terminate(&store, pid).await;
    let (_lock_b, b_checkpoint) = tokio::time::timeout(Duration::from_secs(20), b)
        .await
        .expect("B took over")
        .unwrap();
    assert!(b_checkpoint.unwrap() > committed_by_a);
    assert!(!lock_a.is_held().await);

    let kv = PgKv::new(store.clone(), "totals");
    assert_eq!(
        kv.get("total").await.unwrap(),
        Some(expected_total.to_string()),
        "every event applied exactly once"
    );
    assert_eq!(kv.get("events").await.unwrap(), Some("60".to_owned()));

    // A zombie A that kept running would be fenced by the checkpoint.
    let err = a.step().await.unwrap_err();
    assert!(
        matches!(err, es_projections::RunnerError::Fenced { .. }),
        "{err:?}"
    );
    let head = store.read_all(Checkpoint::START, 1000).await.unwrap();
    assert_eq!(head.len(), 60);
}

async fn sqlx_terminate(store: &PgStore, pid: i32) {
    let _: bool = es_store_postgres::testing::terminate_backend(store, pid).await;
}
