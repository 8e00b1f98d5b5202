//! Properties: replay determinism, snapshot + tail equals full replay, codec round
//! trips in both codecs, and upcasting.

use std::sync::Arc;

use es_core::{
    Aggregate, AppendRequest, Bincode, Codec, Crypto, Event, EventId, ExpectedVersion, Json,
    MasterKey, MasterKeyring, MemoryStore, NewEvent, Personal, Repository, StreamVersion,
    SubjectId, decode_events, encode_events,
};
use proptest::prelude::*;

use crate::domain::{Account, AccountCommand, AccountEvent, DepositedV1};

fn any_event() -> impl Strategy<Value = AccountEvent> {
    prop_oneof![
        ("[a-z0-9-]{1,12}", ".{0,24}").prop_map(|(owner, name)| {
            let owner_id = SubjectId::new(owner).unwrap();
            AccountEvent::Opened {
                owner_name: Personal::new(owner_id.clone(), name),
                owner_id,
            }
        }),
        (any::<u64>(), ".{0,16}")
            .prop_map(|(amount, reference)| AccountEvent::Deposited { amount, reference }),
        any::<u64>().prop_map(|amount| AccountEvent::Withdrawn { amount }),
        Just(AccountEvent::Closed),
    ]
}

fn any_command() -> impl Strategy<Value = AccountCommand> {
    prop_oneof![
        1 => Just(crate::domain::open("p")),
        6 => (0u64..1_000).prop_map(|amount| AccountCommand::Deposit { amount }),
        4 => (0u64..1_500).prop_map(|amount| AccountCommand::Withdraw { amount }),
        1 => Just(AccountCommand::Close),
    ]
}

/// Events that an account could really have produced: open, then money moves
/// that never overdraw.
fn valid_history() -> impl Strategy<Value = Vec<AccountEvent>> {
    prop::collection::vec(any_command(), 0..60).prop_map(|commands| {
        let mut state = Account::default();
        let mut history = Vec::new();
        for command in std::iter::once(crate::domain::open("p")).chain(commands) {
            if let Ok(events) = state.handle(command) {
                for e in events {
                    state.apply(&e);
                    history.push(e);
                }
            }
        }
        history
    })
}

fn replay(events: &[AccountEvent]) -> Account {
    let mut state = Account::default();
    for e in events {
        state.apply(e);
    }
    state
}

fn crypto() -> Crypto {
    Crypto::new(MasterKeyring::new(MasterKey::generate("prop").unwrap()))
}

#[derive(Clone, Copy)]
enum Codecs {
    Bincode,
    Json,
}

