//! Events: the typed domain events an aggregate emits, and the serialized records
//! that stores keep.
//!
//! A domain event type is an enum whose variants are the event types. Derive
//! [`Event`](derive@crate::Event) on it: every variant gets a stable type name and
//! a schema version, and is encoded on its own (the enum's variant index is never
//! stored), so variants can be reordered and added freely.
//!
//! # Schema evolution
//!
//! When a variant's shape changes, raise its version and keep the old shape as a
//! plain serde type that converts into the event enum. The derive decodes a stored
//! payload of an older version through that type:
//!
//! ```
//! use es_core::{Bincode, Codec, Event, Json};
//! use serde::{Deserialize, Serialize};
//!
//! /// Version 1 stored the amount as whole euros.
//! #[derive(Serialize, Deserialize)]
//! struct DepositedV1 {
//!     euros: u32,
//! }
//!
//! impl From<DepositedV1> for BankEvent {
//!     fn from(old: DepositedV1) -> Self {
//!         BankEvent::Deposited { cents: u64::from(old.euros) * 100, note: String::new() }
//!     }
//! }
//!
//! #[derive(Debug, Clone, PartialEq, Event)]
//! enum BankEvent {
//!     #[event(version = 2, upcast(1 = DepositedV1))]
//!     Deposited { cents: u64, note: String },
//! }
//!
//! for stored in [Bincode.encode(&DepositedV1 { euros: 3 }).unwrap()] {
//!     let event = BankEvent::decode(&Bincode, "Deposited", 1, &stored).unwrap();
//!     assert_eq!(event, BankEvent::Deposited { cents: 300, note: String::new() });
//! }
//! let stored = Json.encode(&DepositedV1 { euros: 3 }).unwrap();
//! assert_eq!(
//!     BankEvent::decode(&Json, "Deposited", 1, &stored).unwrap(),
//!     BankEvent::Deposited { cents: 300, note: String::new() },
//! );
//! ```
//!
//! A chain of versions is a chain of `From` impls: `From<DepositedV1> for
//! DepositedV2`, and `From<DepositedV2> for BankEvent`, with `impl From<DepositedV1>
//! for BankEvent` going through `DepositedV2`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Checkpoint, Codec, CommitId, Error, EventId, IdempotencyKey, Position, StreamId, StreamVersion,
};

/// A domain event enum: each variant is one event type with a stable name and a
/// schema version. Derive it with [`#[derive(Event)]`](derive@crate::Event).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type",
    note = "add `#[derive(es_core::Event)]` to the event enum"
)]
pub trait Event: Sized + Send + Sync + 'static {
    /// Every event type of this enum, with its current schema version.
    const TYPES: &'static [EventTypeInfo];

    /// The stable name of this event's type (its variant).
    fn event_type(&self) -> &'static str;

    /// The current schema version of this event's type.
    fn schema_version(&self) -> u32;

    /// Encodes this event's fields (not the enum tag) with `codec`.
    fn encode<C: Codec>(&self, codec: &C) -> Result<Vec<u8>, Error>;

    /// Decodes a stored payload of type `event_type` at `schema_version`, upcasting
    /// older versions to the current type.
    fn decode<C: Codec>(
        codec: &C,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Self, Error>;
}

/// What the derive knows about one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeInfo {
    /// The stable type name stored with each event.
    pub name: &'static str,
    /// The schema version written today.
    pub version: u32,
    /// Older schema versions that still decode (through an upcaster).
    pub upcasts_from: &'static [u32],
    /// The fields that hold subject ids (`#[event(subject)]`).
    pub subjects: &'static [&'static str],
    /// The personal-data fields and the subject field each belongs to.
    pub personal: &'static [PersonalField],
}

/// A field marked `#[event(personal)]`: personal data of the subject whose id is
/// in field `subject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonalField {
    /// The personal field's name.
    pub field: &'static str,
    /// The name of the field holding its subject's id.
    pub subject: &'static str,
}

/// Metadata stored with every event.
///
/// Headers are free-form; they, like idempotency keys, must not carry personal
/// data: metadata is never encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The id shared by everything one user intent caused.
    pub correlation_id: Option<Uuid>,
    /// The id of the event or command that directly caused this one.
    pub causation_id: Option<Uuid>,
    /// When the event was recorded (set by the writer, stored as given).
    pub recorded_at: DateTime<Utc>,
    /// The key of the command that wrote this event, when it had one.
    pub idempotency_key: Option<IdempotencyKey>,
    /// Free-form headers.
    pub headers: BTreeMap<String, String>,
}

impl Metadata {
    /// Metadata recorded now (at the microsecond precision every store keeps,
    /// so that it reads back equal), with nothing else set.
    pub fn now() -> Self {
        let now = Utc::now();
        Self {
            correlation_id: None,
            causation_id: None,
            recorded_at: DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now),
            idempotency_key: None,
            headers: BTreeMap::new(),
        }
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Self::now()
    }
}

/// An event ready to append: encoded, not yet positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// A fresh UUID v7.
    pub event_id: EventId,
    /// The stable type name.
    pub event_type: String,
    /// The schema version the payload was written with.
    pub schema_version: u32,
    /// The encoded fields.
    pub payload: Vec<u8>,
    /// The metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// Encodes a typed event with `codec` under fresh id and the given metadata.
    ///
    /// ```
    /// use es_core::{Bincode, Event, Metadata, NewEvent};
    ///
    /// #[derive(Debug, Clone, Event)]
    /// enum Ping {
    ///     Pinged { n: u32 },
    /// }
    ///
    /// let new = NewEvent::encode(&Ping::Pinged { n: 1 }, &Bincode, Metadata::now()).unwrap();
    /// assert_eq!(new.event_type, "Pinged");
    /// assert_eq!(new.schema_version, 1);
    /// ```
    pub fn encode<E: Event, C: Codec>(
        event: &E,
        codec: &C,
        metadata: Metadata,
    ) -> Result<Self, Error> {
        Ok(Self {
            event_id: EventId::new(),
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.encode(codec)?,
            metadata,
        })
    }
}

/// An event as a store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in the stream: 1-based, gap-free.
    pub version: StreamVersion,
    /// Its position in the global log.
    pub position: Position,
    /// The commit that wrote it; with `position`, its place in the global order.
    pub commit: CommitId,
    /// Its UUID v7.
    pub event_id: EventId,
    /// The stable type name.
    pub event_type: String,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// The encoded fields.
    pub payload: Vec<u8>,
    /// The metadata.
    pub metadata: Metadata,
}

impl RecordedEvent {
    /// Where this event stands in the global log.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.commit, self.position)
    }

    /// Decodes the payload into the typed event, upcasting if needed.
    pub fn decode<E: Event, C: Codec>(&self, codec: &C) -> Result<E, Error> {
        E::decode(codec, &self.event_type, self.schema_version, &self.payload)
    }
}
