//! Behaviour of `#[derive(Event)]` and `#[derive(Aggregate)]` through es-core,
//! with both codecs. Events holding personal data go through the framework's
//! encryption scope (`encode_events` / `decode_events`), as the repository does.

use std::fmt::Debug;

use es_core::{
    Aggregate, AggregateType, Bincode, Codec, Crypto, Error, Event, EventId, EventTypeInfo, Json,
    MasterKey, MasterKeyring, MemoryStore, Personal, PersonalField, RecordedEvent, SubjectId,
    decode_events, encode_events,
};
use serde::{Deserialize, Serialize};

/// Data carried by a one-field tuple variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenedData {
    owner: String,
    limit: u32,
}

/// Every variant shape; no serde derive on the enum itself.
#[derive(Debug, Clone, PartialEq, Event)]
enum Shapes {
    Deposited {
        amount: u64,
        note: String,
    },
    Opened(OpenedData),
    Moved(u64, String, bool),
    Closed,
    Empty {},
    EmptyTuple(),
    #[event(name = "Renamed.v")]
    Original {
        value: i32,
    },
}

fn all_shapes() -> Vec<Shapes> {
    vec![
        Shapes::Deposited {
            amount: 1_250,
            note: "salary".to_owned(),
        },
        Shapes::Opened(OpenedData {
            owner: "ada".to_owned(),
            limit: 7,
        }),
        Shapes::Moved(3, "there".to_owned(), true),
        Shapes::Closed,
        Shapes::Empty {},
        Shapes::EmptyTuple(),
        Shapes::Original { value: -4 },
    ]
}

/// Encodes with `codec` and decodes back through the stored type and version.
fn round_trip<E: Event + PartialEq + Debug, C: Codec>(event: &E, codec: &C) {
    let payload = event.encode(codec).expect("encode");
    let back = E::decode(codec, event.event_type(), event.schema_version(), &payload)
        .expect("decode what was encoded");
    assert_eq!(&back, event, "{} with {}", event.event_type(), C::NAME);
}

fn subject(id: &str) -> SubjectId {
    SubjectId::new(id).expect("a valid subject id")
}

/// A crypto configuration and a key store, as a repository holds them.
struct Vault {
    crypto: Crypto,
    keys: MemoryStore,
}

impl Vault {
    fn new() -> Self {
        Self {
            crypto: Crypto::new(MasterKeyring::new(MasterKey::generate("t").unwrap())),
            keys: MemoryStore::new(),
        }
    }

    /// Encodes `event` as the event `id`, sealing its personal values.
    async fn encode<E: Event, C: Codec>(
        &self,
        codec: &C,
        id: EventId,
        event: &E,
    ) -> Result<Vec<u8>, Error> {
        let mut payloads =
            encode_events(Some(&self.crypto), &self.keys, codec, &[(id, event)]).await?;
        assert_eq!(payloads.len(), 1);
        Ok(payloads.remove(0))
    }

    /// Decodes a recorded event, opening its personal values.
    async fn decode<E: Event, C: Codec>(
        &self,
        codec: &C,
        recorded: &RecordedEvent,
    ) -> Result<E, Error> {
        let mut events = decode_events(
            Some(&self.crypto),
            &self.keys,
            codec,
            std::slice::from_ref(recorded),
        )
        .await?;
        assert_eq!(events.len(), 1);
        Ok(events.remove(0))
    }

    /// Encodes and decodes back through the stored type and version; returns
    /// the recorded event.
    async fn round_trip<E: Event + PartialEq + Debug, C: Codec>(
        &self,
        event: &E,
        codec: &C,
    ) -> RecordedEvent {
        let id = EventId::new();
        let payload = self.encode(codec, id, event).await.expect("encode");
        let recorded = recorded(id, event, payload);
        let back: E = self
            .decode(codec, &recorded)
            .await
            .expect("decode what was encoded");
        assert_eq!(&back, event, "{} with {}", event.event_type(), C::NAME);
        recorded
    }
}

