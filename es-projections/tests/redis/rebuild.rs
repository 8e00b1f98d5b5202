//! Zero-downtime rebuilds of a Redis model: equivalence with the model built
//! incrementally, readers during a rebuild, and an interrupted rebuild.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use es_core::{EventStore, Generations, MemoryStore, PollEvery, SubjectId};
use es_projections::{RedisKv, RunnerError, Step};

use crate::domain::{Command, crypto, repo};
use crate::runner_tests::runner;
use crate::support::{dump, fresh_kv, redis_url};

/// Opens `accounts` accounts, deposits into each, and forgets owner 0.
async fn workload(store: &MemoryStore, crypto: &Arc<es_core::Crypto>, accounts: u32) {
    let repo = repo(store, crypto);
    for a in 0..accounts {
        let owner = SubjectId::new(format!("owner-{a}")).unwrap();
        repo.execute(&a.to_string(), Command::Open(owner, format!("Owner {a}")))
            .await
            .unwrap();
        for d in 1..=3 {
            repo.execute(&a.to_string(), Command::Deposit(i64::from(a * 10 + d)))
                .await
                .unwrap();
        }
    }
    crypto
        .forget(store, &SubjectId::new("owner-0").unwrap())
        .await
        .unwrap();
}

async fn drain(runner: &mut es_projections::Runner<crate::domain::Balances<RedisKv>, MemoryStore>) {
    while runner.step().await.unwrap() != Step::Idle {}
}

