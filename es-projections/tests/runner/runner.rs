//! The runner's behaviours.

use std::sync::Arc;
use std::time::Duration;

use es_core::{MemoryStore, SubjectId};
use es_projections::{
    Backoff, DeadLetters, FailurePolicy, MemoryDeadLetters, MemoryKv, Runner, RunnerError,
    RunnerOptions, Step,
};

use crate::domain::{Balances, Command, crypto, poison, repo, workload};

fn fast() -> RunnerOptions {
    RunnerOptions {
        batch_size: 7,
        catch_up_batch_size: 28,
        backoff: Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(5),
            breaker_after: 3,
            breaker_cooldown: Duration::from_millis(10),
        },
        failure_policy: FailurePolicy::Halt,
    }
}

fn runner(
    store: &MemoryStore,
    kv: &MemoryKv,
    crypto: &Arc<es_core::Crypto>,
    letters: &MemoryDeadLetters,
) -> Runner<Balances<MemoryKv>, MemoryStore> {
    Runner::new(
        Balances::default(),
        kv.clone(),
        store.clone(),
        Arc::new(letters.clone()),
    )
    .with_crypto(Arc::clone(crypto))
    .with_options(fast())
}

async fn drain(runner: &mut Runner<Balances<MemoryKv>, MemoryStore>) -> Result<(), RunnerError> {
    while runner.step().await? != Step::Idle {}
    Ok(())
}

#[tokio::test]
async fn projects_the_log_into_the_model() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let expected = workload(&repo(&store, &crypto), 3, 5).await;
    let kv = MemoryKv::new();
    let mut runner = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    drain(&mut runner).await.unwrap();
    assert_eq!(kv.entries(), expected);
    assert_eq!(runner.step().await.unwrap(), Step::Idle);
}

#[tokio::test]
async fn a_runner_behind_reads_larger_batches_and_small_ones_near_the_head() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    let expected = workload(&repo, 10, 9).await; // 100 events
    let kv = MemoryKv::new();
    let mut runner = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    let mut reads = Vec::new();
    while let Step::Committed { read, .. } = runner.step().await.unwrap() {
        reads.push(read);
    }
    // Doubling from 7 while full, capped at 28; the short read is the head.
    assert_eq!(reads, [7, 14, 28, 28, 23]);
    assert_eq!(kv.entries(), expected);
    // Near the head, batches are small again.
    for _ in 0..10 {
        repo.execute("a0", Command::Deposit(1)).await.unwrap();
    }
    assert_eq!(
        runner.step().await.unwrap(),
        Step::Committed {
            read: 7,
            applied: 7
        }
    );
}

#[tokio::test]
async fn exactly_once_with_a_failure_injected_at_every_step() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let expected = workload(&repo(&store, &crypto), 4, 6).await;

    // Before the write: the commit fails and is retried.
    let kv = MemoryKv::new();
    let mut r = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    kv.fail_next_commits(5);
    drain(&mut r).await.unwrap();
    assert_eq!(kv.entries(), expected, "failures before the write");

    // Between write and acknowledgement: the runner learns from the stored
    // checkpoint that its commit landed, and does not apply it again.
    let kv = MemoryKv::new();
    let mut r = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    kv.lose_next_acks(3);
    drain(&mut r).await.unwrap();
    assert_eq!(kv.entries(), expected, "lost acknowledgements");

    // After the commit, a crash: a new runner resumes from the sink's checkpoint.
    for crash_after in 1..=5 {
        let kv = MemoryKv::new();
        let mut first = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
        for _ in 0..crash_after {
            first.step().await.unwrap();
        }
        drop(first);
        let mut second = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
        drain(&mut second).await.unwrap();
        assert_eq!(kv.entries(), expected, "crash after {crash_after} batches");
    }
}

#[tokio::test]
async fn a_poison_event_halts_by_default_after_committing_what_came_before() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    repo.execute("p", Command::Open(SubjectId::new("o").unwrap(), "O".into()))
        .await
        .unwrap();
    repo.execute("p", Command::Deposit(5)).await.unwrap();
    // (In a stream of its own: the poison would stop the aggregate loading too.)
    poison(&store, "z").await;
    repo.execute("p", Command::Deposit(7)).await.unwrap();

    let (kv, letters) = (MemoryKv::new(), MemoryDeadLetters::new());
    let mut r = runner(&store, &kv, &crypto, &letters);
    let err = drain(&mut r).await.unwrap_err();
    assert!(
        matches!(err, RunnerError::Halted { ref event_type, .. } if event_type == "Deposited"),
        "{err:?}"
    );
    assert_eq!(
        kv.get("account-p:balance").as_deref(),
        Some("5"),
        "the event before is committed"
    );
    let dead = letters.list("balances").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.contains("Deposited"), "{}", dead[0].error);
    // It stays halted at the same place.
    assert!(matches!(r.step().await, Err(RunnerError::Halted { .. })));
    assert_eq!(
        letters.list("balances").await.unwrap().len(),
        1,
        "recorded once"
    );
}