/// `event`, stored as the event `id` with this payload.
fn recorded<E: Event>(id: EventId, event: &E, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent {
        stream_id: es_core::StreamId::new("derive-1").unwrap(),
        version: es_core::StreamVersion::new(1),
        position: es_core::Position::new(1),
        commit: es_core::CommitId::new(1),
        event_id: id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        payload,
        metadata: es_core::Metadata::now(),
    }
}

#[test]
fn every_shape_round_trips_in_both_codecs() {
    for event in all_shapes() {
        round_trip(&event, &Bincode);
        round_trip(&event, &Json);
    }
}

#[test]
fn names_default_to_the_variant_and_can_be_set() {
    let names: Vec<_> = all_shapes().iter().map(Event::event_type).collect();
    assert_eq!(
        names,
        [
            "Deposited",
            "Opened",
            "Moved",
            "Closed",
            "Empty",
            "EmptyTuple",
            "Renamed.v"
        ]
    );
    let payload = Shapes::Original { value: 1 }.encode(&Json).unwrap();
    assert!(matches!(
        Shapes::decode(&Json, "Original", 1, &payload),
        Err(Error::UnknownEventType { event_type }) if event_type == "Original"
    ));
    assert_eq!(
        Shapes::decode(&Json, "Renamed.v", 1, &payload).unwrap(),
        Shapes::Original { value: 1 }
    );
}

#[test]
fn payloads_hold_the_variant_contents_never_the_tag() {
    let json = |event: Shapes| String::from_utf8(event.encode(&Json).unwrap()).unwrap();
    assert_eq!(
        json(Shapes::Deposited {
            amount: 5,
            note: "n".to_owned()
        }),
        r#"{"amount":5,"note":"n"}"#
    );
    assert_eq!(
        json(Shapes::Opened(OpenedData {
            owner: "o".to_owned(),
            limit: 1
        })),
        r#"{"owner":"o","limit":1}"#
    );
    assert_eq!(
        json(Shapes::Moved(1, "t".to_owned(), false)),
        r#"[1,"t",false]"#
    );
    assert_eq!(json(Shapes::Closed), "null");
    assert_eq!(json(Shapes::EmptyTuple()), "null");

    // bincode: exactly the encoding of the contents.
    let data = OpenedData {
        owner: "o".to_owned(),
        limit: 1,
    };
    assert_eq!(
        Shapes::Opened(data.clone()).encode(&Bincode).unwrap(),
        Bincode.encode(&data).unwrap()
    );
    assert_eq!(
        Shapes::Moved(1, "t".to_owned(), false)
            .encode(&Bincode)
            .unwrap(),
        Bincode.encode(&(1u64, "t", false)).unwrap()
    );
    assert_eq!(
        Shapes::Deposited {
            amount: 5,
            note: "n".to_owned()
        }
        .encode(&Bincode)
        .unwrap(),
        Bincode.encode(&(5u64, "n")).unwrap()
    );
    assert!(Shapes::Closed.encode(&Bincode).unwrap().is_empty());
}

mod forward {
    #[derive(Debug, Clone, PartialEq, es_core::Event)]
    pub(crate) enum Ledger {
        Credited { amount: u64 },
        Debited { amount: u64, reason: String },
        Frozen,
        Tagged(String),
    }
}

mod reversed {
    #[derive(Debug, Clone, PartialEq, es_core::Event)]
    pub(crate) enum Ledger {
        Tagged(String),
        Frozen,
        Debited { amount: u64, reason: String },
        Credited { amount: u64 },
    }
}

#[test]
fn variant_order_does_not_matter() {
    fn check<C: Codec>(codec: &C) {
        let pairs = [
            (
                forward::Ledger::Credited { amount: 9 },
                reversed::Ledger::Credited { amount: 9 },
            ),
            (
                forward::Ledger::Debited {
                    amount: 2,
                    reason: "fee".to_owned(),
                },
                reversed::Ledger::Debited {
                    amount: 2,
                    reason: "fee".to_owned(),
                },
            ),
            (forward::Ledger::Frozen, reversed::Ledger::Frozen),
            (
                forward::Ledger::Tagged("t".to_owned()),
                reversed::Ledger::Tagged("t".to_owned()),
            ),
        ];
        for (a, b) in pairs {
            let from_a = a.encode(codec).unwrap();
            let from_b = b.encode(codec).unwrap();
            assert_eq!(from_a, from_b);
            assert_eq!(
                reversed::Ledger::decode(codec, a.event_type(), a.schema_version(), &from_a)
                    .unwrap(),
                b
            );
            assert_eq!(
                forward::Ledger::decode(codec, b.event_type(), b.schema_version(), &from_b)
                    .unwrap(),
                a
            );
        }
    }
    check(&Bincode);
    check(&Json);
}