impl Codecs {
    async fn round_trip(
        self,
        crypto: &Crypto,
        keys: &MemoryStore,
        id: EventId,
        event: &AccountEvent,
    ) -> AccountEvent {
        let (payload, event_type, version) = (
            match self {
                Codecs::Bincode => {
                    encode_events(Some(crypto), keys, &Bincode, &[(id, event)]).await
                }
                Codecs::Json => encode_events(Some(crypto), keys, &Json, &[(id, event)]).await,
            }
            .unwrap()
            .remove(0),
            event.event_type(),
            event.schema_version(),
        );
        let recorded = es_core::RecordedEvent {
            stream_id: es_core::StreamId::new("p").unwrap(),
            version: StreamVersion::new(1),
            position: es_core::Position::new(1),
            commit: es_core::CommitId::new(1),
            event_id: id,
            event_type: event_type.to_owned(),
            schema_version: version,
            payload,
            metadata: es_core::Metadata::now(),
        };
        match self {
            Codecs::Bincode => decode_events(Some(crypto), keys, &Bincode, &[recorded]).await,
            Codecs::Json => decode_events(Some(crypto), keys, &Json, &[recorded]).await,
        }
        .unwrap()
        .remove(0)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

proptest! {
    #[test]
    fn replaying_the_same_events_gives_the_same_state(events in valid_history()) {
        prop_assert_eq!(replay(&events), replay(&events));
    }

    #[test]
    fn event_round_trips_in_both_codecs(event in any_event()) {
        runtime().block_on(async {
            let keys = MemoryStore::new();
            let crypto = crypto();
            let id = EventId::new();
            for codec in [Codecs::Bincode, Codecs::Json] {
                let decoded = codec.round_trip(&crypto, &keys, id, &event).await;
                prop_assert_eq!(&decoded, &event);
            }
            Ok(())
        })?;
    }

    #[test]
    fn snapshot_round_trips_in_both_codecs(events in valid_history()) {
        // The account's state holds no personal data, so it encodes without a
        // crypto scope.
        let state = replay(&events);
        let via_bincode: Account = Bincode.decode(&Bincode.encode(&state).unwrap()).unwrap();
        let via_json: Account = Json.decode(&Json.encode(&state).unwrap()).unwrap();
        prop_assert_eq!(&via_bincode, &state);
        prop_assert_eq!(&via_json, &state);
    }

    #[test]
    fn upcast_of_a_v1_payload_equals_the_v2_value_built_by_hand(amount in any::<u32>()) {
        let by_hand = AccountEvent::Deposited { amount: u64::from(amount), reference: "unknown".into() };
        let v1 = DepositedV1 { amount };
        let from_bincode = AccountEvent::decode(&Bincode, "Deposited", 1, &Bincode.encode(&v1).unwrap()).unwrap();
        let from_json = AccountEvent::decode(&Json, "Deposited", 1, &Json.encode(&v1).unwrap()).unwrap();
        prop_assert_eq!(&from_bincode, &by_hand);
        prop_assert_eq!(&from_json, &by_hand);
    }

    #[test]
    fn snapshot_plus_tail_equals_full_replay(commands in prop::collection::vec(any_command(), 1..40)) {
        runtime().block_on(async {
            let store = MemoryStore::new();
            let crypto = Arc::new(crypto());
            let repo: Repository<Account, MemoryStore> =
                Repository::new(store.clone()).with_crypto(Arc::clone(&crypto));
            let _ = repo.execute("p", crate::domain::open("p")).await;
            for command in commands {
                let _ = repo.execute("p", command).await;
            }
            let loaded = repo.load("p").await.unwrap();

            // The same events replayed by hand from the log, no snapshot involved.
            let stream = Repository::<Account, MemoryStore>::stream_id("p").unwrap();
            let recorded = es_core::EventStore::read_stream(&store, &stream, StreamVersion::INITIAL, 10_000).await.unwrap();
            let events: Vec<AccountEvent> = decode_events(Some(&crypto), &store, &Bincode, &recorded).await.unwrap();
            prop_assert_eq!(&loaded.state, &replay(&events));
            prop_assert_eq!(loaded.version.get(), events.len() as u64);

            // And a copy of the log in a store with no snapshot at all.
            let bare = MemoryStore::new();
            let copies: Vec<NewEvent> = recorded.into_iter().map(|e| NewEvent {
                event_id: e.event_id, event_type: e.event_type, schema_version: e.schema_version,
                payload: e.payload, metadata: e.metadata,
            }).collect();
            es_core::EventStore::append(&bare, AppendRequest::new(stream, ExpectedVersion::NoStream, copies)).await.unwrap();
            // The copy has no keys: personal values load shredded, the state (which
            // holds none) is the same.
            let full = Repository::<Account, MemoryStore>::new(bare).with_crypto(crypto).load("p").await.unwrap();
            prop_assert_eq!(&loaded.state, &full.state);
            Ok(())
        })?;
    }
}

/// Applies key-value ops in order, as every sink must: the values and tags
/// after, or the index of the op that fails (and nothing changes).
type KvState = (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
);

fn apply_kv(mut state: KvState, ops: &[es_core::KvOp]) -> Result<KvState, usize> {
    use es_core::KvOp;
    for (index, op) in ops.iter().enumerate() {
        match op {
            KvOp::Set { key, value } => {
                state.0.insert(key.clone(), value.clone());
            }
            KvOp::Delete { key } => {
                state.0.remove(key);
            }
            KvOp::IncrBy { key, delta } => {
                let current = match state.0.get(key) {
                    Some(v) => v.parse::<i64>().map_err(|_| index)?,
                    None => 0,
                };
                let sum = current.checked_add(*delta).ok_or(index)?;
                state.0.insert(key.clone(), sum.to_string());
            }
            KvOp::Tag { subject, key } => {
                state
                    .1
                    .entry(subject.clone())
                    .or_default()
                    .insert(key.clone());
            }
            KvOp::Purge { subject } => {
                for key in state.1.remove(subject).unwrap_or_default() {
                    state.0.remove(&key);
                }
            }
        }
    }
    Ok(state)
}

fn any_kv_op() -> impl Strategy<Value = es_core::KvOp> {
    use es_core::KvOp;
    let key = prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned);
    let subject = prop::sample::select(vec!["s", "t"]).prop_map(str::to_owned);
    // Values near the limits, and some that are not integers.
    let value = prop_oneof![
        (-5i64..5).prop_map(|v| v.to_string()),
        Just(i64::MAX.to_string()),
        Just((i64::MIN + 1).to_string()),
        Just("x".to_owned()),
    ];
    let delta = prop_oneof![
        -5i64..5,
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX / 2 + 1)
    ];
    prop_oneof![
        (key.clone(), value).prop_map(|(key, value)| KvOp::Set { key, value }),
        key.clone().prop_map(|key| KvOp::Delete { key }),
        (key.clone(), delta).prop_map(|(key, delta)| KvOp::IncrBy { key, delta }),
        (subject.clone(), key).prop_map(|(subject, key)| KvOp::Tag { subject, key }),
        subject.prop_map(|subject| KvOp::Purge { subject }),
    ]
}

proptest! {
    /// A compacted batch has exactly the batch's effect, from any start, and
    /// fails exactly when the batch does.
    #[test]
    fn a_compacted_batch_has_the_same_effect(
        start in prop::collection::vec(any_kv_op(), 0..6),
        ops in prop::collection::vec(any_kv_op(), 0..40),
    ) {
        let Ok(initial) = apply_kv(KvState::default(), &start) else {
            return Ok(());
        };
        let mut batch = es_core::KvBatch::default();
        for op in &ops {
            match op.clone() {
                es_core::KvOp::Set { key, value } => batch.set(key, value),
                es_core::KvOp::Delete { key } => batch.delete(key),
                es_core::KvOp::IncrBy { key, delta } => batch.incr_by(key, delta),
                es_core::KvOp::Tag { subject, key } => batch.tag(subject, key),
                es_core::KvOp::Purge { subject } => batch.purge(subject),
            };
        }
        let compacted = batch.compacted();
        prop_assert!(compacted.ops().len() <= ops.len());
        let expected = apply_kv(initial.clone(), &ops);
        let actual = apply_kv(initial, compacted.ops());
        prop_assert_eq!(expected.is_ok(), actual.is_ok(), "failure differs: {:?} vs {:?}", ops, compacted);
        if let (Ok(expected), Ok(actual)) = (expected, actual) {
            prop_assert_eq!(expected, actual);
        }
    }
}
