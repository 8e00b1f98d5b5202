//! The repository against `MemoryStore`: commands, rejections, retries,
//! idempotency, snapshots, temporal queries and bad stored data.

use std::time::Duration;

use chrono::Utc;
use es_core::testing::given;
use es_core::{
    AppendRequest, AsOf, Bincode, Codec, CommandError, CommandOptions, Error, EventId, EventStore,
    ExpectedVersion, IdempotencyKey, Json, MemoryStore, Metadata, NewEvent, Repository,
    RetryPolicy, Snapshot, SnapshotStore, Storage, StreamVersion,
};
use es_core::{ForgetOutcome, KeyStore, Personal, StoredKey, SubjectId};
use futures::future::join_all;

use crate::domain::{Account, AccountCommand, AccountError, AccountEvent, open};

type Repo = Repository<Account, MemoryStore>;

fn repo() -> Repo {
    with_crypto(Repository::new(MemoryStore::new()))
}

fn with_crypto<S: Storage, C: Codec>(repo: Repository<Account, S, C>) -> Repository<Account, S, C> {
    // One fixed key: repositories sharing a store must share the master key.
    let master =
        es_core::MasterKey::parse("test:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
    repo.with_crypto(std::sync::Arc::new(es_core::Crypto::new(
        es_core::MasterKeyring::new(master),
    )))
}

fn deposit(amount: u64) -> AccountCommand {
    AccountCommand::Deposit { amount }
}

#[test]
fn given_when_then_reads_like_the_domain() {
    let ada = SubjectId::new("owner-ada").unwrap();
    given::<Account>([])
        .when(open("ada"))
        .then([AccountEvent::Opened {
            owner_id: ada.clone(),
            owner_name: Personal::new(ada.clone(), "ada".into()),
        }]);
    let opened = AccountEvent::Opened {
        owner_id: ada.clone(),
        owner_name: Personal::new(ada, "n".into()),
    };
    given::<Account>([opened.clone()])
        .when(AccountCommand::Withdraw { amount: 1 })
        .then_error(AccountError::InsufficientFunds);
    given::<Account>([opened])
        .when(deposit(0))
        .then_error_matches(|e| *e == AccountError::NonPositiveAmount);
}

#[tokio::test]
async fn executes_and_loads() {
    let repo = repo();
    let done = repo.execute("a1", open("ada")).await.unwrap();
    assert_eq!(done.version, StreamVersion::new(1));
    assert_eq!(done.events.len(), 1);
    assert!(done.checkpoint.is_some());
    repo.execute("a1", deposit(70)).await.unwrap();
    let done = repo
        .execute("a1", AccountCommand::Withdraw { amount: 20 })
        .await
        .unwrap();
    assert_eq!(done.version, StreamVersion::new(3));
    let loaded = repo.load("a1").await.unwrap();
    assert_eq!(loaded.state.balance, 50);
    assert_eq!(loaded.version, StreamVersion::new(3));
    assert_eq!(loaded.stream_id.as_str(), "account-a1");
}

#[tokio::test]
async fn business_rejection_is_typed_and_writes_nothing() {
    let repo = repo();
    repo.execute("a1", open("ada")).await.unwrap();
    let err = repo
        .execute("a1", AccountCommand::Withdraw { amount: 1 })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        CommandError::Rejected(AccountError::InsufficientFunds)
    ));
    assert_eq!(
        repo.load("a1").await.unwrap().version,
        StreamVersion::new(1)
    );
}