#[tokio::test]
async fn skip_and_record_goes_past_poison_events_and_failing_handlers() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    repo.execute("p", Command::Open(SubjectId::new("o").unwrap(), "O".into()))
        .await
        .unwrap();
    poison(&store, "z").await;
    repo.execute("p", Command::Deposit(999)).await.unwrap(); // the handler refuses it
    repo.execute("p", Command::Deposit(7)).await.unwrap();

    let (kv, letters) = (MemoryKv::new(), MemoryDeadLetters::new());
    let mut r = runner(&store, &kv, &crypto, &letters).with_options(RunnerOptions {
        failure_policy: FailurePolicy::SkipAndRecord,
        ..fast()
    });
    drain(&mut r).await.unwrap();
    assert_eq!(kv.get("account-p:balance").as_deref(), Some("7"));
    let dead = letters.list("balances").await.unwrap();
    assert_eq!(dead.len(), 2);
    assert!(dead[1].error.contains("unlucky"));
}

/// A sink that refuses an event's writes for good (here: an increment of a
/// value that is not a number) is not a silent halt: the event is found,
/// dead-lettered with the sink's error, and the policy decides, as for an
/// event that does not decode.
#[tokio::test]
async fn an_event_the_sink_refuses_goes_through_the_dead_letter_policy() {
    use es_core::{Checkpoint, Sink as _};
    for policy in [FailurePolicy::Halt, FailurePolicy::SkipAndRecord] {
        let (store, crypto) = (MemoryStore::new(), crypto());
        let repo = repo(&store, &crypto);
        for id in ["q", "r"] {
            repo.execute(id, Command::Open(SubjectId::new("o").unwrap(), "O".into()))
                .await
                .unwrap();
        }
        repo.execute("q", Command::Deposit(5)).await.unwrap();
        repo.execute("r", Command::Deposit(3)).await.unwrap();
        repo.execute("q", Command::Deposit(7)).await.unwrap();
        let kv = MemoryKv::new();
        // Another writer left text where the balance of `r` goes.
        let mut text = es_projections::KvBatch::default();
        text.set("account-r:balance", "not a number");
        kv.commit("other", text, None, Checkpoint::START)
            .await
            .unwrap();
        let letters = MemoryDeadLetters::new();
        let mut r = runner(&store, &kv, &crypto, &letters).with_options(RunnerOptions {
            failure_policy: policy,
            ..fast()
        });
        let drained = drain(&mut r).await;
        let dead = letters.list("balances").await.unwrap();
        assert_eq!(dead.len(), 1, "{policy:?}: {dead:?}");
        assert_eq!(dead[0].stream_id.as_str(), "account-r");
        assert!(dead[0].error.contains("refused"), "{}", dead[0].error);
        assert_eq!(
            kv.get("account-q:balance").as_deref(),
            Some(if policy == FailurePolicy::Halt {
                "5"
            } else {
                "12"
            })
        );
        match policy {
            FailurePolicy::Halt => {
                assert!(
                    matches!(drained, Err(RunnerError::Halted { .. })),
                    "{drained:?}"
                );
                // Halted before it: the checkpoint is the event before.
                assert!(r.checkpoint() < Some(dead[0].checkpoint));
            }
            FailurePolicy::SkipAndRecord => {
                drained.unwrap();
                assert_eq!(kv.get("account-r:balance").as_deref(), Some("not a number"));
            }
        }
    }
}

