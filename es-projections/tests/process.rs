//! Process managers on the runner: every event reacted to once in effect,
//! whatever fails between the reactions and the checkpoint; replays never
//! react; a process manager refuses to be rebuilt.

#[path = "common/accounts.rs"]
#[allow(dead_code)]
mod accounts;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use accounts::{Account, AccountEvent, Command};
use es_core::{
    Aggregate, CommandError, CommandOptions, EventStore, MemoryDeadLetters, MemoryStore,
    Repository, StreamVersion,
};
use es_projections::{
    MemoryKv, ProcessManager, Reaction, ReactionError, Reactions, Reactor, Runner, RunnerError,
    Step,
};

/// A ledger entry per deposit: the saga's effect, counted by the ledger's
/// stream version.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
enum LedgerEvent {
    Noted { amount: i64 },
}

#[derive(Debug, Default, es_core::Aggregate)]
#[aggregate(name = "ledger")]
struct Ledger;

impl Aggregate for Ledger {
    type Command = i64;
    type Event = LedgerEvent;
    type Error = std::convert::Infallible;

    fn handle(&self, amount: i64) -> Result<Vec<LedgerEvent>, Self::Error> {
        Ok(vec![LedgerEvent::Noted { amount }])
    }

    fn apply(&mut self, _: &LedgerEvent) {}
}

/// Notes every deposit in the ledger, keyed by the deposit event.
struct Mirror {
    ledger: Repository<Ledger, MemoryStore>,
    reactions: AtomicU32,
}

impl ProcessManager for Mirror {
    type Event = AccountEvent;

    fn name(&self) -> &str {
        "mirror"
    }

    fn stream_prefix(&self) -> Option<&str> {
        Some("account-")
    }

    async fn react(&self, event: &AccountEvent, reaction: &Reaction) -> Result<(), ReactionError> {
        self.reactions.fetch_add(1, Ordering::SeqCst);
        if let AccountEvent::Deposited { amount } = event {
            self.ledger
                .execute_with(
                    "main",
                    *amount,
                    CommandOptions::idempotent(reaction.key("note")),
                )
                .await
                .map_err(|e| match e {
                    CommandError::Store(e) => ReactionError::from_store(&e),
                    CommandError::Rejected(never) => match never {},
                })?;
        }
        Ok(())
    }
}

struct Fixture {
    store: MemoryStore,
    mirror: Arc<Mirror>,
    checkpoints: MemoryKv,
}

async fn fixture(deposits: i64) -> Fixture {
    let store = MemoryStore::new();
    let accounts = Repository::<Account, _>::new(store.clone());
    for amount in 1..=deposits {
        accounts
            .execute(&format!("a{}", amount % 3), Command::Deposit(amount))
            .await
            .unwrap();
    }
    Fixture {
        mirror: Arc::new(Mirror {
            ledger: Repository::new(store.clone()),
            reactions: AtomicU32::new(0),
        }),
        checkpoints: MemoryKv::new(),
        store,
    }
}

impl Fixture {
    fn runner(&self) -> Runner<Reactions<Mirror, MemoryKv>, MemoryStore> {
        Runner::new(
            Reactions::new(Arc::clone(&self.mirror)),
            Reactor::new(Arc::clone(&self.mirror), self.checkpoints.clone()),
            self.store.clone(),
            Arc::new(MemoryDeadLetters::new()),
        )
    }

    /// The ledger's entries, in order.
    async fn ledger(&self) -> Vec<i64> {
        let stream = Repository::<Ledger, MemoryStore>::stream_id("main").unwrap();
        let records = self
            .store
            .read_stream(&stream, StreamVersion::INITIAL, 1000)
            .await
            .unwrap();
        self.mirror
            .ledger
            .decode_events(&records)
            .await
            .unwrap()
            .into_iter()
            .map(|LedgerEvent::Noted { amount }| amount)
            .collect()
    }
}

async fn drain(runner: &mut Runner<Reactions<Mirror, MemoryKv>, MemoryStore>) {
    while let Step::Committed { .. } = runner.step().await.unwrap() {}
}

#[tokio::test]
async fn every_event_is_reacted_to_once() {
    let fx = fixture(7).await;
    drain(&mut fx.runner()).await;
    assert_eq!(fx.ledger().await, (1..=7).collect::<Vec<_>>());
    // The ledger's own events are not the saga's: a second pass does nothing.
    drain(&mut fx.runner()).await;
    assert_eq!(fx.ledger().await.len(), 7);
}

