//! The runner end to end with `RedisKv`: projection, resumption, and a
//! forgotten subject purged from Redis.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use es_core::{Crypto, MemoryStore, Sink, SubjectId};
use es_projections::{
    Backoff, FailurePolicy, MemoryDeadLetters, RedisKv, Runner, RunnerError, RunnerOptions, Step,
};

use crate::domain::{Balances, Command, crypto, expect_account, repo};
use crate::support::{dump, fresh_kv, redis_url};

pub(crate) fn options() -> RunnerOptions {
    RunnerOptions {
        batch_size: 7,
        catch_up_batch_size: 28,
        backoff: Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(100),
            breaker_after: 20,
            breaker_cooldown: Duration::from_millis(200),
        },
        failure_policy: FailurePolicy::Halt,
    }
}

pub(crate) fn runner(
    store: &MemoryStore,
    kv: &RedisKv,
    crypto: &Arc<Crypto>,
) -> Runner<Balances<RedisKv>, MemoryStore> {
    Runner::new(
        Balances::default(),
        kv.clone(),
        store.clone(),
        Arc::new(MemoryDeadLetters::new()),
    )
    .with_crypto(Arc::clone(crypto))
    .with_options(options())
}

async fn drain(runner: &mut Runner<Balances<RedisKv>, MemoryStore>) -> Result<(), RunnerError> {
    while runner.step().await? != Step::Idle {}
    Ok(())
}

#[tokio::test]
async fn the_runner_projects_the_log_into_redis_and_resumes_from_its_checkpoint() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    let mut expected = BTreeMap::new();
    for a in 0..3_i64 {
        let id = format!("a{a}");
        let owner = SubjectId::new(format!("owner-{a}")).unwrap();
        repo.execute(&id, Command::Open(owner, format!("Owner {a}")))
            .await
            .unwrap();
        let amounts: Vec<i64> = (1..=5).map(|d| d * 10 + a).collect();
        for amount in &amounts {
            repo.execute(&id, Command::Deposit(*amount)).await.unwrap();
        }
        expect_account(&mut expected, &id, &format!("Owner {a}"), &amounts);
    }
    let kv = fresh_kv().await;
    let mut first = runner(&store, &kv, &crypto);
    first.step().await.unwrap();
    first.step().await.unwrap();
    drop(first);
    let mut second = runner(&store, &kv, &crypto);
    drain(&mut second).await.unwrap();
    assert_eq!(kv.entries().await.unwrap(), expected);
    assert_eq!(
        kv.checkpoint("balances").await.unwrap(),
        second.checkpoint()
    );

    // More events: the same runner goes on from where it is.
    repo.execute("a0", Command::Deposit(1000)).await.unwrap();
    drain(&mut second).await.unwrap();
    assert_eq!(
        kv.get("account-a0:balance").await.unwrap().as_deref(),
        Some("1150")
    );
    assert_eq!(second.step().await.unwrap(), Step::Idle);
    kv.drop_all().await.unwrap();
}

#[tokio::test]
async fn a_second_runner_on_the_same_redis_checkpoint_fences_the_first() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    for d in 1..=20 {
        repo.execute("f", Command::Deposit(d)).await.unwrap();
    }
    let kv = fresh_kv().await;
    let mut a = runner(&store, &kv, &crypto);
    let mut b = runner(&store, &kv, &crypto);
    a.step().await.unwrap();
    b.step().await.unwrap();
    let err = a.step().await.unwrap_err();
    assert!(matches!(err, RunnerError::Fenced { .. }), "{err:?}");
    drain(&mut b).await.unwrap();
    assert_eq!(
        kv.get("account-f:balance").await.unwrap().as_deref(),
        Some("210"),
        "no batch applied twice"
    );
    kv.drop_all().await.unwrap();
}

#[tokio::test]
async fn forgetting_a_subject_leaves_nothing_of_it_in_redis() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    let canary = "Canary-Owner-4711";
    let owner = SubjectId::new("owner-x").unwrap();
    repo.execute("x", Command::Open(owner.clone(), canary.into()))
        .await
        .unwrap();
    repo.execute("x", Command::Deposit(20)).await.unwrap();
    repo.execute(
        "y",
        Command::Open(SubjectId::new("owner-y").unwrap(), "Keep".into()),
    )
    .await
    .unwrap();
    let kv = fresh_kv().await;
    let mut r = runner(&store, &kv, &crypto);
    drain(&mut r).await.unwrap();
    assert_eq!(
        kv.get("account-x:owner").await.unwrap().as_deref(),
        Some(canary)
    );

    crypto.forget(&store, &owner).await.unwrap();
    drain(&mut r).await.unwrap();
    let everything = dump(&redis_url(), kv.prefix()).await;
    assert!(
        everything
            .iter()
            .all(|(k, v)| !k.contains(canary) && v.iter().all(|v| !v.contains(canary))),
        "{everything:?}"
    );
    assert!(
        everything.iter().all(|(k, _)| !k.ends_with(":t:owner-x")),
        "the tag set went with the purge: {everything:?}"
    );
    assert_eq!(
        kv.get("account-x:balance").await.unwrap().as_deref(),
        Some("20")
    );
    assert_eq!(
        kv.get("account-y:owner").await.unwrap().as_deref(),
        Some("Keep")
    );

    // A rebuild under a new prefix after the forget never sees the name.
    let fresh = fresh_kv().await;
    let mut rebuild = runner(&store, &fresh, &crypto);
    drain(&mut rebuild).await.unwrap();
    assert_eq!(fresh.entries().await.unwrap(), kv.entries().await.unwrap());
    kv.drop_all().await.unwrap();
    fresh.drop_all().await.unwrap();
}
