//! Redis killed (SIGKILL) and restarted under a running runner: the runner
//! retries by itself and the model ends exact, no event lost or applied twice.

use std::collections::BTreeMap;
use std::time::Duration;

use es_core::{PollEvery, SubjectId};
use es_projections::Step;

use crate::domain::{Command, crypto, expect_account, repo};
use crate::runner_tests::runner;
use crate::support::{PrivateRedis, connect, unique_prefix};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_survives_redis_being_killed_and_restarted() {
    let mut server = PrivateRedis::start().await;
    let (store, crypto) = (es_core::MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    let kv = connect(&server.url(), &unique_prefix()).await;
    let r = runner(&store, &kv, &crypto);
    let progress = r.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(r.run(PollEvery(Duration::from_millis(5)), async {
        let _ = stopped.await;
    }));

    let accounts = ["r0", "r1", "r2"];
    let mut amounts: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (i, id) in accounts.iter().enumerate() {
        let owner = SubjectId::new(format!("owner-{id}")).unwrap();
        repo.execute(id, Command::Open(owner, format!("Owner {i}")))
            .await
            .unwrap();
    }
    let mut amount = 0;
    let mut deposit = async |rounds: usize, amounts: &mut BTreeMap<&'static str, Vec<i64>>| {
        let mut last = None;
        for _ in 0..rounds {
            for id in accounts {
                amount += 1;
                let done = repo.execute(id, Command::Deposit(amount)).await.unwrap();
                amounts.entry(id).or_default().push(amount);
                last = done.checkpoint;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        last.unwrap()
    };

    // Running: the runner commits as events arrive.
    let before = deposit(10, &mut amounts).await;
    progress
        .wait_for(before, Duration::from_secs(20))
        .await
        .expect("the runner commits before the outage");

    // Killed mid-run, with events still arriving; then back on the same port
    // with its append-only file.
    let during = tokio::spawn({
        let repo = repo.clone();
        async move {
            let (mut amounts, mut last) = (Vec::new(), None);
            for n in 0..30_i64 {
                let id = accounts[usize::try_from(n).unwrap() % accounts.len()];
                let done = repo
                    .execute(id, Command::Deposit(10_000 + n))
                    .await
                    .unwrap();
                amounts.push((id, 10_000 + n));
                last = done.checkpoint;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (amounts, last.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.kill();
    let down_at = progress.current();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (during, during_last) = during.await.unwrap();
    assert!(
        down_at < Some(during_last),
        "Redis went down with events left to project"
    );
    server.restart().await;
    for (id, n) in during {
        amounts.entry(id).or_default().push(n);
    }
    let last = deposit(10, &mut amounts).await;
    progress
        .wait_for(last, Duration::from_secs(60))
        .await
        .expect("the runner resumes by itself after the restart");

    stop.send(()).unwrap();
    let mut runner = task.await.unwrap().expect("the runner never gave up");
    assert_eq!(runner.step().await.unwrap(), Step::Idle);

    let mut expected = BTreeMap::new();
    for (i, id) in accounts.iter().enumerate() {
        expect_account(&mut expected, id, &format!("Owner {i}"), &amounts[id]);
    }
    assert_eq!(
        kv.entries().await.unwrap(),
        expected,
        "no loss, no duplicate"
    );
    drop(runner);
    server.kill();
}