/// Version 1 of `Deposited`: whole euros.
#[derive(Debug, Serialize, Deserialize)]
struct DepositedV1 {
    euros: u32,
}

/// Version 2 of `Deposited`: cents, no note.
#[derive(Debug, Serialize, Deserialize)]
struct DepositedV2 {
    cents: u64,
}

impl From<DepositedV1> for DepositedV2 {
    fn from(old: DepositedV1) -> Self {
        Self {
            cents: u64::from(old.euros) * 100,
        }
    }
}

impl From<DepositedV2> for Bank {
    fn from(old: DepositedV2) -> Self {
        Bank::Deposited {
            cents: old.cents,
            note: "migrated".to_owned(),
        }
    }
}

impl From<DepositedV1> for Bank {
    fn from(old: DepositedV1) -> Self {
        DepositedV2::from(old).into()
    }
}

/// Version 1 of `Renamed`: a tuple of its fields.
type RenamedV1 = (String,);

impl From<RenamedV1> for Bank {
    fn from((owner,): RenamedV1) -> Self {
        Bank::Renamed {
            name: Personal::new(subject(&owner), String::new()),
            owner_id: owner,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Event)]
#[event(version = 2)]
enum Bank {
    #[event(version = 3, upcast(2 = DepositedV2, 1 = DepositedV1))]
    Deposited { cents: u64, note: String },
    Renamed {
        #[event(subject)]
        owner_id: String,
        #[event(personal)]
        name: Personal<String>,
    },
    #[event(version = 1)]
    Closed,
}

#[test]
fn container_version_is_the_default_and_variants_override_it() {
    assert_eq!(
        Bank::Deposited {
            cents: 1,
            note: String::new()
        }
        .schema_version(),
        3
    );
    assert_eq!(
        Bank::Renamed {
            owner_id: "o".to_owned(),
            name: Personal::new(subject("o"), String::new())
        }
        .schema_version(),
        2
    );
    assert_eq!(Bank::Closed.schema_version(), 1);
}

#[test]
fn upcast_chain_decodes_old_versions_in_both_codecs() {
    fn check<C: Codec>(codec: &C) {
        let v1 = codec.encode(&DepositedV1 { euros: 3 }).unwrap();
        let v2 = codec.encode(&DepositedV2 { cents: 301 }).unwrap();
        assert_eq!(
            Bank::decode(codec, "Deposited", 1, &v1).unwrap(),
            Bank::Deposited {
                cents: 300,
                note: "migrated".to_owned()
            }
        );
        assert_eq!(
            Bank::decode(codec, "Deposited", 2, &v2).unwrap(),
            Bank::Deposited {
                cents: 301,
                note: "migrated".to_owned()
            }
        );
        round_trip(
            &Bank::Deposited {
                cents: 302,
                note: "now".to_owned(),
            },
            codec,
        );
    }
    check(&Bincode);
    check(&Json);
}

#[test]
fn unknown_types_and_versions_are_errors() {
    let payload = Bank::Closed.encode(&Json).unwrap();
    match Bank::decode(&Json, "Vanished", 1, &payload) {
        Err(Error::UnknownEventType { event_type }) => assert_eq!(event_type, "Vanished"),
        other => panic!("expected UnknownEventType, got {other:?}"),
    }
    for (event_type, version, current) in [
        ("Deposited", 0, 3),
        ("Deposited", 4, 3),
        ("Closed", 2, 1),
        ("Renamed", 1, 2),
    ] {
        match Bank::decode(&Bincode, event_type, version, &payload) {
            Err(Error::UnknownSchemaVersion {
                event_type: stored,
                schema_version,
                current: now,
            }) => {
                assert_eq!(
                    (stored.as_str(), schema_version, now),
                    (event_type, version, current)
                );
            }
            other => panic!("expected UnknownSchemaVersion, got {other:?}"),
        }
    }
}

#[test]
fn codec_errors_name_the_event_type_and_version() {
    let err = Bank::decode(&Json, "Deposited", 3, b"{").unwrap_err();
    match &err {
        Error::Codec {
            what, op, codec, ..
        } => {
            assert_eq!(
                (what.as_str(), *op, *codec),
                ("event Deposited v3", "decoded", "json")
            );
        }
        other => panic!("expected a codec error, got {other:?}"),
    }
    let err = Bank::decode(&Bincode, "Deposited", 1, &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Codec { what, .. } if what == "event Deposited v1"),
        "{err:?}"
    );
}