#[tokio::test]
async fn malformed_aggregate_ids_are_rejected_before_the_store() {
    let repo = repo();
    for bad in ["", "a\nb", &"x".repeat(300)] {
        let err = repo.execute(bad, open("ada")).await.unwrap_err();
        assert!(
            matches!(err, CommandError::Store(Error::InvalidId { .. })),
            "{err:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_all_succeed_through_retries() {
    let repo = repo().with_retry(RetryPolicy {
        max_retries: 50,
        base_delay: Duration::from_micros(100),
        max_delay: Duration::from_millis(5),
    });
    repo.execute("hot", open("ada")).await.unwrap();
    let tasks = (1..=8u64).map(|i| {
        let repo = repo.clone();
        tokio::spawn(async move { repo.execute("hot", deposit(i)).await })
    });
    let results = join_all(tasks).await;
    for r in results {
        r.unwrap().unwrap();
    }
    let loaded = repo.load("hot").await.unwrap();
    assert_eq!(loaded.state.balance, (1..=8).sum::<u64>());
    assert_eq!(loaded.version, StreamVersion::new(9));
}

/// Commands for one aggregate through one repository (and its clones) take
/// turns in the process instead of racing: with no retries at all, none of
/// 64 concurrent commands on one account meets a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_on_one_aggregate_in_one_process_take_turns() {
    let repo = repo().with_retry(RetryPolicy::none());
    repo.execute("queued", open("ada")).await.unwrap();
    let tasks = (1..=64u64).map(|i| {
        let repo = repo.clone();
        tokio::spawn(async move { repo.execute("queued", deposit(i)).await })
    });
    for result in join_all(tasks).await {
        let done = result.unwrap().unwrap();
        assert_eq!(done.retries, 0);
    }
    let loaded = repo.load("queued").await.unwrap();
    assert_eq!(loaded.state.balance, (1..=64).sum::<u64>());
}

#[tokio::test]
async fn without_retries_a_stale_write_surfaces_a_conflict() {
    // A store that moves the stream on between the repository's load and append.
    let store = MemoryStore::new();
    let repo: Repo = with_crypto(Repository::new(store.clone())).with_retry(RetryPolicy::none());
    repo.execute("a", open("ada")).await.unwrap();
    let racing: Repository<Account, Interloper> =
        with_crypto(Repository::new(Interloper::armed(store.clone())))
            .with_retry(RetryPolicy::none());
    let err = racing.execute("a", deposit(5)).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    match err {
        CommandError::Store(Error::Conflict {
            expected, actual, ..
        }) => {
            assert_eq!(expected, ExpectedVersion::Exact(StreamVersion::new(1)));
            assert_eq!(actual, StreamVersion::new(2));
        }
        other => panic!("{other:?}"),
    }
    // With retries, the same race resolves.
    let retrying: Repository<Account, Interloper> =
        with_crypto(Repository::new(Interloper::armed(store))).with_retry(RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_micros(10),
            max_delay: Duration::from_micros(100),
        });
    let done = retrying.execute("a", deposit(5)).await.unwrap();
    assert_eq!(done.retries, 1);
}

