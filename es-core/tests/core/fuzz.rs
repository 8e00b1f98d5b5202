//! Decoders fed arbitrary input: they never panic, and every refusal is a
//! typed error. (The cargo-fuzz targets in `fuzz/` run the same decoders
//! under a coverage-guided fuzzer.)

use es_core::{
    Bincode, Checkpoint, CommitId, Crypto, Error, EventId, IdempotencyKey, Json, MasterKey,
    MasterKeyring, MemoryStore, Metadata, Position, RecordedEvent, StreamId, StreamVersion,
    SubjectId, decode_events,
};
use proptest::prelude::*;

use crate::domain::AccountEvent;

fn recorded(event_type: &str, schema_version: u32, payload: Vec<u8>) -> RecordedEvent {
    RecordedEvent {
        stream_id: StreamId::new("account-fuzz").unwrap(),
        version: StreamVersion::INITIAL.next(),
        position: Position::new(1),
        commit: CommitId::new(1),
        event_id: EventId::new(),
        event_type: event_type.to_owned(),
        schema_version,
        payload,
        metadata: Metadata::now(),
    }
}

/// What a decoder may answer when it refuses.
fn typed(error: &Error) -> bool {
    matches!(
        error,
        Error::Codec { .. }
            | Error::UnknownEventType { .. }
            | Error::UnknownSchemaVersion { .. }
            | Error::Tampered { .. }
            | Error::CryptoNotConfigured
    )
}

fn event_type() -> impl Strategy<Value = (String, u32)> {
    prop_oneof![
        (
            prop::sample::select(vec!["Opened", "Deposited", "Withdrawn", "AccountClosed"]),
            0u32..4
        )
            .prop_map(|(t, v)| (t.to_owned(), v)),
        (".{0,12}", any::<u32>()),
    ]
}

proptest! {
    /// Arbitrary payloads of any type and version, in both codecs.
    #[test]
    fn event_payloads_decode_or_refuse(
        (name, version) in event_type(),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let record = recorded(&name, version, payload);
        for result in [
            record.decode::<AccountEvent, _>(&Bincode),
            record.decode::<AccountEvent, _>(&Json),
        ] {
            if let Err(error) = result {
                prop_assert!(typed(&error), "untyped refusal: {:?}", error);
                // Messages name kinds and lengths, never the bytes.
                let echoed = error.to_string().contains(&format!("{:?}", record.payload));
                prop_assert!(!echoed, "the error echoes the payload");
            }
        }
    }

    /// Arbitrary bytes where sealed personal data should be: refused as
    /// tampered (or undecodable), never opened and never a panic.
    #[test]
    fn sealed_envelopes_open_or_refuse(
        payload in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let crypto = Crypto::new(MasterKeyring::new(MasterKey::generate("fuzz").unwrap()));
        let store = MemoryStore::new();
        let record = recorded("Opened", 1, payload);
        let decoded: Result<Vec<AccountEvent>, Error> = runtime.block_on(decode_events(
            Some(&crypto),
            &store,
            &Bincode,
            std::slice::from_ref(&record),
        ));
        if let Err(error) = decoded {
            let refused = typed(&error) || matches!(error, Error::InvalidId { .. });
            prop_assert!(refused, "untyped refusal: {:?}", error);
        }
    }

    /// Checkpoints parse or refuse; what parses prints back the same.
    #[test]
    fn checkpoints_parse_or_refuse(text in ".{0,40}") {
        match text.parse::<Checkpoint>() {
            Ok(checkpoint) => prop_assert_eq!(checkpoint.to_string().parse::<Checkpoint>().unwrap(), checkpoint),
            Err(error) => {
                let typed = matches!(error, Error::InvalidCheckpoint { .. });
                prop_assert!(typed, "untyped refusal: {:?}", error);
            }
        }
    }

    /// Numeric checkpoints round trip exactly.
    #[test]
    fn numeric_checkpoints_round_trip(commit in any::<u64>(), position in any::<u64>()) {
        let text = format!("{commit}:{position}");
        if let Ok(checkpoint) = text.parse::<Checkpoint>() {
            prop_assert_eq!(checkpoint.to_string(), text);
        }
    }

    /// Ids accept or refuse any text, and never echo it when they refuse.
    #[test]
    fn ids_validate_or_refuse(text in "\\PC{0,300}|.{0,20}") {
        for result in [
            StreamId::new(text.clone()).map(|id| id.as_str().to_owned()),
            SubjectId::new(text.clone()).map(|id| id.as_str().to_owned()),
            IdempotencyKey::new(text.clone()).map(|id| id.as_str().to_owned()),
        ] {
            match result {
                Ok(id) => prop_assert_eq!(id, text.clone()),
                Err(error) => {
                    let typed = matches!(error, Error::InvalidId { .. });
                    prop_assert!(typed, "untyped refusal: {:?}", error);
                    if text.len() > 3 {
                        prop_assert!(!error.to_string().contains(&text));
                    }
                }
            }
        }
    }
}