#[derive(Debug, Clone, PartialEq, Event)]
enum Customer {
    Registered {
        #[event(subject)]
        customer_id: String,
        #[event(personal)]
        email: Personal<String>,
        plan: String,
    },
    Married {
        #[event(subject)]
        first_id: SubjectId,
        #[event(subject)]
        second_id: SubjectId,
        #[event(personal(subject = first_id))]
        first_name: Personal<String>,
        #[event(personal(subject = second_id))]
        second_name: Personal<String>,
        date: String,
    },
    Renamed {
        #[event(subject)]
        r#type: String,
        #[event(personal(subject = r#type))]
        r#ref: Personal<String>,
    },
    Note(String),
    Gone,
}

#[test]
fn types_describe_every_variant() {
    assert_eq!(
        Customer::TYPES,
        &[
            EventTypeInfo {
                name: "Registered",
                version: 1,
                upcasts_from: &[],
                subjects: &["customer_id"],
                personal: &[PersonalField {
                    field: "email",
                    subject: "customer_id"
                }],
            },
            EventTypeInfo {
                name: "Married",
                version: 1,
                upcasts_from: &[],
                subjects: &["first_id", "second_id"],
                personal: &[
                    PersonalField {
                        field: "first_name",
                        subject: "first_id"
                    },
                    PersonalField {
                        field: "second_name",
                        subject: "second_id"
                    },
                ],
            },
            EventTypeInfo {
                name: "Renamed",
                version: 1,
                upcasts_from: &[],
                subjects: &["type"],
                personal: &[PersonalField {
                    field: "ref",
                    subject: "type"
                }],
            },
            EventTypeInfo {
                name: "Note",
                version: 1,
                upcasts_from: &[],
                subjects: &[],
                personal: &[],
            },
            EventTypeInfo {
                name: "Gone",
                version: 1,
                upcasts_from: &[],
                subjects: &[],
                personal: &[],
            },
        ]
    );
    let bank: Vec<_> = Bank::TYPES
        .iter()
        .map(|info| (info.name, info.version, info.upcasts_from))
        .collect();
    assert_eq!(
        bank,
        [
            ("Deposited", 3, &[1, 2][..]),
            ("Renamed", 2, &[]),
            ("Closed", 1, &[])
        ]
    );
}

/// The payload of a recorded JSON event, as a JSON value.
fn json_of(event: &RecordedEvent) -> serde_json::Value {
    serde_json::from_slice(&event.payload).unwrap()
}

/// `event` with its payload replaced by `json`.
fn with_json(event: &RecordedEvent, json: &serde_json::Value) -> RecordedEvent {
    RecordedEvent {
        payload: serde_json::to_vec(json).unwrap(),
        ..event.clone()
    }
}