/// Appends one foreign event just before the first exact-version append that
/// passes through it, to force exactly one conflict.
#[derive(Clone)]
struct Interloper {
    inner: MemoryStore,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Interloper {
    fn armed(inner: MemoryStore) -> Self {
        Self {
            inner,
            armed: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }
}

impl EventStore for Interloper {
    async fn append(&self, request: AppendRequest) -> Result<es_core::AppendResult, Error> {
        if let ExpectedVersion::Exact(v) = request.expected
            && self.armed.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            let foreign = NewEvent::encode(
                &AccountEvent::Deposited {
                    amount: 1,
                    reference: "interloper".into(),
                },
                &Bincode,
                Metadata::now(),
            )?;
            self.inner
                .append(AppendRequest::new(
                    request.stream.clone(),
                    ExpectedVersion::Exact(v),
                    vec![foreign],
                ))
                .await?;
        }
        self.inner.append(request).await
    }
    async fn read_stream(
        &self,
        stream: &es_core::StreamId,
        after: StreamVersion,
        limit: usize,
    ) -> Result<Vec<es_core::RecordedEvent>, Error> {
        self.inner.read_stream(stream, after, limit).await
    }
    async fn read_all(
        &self,
        after: es_core::Checkpoint,
        limit: usize,
    ) -> Result<Vec<es_core::RecordedEvent>, Error> {
        self.inner.read_all(after, limit).await
    }
    async fn stream_version(&self, stream: &es_core::StreamId) -> Result<StreamVersion, Error> {
        self.inner.stream_version(stream).await
    }
    async fn idempotent_result(
        &self,
        stream: &es_core::StreamId,
        key: &IdempotencyKey,
    ) -> Result<Option<es_core::IdempotentRecord>, Error> {
        self.inner.idempotent_result(stream, key).await
    }
}

impl KeyStore for Interloper {
    async fn load_keys(&self, subjects: &[SubjectId]) -> Result<Vec<StoredKey>, Error> {
        self.inner.load_keys(subjects).await
    }
    async fn create(&self, key: StoredKey, replace_forgotten: bool) -> Result<StoredKey, Error> {
        self.inner.create(key, replace_forgotten).await
    }
    async fn forget(
        &self,
        subject: &SubjectId,
        event: AppendRequest,
    ) -> Result<ForgetOutcome, Error> {
        self.inner.forget(subject, event).await
    }
    async fn keys_to_rewrap(&self, master: &str, limit: usize) -> Result<Vec<StoredKey>, Error> {
        self.inner.keys_to_rewrap(master, limit).await
    }
    async fn rewrap(&self, old: &StoredKey, wrapped: Vec<u8>, master: &str) -> Result<bool, Error> {
        self.inner.rewrap(old, wrapped, master).await
    }
}

impl SnapshotStore for Interloper {
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<(), Error> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(
        &self,
        stream: &es_core::StreamId,
        schema_version: u32,
    ) -> Result<Option<Snapshot>, Error> {
        self.inner.load_snapshot(stream, schema_version).await
    }
}

#[tokio::test]
async fn idempotent_retry_returns_the_original_and_writes_nothing() {
    let repo = repo();
    repo.execute("a", open("ada")).await.unwrap();
    let key = IdempotencyKey::new("deposit-2026-11-21-001").unwrap();
    let options = CommandOptions::idempotent(key.clone());
    let first = repo
        .execute_with("a", deposit(30), options.clone())
        .await
        .unwrap();
    assert!(!first.deduplicated);
    let again = repo
        .execute_with("a", deposit(30), options.clone())
        .await
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.version, first.version);
    assert_eq!(again.positions, first.positions);
    assert_eq!(again.events, first.events);
    assert_eq!(repo.load("a").await.unwrap().state.balance, 30);

    let reused = repo
        .execute_with("a", deposit(31), options)
        .await
        .unwrap_err();
    assert!(
        matches!(
            reused,
            CommandError::Store(Error::IdempotencyKeyReused { .. })
        ),
        "{reused:?}"
    );
    assert_eq!(repo.load("a").await.unwrap().state.balance, 30);

    // The key is recorded in the events' metadata.
    let stream = Repo::stream_id("a").unwrap();
    let stored = repo
        .store()
        .read_stream(&stream, StreamVersion::new(1), 10)
        .await
        .unwrap();
    assert_eq!(stored[0].metadata.idempotency_key.as_ref(), Some(&key));
}

#[tokio::test]
async fn idempotent_retry_is_not_rejected_by_a_changed_state() {
    // The first withdrawal empties the account; its retry must return the first
    // result, not "insufficient funds".
    let repo = repo();
    repo.execute("a", open("ada")).await.unwrap();
    repo.execute("a", deposit(10)).await.unwrap();
    let options = CommandOptions::idempotent(IdempotencyKey::new("w-1").unwrap());
    let withdraw = AccountCommand::Withdraw { amount: 10 };
    repo.execute_with("a", withdraw.clone(), options.clone())
        .await
        .unwrap();
    let again = repo.execute_with("a", withdraw, options).await.unwrap();
    assert!(again.deduplicated);
}

