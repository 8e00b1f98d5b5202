//! The runner's behaviours over any [`Backend`]: each is one generic function,
//! and [`runner_behaviour_tests!`](crate::runner_behaviour_tests) runs all of
//! them on a backend.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use es_core::{
    AppendRequest, Checkpoint, Crypto, EventId, EventStore, ExpectedVersion, KvSink, Metadata,
    NewEvent, RecordedEvent, Repository, Sink, Storage, StreamId, SubjectId,
};
use es_projections::{Backoff, FailurePolicy, Runner, RunnerError, RunnerOptions, Step};

use crate::accounts::{Account, Balances, Command, crypto};
use crate::backend::Backend;

/// Events per runner batch: small, so that a short log makes several batches.
pub(crate) const BATCH: usize = 4;
/// The projection's name (`Balances`).
pub(crate) const PROJECTION: &str = "balances";

/// Runs every behaviour below on `$backend`, one test each.
#[macro_export]
macro_rules! runner_behaviour_tests {
    ($backend:ty) => {
        $crate::runner_behaviour_tests!(@tests $backend;
            a_restarted_runner_continues_exactly_after_its_checkpoint,
            a_runner_with_a_stale_checkpoint_is_fenced,
            a_poison_event_halts_after_committing_what_came_before,
            skip_and_record_goes_past_poison_events_and_failing_handlers,
        );
    };
    (@tests $backend:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::behaviours::$name::<$backend>().await;
            }
        )*
    };
}

pub(crate) fn options(failure_policy: FailurePolicy) -> RunnerOptions {
    RunnerOptions {
        batch_size: BATCH,
        catch_up_batch_size: BATCH * 4,
        backoff: Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(20),
            breaker_after: 5,
            breaker_cooldown: Duration::from_millis(50),
        },
        failure_policy,
    }
}

type BalancesRunner<B> = Runner<Balances<<B as Backend>::Kv>, <B as Backend>::Store>;

fn runner<B: Backend>(
    backend: &B,
    kv: &B::Kv,
    crypto: &Arc<Crypto>,
    failure_policy: FailurePolicy,
) -> BalancesRunner<B> {
    Runner::new(
        Balances::default(),
        kv.clone(),
        backend.store().clone(),
        backend.dead_letters(),
    )
    .with_crypto(Arc::clone(crypto))
    .with_options(options(failure_policy))
}

/// Steps until the runner is idle; the events it read.
async fn drain<B: Backend>(runner: &mut BalancesRunner<B>) -> Result<usize, RunnerError> {
    let mut read = 0;
    while let Step::Committed { read: n, .. } = runner.step().await? {
        read += n;
    }
    Ok(read)
}

pub(crate) fn repo<S>(store: &S, crypto: &Arc<Crypto>) -> Repository<Account, S>
where
    S: Storage,
{
    Repository::new(store.clone()).with_crypto(Arc::clone(crypto))
}

/// Opens `accounts` accounts and deposits into each `deposits` times, amounts
/// all different; the model `Balances` should then hold.
async fn workload<S>(
    repo: &Repository<Account, S>,
    accounts: i64,
    deposits: i64,
) -> BTreeMap<String, String>
where
    S: Storage,
{
    let mut expected = BTreeMap::new();
    let mut last = None;
    for a in 0..accounts {
        let id = format!("a{a}");
        let owner = SubjectId::new(format!("owner-{a}")).expect("subject");
        repo.execute(&id, Command::Open(owner, format!("Owner {a}")))
            .await
            .expect("open");
        let amounts: Vec<i64> = (1..=deposits).map(|d| d * 100 + a).collect();
        for amount in &amounts {
            last = repo
                .execute(&id, Command::Deposit(*amount))
                .await
                .expect("deposit")
                .checkpoint;
        }
        settle(repo.store(), last).await;
        expected.insert(format!("account-{id}:owner"), format!("Owner {a}"));
        expected.insert(
            format!("account-{id}:balance"),
            amounts.iter().sum::<i64>().to_string(),
        );
    }
    expected
}