#[tokio::test]
async fn raw_identifiers_round_trip_under_their_plain_names() {
    let vault = Vault::new();
    let event = Customer::Renamed {
        r#type: "t".to_owned(),
        r#ref: Personal::new(subject("t"), "r".to_owned()),
    };
    let stored = vault.round_trip(&event, &Json).await;
    let json = json_of(&stored);
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["ref", "type"]);
    assert_eq!(json["type"], "t");
    assert_eq!(json["ref"]["Sealed"]["subject"], "t");
    vault.round_trip(&event, &Bincode).await;

    // The personal field's path uses the plain name too.
    let mut other = event.clone();
    if let Customer::Renamed { r#ref, .. } = &mut other {
        *r#ref = Personal::new(subject("u"), "r".to_owned());
    }
    let err = other.encode(&Json).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SubjectMismatch {
                path: "Renamed.ref"
            }
        ),
        "{err:?}"
    );
    // A ciphertext of another event, in this field.
    let mut moved = json.clone();
    moved["ref"] = json_of(&vault.round_trip(&event, &Json).await)["ref"].clone();
    let err = vault
        .decode::<Customer, _>(&Json, &with_json(&stored, &moved))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tampered { path } if path == "Renamed.ref"),
        "{err:?}"
    );
}

/// Personal fields of every supported shape, all of one subject.
#[derive(Debug, Clone, PartialEq, Event)]
enum Profile {
    Updated {
        #[event(subject)]
        user: SubjectId,
        #[event(personal)]
        email: Personal<String>,
        #[event(personal)]
        phone: Option<Personal<String>>,
        #[event(personal)]
        aliases: Vec<Personal<String>>,
        #[event(personal)]
        #[serde(rename = "born")]
        birth_year: Personal<u16>,
        visits: u32,
    },
    PhoneChanged {
        #[event(subject)]
        user: String,
        #[event(personal)]
        phone: Option<Personal<String>>,
    },
}

fn updated(phone: Option<&str>, aliases: &[&str]) -> Profile {
    let user = subject("user-1");
    Profile::Updated {
        email: Personal::new(user.clone(), "ada@example.invalid".to_owned()),
        phone: phone.map(|p| Personal::new(user.clone(), p.to_owned())),
        aliases: aliases
            .iter()
            .map(|a| Personal::new(user.clone(), (*a).to_owned()))
            .collect(),
        birth_year: Personal::new(user.clone(), 1815),
        user,
        visits: 3,
    }
}