#[tokio::test]
async fn metadata_is_recorded_with_every_event() {
    let repo = repo();
    let correlation = uuid::Uuid::now_v7();
    let mut options = CommandOptions {
        correlation_id: Some(correlation),
        ..CommandOptions::default()
    };
    options.headers.insert("tenant".into(), "acme".into());
    repo.execute_with("a", open("ada"), options).await.unwrap();
    let stored = repo
        .store()
        .read_stream(&Repo::stream_id("a").unwrap(), StreamVersion::INITIAL, 10)
        .await
        .unwrap();
    assert_eq!(stored[0].metadata.correlation_id, Some(correlation));
    assert_eq!(stored[0].metadata.headers["tenant"], "acme");
    assert_eq!(stored[0].event_type, "Opened");
}

#[tokio::test]
async fn snapshots_follow_the_policy_and_load_like_a_full_replay() {
    let store = MemoryStore::new();
    let repo: Repo = with_crypto(Repository::new(store.clone()));
    repo.execute("s", open("ada")).await.unwrap();
    for i in 1..=11 {
        repo.execute("s", deposit(i)).await.unwrap();
    }
    // 12 events, snapshot every 5: the latest snapshot is at version 10.
    let stream = Repo::stream_id("s").unwrap();
    let snap = store.load_snapshot(&stream, 1).await.unwrap().unwrap();
    assert_eq!(snap.version, StreamVersion::new(10));
    let with_snapshot = repo.load("s").await.unwrap();
    // Full replay: the same events in a store without the snapshot.
    let bare = MemoryStore::new();
    let events = store
        .read_stream(&stream, StreamVersion::INITIAL, 100)
        .await
        .unwrap();
    bare.append(AppendRequest::new(
        stream.clone(),
        ExpectedVersion::NoStream,
        events
            .into_iter()
            .map(|e| NewEvent {
                event_id: e.event_id,
                event_type: e.event_type,
                schema_version: e.schema_version,
                payload: e.payload,
                metadata: e.metadata,
            })
            .collect(),
    ))
    .await
    .unwrap();
    let replayed = with_crypto(Repo::new(bare)).load("s").await.unwrap();
    assert_eq!(with_snapshot.state, replayed.state);
    assert_eq!(with_snapshot.version, replayed.version);
}

#[tokio::test]
async fn undecodable_or_foreign_snapshots_are_ignored() {
    let store = MemoryStore::new();
    let repo: Repo = with_crypto(Repository::new(store.clone()));
    repo.execute("s", open("ada")).await.unwrap();
    repo.execute("s", deposit(5)).await.unwrap();
    let stream = Repo::stream_id("s").unwrap();
    // Garbage under the current schema version: ignored, not mis-decoded.
    store
        .save_snapshot(Snapshot {
            stream_id: stream.clone(),
            version: StreamVersion::new(2),
            schema_version: 1,
            payload: vec![0xFF; 3],
            taken_at: Utc::now(),
        })
        .await
        .unwrap();
    let loaded = repo.load("s").await.unwrap();
    assert_eq!(loaded.state.balance, 5);
    assert_eq!(loaded.state.events_applied, 2, "rebuilt from the events");
    // A well-formed snapshot of another schema version: never consulted.
    let lying = Account {
        balance: 1_000_000,
        ..Account::default()
    };
    store
        .save_snapshot(Snapshot {
            stream_id: stream,
            version: StreamVersion::new(2),
            schema_version: 9,
            payload: Bincode.encode(&lying).unwrap(),
            taken_at: Utc::now(),
        })
        .await
        .unwrap();
    assert_eq!(repo.load("s").await.unwrap().state.balance, 5);
}

