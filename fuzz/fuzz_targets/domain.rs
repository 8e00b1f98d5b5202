// The event type the targets decode into: one plain variant, one with an
// upcast, one with personal data.

use es_core::{Personal, SubjectId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, es_core::Event)]
pub enum FuzzEvent {
    Opened {
        #[event(subject)]
        owner: SubjectId,
        #[event(personal)]
        name: Personal<String>,
    },
    #[event(version = 2, upcast(1 = DepositedV1))]
    Deposited {
        amount: u64,
        reference: String,
    },
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DepositedV1 {
    pub amount: u32,
}

impl From<DepositedV1> for FuzzEvent {
    fn from(v1: DepositedV1) -> Self {
        Self::Deposited {
            amount: u64::from(v1.amount),
            reference: String::new(),
        }
    }
}

pub fn recorded(event_type: &str, schema_version: u32, payload: &[u8]) -> es_core::RecordedEvent {
    es_core::RecordedEvent {
        stream_id: es_core::StreamId::new("fuzz-1").unwrap(),
        version: es_core::StreamVersion::new(1),
        position: es_core::Position::new(1),
        commit: es_core::CommitId::new(1),
        event_id: es_core::EventId::new(),
        event_type: event_type.to_owned(),
        schema_version,
        payload: payload.to_vec(),
        metadata: es_core::Metadata::now(),
    }
}