#[tokio::test]
async fn events_with_personal_fields_round_trip_in_both_codecs() {
    let vault = Vault::new();
    let events = [
        Bank::Renamed {
            owner_id: "owner-1".to_owned(),
            name: Personal::new(subject("owner-1"), "Ada".to_owned()),
        },
        Bank::Deposited {
            cents: 5,
            note: "n".to_owned(),
        },
    ];
    for event in &events {
        vault.round_trip(event, &Bincode).await;
        vault.round_trip(event, &Json).await;
    }
    let customers = [
        Customer::Registered {
            customer_id: "c-1".to_owned(),
            email: Personal::new(subject("c-1"), "c@example.invalid".to_owned()),
            plan: "gold".to_owned(),
        },
        Customer::Married {
            first_id: subject("c-1"),
            second_id: subject("c-2"),
            first_name: Personal::new(subject("c-1"), "Ada".to_owned()),
            second_name: Personal::new(subject("c-2"), "William".to_owned()),
            date: "1835-07-08".to_owned(),
        },
        Customer::Note("n".to_owned()),
        Customer::Gone,
    ];
    for event in &customers {
        vault.round_trip(event, &Bincode).await;
        vault.round_trip(event, &Json).await;
    }

    // The plaintext is not in the payload; the subject and plain fields are.
    let stored = vault.round_trip(&customers[0], &Json).await;
    let text = String::from_utf8(stored.payload).unwrap();
    assert!(!text.contains("c@example.invalid"), "{text}");
    assert!(text.contains(r#""plan":"gold""#), "{text}");
}

#[tokio::test]
async fn optional_and_repeated_personal_fields_round_trip() {
    let vault = Vault::new();
    for event in [
        updated(Some("+44 20 7946 0000"), &["ada", "countess"]),
        updated(None, &[]),
        updated(None, &["ada"]),
        Profile::PhoneChanged {
            user: "user-1".to_owned(),
            phone: Some(Personal::new(subject("user-1"), "+1".to_owned())),
        },
        Profile::PhoneChanged {
            user: "user-1".to_owned(),
            phone: None,
        },
    ] {
        vault.round_trip(&event, &Bincode).await;
        vault.round_trip(&event, &Json).await;
    }

    let some = json_of(&vault.round_trip(&updated(Some("+1"), &["a"]), &Json).await);
    assert!(some["phone"]["Sealed"].is_object(), "{some}");
    assert_eq!(some["aliases"].as_array().unwrap().len(), 1);
    assert!(some["born"]["Sealed"].is_object(), "{some}");
    let none = json_of(&vault.round_trip(&updated(None, &[]), &Json).await);
    assert!(none["phone"].is_null(), "{none}");
    assert_eq!(none["aliases"], serde_json::json!([]));

    // An event whose personal fields are all absent holds no personal data: it
    // needs no encryption scope and no crypto.
    let absent = Profile::PhoneChanged {
        user: "user-1".to_owned(),
        phone: None,
    };
    round_trip(&absent, &Json);
    round_trip(&absent, &Bincode);
    let payloads = encode_events(None, &vault.keys, &Json, &[(EventId::new(), &absent)])
        .await
        .unwrap();
    assert_eq!(payloads, [br#"{"user":"user-1","phone":null}"#.to_vec()]);
}

#[tokio::test]
async fn personal_values_are_only_encoded_in_the_encryption_scope() {
    let event = updated(Some("+1"), &[]);
    // Directly: no scope, no plaintext.
    for err in [
        event.encode(&Json).unwrap_err(),
        event.encode(&Bincode).unwrap_err(),
    ] {
        assert!(
            matches!(&err, Error::Codec { op: "encoded", .. }),
            "{err:?}"
        );
        assert!(!format!("{err:?} {err}").contains("ada@example.invalid"));
    }
    // Through the framework, but without a crypto configuration.
    let keys = MemoryStore::new();
    let err = encode_events(None, &keys, &Json, &[(EventId::new(), &event)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CryptoNotConfigured), "{err:?}");
}

#[tokio::test]
async fn a_personal_value_of_another_subject_is_refused() {
    let vault = Vault::new();
    let (owner, stranger) = (subject("user-1"), subject("user-2"));
    // An otherwise valid event with one value of another subject.
    let mismatched = |field: &str| {
        let mut event = updated(Some("+1"), &["a", "b"]);
        let Profile::Updated {
            email,
            phone,
            aliases,
            ..
        } = &mut event
        else {
            unreachable!()
        };
        let foreign = Personal::new(stranger.clone(), "x".to_owned());
        match field {
            "email" => *email = foreign,
            "phone" => *phone = Some(foreign),
            "aliases" => aliases.push(foreign),
            _ => unreachable!(),
        }
        event
    };
    let cases = [
        (mismatched("email"), "Updated.email"),
        (mismatched("phone"), "Updated.phone"),
        (mismatched("aliases"), "Updated.aliases"),
        (
            Profile::PhoneChanged {
                user: "user-1".to_owned(),
                phone: Some(Personal::shredded(stranger.clone())),
            },
            "PhoneChanged.phone",
        ),
    ];
    for (event, expected) in &cases {
        let err = vault
            .encode(&Json, EventId::new(), event)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::SubjectMismatch { path } if path == expected),
            "{expected}: {err:?}"
        );
        // The check runs before anything is serialized, scope or not.
        let err = event.encode(&Bincode).unwrap_err();
        assert!(
            matches!(&err, Error::SubjectMismatch { path } if path == expected),
            "{expected}: {err:?}"
        );
    }

    // Each personal field is checked against the subject it names.
    let married = Customer::Married {
        first_id: owner.clone(),
        second_id: stranger.clone(),
        first_name: Personal::new(owner.clone(), "Ada".to_owned()),
        second_name: Personal::new(owner.clone(), "William".to_owned()),
        date: String::new(),
    };
    let err = vault
        .encode(&Bincode, EventId::new(), &married)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SubjectMismatch {
                path: "Married.second_name"
            }
        ),
        "{err:?}"
    );
    let registered = Customer::Registered {
        customer_id: "user-1".to_owned(),
        email: Personal::new(stranger, "x".to_owned()),
        plan: String::new(),
    };
    let err = vault
        .encode(&Json, EventId::new(), &registered)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SubjectMismatch {
                path: "Registered.email"
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("Registered.email"), "{err}");
}

