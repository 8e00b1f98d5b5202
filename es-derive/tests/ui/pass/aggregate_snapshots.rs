#![deny(warnings, unused_qualifications)]

use es_core::{AggregateType, Json};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(name = "counter", snapshot_every = 50, snapshot_version = 3)]
struct Counter {
    n: u64,
}

/// An enum state, snapshotted too.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize, es_core::Aggregate)]
#[aggregate(snapshot_every = 1)]
enum Door {
    #[default]
    Closed,
    Open {
        since: u64,
    },
}

/// No snapshots: no serde impls needed.
#[derive(Default, es_core::Aggregate)]
#[aggregate(name = "plain")]
struct Plain;

fn main() {
    const _: () = assert!(Counter::SNAPSHOT_VERSION == 3);
    assert_eq!(Counter::SNAPSHOT_EVERY, Some(50));
    assert_eq!(Door::TYPE_NAME, "Door");
    assert_eq!(Door::SNAPSHOT_EVERY, Some(1));
    assert_eq!(Plain::SNAPSHOT_EVERY, None);

    let door = Door::Open { since: 7 };
    let bytes = door.encode_snapshot(&Json).unwrap().unwrap();
    assert_eq!(Door::decode_snapshot(&Json, &bytes).unwrap(), Some(door));
    assert!(Plain.encode_snapshot(&Json).unwrap().is_none());
}