#[tokio::test]
async fn a_rebuild_equals_the_incremental_model_and_the_live_runner_follows_it() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    workload(&store, &crypto, 12).await;
    let kv = fresh_kv().await;
    let mut live = runner(&store, &kv, &crypto);
    drain(&mut live).await;
    let incremental = kv.entries().await.unwrap();
    assert!(!incremental.contains_key("account-0:owner"));
    assert_eq!(incremental.len(), 23, "{incremental:?}");

    let report = runner(&store, &kv, &crypto).rebuild().run().await.unwrap();
    assert_eq!((report.from, report.to, report.resumed), (1, 2, false));
    assert_eq!(report.dropped, [1]);
    assert_eq!(
        report.read,
        store.count_after(es_core::Checkpoint::START).await.unwrap()
    );
    assert_eq!(kv.live_generation().await.unwrap(), 2);
    assert_eq!(kv.entries().await.unwrap(), incremental);
    let prefix = kv.prefix().to_owned();
    let keys = dump(&redis_url(), &prefix).await;
    assert!(
        keys.iter()
            .all(|(k, _)| !k.starts_with(&format!("{prefix}g1:"))),
        "the old generation is dropped: {keys:?}"
    );

    // The live runner, still bound to generation 1, is superseded on its next
    // commit, reloads, and goes on in generation 2 without applying twice.
    repo(&store, &crypto)
        .execute("5", Command::Deposit(1000))
        .await
        .unwrap();
    drain(&mut live).await;
    assert_eq!(
        kv.get("account-5:balance").await.unwrap().as_deref(),
        Some(&*(51 + 52 + 53 + 1000).to_string())
    );
    let fresh = fresh_kv().await;
    drain(&mut runner(&store, &fresh, &crypto)).await;
    assert_eq!(kv.entries().await.unwrap(), fresh.entries().await.unwrap());
    kv.drop_all().await.unwrap();
    fresh.drop_all().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_miss_a_key_during_a_rebuild_under_writes() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    workload(&store, &crypto, 30).await;
    let kv = fresh_kv().await;
    drain(&mut runner(&store, &kv, &crypto)).await;

    let stop = Arc::new(AtomicBool::new(false));
    // The live runner, running throughout.
    let live = runner(&store, &kv, &crypto);
    let (live_stop, live_stopped) = tokio::sync::oneshot::channel::<()>();
    let live = tokio::spawn(async move {
        live.run(PollEvery(Duration::from_millis(2)), async {
            live_stopped.await.ok();
        })
        .await
    });
    // Deposits into existing accounts, throughout.
    let writer = {
        let (store, crypto, stop) = (store.clone(), Arc::clone(&crypto), Arc::clone(&stop));
        tokio::spawn(async move {
            let repo = repo(&store, &crypto);
            let mut n = 0_u32;
            while !stop.load(Ordering::Relaxed) {
                repo.execute(&(1 + n % 29).to_string(), Command::Deposit(1))
                    .await
                    .unwrap();
                n += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            n
        })
    };
    // Readers of keys that existed before the rebuild.
    let (reads, misses) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (kv, stop) = (kv.clone(), Arc::clone(&stop));
        let (reads, misses) = (Arc::clone(&reads), Arc::clone(&misses));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for a in 1..30 {
                    for key in [format!("account-{a}:owner"), format!("account-{a}:balance")] {
                        if kv.get(&key).await.unwrap().is_none() {
                            misses.fetch_add(1, Ordering::Relaxed);
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    let report = runner(&store, &kv, &crypto).rebuild().run().await.unwrap();
    assert_eq!(report.to, 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.store(true, Ordering::Relaxed);
    let deposits = writer.await.unwrap();
    reader.await.unwrap();
    // Let the live runner catch up with the last deposits, then stop it.
    let head = store.count_after(es_core::Checkpoint::START).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    live_stop.send(()).unwrap();
    let live = live.await.unwrap().unwrap();
    assert_eq!(live.lag_events().await.unwrap(), 0, "head {head}");

    assert!(deposits > 0);
    assert!(reads.load(Ordering::Relaxed) > 100, "{reads:?}");
    assert_eq!(misses.load(Ordering::Relaxed), 0, "a reader missed a key");
    let fresh = fresh_kv().await;
    drain(&mut runner(&store, &fresh, &crypto)).await;
    assert_eq!(kv.entries().await.unwrap(), fresh.entries().await.unwrap());
    kv.drop_all().await.unwrap();
    fresh.drop_all().await.unwrap();
}

#[tokio::test]
async fn an_interrupted_rebuild_leaves_the_live_model_and_resumes() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    workload(&store, &crypto, 10).await;
    let kv = fresh_kv().await;
    drain(&mut runner(&store, &kv, &crypto)).await;
    let before = kv.entries().await.unwrap();

    // Stopped after a few batches (the future dropped, as in a crash between
    // commits).
    let (batches_done, mut batches) = tokio::sync::mpsc::unbounded_channel();
    let rebuild = runner(&store, &kv, &crypto)
        .rebuild()
        .on_progress(move |p| {
            batches_done.send(p.read).ok();
        })
        .run();
    let task = tokio::spawn(rebuild);
    for _ in 0..2 {
        batches.recv().await.unwrap();
    }
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(kv.live_generation().await.unwrap(), 1);
    assert_eq!(kv.entries().await.unwrap(), before);
    assert_eq!(kv.generations().await.unwrap(), [1, 2]);

    let report = runner(&store, &kv, &crypto).rebuild().run().await.unwrap();
    assert!(report.resumed);
    assert_eq!(report.to, 2);
    let total = store.count_after(es_core::Checkpoint::START).await.unwrap();
    assert!(report.read < total, "resumed, not restarted: {report:?}");
    assert_eq!(kv.entries().await.unwrap(), before);

    // A restart drops a pending generation and starts over.
    let pending = kv.at_generation(3);
    let mut batch = es_core::KvBatch::default();
    batch.set("junk", "x");
    es_core::Sink::commit(
        &pending,
        "balances",
        batch,
        None,
        es_core::Checkpoint::START,
    )
    .await
    .unwrap();
    let report = runner(&store, &kv, &crypto)
        .rebuild()
        .restart(true)
        .run()
        .await
        .unwrap();
    assert_eq!((report.from, report.to, report.resumed), (2, 4, false));
    assert_eq!(report.dropped, [2, 3]);
    assert_eq!(report.read, total);
    assert_eq!(kv.entries().await.unwrap(), before);
    kv.drop_all().await.unwrap();
}

#[tokio::test]
async fn a_rebuild_overtaken_by_another_stops_without_writing() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    workload(&store, &crypto, 3).await;
    let kv = fresh_kv().await;
    drain(&mut runner(&store, &kv, &crypto)).await;
    // Generation 2 built and switched to behind this rebuild's back.
    let mut slow = runner(&store, &kv.at_generation(2), &crypto);
    drain(&mut slow).await;
    kv.switch_generation("balances", 1, 2).await.unwrap();
    let mut stale = runner(&store, &kv.at_generation(1), &crypto);
    repo(&store, &crypto)
        .execute("1", Command::Deposit(5))
        .await
        .unwrap();
    // A runner pinned to the superseded generation stops.
    let err = loop {
        match stale.step().await {
            Ok(Step::Idle) => panic!("a superseded runner went idle"),
            Ok(_) => {}
            Err(error) => break error,
        }
    };
    assert!(
        matches!(
            err,
            RunnerError::Superseded {
                generation: 1,
                live: 2,
                ..
            }
        ),
        "{err:?}"
    );
    kv.drop_all().await.unwrap();
}