/// Waits until the log is readable up to `upto`, the checkpoint of the last
/// append. PostgreSQL gives subscribers only the events below its transaction
/// horizon, which a transaction open anywhere on the server (another test's)
/// holds back for a while; the other backends return at once.
pub(crate) async fn settle<S: EventStore>(store: &S, upto: Option<Checkpoint>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while head(store).await < upto {
        assert!(
            Instant::now() < deadline,
            "the log is not readable up to {upto:?} after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The whole global log, in order.
pub(crate) async fn log<S: EventStore>(store: &S) -> Vec<RecordedEvent> {
    let mut events: Vec<RecordedEvent> = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(Checkpoint::START, RecordedEvent::checkpoint);
        let page = store.read_all(after, 500).await.expect("read the log");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// The checkpoint of the last event in the log.
pub(crate) async fn head<S: EventStore>(store: &S) -> Option<Checkpoint> {
    log(store).await.last().map(RecordedEvent::checkpoint)
}

/// Appends, to the account `account` (a stream of its own, so that loading the
/// other aggregates is not stopped by it), a `Deposited` whose payload does not
/// decode.
async fn poison<S: EventStore>(store: &S, account: &str) -> Checkpoint {
    let done = store
        .append(AppendRequest::new(
            StreamId::new(format!("account-{account}")).expect("stream"),
            ExpectedVersion::Any,
            vec![NewEvent {
                event_id: EventId::new(),
                event_type: "Deposited".into(),
                schema_version: 1,
                payload: vec![0xFF; 3],
                metadata: Metadata::now(),
            }],
        ))
        .await
        .expect("append the poison");
    done.checkpoint
}

/// A runner stopped after any number of batches and replaced by a new one: the
/// new one reads exactly the events after the stored checkpoint (none again,
/// none skipped: the balances are increments, so a double application shows),
/// and keeps going as the log grows.
pub(crate) async fn a_restarted_runner_continues_exactly_after_its_checkpoint<B: Backend>() {
    let backend = B::fresh().await;
    let crypto = crypto();
    let repo = repo(backend.store(), &crypto);
    let expected = workload(&repo, 3, 6).await;
    let total = log(backend.store()).await.len();
    assert_eq!(total, 21);

    for stop_after in 0..=total.div_ceil(BATCH) {
        let kv = backend.kv(&format!("balances-{stop_after}"));
        let mut first = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
        let mut read_first = 0;
        for _ in 0..stop_after {
            if let Step::Committed { read, .. } = first.step().await.expect("step") {
                read_first += read;
            }
        }
        let stopped_at = first.checkpoint();
        drop(first);
        assert_eq!(
            kv.checkpoint(PROJECTION).await.expect("checkpoint"),
            stopped_at,
            "the checkpoint of every committed batch is stored (stopped after {stop_after})"
        );

        let mut second = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
        let read_second = drain::<B>(&mut second).await.expect("drain");
        assert_eq!(
            read_first + read_second,
            total,
            "the second runner reads exactly what the first left (stopped after {stop_after})"
        );
        assert_eq!(
            kv.entries().await.expect("entries"),
            expected,
            "each event applied once (stopped after {stop_after})"
        );
        assert_eq!(second.checkpoint(), head(backend.store()).await);
    }

    // The log grows: a running runner, and a new one, take up only the new
    // events.
    let kv = backend.kv("balances-live");
    let mut live = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
    drain::<B>(&mut live).await.expect("drain");
    let done = repo
        .execute("a0", Command::Deposit(1_000_000))
        .await
        .expect("deposit");
    settle(backend.store(), done.checkpoint).await;
    assert_eq!(drain::<B>(&mut live).await.expect("drain"), 1);
    let mut expected = expected;
    let a0 = expected
        .get_mut("account-a0:balance")
        .expect("a0's balance");
    *a0 = (a0.parse::<i64>().expect("number") + 1_000_000).to_string();
    assert_eq!(kv.entries().await.expect("entries"), expected);
    let done = repo
        .execute("a1", Command::Deposit(1))
        .await
        .expect("deposit");
    settle(backend.store(), done.checkpoint).await;
    drop(live);
    let mut restarted = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
    assert_eq!(drain::<B>(&mut restarted).await.expect("drain"), 1);
    let a1 = expected
        .get_mut("account-a1:balance")
        .expect("a1's balance");
    *a1 = (a1.parse::<i64>().expect("number") + 1).to_string();
    assert_eq!(kv.entries().await.expect("entries"), expected);
    assert_eq!(restarted.checkpoint(), head(backend.store()).await);
}

/// Two runners on one read model: once the second has committed from the
/// checkpoint the first left, the first's next commit is refused as fenced,
/// and writes nothing.
pub(crate) async fn a_runner_with_a_stale_checkpoint_is_fenced<B: Backend>() {
    let backend = B::fresh().await;
    let crypto = crypto();
    let expected = workload(&repo(backend.store(), &crypto), 2, 8).await;
    let kv = backend.kv(PROJECTION);
    let mut stale = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
    let mut current = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
    stale.step().await.expect("first batch");
    current
        .step()
        .await
        .expect("second batch, from the stored checkpoint");
    let moved_to = current.checkpoint();
    assert_ne!(moved_to, stale.checkpoint());
    let before = kv.entries().await.expect("entries");

    let err = stale.step().await.expect_err("a stale runner is refused");
    assert!(matches!(err, RunnerError::Fenced { .. }), "{err:?}");
    assert_eq!(
        kv.checkpoint(PROJECTION).await.expect("checkpoint"),
        moved_to
    );
    assert_eq!(
        kv.entries().await.expect("entries"),
        before,
        "the fenced batch wrote nothing"
    );

    drain::<B>(&mut current).await.expect("drain");
    assert_eq!(
        kv.entries().await.expect("entries"),
        expected,
        "no batch applied twice"
    );
    assert_eq!(current.checkpoint(), head(backend.store()).await);
}

/// An event that does not decode, with the halt policy: what came before it is
/// committed, it is in the backend's dead letters once, and the runner (or a
/// new one, after a restart) stays stopped before it.
pub(crate) async fn a_poison_event_halts_after_committing_what_came_before<B: Backend>() {
    let backend = B::fresh().await;
    let crypto = crypto();
    let repo = repo(backend.store(), &crypto);
    let owner = SubjectId::new("o").expect("subject");
    repo.execute("p", Command::Open(owner, "O".into()))
        .await
        .expect("open");
    repo.execute("p", Command::Deposit(5))
        .await
        .expect("deposit");
    let poisoned = poison(backend.store(), "z").await;
    let done = repo
        .execute("p", Command::Deposit(7))
        .await
        .expect("deposit");
    settle(backend.store(), done.checkpoint).await;

    let kv = backend.kv(PROJECTION);
    let letters = backend.dead_letters();
    let mut halted = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
    let err = drain::<B>(&mut halted).await.expect_err("halts");
    assert!(
        matches!(err, RunnerError::Halted { ref event_type, .. } if event_type == "Deposited"),
        "{err:?}"
    );
    assert_eq!(
        kv.get("account-p:balance").await.expect("get").as_deref(),
        Some("5"),
        "the event before the poison is committed"
    );
    let stored = kv.checkpoint(PROJECTION).await.expect("checkpoint");
    assert!(
        stored.is_some_and(|at| at < poisoned),
        "the checkpoint stays before the poison: {stored:?}"
    );
    let dead = letters.list(PROJECTION).await.expect("dead letters");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].checkpoint, poisoned);
    assert_eq!(dead[0].stream_id.as_str(), "account-z");
    assert!(dead[0].error.contains("Deposited"), "{}", dead[0].error);

    assert!(matches!(
        halted.step().await,
        Err(RunnerError::Halted { .. })
    ));
    drop(halted);
    let mut restarted = runner(&backend, &kv, &crypto, FailurePolicy::Halt);
    assert!(matches!(
        drain::<B>(&mut restarted).await,
        Err(RunnerError::Halted { .. })
    ));
    assert_eq!(
        letters.list(PROJECTION).await.expect("dead letters").len(),
        1,
        "recorded once"
    );
    assert_eq!(
        kv.get("account-p:balance").await.expect("get").as_deref(),
        Some("5"),
        "nothing after the poison applied"
    );
}

/// With skip-and-record, an event that does not decode and one the projection
/// refuses both go to the backend's dead letters, and the runner goes on to the
/// head; a restarted runner records nothing again.
pub(crate) async fn skip_and_record_goes_past_poison_events_and_failing_handlers<B: Backend>() {
    let backend = B::fresh().await;
    let crypto = crypto();
    let repo = repo(backend.store(), &crypto);
    let owner = SubjectId::new("o").expect("subject");
    repo.execute("p", Command::Open(owner, "O".into()))
        .await
        .expect("open");
    let poisoned = poison(backend.store(), "z").await;
    // The projection refuses this one ("unlucky amount").
    let refused = repo
        .execute("p", Command::Deposit(999))
        .await
        .expect("deposit");
    let done = repo
        .execute("p", Command::Deposit(7))
        .await
        .expect("deposit");
    settle(backend.store(), done.checkpoint).await;

    let kv = backend.kv(PROJECTION);
    let letters = backend.dead_letters();
    let mut skipping = runner(&backend, &kv, &crypto, FailurePolicy::SkipAndRecord);
    drain::<B>(&mut skipping).await.expect("drain");
    assert_eq!(
        kv.get("account-p:balance").await.expect("get").as_deref(),
        Some("7")
    );
    let head = head(backend.store()).await;
    assert_eq!(skipping.checkpoint(), head);
    assert_eq!(kv.checkpoint(PROJECTION).await.expect("checkpoint"), head);
    let dead = letters.list(PROJECTION).await.expect("dead letters");
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].checkpoint, poisoned);
    assert_eq!(Some(dead[1].checkpoint), refused.checkpoint);
    assert!(dead[1].error.contains("unlucky"), "{}", dead[1].error);

    drop(skipping);
    let mut restarted = runner(&backend, &kv, &crypto, FailurePolicy::SkipAndRecord);
    assert_eq!(drain::<B>(&mut restarted).await.expect("drain"), 0);
    assert_eq!(letters.list(PROJECTION).await.expect("list").len(), 2);
}