#[tokio::test]
async fn a_personal_ciphertext_is_bound_to_its_field() {
    let vault = Vault::new();
    let stored = vault
        .round_trip(&updated(Some("+44 20 7946 0000"), &["ada"]), &Json)
        .await;
    let json = json_of(&stored);
    let tampered = |json: serde_json::Value| {
        let event = with_json(&stored, &json);
        let vault = &vault;
        async move { vault.decode::<Profile, _>(&Json, &event).await }
    };

    // Two fields of the same subject, same type, swapped: each ciphertext is
    // opened under the other field's path and fails authentication.
    let mut swapped = json.clone();
    swapped["email"] = json["phone"].clone();
    swapped["phone"] = json["email"].clone();
    let err = tampered(swapped).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tampered { path } if path == "Updated.email" || path == "Updated.phone"),
        "{err:?}"
    );
    assert!(!format!("{err:?} {err}").contains("7946"));

    // One field's ciphertext copied into another: the error names the field
    // that holds a foreign ciphertext (paths use the Rust name, not the serde
    // rename).
    for (from, to, path) in [
        ("email", "phone", "Updated.phone"),
        ("phone", "email", "Updated.email"),
        ("email", "born", "Updated.birth_year"),
    ] {
        let mut copied = json.clone();
        copied[to] = json[from].clone();
        let err = tampered(copied).await.unwrap_err();
        assert!(
            matches!(&err, Error::Tampered { path: p } if p == path),
            "{from} -> {to}: {err:?}"
        );
    }
    let mut copied = json.clone();
    copied["aliases"][0] = json["email"].clone();
    let err = tampered(copied).await.unwrap_err();
    assert!(
        matches!(&err, Error::Tampered { path } if path == "Updated.aliases"),
        "{err:?}"
    );

    // Untouched, it still decodes.
    assert_eq!(
        tampered(json).await.unwrap(),
        updated(Some("+44 20 7946 0000"), &["ada"])
    );
}

fn shout<S: serde::Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&value.to_uppercase())
}

fn whisper<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    String::deserialize(deserializer).map(|s| s.to_lowercase())
}

