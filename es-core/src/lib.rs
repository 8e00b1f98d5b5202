#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The derives name `::es_core::…`; this lets es-core use them on its own types.
extern crate self as es_core;

mod aggregate;
mod codec;
mod crypto;
mod dead_letter;
mod error;
mod event;
mod id;
mod memory;
mod read_model;
mod repository;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use aggregate::{Aggregate, AggregateType};
pub use codec::{Bincode, Codec, Json, MAX_DECODE_BYTES};
pub use crypto::{
    Crypto, ForgetOutcome, ForgottenSubjects, KeyState, KeyStore, MasterKey, MasterKeyring,
    Personal, StoredKey, SystemEvent, decode_events, encode_events,
};
pub use dead_letter::{BoxFuture, DeadLetter, DeadLetters, MemoryDeadLetters};
pub use error::{CodecError, Error};
pub use event::{Event, EventTypeInfo, Metadata, NewEvent, PersonalField, RecordedEvent};
pub use id::{
    Checkpoint, CommitId, EventId, IdempotencyKey, MAX_STREAM_ID_LEN, Position, StreamId,
    StreamVersion, SubjectId,
};
pub use memory::MemoryStore;
pub use read_model::{
    GenerationBinding, Generations, KvBatch, KvOp, KvSink, Sink, SinkError, Switch, kv_page,
};
pub use repository::{
    AsOf, CommandError, CommandOptions, DEFAULT_CACHE_CAPACITY, Executed, Loaded, Repository,
    RetryPolicy,
};
pub use store::StreamSummary;
pub use store::{
    AppendRequest, AppendResult, EventStore, ExpectedVersion, Idempotency, IdempotentRecord,
    PollEvery, Snapshot, SnapshotStore, Storage, Wakeup,
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

    pub use crate::crypto::with_path;

    /// What a personal field's subject check needs: the value's subject.
    #[diagnostic::on_unimplemented(
        message = "a field marked `#[event(personal)]` must hold `es_core::Personal<T>`",
        label = "`{Self}` is not personal data",
        note = "wrap the value: `Personal<T>`, `Option<Personal<T>>` or `Vec<Personal<T>>`"
    )]
    pub trait PersonalData {
        /// The subjects of the personal values inside.
        fn subjects(&self) -> Vec<&crate::SubjectId>;
    }

    impl<T> PersonalData for crate::Personal<T> {
        fn subjects(&self) -> Vec<&crate::SubjectId> {
            vec![self.subject()]
        }
    }

    impl<P: PersonalData> PersonalData for Option<P> {
        fn subjects(&self) -> Vec<&crate::SubjectId> {
            self.as_ref()
                .map(PersonalData::subjects)
                .unwrap_or_default()
        }
    }

    impl<P: PersonalData> PersonalData for Vec<P> {
        fn subjects(&self) -> Vec<&crate::SubjectId> {
            self.iter().flat_map(PersonalData::subjects).collect()
        }
    }

    /// Checks that a personal field belongs to the subject its event names.
    pub fn check_subject<P: PersonalData + ?Sized, S: AsRef<str> + ?Sized>(
        personal: &P,
        subject: &S,
        path: &'static str,
    ) -> Result<(), Error> {
        if personal
            .subjects()
            .iter()
            .all(|s| s.as_str() == subject.as_ref())
        {
            Ok(())
        } else {
            Err(Error::SubjectMismatch { path })
        }
    }

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
