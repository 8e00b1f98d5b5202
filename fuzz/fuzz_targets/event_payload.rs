//! Arbitrary payloads for every type name and schema version, in both codecs:
//! an event or a typed error, never a panic.
#![no_main]

use es_core::{Bincode, Json};
use libfuzzer_sys::fuzz_target;

#[path = "domain.rs"]
mod domain;

fuzz_target!(|input: (u8, u8, &[u8])| {
    let (kind, version, payload) = input;
    let name = ["Opened", "Deposited", "Closed", "Other"][usize::from(kind % 4)];
    let record = domain::recorded(name, u32::from(version % 4), payload);
    let _ = record.decode::<domain::FuzzEvent, _>(&Bincode);
    let _ = record.decode::<domain::FuzzEvent, _>(&Json);
});
