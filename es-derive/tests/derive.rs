//! Behaviour of `#[derive(Event)]` and `#[derive(Aggregate)]` through es-core,
//! with both codecs.

use std::fmt::Debug;

use es_core::{
    Aggregate, AggregateType, Bincode, Codec, Error, Event, EventTypeInfo, Json, PersonalField,
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
            owner_id: owner,
            name: String::new(),
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
        name: String,
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
            owner_id: String::new(),
            name: String::new()
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
        email: String,
        plan: String,
    },
    Married {
        #[event(subject)]
        first_id: String,
        #[event(subject)]
        second_id: String,
        #[event(personal(subject = first_id))]
        first_name: String,
        #[event(personal(subject = second_id))]
        second_name: String,
        date: String,
    },
    Renamed {
        #[event(subject)]
        r#type: String,
        #[event(personal(subject = r#type))]
        r#ref: String,
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

#[test]
fn raw_identifiers_round_trip_under_their_plain_names() {
    let event = Customer::Renamed {
        r#type: "t".to_owned(),
        r#ref: "r".to_owned(),
    };
    assert_eq!(
        event.encode(&Json).unwrap(),
        br#"{"type":"t","ref":"r"}"#.to_vec()
    );
    round_trip(&event, &Json);
    round_trip(&event, &Bincode);
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