/// The user's report: a rebuild run with another master key (every opening
/// event fails to decode), run again, switched its broken generation live on
/// the third run and dropped the good one. A rebuild that went past events
/// it could not apply is never switched to unless accepted, however often it
/// runs; with the right key it builds the whole model.
#[tokio::test]
async fn a_rebuild_that_skipped_failing_events_is_not_switched_to() {
    use es_core::Generations as _;
    use es_projections::RebuildError;
    let (store, crypto) = (MemoryStore::new(), crypto());
    let expected = workload(&repo(&store, &crypto), 3, 2).await;
    let (kv, letters) = (MemoryKv::new(), MemoryDeadLetters::new());
    drain(&mut runner(&store, &kv, &crypto, &letters))
        .await
        .unwrap();
    let skip = RunnerOptions {
        failure_policy: FailurePolicy::SkipAndRecord,
        ..fast()
    };
    let wrong = crate::domain::crypto(); // another master key
    for attempt in 1..=3 {
        let rebuilt = runner(&store, &kv, &wrong, &letters)
            .with_options(skip.clone())
            .rebuild()
            .run()
            .await;
        assert!(
            matches!(rebuilt, Err(RebuildError::Incomplete { count: 3, .. })),
            "attempt {attempt}: {rebuilt:?}"
        );
        assert_eq!(kv.live_generation().await.unwrap(), 1, "attempt {attempt}");
        assert_eq!(
            kv.entries(),
            expected,
            "attempt {attempt}: the live model is untouched"
        );
    }
    // With the right key, started over, the rebuild is whole and switches.
    let report = runner(&store, &kv, &crypto, &letters)
        .with_options(skip.clone())
        .rebuild()
        .restart(true)
        .run()
        .await
        .unwrap();
    assert_eq!(kv.live_generation().await.unwrap(), report.to);
    assert_eq!(kv.entries(), expected);
    assert!(letters.list("balances").await.unwrap().is_empty());

    // Under the halt policy, the wrong key halts the rebuild, and the right
    // one resumes it to the end.
    let halted = runner(&store, &kv, &wrong, &letters).rebuild().run().await;
    assert!(
        matches!(
            halted,
            Err(RebuildError::Runner(RunnerError::Halted { .. }))
        ),
        "{halted:?}"
    );
    runner(&store, &kv, &crypto, &letters)
        .rebuild()
        .run()
        .await
        .unwrap();
    assert_eq!(kv.entries(), expected);
    assert!(letters.list("balances").await.unwrap().is_empty());

    // Accepted explicitly: switched, and the letters are the live record.
    let accepted = runner(&store, &kv, &wrong, &letters)
        .with_options(skip)
        .rebuild()
        .restart(true)
        .accept_dead_letters(true)
        .run()
        .await
        .unwrap();
    assert_eq!(kv.live_generation().await.unwrap(), accepted.to);
    let kept = letters.list("balances").await.unwrap();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().all(|l| !l.replay));
}

#[tokio::test]
async fn forgetting_a_subject_purges_its_keys() {
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
    let kv = MemoryKv::new();
    let mut r = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    drain(&mut r).await.unwrap();
    assert_eq!(kv.get("account-x:owner").as_deref(), Some(canary));

    crypto.forget(&store, &owner).await.unwrap();
    drain(&mut r).await.unwrap();
    assert!(
        kv.entries()
            .iter()
            .all(|(k, v)| !k.contains(canary) && !v.contains(canary)),
        "{:?}",
        kv.entries()
    );
    assert_eq!(
        kv.get("account-x:balance").as_deref(),
        Some("20"),
        "non-personal data stays"
    );
    assert_eq!(kv.get("account-y:owner").as_deref(), Some("Keep"));

    // A rebuild from scratch after the forget never sees the name either.
    let fresh = MemoryKv::new();
    let mut rebuild = runner(&store, &fresh, &crypto, &MemoryDeadLetters::new());
    drain(&mut rebuild).await.unwrap();
    assert_eq!(fresh.entries(), kv.entries());
}

#[tokio::test]
async fn a_second_runner_on_the_same_checkpoint_is_fenced() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let expected = workload(&repo(&store, &crypto), 2, 8).await;
    let kv = MemoryKv::new();
    let mut a = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    let mut b = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    a.step().await.unwrap();
    b.step().await.unwrap(); // b loaded a's checkpoint and moved on from it
    let err = a.step().await.unwrap_err();
    assert!(matches!(err, RunnerError::Fenced { .. }), "{err:?}");
    drain(&mut b).await.unwrap();
    assert_eq!(kv.entries(), expected, "no batch applied twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_your_writes_waits_for_the_commands_checkpoint() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    let repo = repo(&store, &crypto);
    let kv = MemoryKv::new();
    let r = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    let progress = r.progress();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(r.run(es_core::PollEvery(Duration::from_millis(5)), async {
        let _ = stopped.await;
    }));
    repo.execute("w", Command::Open(SubjectId::new("o").unwrap(), "O".into()))
        .await
        .unwrap();
    let done = repo.execute("w", Command::Deposit(42)).await.unwrap();
    progress
        .wait_for(done.checkpoint.unwrap(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(kv.get("account-w:balance").as_deref(), Some("42"));

    stop.send(()).unwrap();
    let runner = task.await.unwrap().unwrap();
    assert_eq!(runner.checkpoint(), done.checkpoint, "graceful shutdown");

    // Nobody is running now: waiting for a later write times out.
    let later = repo.execute("w", Command::Deposit(1)).await.unwrap();
    assert!(
        progress
            .wait_for(later.checkpoint.unwrap(), Duration::from_millis(50))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn lag_in_events_falls_to_zero_as_the_runner_catches_up() {
    let (store, crypto) = (MemoryStore::new(), crypto());
    workload(&repo(&store, &crypto), 2, 10).await; // 22 events
    let kv = MemoryKv::new();
    let mut r = runner(&store, &kv, &crypto, &MemoryDeadLetters::new());
    assert_eq!(r.lag_events().await.unwrap(), 22);
    r.step().await.unwrap(); // a batch of 7
    assert_eq!(r.lag_events().await.unwrap(), 15);
    drain(&mut r).await.unwrap();
    assert_eq!(r.lag_events().await.unwrap(), 0);
}
