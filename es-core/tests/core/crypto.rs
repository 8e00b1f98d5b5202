//! Crypto-shredding in memory: round trips with one and several subjects,
//! forgetting, tampering, rotation, wrong keys, snapshots, and properties.

use std::sync::Arc;

use es_core::testing::given;
use es_core::{
    Aggregate, AppendRequest, Bincode, Crypto, Error, EventStore, ExpectedVersion, ForgetOutcome,
    ForgottenSubjects, Json, MasterKey, MasterKeyring, MemoryStore, NewEvent, Personal,
    RecordedEvent, Repository, SnapshotStore, StreamVersion, SubjectId, SystemEvent,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A meeting of two people: one event carries personal data of two subjects.
#[derive(Debug, Clone, PartialEq, Eq, es_core::Event)]
pub(crate) enum ContactEvent {
    Met {
        #[event(subject)]
        a: SubjectId,
        #[event(personal(subject = a))]
        a_name: Personal<String>,
        #[event(subject)]
        b: SubjectId,
        #[event(personal(subject = b))]
        b_email: Personal<String>,
        #[event(personal(subject = b))]
        b_phone: Option<Personal<String>>,
        place: String,
    },
    Noted {
        note: String,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum ContactCommand {
    Meet {
        a: SubjectId,
        a_name: String,
        b: SubjectId,
        b_email: String,
    },
    Note(String),
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub(crate) struct Never;

/// Keeps the last names it saw: its snapshots carry personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "contact", snapshot_every = 2)]
pub(crate) struct Contact {
    a_name: Option<Personal<String>>,
    b_email: Option<Personal<String>>,
    notes: u32,
}

impl Aggregate for Contact {
    type Command = ContactCommand;
    type Event = ContactEvent;
    type Error = Never;

    fn handle(&self, command: ContactCommand) -> Result<Vec<ContactEvent>, Never> {
        Ok(vec![match command {
            ContactCommand::Meet {
                a,
                a_name,
                b,
                b_email,
            } => ContactEvent::Met {
                a_name: Personal::new(a.clone(), a_name),
                b_email: Personal::new(b.clone(), b_email),
                b_phone: Some(Personal::new(b.clone(), "+44 20 7946 0000".into())),
                a,
                b,
                place: "Bletchley".into(),
            },
            ContactCommand::Note(note) => ContactEvent::Noted { note },
        }])
    }

    fn apply(&mut self, event: &ContactEvent) {
        match event {
            ContactEvent::Met {
                a_name, b_email, ..
            } => {
                self.a_name = Some(a_name.clone());
                self.b_email = Some(b_email.clone());
            }
            ContactEvent::Noted { .. } => self.notes += 1,
        }
    }
}

const CANARY: &str = "Canary-Q7x9-Lovelace";

fn subject(id: &str) -> SubjectId {
    SubjectId::new(id).unwrap()
}

fn master(id: &str) -> MasterKey {
    MasterKey::generate(id).unwrap()
}

fn crypto_with(key: &MasterKey) -> Arc<Crypto> {
    Arc::new(Crypto::new(MasterKeyring::new(key.clone())))
}

type Repo = Repository<Contact, MemoryStore>;

fn meet(a_name: &str) -> ContactCommand {
    ContactCommand::Meet {
        a: subject("ada"),
        a_name: a_name.into(),
        b: subject("bob"),
        b_email: "bob@example.org".into(),
    }
}

async fn stored_events(store: &MemoryStore) -> Vec<RecordedEvent> {
    store
        .read_stream(
            &Repo::stream_id("c1").unwrap(),
            StreamVersion::INITIAL,
            1000,
        )
        .await
        .unwrap()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn debug_output_and_stray_serialization_never_show_personal_data() {
    let name = Personal::new(subject("ada"), CANARY.to_owned());
    assert!(!format!("{name:?}").contains(CANARY));
    let event = ContactEvent::Met {
        a: subject("ada"),
        a_name: name,
        b: subject("bob"),
        b_email: Personal::new(subject("bob"), CANARY.into()),
        b_phone: None,
        place: "x".into(),
    };
    assert!(!format!("{event:?}").contains(CANARY));
    assert!(serde_json::to_string(&event.clone().into_state()).is_err());
    let err = es_core::Event::encode(&event, &Json).unwrap_err();
    assert!(!err.to_string().contains(CANARY));
    given::<Contact>([]).when(meet(CANARY)).outcome().unwrap();
}

impl ContactEvent {
    fn into_state(self) -> Contact {
        let mut c = Contact::default();
        c.apply(&self);
        c
    }
}

#[tokio::test]
async fn round_trip_with_several_subjects_then_forget_one() {
    let store = MemoryStore::new();
    let key = master("m1");
    let crypto = crypto_with(&key);
    let repo = Repo::new(store.clone()).with_crypto(Arc::clone(&crypto));
    repo.execute("c1", meet(CANARY)).await.unwrap();

    // Stored: ciphertext only.
    for e in stored_events(&store).await {
        assert!(!contains(&e.payload, CANARY), "plaintext in the payload");
        assert!(!contains(&e.payload, "bob@example.org"));
    }
    let loaded = repo.load("c1").await.unwrap();
    assert_eq!(
        loaded
            .state
            .a_name
            .as_ref()
            .and_then(Personal::value)
            .map(String::as_str),
        Some(CANARY)
    );

    let outcome = crypto.forget(&store, &subject("ada")).await.unwrap();
    assert!(matches!(outcome, ForgetOutcome::Forgotten(_)));
    assert_eq!(
        crypto.forget(&store, &subject("ada")).await.unwrap(),
        ForgetOutcome::AlreadyForgotten
    );

    // The aggregate: Ada's name shredded, Bob's email intact.
    let loaded = repo.load("c1").await.unwrap();
    assert!(loaded.state.a_name.as_ref().unwrap().is_shredded());
    assert_eq!(
        loaded
            .state
            .b_email
            .as_ref()
            .unwrap()
            .value()
            .map(String::as_str),
        Some("bob@example.org")
    );
    // The event, read directly.
    let events = repo
        .decode_events(&stored_events(&store).await)
        .await
        .unwrap();
    let ContactEvent::Met {
        a_name,
        b_email,
        b_phone,
        place,
        ..
    } = &events[0]
    else {
        panic!("{:?}", events[0]);
    };
    assert!(a_name.is_shredded());
    assert_eq!(b_email.value().map(String::as_str), Some("bob@example.org"));
    assert!(b_phone.as_ref().unwrap().value().is_some());
    assert_eq!(place, "Bletchley", "non-personal fields are untouched");

    // The system event is in the global log for projections.
    let log = store
        .read_all(es_core::Checkpoint::START, 100)
        .await
        .unwrap();
    let forgotten: Vec<_> = log
        .iter()
        .filter_map(|e| SystemEvent::decode_recorded(e).unwrap())
        .collect();
    assert_eq!(
        forgotten,
        vec![SystemEvent::SubjectForgotten {
            subject: subject("ada")
        }]
    );
}

#[tokio::test]
async fn writing_for_a_forgotten_subject_is_refused_unless_readmitted() {
    let store = MemoryStore::new();
    let key = master("m1");
    let crypto = crypto_with(&key);
    let repo = Repo::new(store.clone()).with_crypto(Arc::clone(&crypto));
    repo.execute("c1", meet("first")).await.unwrap();
    crypto.forget(&store, &subject("ada")).await.unwrap();

    let err = repo.execute("c1", meet("second")).await.unwrap_err();
    assert!(
        matches!(err, es_core::CommandError::Store(Error::SubjectForgotten { ref subject }) if subject.as_str() == "ada"),
        "{err:?}"
    );
    assert!(
        !err.to_string().contains("ada"),
        "no subject id in the message"
    );

    let readmitting = Arc::new(
        Crypto::new(MasterKeyring::new(key)).with_forgotten_subjects(ForgottenSubjects::Readmit),
    );
    let repo = Repo::new(store.clone()).with_crypto(readmitting);
    repo.execute("c1", meet("second")).await.unwrap();
    let events = repo
        .decode_events(&stored_events(&store).await)
        .await
        .unwrap();
    let names: Vec<Option<String>> = events
        .iter()
        .filter_map(|e| match e {
            ContactEvent::Met { a_name, .. } => Some(a_name.value().cloned()),
            ContactEvent::Noted { .. } => None,
        })
        .collect();
    assert_eq!(
        names,
        vec![None, Some("second".to_owned())],
        "old data stays shredded"
    );
}

#[tokio::test]
async fn personal_data_without_crypto_is_refused() {
    let repo = Repo::new(MemoryStore::new());
    let err = repo.execute("c1", meet("x")).await.unwrap_err();
    assert!(
        matches!(
            err,
            es_core::CommandError::Store(Error::CryptoNotConfigured)
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("ES_MASTER_KEY"));
    // Events without personal data need no crypto.
    repo.execute("c2", ContactCommand::Note("n".into()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_personal_field_of_another_subject_is_refused() {
    let store = MemoryStore::new();
    let crypto = crypto_with(&master("m"));
    let event = ContactEvent::Met {
        a: subject("ada"),
        a_name: Personal::new(subject("mallory"), "x".into()),
        b: subject("bob"),
        b_email: Personal::new(subject("bob"), "y".into()),
        b_phone: None,
        place: String::new(),
    };
    let err = es_core::encode_events(
        Some(&crypto),
        &store,
        &Bincode,
        &[(es_core::EventId::new(), &event)],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::SubjectMismatch { path: "Met.a_name" }),
        "{err:?}"
    );
}

/// Appends one `Met` event and returns the stored record.
async fn one_event(repo: &Repo, store: &MemoryStore, id: &str) -> RecordedEvent {
    repo.execute(id, meet(CANARY)).await.unwrap();
    store
        .read_stream(&Repo::stream_id(id).unwrap(), StreamVersion::INITIAL, 1)
        .await
        .unwrap()
        .remove(0)
}

async fn decode(repo: &Repo, event: &RecordedEvent) -> Result<Vec<ContactEvent>, Error> {
    repo.decode_events(std::slice::from_ref(event)).await
}

/// The sealed fields of a stored `Met` event, as JSON envelopes.
fn envelopes(event: &RecordedEvent) -> serde_json::Value {
    serde_json::from_slice(&event.payload).unwrap()
}

#[tokio::test]
async fn tampering_is_a_typed_error_distinct_from_shredding() {
    let store = MemoryStore::new();
    let crypto = crypto_with(&master("m"));
    // JSON, so the test can edit fields by name.
    let repo: Repository<Contact, MemoryStore, Json> =
        Repository::with_codec(store.clone(), Json).with_crypto(crypto);
    let json = |repo: &Repository<Contact, MemoryStore, Json>| repo.clone();
    let repo = json(&repo);
    repo.execute("t1", meet(CANARY)).await.unwrap();
    repo.execute("t2", meet("other")).await.unwrap();
    let read = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .read_stream(&Repo::stream_id(id).unwrap(), StreamVersion::INITIAL, 1)
                .await
                .unwrap()
                .remove(0)
        }
    };
    let (e1, e2) = (read("t1").await, read("t2").await);
    let check = |event: RecordedEvent, what: &'static str| {
        let repo = repo.clone();
        async move {
            let err = repo.decode_events(&[event]).await.unwrap_err();
            assert!(matches!(err, Error::Tampered { .. }), "{what}: {err:?}");
            assert!(!err.to_string().contains(CANARY));
        }
    };

    // A flipped ciphertext byte.
    let mut v = envelopes(&e1);
    let ct = &mut v["a_name"]["Sealed"]["ciphertext"][0];
    *ct = serde_json::json!((ct.as_u64().unwrap() + 1) % 256);
    check(with_payload(&e1, &v), "flipped byte").await;

    // Truncated ciphertext.
    let mut v = envelopes(&e1);
    v["a_name"]["Sealed"]["ciphertext"]
        .as_array_mut()
        .unwrap()
        .pop();
    check(with_payload(&e1, &v), "truncated").await;

    // Swapped between two events (same field, same subject).
    let mut v = envelopes(&e1);
    v["a_name"] = envelopes(&e2)["a_name"].clone();
    check(with_payload(&e1, &v), "swapped between events").await;

    // Swapped between two fields of one subject.
    let mut v = envelopes(&e1);
    let phone = v["b_phone"].clone();
    v["b_phone"] = v["b_email"].clone();
    v["b_email"] = phone;
    check(with_payload(&e1, &v), "swapped between fields").await;

    // The untouched events still decode.
    assert!(repo.decode_events(&[e1, e2]).await.is_ok());
}

fn with_payload(event: &RecordedEvent, value: &serde_json::Value) -> RecordedEvent {
    RecordedEvent {
        payload: serde_json::to_vec(value).unwrap(),
        ..event.clone()
    }
}

#[tokio::test]
async fn truncated_bincode_payload_is_a_typed_error() {
    let store = MemoryStore::new();
    let repo = Repo::new(store.clone()).with_crypto(crypto_with(&master("m")));
    let mut event = one_event(&repo, &store, "b1").await;
    event.payload.truncate(event.payload.len() - 3);
    let err = decode(&repo, &event).await.unwrap_err();
    assert!(
        matches!(err, Error::Codec { .. } | Error::Tampered { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn master_key_rotation_rewraps_keys_and_old_and_new_events_load() {
    let store = MemoryStore::new();
    let old = master("old");
    let repo = Repo::new(store.clone()).with_crypto(crypto_with(&old));
    repo.execute("c1", meet("before")).await.unwrap();

    let new = master("new");
    let rotating = Arc::new(Crypto::new(
        MasterKeyring::new(new.clone()).with_previous(old.clone()),
    ));
    assert_eq!(
        rotating.rotate(&store).await.unwrap(),
        2,
        "ada's and bob's keys"
    );
    assert_eq!(rotating.rotate(&store).await.unwrap(), 0, "idempotent");

    // After rotation the old master key is no longer needed.
    let repo = Repo::new(store.clone()).with_crypto(crypto_with(&new));
    repo.execute("c1", meet("after")).await.unwrap();
    let events = repo
        .decode_events(&stored_events(&store).await)
        .await
        .unwrap();
    let names: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ContactEvent::Met { a_name, .. } => a_name.value().cloned(),
            ContactEvent::Noted { .. } => None,
        })
        .collect();
    assert_eq!(names, vec!["before".to_owned(), "after".to_owned()]);
}

#[tokio::test]
async fn a_wrong_or_missing_master_key_is_a_clear_error() {
    let store = MemoryStore::new();
    let right = master("prod");
    let repo = Repo::new(store.clone()).with_crypto(crypto_with(&right));
    repo.execute("c1", meet("x")).await.unwrap();

    crypto_with(&right).check(&store).await.unwrap();
    // Same id, other bytes: the wrong key.
    let impostor = crypto_with(&master("prod"));
    let err = impostor.check(&store).await.unwrap_err();
    assert!(matches!(err, Error::MasterKeyMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("ES_MASTER_KEY"));
    let wrong = Repo::new(store.clone()).with_crypto(impostor);
    assert!(matches!(
        wrong.load("c1").await.unwrap_err(),
        Error::MasterKeyMismatch { .. }
    ));
    // Another id altogether.
    let err = crypto_with(&master("other"))
        .check(&store)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownMasterKey { .. }), "{err:?}");
    // Malformed configuration.
    for bad in ["", "id:", "id:not-base64!", "id:c2hvcnQ="] {
        let err = MasterKeyring::parse(bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidMasterKey { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().contains("ES_MASTER_KEY"));
    }
}

#[tokio::test]
async fn snapshots_carry_personal_data_encrypted_and_are_shredded_by_forget() {
    let store = MemoryStore::new();
    let crypto = crypto_with(&master("m"));
    let repo = Repo::new(store.clone()).with_crypto(Arc::clone(&crypto));
    repo.execute("c1", meet(CANARY)).await.unwrap();
    repo.execute("c1", ContactCommand::Note("n".into()))
        .await
        .unwrap();
    let stream = Repo::stream_id("c1").unwrap();
    let snapshot = store
        .load_snapshot(&stream, 1)
        .await
        .unwrap()
        .expect("snapshot at 2");
    assert!(
        !contains(&snapshot.payload, CANARY),
        "snapshot holds no plaintext"
    );

    let loaded = repo.load("c1").await.unwrap();
    assert_eq!(
        loaded
            .state
            .a_name
            .as_ref()
            .unwrap()
            .value()
            .map(String::as_str),
        Some(CANARY)
    );
    crypto.forget(&store, &subject("ada")).await.unwrap();
    let loaded = repo.load("c1").await.unwrap();
    assert!(loaded.state.a_name.as_ref().unwrap().is_shredded());
    assert_eq!(loaded.state.notes, 1);

    // A tampered snapshot is ignored (rebuilt from events), never served.
    let mut bad = snapshot;
    let at = bad.payload.len() / 2;
    bad.payload[at] ^= 0x55;
    bad.version = StreamVersion::new(2);
    store.save_snapshot(bad.clone()).await.unwrap();
    let loaded = repo.load("c1").await.unwrap();
    assert_eq!(loaded.state.notes, 1);
    assert_eq!(loaded.version, StreamVersion::new(2));
}

#[tokio::test]
async fn forget_is_atomic_with_its_system_event() {
    // A store whose append fails: the key must survive.
    let store = MemoryStore::new();
    let crypto = crypto_with(&master("m"));
    let repo = Repo::new(store.clone()).with_crypto(Arc::clone(&crypto));
    repo.execute("c1", meet("x")).await.unwrap();
    let stream = SystemEvent::subject_stream(&subject("ada")).unwrap();
    // Occupy the system stream so an `Any` append still works but a forced
    // failing request does not: call the key store directly with a bad request.
    let failing = AppendRequest::new(
        stream,
        ExpectedVersion::StreamExists,
        vec![
            NewEvent::encode(
                &SystemEvent::SubjectForgotten {
                    subject: subject("ada"),
                },
                &Bincode,
                es_core::Metadata::now(),
            )
            .unwrap(),
        ],
    );
    let err = es_core::KeyStore::forget(&store, &subject("ada"), failing)
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    let loaded = repo.load("c1").await.unwrap();
    assert!(
        loaded.state.a_name.unwrap().value().is_some(),
        "the key was not destroyed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn seal_open_round_trips_arbitrary_values(
        subject_id in "[a-zA-Z0-9_.@-]{1,40}",
        value in any::<(String, Vec<u8>, i64, Option<bool>)>(),
        record in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let store = MemoryStore::new();
            let crypto = crypto_with(&master("p"));
            let personal = Personal::new(SubjectId::new(subject_id).unwrap(), value.clone());
            let sealed = crypto.seal_value(&store, &record, &personal).await.unwrap();
            let opened: Personal<(String, Vec<u8>, i64, Option<bool>)> =
                crypto.open_value(&store, &record, &sealed).await.unwrap();
            prop_assert_eq!(opened.value(), Some(&value));
            prop_assert_eq!(opened.subject(), personal.subject());
            // Bound to its record.
            let mut other = record.clone();
            other.push(0);
            let moved = crypto
                .open_value::<_, Personal<(String, Vec<u8>, i64, Option<bool>)>>(&store, &other, &sealed)
                .await;
            prop_assert!(matches!(moved, Err(Error::Tampered { .. })), "{:?}", moved);
            Ok(())
        })?;
    }
}

#[test]
fn master_keys_come_from_the_environment_or_a_key_file() {
    let key = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    let no_file = |_: &std::path::Path| -> std::io::Result<String> { unreachable!() };
    assert!(
        MasterKeyring::from_sources(env(&[]), no_file)
            .unwrap()
            .is_none()
    );
    let ring = MasterKeyring::from_sources(
        env(&[(
            "ES_MASTER_KEY",
            "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )]),
        no_file,
    )
    .unwrap()
    .unwrap();
    assert_eq!(ring.current().id(), "k1");
    let from_file = MasterKeyring::from_sources(env(&[("ES_MASTER_KEY_FILE", "/keys/es")]), |p| {
        assert_eq!(p, std::path::Path::new("/keys/es"));
        Ok(format!("{key}\n"))
    })
    .unwrap()
    .unwrap();
    assert_eq!(from_file.current().id(), "k1");
    let missing = MasterKeyring::from_sources(env(&[("ES_MASTER_KEY_FILE", "/nope")]), |_| {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    })
    .unwrap_err();
    assert!(
        missing.to_string().contains("ES_MASTER_KEY_FILE"),
        "{missing}"
    );
    let bad =
        MasterKeyring::from_sources(env(&[("ES_MASTER_KEY", "garbage!")]), no_file).unwrap_err();
    assert!(bad.to_string().contains("ES_MASTER_KEY"), "{bad}");
    assert!(
        !bad.to_string().contains("garbage"),
        "the key is never echoed"
    );
}