/// Serde field attributes, on an enum that does not derive serde itself.
#[derive(Debug, Clone, PartialEq, Event)]
enum Tweaked {
    Labelled {
        #[serde(rename = "x")]
        first: u32,
        /// Doc comments on fields are fine too.
        #[serde(default)]
        second: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        tags: Vec<String>,
        #[serde(serialize_with = "shout", deserialize_with = "whisper")]
        loud: String,
        #[serde(skip)]
        cache: u8,
    },
    Shouted(#[serde(serialize_with = "shout", deserialize_with = "whisper")] String),
    Pair(
        u8,
        #[serde(serialize_with = "shout", deserialize_with = "whisper")] String,
    ),
}

#[test]
fn serde_field_attributes_are_honoured() {
    let event = Tweaked::Labelled {
        first: 1,
        second: None,
        tags: Vec::new(),
        loud: "hey".to_owned(),
        cache: 9,
    };
    let json = String::from_utf8(event.encode(&Json).unwrap()).unwrap();
    assert_eq!(json, r#"{"x":1,"second":null,"loud":"HEY"}"#);
    let back = Tweaked::decode(&Json, "Labelled", 1, br#"{"x":2,"loud":"HO"}"#).unwrap();
    assert_eq!(
        back,
        Tweaked::Labelled {
            first: 2,
            second: None,
            tags: Vec::new(),
            loud: "ho".to_owned(),
            cache: 0,
        }
    );

    // Tuple variants whose fields carry serde attributes.
    let shouted = Tweaked::Shouted("hey".to_owned());
    assert_eq!(shouted.encode(&Json).unwrap(), br#""HEY""#.to_vec());
    assert_eq!(
        shouted.encode(&Bincode).unwrap(),
        Bincode.encode("HEY").unwrap()
    );
    let pair = Tweaked::Pair(1, "hey".to_owned());
    assert_eq!(pair.encode(&Json).unwrap(), br#"[1,"HEY"]"#.to_vec());
    assert_eq!(
        pair.encode(&Bincode).unwrap(),
        Bincode.encode(&(1u8, "HEY")).unwrap()
    );
    let from_json = Tweaked::decode(&Json, "Shouted", 1, br#""HO""#).unwrap();
    let from_bincode =
        Tweaked::decode(&Bincode, "Shouted", 1, &Bincode.encode("HO").unwrap()).unwrap();
    assert_eq!(from_json, Tweaked::Shouted("ho".to_owned()));
    assert_eq!(from_bincode, Tweaked::Shouted("ho".to_owned()));
    assert_eq!(
        Tweaked::decode(&Json, "Pair", 1, br#"[2,"HO"]"#).unwrap(),
        Tweaked::Pair(2, "ho".to_owned())
    );
}

/// Field names that are also the names of the generated methods' parameters.
#[derive(Debug, Clone, PartialEq, Event)]
enum Shadowing {
    Happened {
        codec: u8,
        payload: Vec<u8>,
        event_type: String,
        schema_version: u32,
        old: bool,
    },
}

#[test]
fn field_names_do_not_shadow_the_generated_code() {
    let event = Shadowing::Happened {
        codec: 1,
        payload: vec![2],
        event_type: "three".to_owned(),
        schema_version: 4,
        old: true,
    };
    round_trip(&event, &Bincode);
    round_trip(&event, &Json);
}

#[derive(Debug, Clone, PartialEq, Event)]
enum Tick {
    Ticked,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "counter", snapshot_every = 50, snapshot_version = 2)]
struct Counter {
    n: u64,
    label: String,
}

impl Aggregate for Counter {
    type Command = ();
    type Event = Tick;
    type Error = Never;

    fn handle(&self, (): ()) -> Result<Vec<Tick>, Never> {
        Ok(vec![Tick::Ticked])
    }

    fn apply(&mut self, _: &Tick) {
        self.n += 1;
    }
}

/// No serde impls: snapshots are disabled, so none are needed.
#[derive(Debug, Default, es_core::Aggregate)]
enum Plain {
    #[default]
    Idle,
}

#[test]
fn aggregate_constants() {
    assert_eq!(Counter::TYPE_NAME, "counter");
    assert_eq!(Counter::SNAPSHOT_EVERY, Some(50));
    assert_eq!(Counter::SNAPSHOT_VERSION, 2);
    assert_eq!(Plain::TYPE_NAME, "Plain");
    assert_eq!(Plain::SNAPSHOT_EVERY, None);
    assert_eq!(Plain::SNAPSHOT_VERSION, 1);
    let mut counter = Counter::default();
    for event in counter.handle(()).unwrap() {
        counter.apply(&event);
    }
    assert_eq!(counter.n, 1);
}

#[test]
fn snapshots_round_trip_when_enabled() {
    fn check<C: Codec>(codec: &C) {
        let state = Counter {
            n: 42,
            label: "answer".to_owned(),
        };
        let bytes = state.encode_snapshot(codec).unwrap().unwrap();
        assert_eq!(bytes, codec.encode(&state).unwrap());
        assert_eq!(
            Counter::decode_snapshot(codec, &bytes).unwrap(),
            Some(state)
        );
        let err = Counter::decode_snapshot(codec, b"\xff").unwrap_err();
        assert!(
            matches!(&err, Error::Codec { what, op: "decoded", .. } if what == "snapshot of counter v2"),
            "{err:?}"
        );
    }
    check(&Bincode);
    check(&Json);
}

#[test]
fn snapshots_disabled_return_none() {
    assert!(Plain::Idle.encode_snapshot(&Bincode).unwrap().is_none());
    assert!(
        Plain::decode_snapshot(&Json, b"anything")
            .unwrap()
            .is_none()
    );
}