#[tokio::test]
async fn temporal_queries_load_past_states() {
    let repo = repo();
    repo.execute("t", open("ada")).await.unwrap();
    for i in 1..=7 {
        repo.execute("t", deposit(i * 10)).await.unwrap();
    }
    let at3 = repo
        .load_as_of("t", AsOf::Version(StreamVersion::new(3)))
        .await
        .unwrap();
    assert_eq!(at3.version, StreamVersion::new(3));
    assert_eq!(at3.state.balance, 30);
    // Version 7 is after the snapshot at 5: snapshot + tail up to 7.
    let at7 = repo
        .load_as_of("t", AsOf::Version(StreamVersion::new(7)))
        .await
        .unwrap();
    assert_eq!(at7.state.balance, 210);
    let beyond = repo
        .load_as_of("t", AsOf::Version(StreamVersion::new(99)))
        .await
        .unwrap();
    assert_eq!(beyond.version, StreamVersion::new(8));

    let cut = Utc::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    repo.execute("t", deposit(1)).await.unwrap();
    let then = repo.load_as_of("t", AsOf::Time(cut)).await.unwrap();
    assert_eq!(then.version, StreamVersion::new(8));
    assert_eq!(then.state.balance, 280);
    let before_anything = repo
        .load_as_of("t", AsOf::Time(cut - chrono::Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(before_anything.version, StreamVersion::INITIAL);
}

async fn append_raw(
    store: &MemoryStore,
    id: &str,
    event_type: &str,
    version: u32,
    payload: Vec<u8>,
) {
    store
        .append(AppendRequest::new(
            Repo::stream_id(id).unwrap(),
            ExpectedVersion::Any,
            vec![NewEvent {
                event_id: EventId::new(),
                event_type: event_type.into(),
                schema_version: version,
                payload,
                metadata: Metadata::now(),
            }],
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn bad_stored_events_are_typed_errors() {
    let store = MemoryStore::new();
    let repo: Repo = with_crypto(Repository::new(store.clone()));

    append_raw(&store, "garbage", "Withdrawn", 1, vec![0xFF, 0xFF, 0xFF]).await;
    let err = repo.load("garbage").await.unwrap_err();
    assert!(matches!(err, Error::Codec { op: "decoded", .. }), "{err:?}");
    assert!(err.to_string().contains("Withdrawn v1"), "{err}");

    append_raw(&store, "unknown", "Teleported", 1, vec![]).await;
    let err = repo.load("unknown").await.unwrap_err();
    assert!(
        matches!(&err, Error::UnknownEventType { event_type } if event_type == "Teleported"),
        "{err:?}"
    );

    append_raw(&store, "future", "Deposited", 3, vec![]).await;
    let err = repo.load("future").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownSchemaVersion {
                schema_version: 3,
                current: 2,
                ..
            }
        ),
        "{err:?}"
    );

    // Nothing was lost: the bad events are still there to be fixed or upcast.
    let kept = store
        .read_stream(
            &Repo::stream_id("garbage").unwrap(),
            StreamVersion::INITIAL,
            10,
        )
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
}

#[tokio::test]
async fn old_schema_versions_load_through_upcasters_in_both_codecs() {
    // Bincode
    let store = MemoryStore::new();
    let repo = with_crypto(Repo::new(store.clone()));
    repo.execute("old", open("ada")).await.unwrap();
    append_raw(
        &store,
        "old",
        "Deposited",
        1,
        Bincode
            .encode(&crate::domain::DepositedV1 { amount: 42 })
            .unwrap(),
    )
    .await;
    let loaded = repo.load("old").await.unwrap();
    assert_eq!(loaded.state.balance, 42);

    // JSON
    let store = MemoryStore::new();
    let json_repo: Repository<Account, MemoryStore, Json> =
        with_crypto(Repository::with_codec(store.clone(), Json));
    json_repo.execute("old", open("ada")).await.unwrap();
    append_raw(&store, "old", "Deposited", 1, br#"{"amount":42}"#.to_vec()).await;
    let loaded = json_repo.load("old").await.unwrap();
    assert_eq!(loaded.state.balance, 42);
}

/// A repository with a state cache beside writers without one, on the same
/// accounts: every command lands exactly once, the cached one never decides
/// on a stale state (an overdraft it would allow is refused), and the totals
/// equal a full replay.
#[tokio::test]
async fn a_state_cache_stays_correct_beside_other_writers() {
    let store = MemoryStore::new();
    let cached = with_crypto(Repository::<Account, _>::new(store.clone())).with_cache(100);
    let plain = with_crypto(Repository::<Account, _>::new(store.clone()));
    for a in ["a", "b", "c"] {
        plain.execute(a, open(a)).await.unwrap();
        cached.execute(a, deposit(100)).await.unwrap();
    }
    let mut expected = std::collections::HashMap::from([("a", 100u64), ("b", 100), ("c", 100)]);
    // A fixed pseudo-random interleaving of deposits and withdrawals.
    let mut seed = 0x2545_f491_u64;
    for _ in 0..300 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let account = ["a", "b", "c"][(seed % 3) as usize];
        let amount = seed % 50 + 1;
        let repo = if seed % 5 < 2 { &plain } else { &cached };
        let command = if seed.is_multiple_of(2) {
            deposit(amount)
        } else {
            AccountCommand::Withdraw { amount }
        };
        let balance = expected.get_mut(account).unwrap();
        match repo.execute(account, command.clone()).await {
            Ok(_) => match command {
                AccountCommand::Deposit { amount } => *balance += amount,
                AccountCommand::Withdraw { amount } => *balance -= amount,
                _ => unreachable!(),
            },
            Err(CommandError::Rejected(AccountError::InsufficientFunds)) => {
                assert!(
                    matches!(command, AccountCommand::Withdraw { amount } if amount > *balance)
                );
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    for (account, balance) in expected {
        assert_eq!(
            plain.load(account).await.unwrap().state.balance,
            balance,
            "{account}"
        );
    }
}

/// A refusal appends nothing, so no expected version checks the state it was
/// decided on: a cached state that another writer has moved on from must not
/// refuse what the latest state allows.
#[tokio::test]
async fn a_stale_cached_state_never_refuses_what_the_latest_allows() {
    let store = MemoryStore::new();
    let cached = with_crypto(Repository::<Account, _>::new(store.clone()));
    let other = with_crypto(Repository::<Account, _>::new(store.clone())).without_cache();
    cached.execute("a", open("ada")).await.unwrap();
    // The cached state says 0; the store says 100.
    other.execute("a", deposit(100)).await.unwrap();
    cached
        .execute("a", AccountCommand::Withdraw { amount: 60 })
        .await
        .expect("decided on the latest state, not the cached one");
    // And a refusal the latest state does call for is still a refusal.
    let refused = cached
        .execute("a", AccountCommand::Withdraw { amount: 60 })
        .await
        .unwrap_err();
    assert!(refused.is_rejected(), "{refused:?}");
    assert_eq!(cached.load("a").await.unwrap().state.balance, 40);
}

/// Forgetting a subject through the repository's `Crypto` drops the cached
/// states that may hold its opened personal data.
#[tokio::test]
async fn forgetting_drops_the_cached_states() {
    let store = MemoryStore::new();
    let cached = with_crypto(Repository::<Account, _>::new(store.clone())).with_cache(100);
    cached.execute("a", open("ada")).await.unwrap();
    let crypto = cached.crypto().unwrap().clone();
    let before = crypto.forget_epoch();
    crypto
        .forget(&store, &SubjectId::new("owner-ada").unwrap())
        .await
        .unwrap();
    assert!(crypto.forget_epoch() > before);
    // The next command reloads (the cached state was invalidated) and works.
    cached.execute("a", deposit(5)).await.unwrap();
    assert_eq!(cached.load("a").await.unwrap().state.balance, 5);
}