#[tokio::test]
async fn a_failed_checkpoint_redelivers_and_the_keys_absorb_it() {
    let fx = fixture(5).await;
    // The reactions run, then the checkpoint's commit fails twice: the
    // runner delivers the batch again each time.
    fx.checkpoints.fail_next_commits(2);
    drain(&mut fx.runner()).await;
    assert!(
        fx.mirror.reactions.load(Ordering::SeqCst) >= 15,
        "the batch was not redelivered: {} reactions",
        fx.mirror.reactions.load(Ordering::SeqCst)
    );
    assert_eq!(fx.ledger().await, (1..=5).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_lost_acknowledgement_is_read_back_not_redone() {
    let fx = fixture(4).await;
    fx.checkpoints.lose_next_acks(1);
    drain(&mut fx.runner()).await;
    assert_eq!(fx.ledger().await, (1..=4).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_crash_between_reactions_and_checkpoint_moves_nothing_twice() {
    let fx = fixture(6).await;
    {
        // A runner whose checkpoint never commits reacts and "crashes".
        fx.checkpoints.fail_next_commits(u32::MAX);
        let mut crashed = fx.runner();
        let step =
            tokio::time::timeout(std::time::Duration::from_millis(300), crashed.step()).await;
        assert!(
            step.is_err() || step.unwrap().is_err(),
            "the commit could not succeed"
        );
        fx.checkpoints.fail_next_commits(0);
    }
    assert!(fx.mirror.reactions.load(Ordering::SeqCst) >= 6);
    drain(&mut fx.runner()).await;
    assert_eq!(fx.ledger().await, (1..=6).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_process_manager_cannot_be_rebuilt() {
    let fx = fixture(3).await;
    drain(&mut fx.runner()).await;
    let before = fx.mirror.reactions.load(Ordering::SeqCst);
    let rebuilt = fx.runner().rebuild().run().await;
    assert!(
        matches!(
            rebuilt,
            Err(es_projections::RebuildError::NotRebuildable { .. })
        ),
        "the rebuild must be refused: {rebuilt:?}"
    );
    // Refused before building: no second generation was started.
    assert_eq!(
        es_core::Generations::generations(&fx.checkpoints)
            .await
            .unwrap(),
        vec![1]
    );
    // The replay reacted to nothing, and the ledger is unchanged.
    assert_eq!(fx.mirror.reactions.load(Ordering::SeqCst), before);
    assert_eq!(fx.ledger().await, vec![1, 2, 3]);
    // The live checkpoint still runs: new events are reacted to.
    Repository::<Account, _>::new(fx.store.clone())
        .execute("a9", Command::Deposit(40))
        .await
        .unwrap();
    drain(&mut fx.runner()).await;
    assert_eq!(fx.ledger().await, vec![1, 2, 3, 40]);
}

#[tokio::test]
async fn a_failed_reaction_halts_at_its_batch() {
    struct Broken;
    impl ProcessManager for Broken {
        type Event = AccountEvent;
        fn name(&self) -> &str {
            "broken"
        }
        async fn react(&self, _: &AccountEvent, _: &Reaction) -> Result<(), ReactionError> {
            Err(ReactionError::Failed("cannot handle it".into()))
        }
    }
    let fx = fixture(2).await;
    let broken = Arc::new(Broken);
    let checkpoints = MemoryKv::new();
    let letters = MemoryDeadLetters::new();
    let mut runner = Runner::new(
        Reactions::new(Arc::clone(&broken)),
        Reactor::new(broken, checkpoints.clone()),
        fx.store.clone(),
        Arc::new(letters.clone()),
    );
    // The reaction that fails for good is found and dead-lettered, and the
    // process manager halts before it: visible, and retried by an operator.
    match runner.step().await {
        Err(RunnerError::Halted { error, .. }) => assert!(error.contains("cannot handle it")),
        other => panic!("expected a halt, got {other:?}"),
    }
    let dead = es_core::DeadLetters::list(&letters, "broken")
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        es_core::Sink::checkpoint(&checkpoints, "broken")
            .await
            .unwrap(),
        None
    );
}

#[test]
fn reaction_keys_are_stable_and_distinct() {
    let meta = |n: u64| es_projections::EventMeta {
        stream_id: es_core::StreamId::new("account-a").unwrap(),
        version: StreamVersion::INITIAL.next(),
        position: es_core::Position::new(n),
        checkpoint: es_core::Checkpoint::START,
        event_id: es_core::EventId::new(),
        metadata: es_core::Metadata::now(),
        replaying: false,
    };
    let (a, b) = (meta(1), meta(2));
    let ra = Reaction::new("saga", a.clone());
    assert_eq!(
        ra.key("debit"),
        Reaction::new("saga", a.clone()).key("debit")
    );
    assert_ne!(ra.key("debit"), ra.key("credit"));
    assert_ne!(ra.key("debit"), Reaction::new("saga", b).key("debit"));
    assert_ne!(ra.key("debit"), Reaction::new("other", a).key("debit"));
}
