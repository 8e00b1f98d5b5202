#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod aggregate;
mod codec;
mod error;
mod event;
mod id;
mod memory;
mod repository;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use aggregate::{Aggregate, AggregateType};
pub use codec::{Bincode, Codec, Json, MAX_DECODE_BYTES};
pub use error::{CodecError, Error};
pub use event::{Event, EventTypeInfo, Metadata, NewEvent, PersonalField, RecordedEvent};
pub use id::{
    Checkpoint, CommitId, EventId, IdempotencyKey, MAX_STREAM_ID_LEN, Position, StreamId,
    StreamVersion, SubjectId,
};
pub use memory::MemoryStore;
pub use repository::{
    AsOf, CommandError, CommandOptions, Executed, Loaded, Repository, RetryPolicy,
};
pub use store::{
    AppendRequest, AppendResult, EventStore, ExpectedVersion, Idempotency, IdempotentRecord,
    Snapshot, SnapshotStore,
};

/// Derives [`Event`](trait@Event) for an enum of event types.
///
/// Container attribute `#[event(version = N)]` sets the default schema version
/// (1 when absent). Variant attributes:
///
/// - `#[event(name = "...")]`: the stored type name (default: the variant name);
/// - `#[event(version = N)]`: this variant's current schema version;
/// - `#[event(upcast(1 = OldV1, 2 = OldV2))]`: older versions decode through
///   these types, each `DeserializeOwned + Into<Self>`.
///
/// Field attributes: `#[event(subject)]` marks a field holding a subject id;
/// `#[event(personal)]` (or `#[event(personal(subject = field))]` when the
/// variant has several subjects) marks personal data of that subject.
pub use es_derive::Event;

/// Derives [`AggregateType`] for an aggregate's state.
///
/// `#[aggregate(name = "...")]` sets the stable type name (default: the type's
/// name); `snapshot_every = N` enables snapshots every N events (the state must
/// then implement serde's `Serialize` and `Deserialize`); `snapshot_version = N`
/// sets the snapshot schema version (default 1).
pub use es_derive::Aggregate;

#[doc(hidden)]
pub mod __private {
    //! Support for the derive macros. Not public API.
    pub use serde;

    use crate::{Codec, Error};

    pub fn unknown_event_type(event_type: &str) -> Error {
        Error::UnknownEventType {
            event_type: event_type.to_owned(),
        }
    }

    pub fn unknown_schema_version(event_type: &str, schema_version: u32, current: u32) -> Error {
        Error::UnknownSchemaVersion {
            event_type: event_type.to_owned(),
            schema_version,
            current,
        }
    }

    pub fn encode<C: Codec, T: serde::Serialize + ?Sized>(
        codec: &C,
        what: &str,
        version: u32,
        value: &T,
    ) -> Result<Vec<u8>, Error> {
        codec.encode(value).map_err(|source| Error::Codec {
            what: format!("{what} v{version}"),
            op: "encoded",
            codec: C::NAME,
            source,
        })
    }

    pub fn decode<C: Codec, T: serde::de::DeserializeOwned>(
        codec: &C,
        what: &str,
        version: u32,
        bytes: &[u8],
    ) -> Result<T, Error> {
        codec.decode(bytes).map_err(|source| Error::Codec {
            what: format!("{what} v{version}"),
            op: "decoded",
            codec: C::NAME,
            source,
        })
    }
}
